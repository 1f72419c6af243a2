/**
 * Hostile bytes: a seeded fuzzer feeds mutated Python pickles (from
 * tests/data/pickles_python.json and the writer) and random opcode soups to
 * the reader. Each must decode or fail with MemcachePickleError, never
 * another exception; nothing may touch Object.prototype. Work is linear in
 * the input, so no input can hang the loop (and the test's own runtime is
 * the bound). 100,000 inputs by default; set PICKLE_FUZZ_ITERATIONS for
 * more. Then long arguments: every text opcode (INT, LONG, FLOAT, STRING,
 * UNICODE, GLOBAL, PUT, GET) fed random arguments of up to 256 KiB drawn
 * from the characters its parser treats specially (a backtracking or
 * quadratic parser shows as a test that does not finish), and zlib bombs of
 * random sizes against random `maxValueSize` limits. Seed: MEMKIT_SEED (a
 * number, or "random"; PICKLE_FUZZ_SEED is read too), printed at the start.
 */
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { describe, it } from "../_support/_harness.ts";
import { harnessSeed, Rng, withSeed } from "./_hostile.ts";
import { fromHex } from "../interop/_python_tags.ts";
import { CompressedSerde, FLAG_COMPRESSED, MemcachePickleError, MemcacheSerdeError, PickleSerde } from "../../mod.ts";
import { unpickle } from "../../src/values/_pickle_read.ts";
import { OPCODES as TABLE, TEXT_OPCODES } from "../../src/values/_pickle_ops.ts";
import { pickle } from "../../src/values/_pickle_write.ts";

function env(name: string): string | undefined {
  // deno-lint-ignore no-explicit-any
  const g = globalThis as any;
  return g.Deno?.env?.get(name) ?? g.process?.env?.[name];
}

const ITERATIONS = Number(env("PICKLE_FUZZ_ITERATIONS") ?? 100_000);
const SEED = harnessSeed(Number(env("PICKLE_FUZZ_SEED") ?? 0x5eed18));
console.log(`# pickle fuzz seed ${SEED} (repeat with MEMKIT_SEED=${SEED})`);

/** Runs `body`; a failure names the seed, as withSeed does for asynchronous bodies. */
function seeded(body: () => void): void {
  try {
    body();
  } catch (error) {
    console.error(`# failed with seed ${SEED} (repeat with MEMKIT_SEED=${SEED})`);
    throw new Error(`[seed ${SEED}, repeat with MEMKIT_SEED=${SEED}] ${(error as Error)?.message}`, { cause: error });
  }
}

function corpus(): Uint8Array[] {
  const data = JSON.parse(readFileSync(new URL("../data/pickles_python.json", import.meta.url), "utf8"));
  const seeds: Uint8Array[] = [];
  for (const c of [...data.cases, ...data.refused]) {
    const bytes = fromHex(c.pickle);
    if (bytes.length <= 700) seeds.push(bytes);
  }
  for (const hex of Object.values<string>(data["recursive list"])) seeds.push(fromHex(hex));
  const shared = [1, "x"];
  const value = { a: [1, 2.5, null, true], b: new Set([1, "s"]), m: new Map<unknown, unknown>([[1, shared]]), shared };
  for (const protocol of [2, 3, 4, 5]) seeds.push(pickle(value, protocol), pickle([2n ** 80n, "é", new Uint8Array(3)]));
  return seeds;
}

/** Opcodes and the argument bytes that make them interesting (lengths, indexes, huge claims). */
const OPCODES = [..."().0123BCFGIJKLMNPQRSTUVXabcdeghijlopqrstu}]"].map((c) => c.charCodeAt(0))
  .concat([0x80, 0x81, 0x82, 0x83, 0x84, 0x85, 0x86, 0x87, 0x88, 0x89, 0x8a, 0x8b, 0x8c, 0x8d, 0x8e, 0x8f])
  .concat([0x90, 0x91, 0x92, 0x93, 0x94, 0x95, 0x96, 0x97, 0x98]);
const HUGE = [
  [0xff, 0xff, 0xff, 0xff],
  [0xff, 0xff, 0xff, 0x7f],
  [0, 0, 0, 0x80],
  [0, 0, 0, 0, 0, 0, 0, 0x10], // 2^60
  [0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff],
  [0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x1f, 0],
];

