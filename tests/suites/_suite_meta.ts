/**
 * Behaviour suite, meta protocol cases (mg, ms, md, ma, mn): run for every
 * target next to `clientSuite`, against the memcached the target spawns
 * (Debian's 1.6.18) or a fake server where the case needs one (a server
 * without meta, CAS tokens beyond 2^53). The wire-level cases that only
 * concern `Client` are in tests/features/meta_test.ts.
 */
import assert from "node:assert/strict";
import { rejectsWith } from "../_support/_assert.ts";
import { describe, it } from "../_support/_harness.ts";
import {
  type ClientOptions,
  MemcacheClientError,
  MemcacheIllegalInputError,
  MemcacheSerdeError,
  MemcacheServerError,
  MemcacheUnknownCommandError,
  type MetaResult,
} from "../../mod.ts";
import type { FakeSocket, SuiteTarget } from "./_suite.ts";

/** The lines of `all` that end in the chunk `text` just completed (the fake servers are stateless). */
function newLines(text: string, all: string): string[] {
  const from = all.length - text.length;
  const lines: string[] = [];
  let start = all.lastIndexOf("\n", from - 1) + 1;
  for (let nl = all.indexOf("\n", from); nl !== -1; nl = all.indexOf("\n", start)) {
    lines.push(all.slice(start, nl).replace(/\r$/, ""));
    start = nl + 1;
  }
  return lines;
}

/** A fake server answering each command line with `answer(line)`. */
function answering(answer: (line: string) => string) {
  return (socket: FakeSocket, text: string, all: string) => {
    const out = newLines(text, all).map(answer).join("");
    if (out !== "") socket.write(out);
  };
}

/** A result with no lease flags, plus `fields`. */
function plain(fields: Partial<MetaResult>): Partial<MetaResult> {
  return { win: false, stale: false, winnerExists: false, ...fields };
}

/** The fields of `result` named in `expected`, for deepEqual. */
function pick(result: MetaResult | undefined, expected: Partial<MetaResult>): Partial<MetaResult> {
  assert.ok(result !== undefined, "no result");
  const picked: Record<string, unknown> = {};
  for (const k of Object.keys(expected)) picked[k] = (result as unknown as Record<string, unknown>)[k];
  return picked as Partial<MetaResult>;
}

