// A seeded fuzzer of meta reply streams, as fuzz_replies_test.ts is for the
// text protocol:
//
// 1. the pure ReplyParser on random meta streams (HD / VA + data block /
//    EN / NF / NS / EX with return flags, quiet batches closed by MN, data
//    blocks that hold "\r\nHD\r\n" and "\r\nMN\r\n"), split anywhere and
//    mutated once: any split parses the same, replies before the mutation
//    exactly, and the only error is a ProtocolError;
// 2. a Client's meta commands (metaGet, metaGetMany, metaSet, metaDelete,
//    metaArithmetic) and getOrSet, pipelined, answered by a MemoryServer
//    whose replies are mutated once and dribbled (MutatingTransport): every
//    call settles within its timeout + 100 ms with a MemcacheError or a
//    result of its own (a value tagged with its own key, a counter in its
//    own range, its own opaque); on a clean stream every call succeeds;
// 3. the same over a loopback socket (MemoryServer.listen, the mutation in
//    a relay).
//
// Sizes: MEMKIT_FUZZ_ITERATIONS (default 300): half that in trials over the
// transport, 5x for the parser, a tenth over sockets. Seed: MEMKIT_SEED (a number, or
// "random"); a failure prints the seed.
import assert from "node:assert/strict";
import { isDeepStrictEqual } from "node:util";
import { describe, it } from "../_support/_harness.ts";
import { Client, MemcacheError, type MetaResult, type Transport } from "../../mod.ts";
import { MemoryServer } from "../../testing.ts";
import { EXPECT_META, EXPECT_META_QUIET, type Expectation, ReplyParser } from "../../src/protocol/_reply_parser.ts";
import { ProtocolError } from "../../src/protocol/_wire.ts";
import { envInt, guard, harnessSeed, latin1, readTag, Rng, taggedValue, withSeed } from "./_hostile.ts";
import { Invariants } from "./_hostile_ledger.ts";
import { chunking, lineBytesOf, mutate, MutatingTransport, parseAll } from "./_hostile_mutate.ts";
import { startMutatingRelay } from "./_hostile_relay.ts";

const ITERATIONS = envInt("MEMKIT_FUZZ_ITERATIONS", 300);
const TIMEOUT = 1000;

// ---------------------------------------------------------------- 1. the parser

/** Return flags a meta line may carry. */
function metaFlags(rng: Rng, key: string): string {
  const pool = [
    () => `c${rng.int(1e9)}`,
    () => `t${rng.chance(0.2) ? -1 : rng.int(1e5)}`,
    () => `f${rng.int(2 ** 32)}`,
    () => `s${rng.int(1e4)}`,
    () => `O${rng.int(1e6)}`,
    () => `k${key}`,
    () => `h${rng.int(2)}`,
    () => `l${rng.int(1e4)}`,
    () => "W",
    () => "X",
    () => "Z",
  ];
  let out = "";
  for (let i = rng.int(5); i > 0; i--) out += " " + rng.pick(pool)();
  return out;
}

/** A data block that names its key and holds bytes that look like meta replies. */
function metaData(rng: Rng, key: string): string {
  const tricky = ["", "\r\nHD\r\n", "\r\nMN\r\n", "VA 5\r\n", "\r\nEN\r\n", "\r\n", "\u00ff\u0000"];
  let fill = "";
  for (let i = rng.int(4); i > 0; i--) fill += rng.pick(tricky) + "y".repeat(rng.int(rng.chance(0.1) ? 3000 : 30));
  return `v|${key}|1|${fill}|${key}|1`;
}

function metaReply(rng: Rng, key: string, statuses: string[]): string {
  const status = rng.pick(statuses);
  if (status !== "VA") return `${status}${metaFlags(rng, key)}\r\n`;
  const data = metaData(rng, key);
  return `VA ${data.length}${metaFlags(rng, key)}\r\n${data}\r\n`;
}