function mutate(rand: () => number, seeds: Uint8Array[]): Uint8Array {
  const pick = <T>(xs: T[]) => xs[rand() % xs.length];
  const mode = rand() % 10;
  if (mode === 0) {
    // opcode soup
    const out: number[] = [];
    const n = 1 + (rand() % 64);
    for (let i = 0; i < n; i++) {
      out.push(pick(OPCODES));
      const args = rand() % 4;
      for (let k = 0; k < args; k++) out.push(rand() & 0xff);
      if (rand() % 8 === 0) out.push(...pick(HUGE));
      if (rand() % 6 === 0) out.push(0x0a);
    }
    if (rand() % 2) out.push(0x2e);
    return new Uint8Array(out);
  }
  if (mode === 1) {
    const out = new Uint8Array(1 + (rand() % 128));
    for (let i = 0; i < out.length; i++) out[i] = rand() & 0xff;
    return out;
  }
  const bytes = [...pick(seeds)];
  const edits = 1 + (rand() % 4);
  for (let e = 0; e < edits; e++) {
    const at = bytes.length === 0 ? 0 : rand() % bytes.length;
    switch (rand() % 9) {
      case 0:
        bytes[at] ^= 1 << (rand() % 8);
        break;
      case 1:
        bytes[at] = rand() & 0xff;
        break;
      case 2:
        bytes.splice(at, 0, pick(OPCODES));
        break;
      case 3:
        bytes.splice(at, 1 + (rand() % 4));
        break;
      case 4:
        bytes.length = at;
        break;
      case 5:
        bytes.splice(at, 0, ...pick(HUGE));
        break;
      case 6: {
        const other = pick(seeds);
        const from = rand() % Math.max(1, other.length);
        bytes.splice(at, 0, ...other.subarray(from, from + 1 + (rand() % 32)));
        break;
      }
      case 7:
        bytes.splice(at, 0, ...new Array(1 + (rand() % 50)).fill(pick([0x28, 0x5d, 0x32, 0x94])));
        break;
      default:
        bytes.splice(at, 0, 0x68, /* BINGET */ rand() & 0xff);
    }
  }
  return new Uint8Array(bytes);
}