/** Registers the meta cases for `target`. */
export function metaSuite(target: SuiteTarget): void {
  const { makeClient } = target;
  const test = (name: string, body: () => Promise<void>) => it(name, body, { skip: target.skip?.[name] ?? false });

  describe(`${target.name}: meta protocol`, () => {
    test("metaGet hits and misses, with and without the value", async () => {
      await using server = await target.startMemcached();
      await using client = makeClient(server.spec);
      assert.deepEqual(await client.metaGet("absent"), plain({ status: "EN", hit: false }));
      assert.deepEqual(await client.metaGet("absent", { value: false }), plain({ status: "EN", hit: false }));
      assert.deepEqual(await client.metaSet("k", { a: [1, "two"] }), plain({ status: "HD", hit: true, stored: true }));
      const hit = await client.metaGet("k");
      assert.deepEqual(pick(hit, { status: "VA", hit: true, value: { a: [1, "two"] } }), {
        status: "VA",
        hit: true,
        value: { a: [1, "two"] },
      });
      assert.equal(typeof hit.flags, "number"); // the serde's flags come back with the value
      const bare = await client.metaGet("k", { value: false });
      assert.deepEqual(bare, plain({ status: "HD", hit: true }));
      assert.equal("value" in bare, false);
      // Stored by the classic commands, read by meta, and the other way round.
      await client.set("classic", "text", { noreply: false });
      assert.equal((await client.metaGet("classic")).value, "text");
      await client.metaSet("meta", new Uint8Array([0, 13, 10, 255]));
      assert.deepEqual(await client.get("meta"), new Uint8Array([0, 13, 10, 255]));
    });

    test("return flags: cas, ttl, size, last access, hit before, flags, key, opaque", async () => {
      await using server = await target.startMemcached();
      await using client = makeClient(server.spec);
      const stored = await client.metaSet("item", "hello", { expire: 1000, flags: 16, returnCas: true });
      assert.match(stored.cas ?? "", /^\d+$/);
      const all = {
        returnCas: true,
        returnTtl: true,
        returnSize: true,
        returnLastAccess: true,
        returnHitBefore: true,
        returnFlags: true,
        returnKey: true,
        opaque: "tag-1",
      };
      const first = await client.metaGet("item", all);
      assert.deepEqual(
        pick(first, { value: "hello", cas: stored.cas, size: 5, flags: 16, key: "item", opaque: "tag-1" }),
        {
          value: "hello",
          cas: stored.cas,
          size: 5,
          flags: 16,
          key: "item",
          opaque: "tag-1",
        },
      );
      assert.ok(first.ttl! > 990 && first.ttl! <= 1000, `ttl ${first.ttl}`);
      assert.equal(first.hitBefore, false);
      assert.equal(typeof first.lastAccess, "number");
      const [, gotsCas] = await client.gets("item");
      assert.equal(stored.cas, gotsCas); // the same token gets returns
      const second = await client.metaGet("item", { ...all, value: false, opaque: "x" });
      assert.equal(second.hitBefore, true);
      assert.equal(second.opaque, "x");
      assert.equal("value" in second, false);
      // noLruBump: the access is not recorded.
      await client.metaSet("quiet", "v");
      await client.metaGet("quiet", { noLruBump: true });
      assert.equal((await client.metaGet("quiet", { returnHitBefore: true })).hitBefore, false);
      // An item without a TTL.
      assert.equal((await client.metaGet("quiet", { returnTtl: true, value: false })).ttl, -1);
      // A miss carries its opaque back too.
      assert.deepEqual(
        await client.metaGet("absent", { opaque: "o" }),
        plain({ status: "EN", hit: false, opaque: "o" }),
      );
    });

    test("touch sets the TTL; the returned ttl is the one found", async () => {
      await using server = await target.startMemcached();
      await using client = makeClient(server.spec);
      await client.metaSet("t", 1);
      const touched = await client.metaGet("t", { touch: 500, returnTtl: true });
      assert.equal(touched.ttl, -1); // as found, before the touch
      assert.equal(touched.value, 1);
      const after = await client.metaGet("t", { returnTtl: true, value: false });
      assert.ok(after.ttl! > 490 && after.ttl! <= 500, `ttl ${after.ttl}`);
      assert.equal((await client.metaGet("absent", { touch: 100 })).hit, false);
    });

    test("vivify: the first caller wins, later ones see winnerExists; metaSet with the won cas clears both", async () => {
      await using server = await target.startMemcached();
      await using client = makeClient(server.spec);
      const first = await client.metaGet("lease", { vivify: 30, returnCas: true, returnTtl: true });
      assert.deepEqual(pick(first, { hit: true, win: true, winnerExists: false, stale: false }), {
        hit: true,
        win: true,
        winnerExists: false,
        stale: false,
      });
      assert.equal(first.size ?? 0, 0);
      assert.ok(first.ttl! > 25, `ttl ${first.ttl}`);
      const later = await Promise.all([1, 2, 3].map(() => client.metaGet("lease", { vivify: 30, value: false })));
      for (const r of later) {
        assert.deepEqual(pick(r, { win: false, winnerExists: true }), { win: false, winnerExists: true });
      }
      // The winner stores with the cas of its win: the lease ends.
      const stored = await client.metaSet("lease", "computed", { cas: first.cas!, expire: 100 });
      assert.equal(stored.stored, true);
      const now = await client.metaGet("lease", { vivify: 30 });
      assert.deepEqual(pick(now, { value: "computed", win: false, winnerExists: false, stale: false }), {
        value: "computed",
        win: false,
        winnerExists: false,
        stale: false,
      });
    });

    test("recacheWithin wins below the remaining TTL only, never without a TTL; a touch in the call does not hide it", async () => {
      await using server = await target.startMemcached();
      await using client = makeClient(server.spec);
      await client.metaSet("r", "v", { expire: 100 });
      assert.equal((await client.metaGet("r", { recacheWithin: 30 })).win, false); // 100 s left: not below 30
      const won = await client.metaGet("r", { recacheWithin: 200 });
      assert.deepEqual(pick(won, { value: "v", win: true, winnerExists: false }), {
        value: "v",
        win: true,
        winnerExists: false,
      });
      assert.deepEqual(pick(await client.metaGet("r", { recacheWithin: 200 }), { win: false, winnerExists: true }), {
        win: false,
        winnerExists: true,
      });
      await client.metaSet("forever", "v");
      assert.equal((await client.metaGet("forever", { recacheWithin: 1_000_000 })).win, false);
      // R is sent before T: the win is judged on the TTL found, not the one this call sets.
      await client.metaSet("touched", "v", { expire: 100 });
      const both = await client.metaGet("touched", { recacheWithin: 200, touch: 1000, returnTtl: true });
      assert.equal(both.win, true);
      const after = await client.metaGet("touched", { returnTtl: true, value: false });
      assert.ok(after.ttl! > 990, `the touch applied too: ttl ${after.ttl}`);
    });

    test("metaDelete: deleted, not found, cas mismatch; invalidate leaves it stale with the next reader winning", async () => {
      await using server = await target.startMemcached();
      await using client = makeClient(server.spec);
      assert.deepEqual(await client.metaDelete("absent"), plain({ status: "NF", hit: false, deleted: false }));
      await client.metaSet("d", "v");
      assert.deepEqual(await client.metaDelete("d", { returnKey: true, opaque: "7" }), {
        ...plain({ status: "HD", hit: true, deleted: true }),
        key: "d",
        opaque: "7",
      });
      assert.equal((await client.metaGet("d")).hit, false);
      const { cas } = await client.metaSet("c", "v", { returnCas: true });
      assert.deepEqual(
        await client.metaDelete("c", { cas: BigInt(cas!) + 1n }),
        plain({ status: "EX", hit: false, deleted: false }),
      );
      assert.equal((await client.metaDelete("c", { cas: cas! })).deleted, true);
      // Invalidate: the item stays, stale; one reader wins, the others see the winner.
      await client.metaSet("s", "old", { expire: 1000 });
      assert.equal((await client.metaDelete("s", { invalidate: true, expire: 30 })).deleted, true);
      const reader = await client.metaGet("s", { returnTtl: true, returnCas: true });
      assert.deepEqual(pick(reader, { value: "old", stale: true, win: true, winnerExists: false }), {
        value: "old",
        stale: true,
        win: true,
        winnerExists: false,
      });
      assert.ok(reader.ttl! <= 30, `ttl ${reader.ttl}`);
      const next = await client.metaGet("s");
      assert.deepEqual(pick(next, { value: "old", stale: true, win: false, winnerExists: true }), {
        value: "old",
        stale: true,
        win: false,
        winnerExists: true,
      });
      // The winner's store with its cas makes the item fresh again.
      assert.equal((await client.metaSet("s", "new", { cas: reader.cas! })).stored, true);
      assert.deepEqual(pick(await client.metaGet("s"), { value: "new", stale: false, win: false }), {
        value: "new",
        stale: false,
        win: false,
      });
    });

    test("metaSet: modes, cas mismatch (EX), not found (NF), an older cas with invalidate stores stale", async () => {
      await using server = await target.startMemcached();
      await using client = makeClient(server.spec);
      const bytes = (s: string) => new TextEncoder().encode(s);
      assert.deepEqual(
        await client.metaSet("m", bytes("b"), { mode: "replace" }),
        plain({ status: "NS", hit: false, stored: false }),
      );
      assert.equal((await client.metaSet("m", bytes("b"), { mode: "append" })).stored, false);
      assert.equal((await client.metaSet("m", bytes("b"), { mode: "add" })).stored, true);
      assert.equal((await client.metaSet("m", bytes("x"), { mode: "add" })).stored, false);
      assert.equal((await client.metaSet("m", bytes("c"), { mode: "append" })).stored, true);
      assert.equal((await client.metaSet("m", bytes("a"), { mode: "prepend" })).stored, true);
      assert.deepEqual(await client.get("m"), bytes("abc"));
      assert.equal((await client.metaSet("m", bytes("B"), { mode: "replace" })).stored, true);
      assert.deepEqual(await client.get("m"), bytes("B"));
      // cas
      const { cas } = await client.metaSet("c", "one", { returnCas: true });
      const newer = (BigInt(cas!) + 1000n).toString();
      assert.deepEqual(
        await client.metaSet("c", "two", { cas: newer }),
        plain({ status: "EX", hit: false, stored: false }),
      );
      assert.deepEqual(
        await client.metaSet("gone", "two", { cas }),
        plain({ status: "NF", hit: false, stored: false }),
      );
      assert.equal((await client.metaGet("c")).value, "one");
      const again = await client.metaSet("c", "two", { cas: cas!, returnCas: true });
      assert.equal(again.stored, true);
      assert.notEqual(again.cas, cas);
      // An older cas with invalidate still stores, marking the item stale.
      const older = await client.metaSet("c", "three", { cas: cas!, invalidate: true });
      assert.equal(older.stored, true);
      const stale = await client.metaGet("c");
      assert.deepEqual(pick(stale, { value: "three", stale: true, win: true }), {
        value: "three",
        stale: true,
        win: true,
      });
      // Without invalidate the same older cas is refused.
      assert.equal((await client.metaSet("c", "four", { cas: cas! })).status, "EX");
      // expire and key/opaque on ms
      assert.deepEqual(await client.metaSet("e", 1, { expire: 60, returnKey: true, opaque: "o" }), {
        ...plain({ status: "HD", hit: true, stored: true }),
        key: "e",
        opaque: "o",
      });
      const ttl = (await client.metaGet("e", { returnTtl: true })).ttl!;
      assert.ok(ttl > 50 && ttl <= 60, `ttl ${ttl}`);
    });

    test("metaArithmetic: vivify with initial (no delta), incr, decr floors at 0, cas, not found", async () => {
      await using server = await target.startMemcached();
      await using client = makeClient(server.spec);
      assert.deepEqual(await client.metaArithmetic("n"), plain({ status: "NF", hit: false }));
      const created = await client.metaArithmetic("n", { vivify: 0, initial: 10, delta: 5, returnTtl: true });
      assert.deepEqual(pick(created, { status: "VA", hit: true, value: 10, ttl: -1 }), {
        status: "VA",
        hit: true,
        value: 10,
        ttl: -1,
      });
      assert.equal((await client.metaArithmetic("n", { vivify: 0, initial: 10, delta: 5 })).value, 15);
      assert.equal((await client.metaArithmetic("n")).value, 16);
      assert.equal((await client.metaArithmetic("n", { mode: "decr", delta: 6 })).value, 10);
      assert.equal((await client.metaArithmetic("n", { mode: "decr", delta: 1000 })).value, 0);
      // 64-bit: beyond 2^53 as bigint, exact.
      const big = await client.metaArithmetic("n", { delta: 18446744073709551615n });
      assert.equal(big.value, 18446744073709551615n);
      assert.equal((await client.metaArithmetic("n", { mode: "decr", delta: 18446744073709551614n })).value, 1);
      // cas
      const { cas } = await client.metaArithmetic("n", { returnCas: true, value: false });
      assert.match(cas ?? "", /^\d+$/);
      assert.deepEqual(
        await client.metaArithmetic("n", { cas: BigInt(cas!) + 5n }),
        plain({ status: "EX", hit: false }),
      );
      assert.equal((await client.metaArithmetic("n", { cas: cas! })).value, 3);
      // value: false gives HD; expire sets the TTL; the counter reads back through get.
      assert.deepEqual(
        await client.metaArithmetic("n", { value: false, expire: 100 }),
        plain({ status: "HD", hit: true }),
      );
      const ttl = (await client.metaGet("n", { returnTtl: true, value: false })).ttl!;
      assert.ok(ttl > 90 && ttl <= 100, `ttl ${ttl}`);
      // Created by ma: flags 0, so bytes; memcached pads a shorter number with spaces in place.
      assert.equal(new TextDecoder().decode(await client.get("n")).trimEnd(), "4");
      assert.deepEqual(
        pick(await client.metaArithmetic("n", { returnKey: true, opaque: "z" }), { value: 5, key: "n" }),
        {
          value: 5,
          key: "n",
        },
      );
      // A vivified miss with a TTL; initial beyond 2^53.
      const vivified = await client.metaArithmetic("v", { vivify: 50, initial: 2n ** 60n, returnTtl: true });
      assert.equal(vivified.value, 2n ** 60n);
      assert.ok(vivified.ttl! > 40 && vivified.ttl! <= 50, `ttl ${vivified.ttl}`);
      // A non-numeric value is the server's CLIENT_ERROR; the connection stays.
      await client.metaSet("text", "abc");
      await rejectsWith(client.metaArithmetic("text"), MemcacheClientError, /non-numeric/);
      assert.equal((await client.metaArithmetic("n")).value, 6);
    });

    test("metaNoop answers after everything before it", async () => {
      await using server = await target.startMemcached();
      await using client = makeClient(server.spec);
      const [set, noop, got] = await Promise.all([client.metaSet("k", 1), client.metaNoop(), client.metaGet("k")]);
      assert.equal(set.stored, true);
      assert.equal(noop, true);
      assert.equal(got.value, 1);
    });

    test("noreply meta commands: only failures come back, each to its own caller", async () => {
      await using server = await target.startMemcached();
      await using client = makeClient(server.spec);
      assert.deepEqual(
        await client.metaSet("q", "v", { noreply: true }),
        plain({ status: "HD", hit: true, stored: true }),
      );
      assert.deepEqual(
        await client.metaSet("q", "v", { noreply: true, mode: "add" }),
        plain({ status: "NS", hit: false, stored: false }),
      );
      assert.deepEqual(
        await client.metaDelete("absent", { noreply: true }),
        plain({ status: "NF", hit: false, deleted: false }),
      );
      assert.deepEqual(
        await client.metaDelete("q", { noreply: true }),
        plain({ status: "HD", hit: true, deleted: true }),
      );
      assert.deepEqual(await client.metaArithmetic("absent", { noreply: true }), plain({ status: "NF", hit: false }));
      await client.metaSet("text", "abc");
      await client.metaSet("count", 7);
      // Errors to quiet commands, pipelined with others: each settles its own call.
      const [bad, good, big, after] = await Promise.allSettled([
        client.metaArithmetic("text", { noreply: true }),
        client.metaArithmetic("count", { noreply: true }),
        client.metaSet("huge", new Uint8Array(2 * 1024 * 1024), { noreply: true }),
        client.metaGet("count"),
      ]);
      assert.equal(bad.status, "rejected");
      assert.ok((bad as PromiseRejectedResult).reason instanceof MemcacheClientError);
      assert.deepEqual(good, { status: "fulfilled", value: plain({ status: "HD", hit: true }) });
      assert.equal(big.status, "rejected");
      assert.ok((big as PromiseRejectedResult).reason instanceof MemcacheServerError);
      assert.deepEqual(pick((after as PromiseFulfilledResult<MetaResult>).value, { value: 8 }), { value: 8 });
    });

    test("metaGetMany: the hits, keyed as passed, in one quiet batch", async () => {
      await using server = await target.startMemcached();
      await using client = makeClient(server.spec);
      assert.deepEqual(await client.metaGetMany([]), new Map());
      const keys = Array.from({ length: 150 }, (_, i) => `many:${i}`);
      for (let i = 0; i < keys.length; i += 3) await client.metaSet(keys[i], i, { expire: 1000 });
      const got = await client.metaGetMany(keys, { returnTtl: true, returnCas: true });
      assert.equal(got.size, 50);
      for (const [key, result] of got) {
        const i = Number(key.toString().slice(5));
        assert.equal(i % 3, 0);
        assert.equal(result.value, i);
        assert.ok(result.ttl! > 990, `ttl ${result.ttl}`);
        assert.match(result.cas ?? "", /^\d+$/);
        assert.equal(result.opaque, undefined); // the batch's own tags are not the caller's
      }
      assert.deepEqual([...got.keys()], keys.filter((_, i) => i % 3 === 0));
      // Without values, with keys; duplicate keys answer once.
      const bare = await client.metaGetMany(["many:0", "many:1", "many:0"], { value: false, returnKey: true });
      assert.deepEqual([...bare.entries()], [["many:0", plain({ status: "HD", hit: true, key: "many:0" })]]);
      // vivify in a batch: every miss is won by this caller.
      const leased = await client.metaGetMany(["many:1", "many:3"], { vivify: 30 });
      assert.equal(leased.get("many:1")?.win, true);
      assert.equal(leased.get("many:3")?.win, false);
    });

    test("binary keys: any bytes, sent base64, results keyed by the same bytes; keyPrefix applies", async () => {
      await using server = await target.startMemcached();
      await using client = makeClient(server.spec, { keyPrefix: "p:" });
      await using plainClient = makeClient(server.spec);
      const key = new Uint8Array([0, 32, 13, 10, 255, 109, 103]);
      assert.equal((await client.metaSet(key, "bin", { returnKey: true })).key, key);
      const got = await client.metaGet(key, { returnKey: true });
      assert.equal(got.value, "bin");
      assert.equal(got.key, key); // the very bytes passed
      // The prefix is part of the bytes: without it the key is another.
      assert.equal((await plainClient.metaGet(key)).hit, false);
      const prefixed = new Uint8Array([...new TextEncoder().encode("p:"), ...key]);
      assert.equal((await plainClient.metaGet(prefixed)).value, "bin");
      // A binary key that is valid text is the string key of the same bytes.
      await client.metaSet("text", "t");
      assert.equal((await client.metaGet(new TextEncoder().encode("text"))).value, "t");
      // 186 bytes are 248 in base64; the prefix counts.
      const longest = new Uint8Array(184).fill(7);
      assert.equal((await client.metaSet(longest, 1)).stored, true);
      assert.equal((await client.metaGet(longest)).value, 1);
      await rejectsWith(client.metaGet(new Uint8Array(185)), MemcacheIllegalInputError, /too long/);
      assert.equal((await plainClient.metaSet(new Uint8Array(186).fill(1), 2)).stored, true);
      await rejectsWith(plainClient.metaGet(new Uint8Array(187)), MemcacheIllegalInputError, /too long/);
      // Many, mixed with string keys: keyed by the same objects.
      const keys = [key, "text", new Uint8Array([1]), longest, new Uint8Array([0, 32, 13, 10, 255, 109, 103])];
      const many = await client.metaGetMany(keys, { returnKey: true });
      assert.deepEqual([...many.keys()], [key, "text", longest, keys[4]]);
      assert.equal(many.get(key)?.value, "bin");
      assert.equal(many.get(keys[4])?.value, "bin");
      assert.equal(many.get(longest)?.key, longest);
      assert.equal((await client.metaDelete(key)).deleted, true);
      assert.equal((await client.metaArithmetic(new Uint8Array([9, 9]), { vivify: 0, initial: 3 })).value, 3);
    });

    test("a value the serde cannot read is a MemcacheSerdeError; the connection stays", async () => {
      await using server = await target.startMemcached();
      const serde = {
        serialize: (_key: string, value: unknown): [Uint8Array, number] => [value as Uint8Array, 7],
        deserialize: (_key: string, value: Uint8Array, flags: number) => {
          if (flags === 7) throw new Error("cannot read flags 7");
          return value;
        },
      };
      await using client = makeClient(server.spec, { serde });
      await client.metaSet("bad", new Uint8Array([1]));
      await client.metaSet("good", new Uint8Array([2]), { flags: 0 });
      await rejectsWith(client.metaGet("bad"), MemcacheSerdeError, /flags 7/);
      await rejectsWith(client.metaGetMany(["good", "bad"]), MemcacheSerdeError, /flags 7/);
      assert.deepEqual((await client.metaGet("good")).value, new Uint8Array([2]));
      assert.equal((await client.metaGet("bad", { value: false })).hit, true);
    });

    test("CAS tokens are exact beyond 2^53, read and sent back", async () => {
      const big = "18446744073709551615"; // 2^64-1: no double holds it
      await using fake = await target.startFakeServer(answering((line) => {
        if (line.startsWith("mg ")) return `VA 1 f0 c${big} t-1\r\nx\r\n`;
        if (line.startsWith("ms ")) return line.includes(` C${big}`) ? `HD c9007199254740993\r\n` : "EX\r\n";
        if (line.startsWith("ma ")) return `VA 20 c${big}\r\n${big}\r\n`;
        return "";
      }));
      await using client = makeClient(fake.spec, { timeout: 5000 });
      const got = await client.metaGet("k", { returnCas: true, returnTtl: true });
      assert.equal(got.cas, big);
      const stored = await client.metaSet("k", "v", { cas: got.cas!, returnCas: true });
      assert.deepEqual(pick(stored, { stored: true, cas: "9007199254740993" }), {
        stored: true,
        cas: "9007199254740993",
      });
      assert.equal((await client.metaSet("k", "v", { cas: BigInt(big) })).stored, true);
      const counted = await client.metaArithmetic("n", { returnCas: true });
      assert.deepEqual(pick(counted, { value: 18446744073709551615n, cas: big }), {
        value: 18446744073709551615n,
        cas: big,
      });
    });

    test("bad input is refused before a byte is written", async () => {
      const received: string[] = [];
      await using fake = await target.startFakeServer((_socket, text) => void received.push(text));
      await using client = makeClient(fake.spec, { timeout: 5000 });
      const refused: [string, () => Promise<unknown>, RegExp][] = [
        ["mode incr on metaSet", () => client.metaSet("k", 1, { mode: "incr" as "set" }), /mode/],
        ["mode set on metaArithmetic", () => client.metaArithmetic("k", { mode: "set" as "incr" }), /mode/],
        ["negative touch", () => client.metaGet("k", { touch: -1 }), /touch/],
        ["fractional vivify", () => client.metaGet("k", { vivify: 1.5 }), /vivify/],
        ["fractional recacheWithin", () => client.metaGet("k", { recacheWithin: 0.5 }), /recacheWithin/],
        ["negative expire", () => client.metaSet("k", 1, { expire: -1 }), /expire/],
        ["NaN expire", () => client.metaArithmetic("k", { expire: NaN }), /expire/],
        ["opaque of 32 bytes", () => client.metaGet("k", { opaque: "x".repeat(32) }), /opaque/],
        ["opaque with a space", () => client.metaGet("k", { opaque: "a b" }), /opaque/],
        ["opaque with a newline", () => client.metaDelete("k", { opaque: "a\r\nmn" }), /opaque/],
        ["empty opaque", () => client.metaSet("k", 1, { opaque: "" }), /opaque/],
        ["opaque in metaGetMany", () => client.metaGetMany(["k"], { opaque: "1" } as never), /opaque/],
        ["an unknown option", () => client.metaGet("k", { returnEverything: true } as never), /returnEverything/],
        ["invalidate without cas", () => client.metaSet("k", 1, { invalidate: true }), /cas/],
        ["vivify on metaSet (1.6.18 ignores it)", () => client.metaSet("k", 1, { vivify: 5 } as never), /vivify/],
        ["noreply with returnCas", () => client.metaSet("k", 1, { noreply: true, returnCas: true }), /noreply/],
        ["noreply with value", () => client.metaArithmetic("k", { noreply: true, value: true }), /noreply/],
        ["initial without vivify", () => client.metaArithmetic("k", { initial: 5 }), /vivify/],
        ["negative delta", () => client.metaArithmetic("k", { delta: -1 }), /delta/],
        ["delta of 2^64", () => client.metaArithmetic("k", { delta: 2n ** 64n }), /delta/],
        ["expire on a plain delete", () => client.metaDelete("k", { expire: 5 }), /invalidate/],
        ["a cas that is not a number", () => client.metaDelete("k", { cas: "12 mn" }), /cas/],
        ["a key with a space", () => client.metaGet("a b"), /whitespace/],
        ["an empty binary key", () => client.metaGet(new Uint8Array(0)), /empty/],
        ["a key that is neither", () => client.metaGet(42 as unknown as string), /Key/],
        ["a bad key among good ones", () => client.metaGetMany(["good", "ba\nd"]), /whitespace/],
        ["a non-boolean flag", () => client.metaGet("k", { returnCas: "yes" as unknown as boolean }), /returnCas/],
        ["flags out of range", () => client.metaSet("k", 1, { flags: 2 ** 32 }), /flags/],
      ];
      for (const [what, call, match] of refused) {
        await assert.rejects(call(), (error: unknown) => {
          assert.ok(
            error instanceof MemcacheIllegalInputError,
            `${what}: got ${(error as Error)?.name}: ${(error as Error)?.message}`,
          );
          assert.match((error as Error).message, match, what);
          assert.match((error as Error).message, /command m[gsdan]/, `${what}: names the command`);
          return true;
        });
      }
      await new Promise((resolve) => setTimeout(resolve, 20));
      assert.deepEqual(received, []);
    });

    test("a value the serde cannot serialize is a MemcacheIllegalInputError, as set's; nothing is sent", async () => {
      const received: string[] = [];
      await using fake = await target.startFakeServer((_socket, text) => void received.push(text));
      await using client = makeClient(fake.spec, { timeout: 5000 });
      const circular: Record<string, unknown> = {};
      circular.self = circular;
      await rejectsWith(client.set("k", circular, { noreply: false }), MemcacheIllegalInputError, /serialize/);
      await rejectsWith(client.metaSet("k", circular), MemcacheIllegalInputError, /serialize.*command ms/s);
      await rejectsWith(client.metaSet(new Uint8Array([1, 2]), { big: 10n }), MemcacheIllegalInputError, /command ms/);
      // A serde that throws, or rejects, something of its own.
      const throwing = (thrown: unknown) => ({
        serialize: (): [Uint8Array, number] => {
          throw thrown;
        },
        deserialize: (_key: string, value: Uint8Array) => value,
      });
      await using sync = makeClient(fake.spec, { timeout: 5000, serde: throwing(new TypeError("not this one")) });
      await rejectsWith(sync.metaSet("k", 1), MemcacheIllegalInputError, /not this one/);
      await rejectsWith(sync.metaSet("k", 1, { noreply: true }), MemcacheIllegalInputError, /not this one/);
      const rejecting = {
        serialize: (): Promise<[Uint8Array, number]> => Promise.reject(new RangeError("later, not this one")),
        deserialize: (_key: string, value: Uint8Array) => value,
      };
      await using async = makeClient(fake.spec, { timeout: 5000, serde: rejecting });
      await rejectsWith(async.metaSet("k", 1), MemcacheIllegalInputError, /later, not this one.*command ms/s);
      await rejectsWith(async.set("k", 1, { noreply: false }), MemcacheIllegalInputError, /later, not this one/);
      await new Promise((resolve) => setTimeout(resolve, 20));
      assert.deepEqual(received, []);
    });

    test("memcached 1.6.38's options on 1.6.18: newCas and removeValue fail naming the option, the connection stays; returnSize has no size", async () => {
      // Measured on 1.6.18: E and md x are refused (CLIENT_ERROR invalid flag; ms first reads its data block), s ignored.
      await using server = await target.startMemcached();
      const events: string[] = [];
      const observer = { onConnection: (event: { type: string }) => void events.push(event.type) };
      // One connection, so that "it stays" is one "open" event and no other.
      await using client = makeClient(server.spec, { observer, timeout: 5000, maxPoolSize: 1 } as ClientOptions);
      // A server that returns a size takes them all (memcached 1.6.38 and later: tests/features/meta_1638_test.ts).
      if ((await client.metaSet("k", "v", { expire: 100, returnSize: true })).size !== undefined) {
        assert.equal((await client.metaSet("k", "v", { newCas: 5, returnCas: true })).cas, "5");
        return;
      }
      await client.metaArithmetic("n", { vivify: 0, initial: 1 });
      const refused: [string, () => Promise<unknown>, RegExp][] = [
        ["metaSet newCas", () => client.metaSet("k", "new", { newCas: 5 }), /newCas \(E\).*command ms/],
        ["quiet metaSet newCas", () => client.metaSet("k", "new", { newCas: 5, noreply: true }), /newCas \(E\)/],
        // A block larger than a socket read: memcached still reads it all before it answers.
        ["metaSet newCas, 300 kB", () => client.metaSet("k", new Uint8Array(300_000).fill(10), { newCas: 5 }), /E/],
        ["metaGet newCas", () => client.metaGet("absent", { vivify: 30, newCas: 5 }), /newCas \(E\).*command mg/],
        ["metaGetMany newCas", () => client.metaGetMany(["a", "b"], { vivify: 30, newCas: 5 }), /newCas/],
        ["metaDelete removeValue", () => client.metaDelete("k", { removeValue: true }), /removeValue \(md x\)/],
        ["quiet metaDelete removeValue", () => client.metaDelete("k", { removeValue: true, noreply: true }), /x/],
        [
          "metaDelete invalidate newCas",
          () => client.metaDelete("k", { invalidate: true, newCas: 5 }),
          /newCas \(E\).*command md/,
        ],
        [
          "metaDelete both",
          () => client.metaDelete("k", { removeValue: true, newCas: 5 }),
          /newCas \(E\) and removeValue \(md x\)/,
        ],
        ["metaArithmetic newCas", () => client.metaArithmetic("n", { newCas: 5 }), /newCas \(E\).*command ma/],
      ];
      for (const [what, call, match] of refused) {
        await assert.rejects(call(), (error: unknown) => {
          assert.ok(
            error instanceof MemcacheClientError && !(error instanceof MemcacheIllegalInputError),
            `${what}: got ${(error as Error)?.name}: ${(error as Error)?.message}`,
          );
          assert.match((error as Error).message, /The server does not take/, what);
          assert.match((error as Error).message, match, what);
          return true;
        });
        // Nothing changed, and the same connection answers the next call in step.
        const now = await client.metaGet("k", { returnTtl: true });
        assert.deepEqual(pick(now, { value: "v", stale: false }), { value: "v", stale: false }, what);
        assert.equal((await client.metaArithmetic("n", { delta: 0 })).value, 1, what);
      }
      // Pipelined between other calls: each gets its own answer.
      const [before, bad, after] = await Promise.allSettled([
        client.metaSet("k2", "x"),
        client.metaSet("k", "y", { newCas: 9 }),
        client.metaGet("k2"),
      ]);
      assert.equal(before.status === "fulfilled" && before.value.stored, true);
      assert.ok(bad.status === "rejected" && bad.reason instanceof MemcacheClientError);
      assert.equal(after.status === "fulfilled" && after.value.value, "x");
      // returnSize: 1.6.18 ignores s, so the result has no size.
      const sized = await client.metaSet("s", "abc", { returnSize: true, returnCas: true });
      assert.equal(sized.stored, true);
      assert.equal("size" in sized, false);
      assert.match(sized.cas ?? "", /^\d+$/);
      assert.deepEqual(events, ["open"]);
    });

    test("a server without meta: MemcacheUnknownCommandError naming the command; classic commands keep working", async () => {
      // memcached before 1.6 answers ERROR to every line it does not know, a data block's lines included.
      await using fake = await target.startFakeServer(
        answering((line) => line.startsWith("get ") ? "END\r\n" : "ERROR\r\n"),
      );
      await using client = makeClient(fake.spec, { timeout: 5000 });
      await rejectsWith(client.metaGet("k"), MemcacheUnknownCommandError, /command mg/);
      assert.equal(await client.get("k"), null);
      await rejectsWith(client.metaGetMany(["a", "b", "c"]), MemcacheUnknownCommandError, /command mg/);
      assert.equal(await client.get("k"), null);
      await rejectsWith(client.metaDelete("k"), MemcacheUnknownCommandError, /command md/);
      await rejectsWith(client.metaDelete("k", { noreply: true }), MemcacheUnknownCommandError, /command md/);
      await rejectsWith(client.metaArithmetic("k"), MemcacheUnknownCommandError, /command ma/);
      await rejectsWith(client.metaNoop(), MemcacheUnknownCommandError, /command mn/);
      assert.equal(await client.get("k"), null);
      // Pipelined with classic commands: each gets its own answer.
      const [a, b, c, d] = await Promise.allSettled([
        client.get("x"),
        client.metaGetMany(["x", "y"]),
        client.get("y"),
        client.metaGet("z", { vivify: 5 }),
      ]);
      assert.deepEqual(a, { status: "fulfilled", value: null });
      assert.ok(b.status === "rejected" && b.reason instanceof MemcacheUnknownCommandError);
      assert.deepEqual(c, { status: "fulfilled", value: null });
      assert.ok(d.status === "rejected" && d.reason instanceof MemcacheUnknownCommandError);
      // ms: the server read its data block as a command; the client starts a new connection.
      await rejectsWith(client.metaSet("k", "get k"), MemcacheUnknownCommandError, /command ms/);
      assert.equal(await client.get("k"), null);
      await rejectsWith(client.metaSet("k", "v", { noreply: true }), MemcacheUnknownCommandError, /command ms/);
      assert.equal(await client.get("k"), null);
    });

    test("quiet and loud meta commands interleaved with classic ones, concurrently: every result is the caller's", async () => {
      await using server = await target.startMemcached();
      // One connection: a PooledClient would spread a burst over several, where a
      // noreply write (settled once written) and the next burst's read of it are
      // not ordered (PooledClient's documented rule), and the reads would race.
      await using client = makeClient(server.spec, { timeout: 20_000, maxPoolSize: 1 } as ClientOptions);
      // Error replies in such a stream are checked in "noreply meta commands: …" (every target)
      // and on one connection in tests/features/meta_test.ts: a PooledClient closes a connection after a
      // CLIENT_ERROR, failing the calls it shares that connection with.
      const workers = 12;
      const steps = 25;
      await Promise.all(Array.from({ length: workers }, async (_, w) => {
        await client.metaSet(`w${w}:n`, 0);
        for (let s = 0; s < steps; s++) {
          const prev = s - 1;
          // One burst of independent calls, on distinct keys.
          const [ms, set, mg, get, md, ma, many, classicMany] = await Promise.allSettled([
            client.metaSet(`w${w}:m${s}`, `m${s}`, { noreply: s % 2 === 0 }),
            client.set(`w${w}:c${s}`, `c${s}`, { noreply: s % 3 !== 0 }),
            prev < 0
              ? client.metaGet(`w${w}:none`)
              : client.metaGet(`w${w}:m${prev}`, { returnKey: true, opaque: `${w}.${s}` }),
            prev < 0 ? client.get(`w${w}:none`) : client.get(`w${w}:c${prev}`),
            client.metaDelete(`w${w}:absent${s}`, { noreply: s % 2 === 1 }),
            client.metaArithmetic(`w${w}:n`, { noreply: s % 2 === 0 }),
            client.metaGetMany([`w${w}:m${prev}`, `w${w}:absent`, `w${w}:c${prev}`]),
            client.getMany([`w${w}:c${prev}`, `w${w}:m${prev}`, `w${w}:nope`]),
          ]);
          const at = `worker ${w} step ${s}`;
          const value = <T>(r: PromiseSettledResult<T>): T => {
            if (r.status === "rejected") throw new Error(`${at}: ${r.reason}`, { cause: r.reason });
            return r.value;
          };
          assert.equal(value(ms).stored, true, at);
          assert.equal(value(set), true, at);
          if (prev < 0) assert.equal(value(mg).hit, false, at);
          else {assert.deepEqual(pick(value(mg), { value: `m${prev}`, key: `w${w}:m${prev}`, opaque: `${w}.${s}` }), {
              value: `m${prev}`,
              key: `w${w}:m${prev}`,
              opaque: `${w}.${s}`,
            }, at);}
          assert.equal(value(get), prev < 0 ? null : `c${prev}`, at);
          assert.deepEqual(value(md), plain({ status: "NF", hit: false, deleted: false }), at);
          assert.equal(value(ma).hit, true, at);
          if (s % 2 === 1) assert.equal(value(ma).value, s + 1, at); // loud: the count so far
          const hits = value(many);
          if (prev < 0) assert.equal(hits.size, 0, at);
          else {
            assert.deepEqual([...hits.keys()], [`w${w}:m${prev}`, `w${w}:c${prev}`], at);
            assert.equal(hits.get(`w${w}:m${prev}`)?.value, `m${prev}`, at);
            assert.equal(hits.get(`w${w}:c${prev}`)?.value, `c${prev}`, at);
          }
          const classic = value(classicMany);
          if (prev >= 0) {
            assert.deepEqual([...classic], [[`w${w}:c${prev}`, `c${prev}`], [`w${w}:m${prev}`, `m${prev}`]], at);
          }
        }
        assert.equal((await client.metaArithmetic(`w${w}:n`, { delta: 0 })).value, steps);
      }));
    });
  });
}