/** A random meta stream: single replies and quiet batches closed by MN. */
function metaScript(rng: Rng, count: number): { expects: Expectation[]; stream: Uint8Array } {
  const expects: Expectation[] = [];
  let text = "";
  for (let i = 0; i < count; i++) {
    const key = `k${i}x${i}`;
    if (rng.chance(0.3)) {
      const keys = Array.from({ length: 1 + rng.int(5) }, (_, j) => `${key}q${j}`);
      expects.push({ expect: EXPECT_META_QUIET, keys });
      for (const k of keys) if (rng.chance(0.6)) text += metaReply(rng, k, ["VA", "HD", "VA"]);
      text += "MN\r\n";
    } else {
      expects.push({ expect: EXPECT_META });
      text += metaReply(rng, key, ["HD", "VA", "EN", "NF", "NS", "EX"]);
    }
  }
  return { expects, stream: latin1(text) };
}

/** Where each reply of a clean stream ends (a byte-at-a-time parse). */
function replyEnds(expects: Expectation[], stream: Uint8Array): number[] {
  const queue = [...expects];
  const ends: number[] = [];
  let fed = 0;
  const parser = new ReplyParser(() => queue[0], () => (queue.shift(), ends.push(fed)));
  for (let i = 0; i < stream.length; i++) {
    fed = i + 1;
    parser.feed(stream.subarray(i, i + 1));
  }
  return ends;
}

describe("fuzz: meta replies through the ReplyParser", () => {
  const seed = harnessSeed(14_001);
  it(`${ITERATIONS * 5} meta streams, split anywhere and mutated (seed ${seed})`, () =>
    withSeed(seed, () => {
      const rng = new Rng(seed);
      const problems: string[] = [];
      for (let i = 0; i < ITERATIONS * 5 && problems.length < 10; i++) {
        const { expects, stream } = metaScript(rng, 1 + rng.int(8));
        const clean = parseAll(expects, stream, [stream.length]);
        if (clean.error !== undefined || clean.replies.length !== expects.length) {
          problems.push(`#${i}: a clean stream did not parse: ${String(clean.error)}`);
          continue;
        }
        const ends = replyEnds(expects, stream);
        const { bytes, mutation } = mutate(rng, stream, lineBytesOf(stream));
        const a = parseAll(expects, bytes, chunking(rng, bytes.length));
        const b = parseAll(expects, bytes, chunking(rng, bytes.length));
        const label = `#${i} (${mutation.kind}, ${bytes.length} bytes)`;
        if (!isDeepStrictEqual(a.replies, b.replies) || (a.error === undefined) !== (b.error === undefined)) {
          problems.push(`${label}: two splits of one stream parsed differently: ${a.error} / ${b.error}`);
        }
        for (const r of [a, b]) {
          if (r.error !== undefined && !(r.error instanceof ProtocolError)) {
            problems.push(`${label}: threw ${(r.error as Error)?.name}: ${(r.error as Error)?.message}`);
          }
          const intact = ends.filter((end) => end <= mutation.at).length;
          if (!isDeepStrictEqual(r.replies.slice(0, intact), clean.replies.slice(0, intact))) {
            problems.push(`${label}: a reply before the mutation changed`);
          }
          if (r.replies.length < intact) {
            problems.push(`${label}: only ${r.replies.length} of ${intact} intact replies`);
          }
        }
      }
      assert.deepEqual(problems, []);
      return Promise.resolve();
    }));
});

// ---------------------------------------------------------------- 2. and 3. a Client's meta commands

/** One call of a trial and the check of its value. */
interface MetaOp {
  what: string;
  run(client: Client): Promise<unknown>;
  /** What is wrong with a value, if anything; `mutated`: the stream was changed (values may be corrupted, never another's). */
  check(value: unknown, mutated: boolean): string | undefined;
}

/** What is wrong with `value` as `key`'s: another key's tag, or (clean streams) no tag at all. */
function ownValue(key: string, value: unknown, mutated: boolean): string | undefined {
  if (value === undefined || value === null) return undefined;
  const tag = readTag(value);
  if (tag !== undefined) return tag.key === key ? undefined : `${key} got ${tag.key}'s value`;
  return mutated ? undefined : `${key} got ${JSON.stringify(String(value).slice(0, 60))}`;
}