describe("PickleSerde against hostile bytes", () => {
  it(`${ITERATIONS} mutated and random pickles decode or fail with MemcachePickleError`, () =>
    seeded(() => {
      const seeds = corpus();
      const rng = new Rng(SEED);
      const rand = () => rng.next() * 4294967296; // an unsigned 32-bit integer
      const before = Object.getOwnPropertyNames(Object.prototype).sort().join();
      let decoded = 0;
      let refused = 0;
      for (let i = 0; i < ITERATIONS; i++) {
        const input = mutate(rand, seeds);
        try {
          unpickle(input);
          decoded++;
        } catch (error) {
          if (!(error instanceof MemcachePickleError)) {
            const hex = [...input].map((b) => b.toString(16).padStart(2, "0")).join("");
            assert.fail(`input ${i} (seed ${SEED}) threw ${error}: ${hex}`);
          }
          refused++;
        }
      }
      assert.equal(decoded + refused, ITERATIONS);
      assert.ok(decoded > ITERATIONS / 100, `only ${decoded} inputs decoded: the mutations are too blunt`);
      assert.ok(refused > ITERATIONS / 10, `only ${refused} inputs refused`);
      assert.equal(Object.getOwnPropertyNames(Object.prototype).sort().join(), before);
      // deno-lint-ignore no-explicit-any
      assert.equal(({} as any).polluted, undefined);
    }));

  it("long hostile arguments for every text opcode decode or fail with MemcachePickleError", () =>
    seeded(() => {
      const rng = new Rng(SEED ^ 0x7e47);
      // per opcode, the bytes its parser looks at: digits, signs, points, exponents, quotes, escapes, newlines
      const alphabet = [..."0123456789+-.eEinfatxuU'\" \\\n"].map((c) => c.charCodeAt(0)).concat([0xff, 0xc3, 0x80]);
      let refused = 0;
      for (let i = 0; i < 400; i++) {
        const op = rng.pick(TEXT_OPCODES);
        const size = rng.chance(0.25) ? rng.range(65536, 262144) : rng.range(0, 4096);
        // a long run of one character, or of two interleaved (what backtracking feeds on), then a few random ones
        const runOf = [rng.pick(alphabet), rng.pick(alphabet)];
        const mixed = rng.chance(0.5);
        const out = new Uint8Array(size + 8);
        let n = 0;
        if (TABLE.get(op)!.name === "PUT") out[n++] = 0x4e; // something to memoize
        out[n++] = op;
        for (let k = 0; k < size; k++) out[n++] = mixed && rng.chance(0.3) ? runOf[1] : runOf[0];
        for (let k = rng.int(4); k > 0; k--) out[n++] = rng.pick(alphabet);
        if (rng.chance(0.8)) out[n++] = 0x0a;
        out[n++] = 0x2e;
        try {
          unpickle(out.subarray(0, n));
        } catch (error) {
          if (!(error instanceof MemcachePickleError)) {
            assert.fail(`${TABLE.get(op)!.name} with a ${size}-byte argument threw ${error}`);
          }
          assert.ok(error.message.length < 300, `a ${error.message.length}-character message`);
          refused++;
        }
      }
      assert.ok(refused > 100, `only ${refused} long arguments refused`);
    }));

  it("zlib bombs of random sizes stop at a random maxValueSize with MemcacheSerdeError", () =>
    withSeed(SEED, async () => {
      const rng = new Rng(SEED ^ 0xb0b);
      const packer = new CompressedSerde({ minCompressLen: 1 });
      for (let i = 0; i < 12; i++) {
        const size = rng.range(1, 8 << 20);
        const max = rng.chance(0.2) ? size : rng.range(1, 8 << 20);
        const fill = rng.int(256);
        const [packed, flags] = await packer.serialize("k", new Uint8Array(size).fill(fill)) as [Uint8Array, number];
        const serde = rng.chance(0.5)
          ? new PickleSerde({ maxValueSize: max })
          : new CompressedSerde({ maxValueSize: max });
        const reading = Promise.resolve(serde.deserialize("k", packed, flags | FLAG_COMPRESSED));
        if (size > max) {
          await assert.rejects(reading, (e: unknown) => e instanceof MemcacheSerdeError, `${size} bytes, limit ${max}`);
        } else {
          const value = await reading as Uint8Array;
          assert.equal(value.length, size);
          assert.equal(value[size - 1], fill);
        }
      }
    }));

  it("copies through the memo are bounded: set(list) repeated on one shared list fails, it does not exhaust memory", () => {
    // A list of 100,000 items, memoized, then `set(<that list>)` 50,000 times for 21 bytes each: 5·10^9 copied items.
    const head = [0x5d, 0x71, 0, 0x28, ...new Array(100_000).fill([0x4b, 1]).flat(), 0x65];
    const call = [..."c__builtin__\nset\n"].map((c) => c.charCodeAt(0)).concat([0x68, 0, 0x85, 0x52, 0x30]);
    const pickled = new Uint8Array([...head, ...new Array(50_000).fill(call).flat(), 0x4e, 0x2e]);
    assert.throws(() => unpickle(pickled), (e: unknown) => {
      assert.ok(e instanceof MemcachePickleError);
      assert.match((e as Error).message, /copies more than/);
      return true;
    });
    // The same shape within the budget (each list copied once, as Python writes sets) reads.
    const once = new Uint8Array([...head, ...call.slice(0, -1), 0x2e]);
    assert.equal((unpickle(once) as Set<number>).size, 1);
  });

  it("huge length claims fail before allocating", () => {
    // Every length-prefixed opcode, claiming up to 2^64−1 bytes in a 13-byte pickle.
    for (const op of [0x42, 0x58, 0x54, 0x8b]) {
      for (const huge of HUGE.filter((h) => h.length === 4)) {
        assert.throws(() => unpickle(new Uint8Array([op, ...huge, 0x2e])), MemcachePickleError);
      }
    }
    for (const op of [0x8d, 0x8e, 0x96, 0x95]) {
      for (const huge of HUGE.filter((h) => h.length === 8)) {
        assert.throws(() => unpickle(new Uint8Array([op, ...huge, 0x4e, 0x2e])), MemcachePickleError);
      }
    }
  });
});