/** Counters live in ranges of 1e6 apart, one per counter key, so one never reads as another. */
const counterBase = (n: number) => (n + 1) * 1_000_000;

/**
 * Random meta calls (and getOrSet) on distinct keys, the server seeded so
 * that reads hit: `k<n>x<n>` keys hold tagged values, `c<n>x<n>` counters.
 */
async function makeMetaTrial(rng: Rng, seedClient: Client, size: number, serial: () => number): Promise<MetaOp[]> {
  const ops: MetaOp[] = [];
  let n = 0;
  const next = () => (n++, n);
  for (let i = 0; i < size; i++) {
    const roll = rng.int(6);
    const id = next();
    const key = `k${id}x${id}`;
    if (roll === 4) {
      const counter = `c${id}x${id}`;
      await seedClient.set(counter, String(counterBase(id)));
      const delta = 1 + rng.int(9);
      ops.push({
        what: `metaArithmetic ${counter}`,
        run: (c) => c.metaArithmetic(counter, { delta }),
        check: (v, mutated) => {
          const r = v as MetaResult;
          if (mutated || r.value === undefined) return undefined;
          const n = Number(r.value);
          return n > counterBase(id) && n < counterBase(id + 1) ? undefined : `${counter} counted to ${n}`;
        },
      });
      continue;
    }
    if (rng.chance(0.8)) await seedClient.set(key, taggedValue(key, serial()));
    if (roll === 0) {
      const opaque = rng.chance(0.5) ? `o${id}` : undefined;
      const options = { returnCas: rng.chance(0.5), returnTtl: rng.chance(0.5), returnSize: rng.chance(0.3), opaque };
      ops.push({
        what: `metaGet ${key}`,
        run: (c) => c.metaGet(key, options),
        check: (v, mutated) => {
          const r = v as MetaResult;
          if (opaque !== undefined && r.opaque !== undefined && r.opaque !== opaque) {
            return `${key} got opaque ${r.opaque}, sent ${opaque}`;
          }
          return ownValue(key, r.value, mutated);
        },
      });
    } else if (roll === 1) {
      const keys = [key];
      for (let j = rng.int(4); j > 0; j--) {
        const more = next();
        const k = `k${more}x${more}`;
        if (rng.chance(0.7)) await seedClient.set(k, taggedValue(k, serial()));
        keys.push(k);
      }
      ops.push({
        what: `metaGetMany ${keys.join(" ")}`,
        run: (c) => c.metaGetMany(keys, { returnCas: rng.chance(0.5) }),
        check: (v, mutated) => {
          for (const [k, r] of v as Map<string, MetaResult>) {
            if (!keys.includes(k)) return `metaGetMany gave ${k}, not asked for`;
            const problem = ownValue(k, r.value, mutated);
            if (problem) return problem;
          }
          return undefined;
        },
      });
    } else if (roll === 2) {
      const value = taggedValue(key, serial());
      ops.push({
        what: `metaSet ${key}`,
        run: (c) => c.metaSet(key, value, { returnCas: rng.chance(0.5) }),
        check: (v, mutated) => ownValue(key, (v as MetaResult).value, mutated),
      });
    } else if (roll === 3) {
      ops.push({
        what: `metaDelete ${key}`,
        run: (c) => c.metaDelete(key),
        check: (v, mutated) => ownValue(key, (v as MetaResult).value, mutated),
      });
    } else {
      const recacheWithin = rng.chance(0.5) ? 1 + rng.int(100) : undefined;
      const lease = rng.chance(0.5) ? { ttl: 5, wait: 50 } : false as const;
      ops.push({
        what: `getOrSet ${key}`,
        run: (c) =>
          c.getOrSet(key, (k) => taggedValue(k, serial()), { ttl: 60, recacheWithin, lease, onError: () => {} }),
        check: (v, mutated) => ownValue(key, v, mutated),
      });
    }
  }
  return ops;
}

/**
 * Runs a trial's ops at once, through the ledger: each settles in time,
 * with a MemcacheError or a value of its own; with `clean`, each succeeds.
 */
async function runMetaOps(inv: Invariants, client: Client, ops: MetaOp[], mutated: () => boolean | undefined) {
  const calls = Promise.all(ops.map((op) => inv.call(op.what, TIMEOUT, () => op.run(client))));
  const outcomes = await guard(calls, TIMEOUT * 10);
  if (outcomes === "hung") return void inv.violation("hung", `a batch of ${ops.length} never settled`);
  const changed = mutated() ?? false;
  ops.forEach((op, i) => {
    const outcome = outcomes[i];
    if (outcome.ok) {
      const problem = op.check(outcome.value, changed);
      if (problem) inv.violation("wrong", `${op.what}: ${problem}`);
    } else if (!changed) {
      inv.violation("wrong", `${op.what} failed on a clean stream: ${(outcome.error as Error)?.message}`);
    }
  });
}

describe("fuzz: meta commands and getOrSet over a mutating transport", () => {
  const seed = harnessSeed(14_002);
  const trials = Math.max(50, Math.floor(ITERATIONS / 2));
  it(`${trials} pipelined batches, MemoryServer's replies mutated once (seed ${seed})`, () =>
    withSeed(seed, async () => {
      const rng = new Rng(seed);
      const inv = new Invariants("fuzz/meta-transport");
      let serial = 0;
      const trial = async () => {
        const trialRng = new Rng(rng.int(2 ** 31));
        await using server = new MemoryServer();
        const seedClient = new Client("memory", { transport: server.transport() });
        const ops = await makeMetaTrial(trialRng, seedClient, 1 + trialRng.int(10), () => ++serial);
        await seedClient.close();
        const transport = new MutatingTransport(server.transport(), trialRng);
        const client = new Client("memory", { transport: transport as Transport, timeout: TIMEOUT });
        try {
          await runMetaOps(inv, client, ops, () => transport.record?.mutation.kind !== "clean");
        } finally {
          await client.close();
          transport.dispose();
        }
      };
      for (let i = 0; i < trials; i += 50) {
        await Promise.all(Array.from({ length: Math.min(50, trials - i) }, trial));
      }
      console.log(`# ${inv.summary()}`);
      inv.assertClean();
      assert.ok(inv.report.ok > inv.report.calls / 2, "most calls succeed: the fuzzer reaches the commands");
    }));
});

describe("fuzz: meta commands and getOrSet over a loopback socket", () => {
  const seed = harnessSeed(14_003);
  const trials = Math.max(20, Math.floor(ITERATIONS / 10));
  it(`${trials} batches through a relay that mutates MemoryServer's replies (seed ${seed})`, () =>
    withSeed(seed, async () => {
      const rng = new Rng(seed);
      const inv = new Invariants("fuzz/meta-socket");
      let serial = 0;
      await using server = new MemoryServer();
      const { port } = await server.listen();
      const seedClient = new Client("memory", { transport: server.transport() });
      try {
        for (let i = 0; i < trials; i++) {
          const trialRng = new Rng(rng.int(2 ** 31));
          await seedClient.flushAll();
          const ops = await makeMetaTrial(trialRng, seedClient, 1 + trialRng.int(10), () => ++serial);
          await using relay = await startMutatingRelay(port, trialRng);
          const client = new Client(relay.spec, { timeout: TIMEOUT, connectTimeout: TIMEOUT });
          try {
            await runMetaOps(inv, client, ops, () => relay.record?.mutation.kind !== "clean");
          } finally {
            await client.close();
          }
        }
      } finally {
        await seedClient.close();
      }
      console.log(`# ${inv.summary()}`);
      inv.assertClean();
      assert.ok(inv.report.ok > 0);
    }));
});

// Every failure above must be one of these.
void MemcacheError;
