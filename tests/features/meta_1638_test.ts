/**
 * memcached 1.6.38's meta options (`newCas` E, `removeValue` md x,
 * `returnSize` ms s) on every class, against a real memcached 1.6.38: what
 * each does there, as measured and documented in src/protocol/_meta.ts. What
 * 1.6.18 does with them (refuses E and x, ignores s) is in
 * tests/suites/_suite_meta.ts.
 *
 * The binary: $MEMCACHED_1638_BIN, else the one scripts/build_memcached.sh
 * builds into node_modules/.cache/memkit/memcached-1.6.38/ (looked for from
 * the working directory up; see tests/_support/_memcached.ts). Without it every case
 * fails, saying how to build it, unless MEMKIT_SKIP_1638=1.
 */
import assert from "node:assert/strict";
import { describe, it } from "../_support/_harness.ts";
import { Client, type ClientOptions, HashClient, type MetaResult, PooledClient, RetryingClient } from "../../mod.ts";
import type { ClientLike } from "../suites/_suite.ts";
import { skipWithout1638, startMemcached } from "../_support/_memcached.ts";

const why = skipWithout1638();

const classes: [string, (spec: string, options?: ClientOptions) => ClientLike][] = [
  ["Client", (spec, options) => new Client(spec, options)],
  ["PooledClient", (spec, options) => new PooledClient(spec, options) as unknown as ClientLike],
  ["HashClient", (spec, options) => new HashClient([spec], options) as unknown as ClientLike],
  [
    "RetryingClient",
    (spec, options) =>
      new RetryingClient(new Client(spec, options), { doNotRetryFor: [Error] }) as unknown as ClientLike,
  ],
];

/** The fields of `result` named in `expected`, for deepEqual. */
function pick(result: MetaResult, expected: Partial<MetaResult>): Partial<MetaResult> {
  const picked: Record<string, unknown> = {};
  for (const k of Object.keys(expected)) picked[k] = (result as unknown as Record<string, unknown>)[k];
  return picked as Partial<MetaResult>;
}

const all = { returnCas: true, returnTtl: true, returnFlags: true, returnSize: true };

for (const [name, makeClient] of classes) {
  describe(`${name}: memcached 1.6.38 meta options`, () => {
    const test = (title: string, body: () => Promise<void>) => it(title, body, { skip: why });

    test("newCas: the cas ms, ma, md (invalidate, removeValue) and a vivifying mg give the item", async () => {
      await using server = await startMemcached({ version: "1.6.38" });
      await using client = makeClient(server.spec);
      const big = 18446744073709551615n;
      assert.deepEqual(
        pick(await client.metaSet("k", "v", { newCas: 123, returnCas: true }), { stored: true, cas: "123" }),
        { stored: true, cas: "123" },
      );
      assert.equal((await client.metaGet("k", { returnCas: true })).cas, "123");
      assert.deepEqual((await client.gets("k"))[1], "123");
      assert.equal((await client.metaSet("k", "w", { newCas: big, noreply: true })).stored, true);
      assert.equal((await client.metaGet("k", { returnCas: true })).cas, big.toString());
      // A cas mismatch stores nothing and gives nothing.
      assert.equal((await client.metaSet("k", "x", { cas: 1, newCas: 7 })).status, "EX");
      assert.equal((await client.metaGet("k", { returnCas: true })).cas, big.toString());
      // md with invalidate: stale, with that cas.
      await client.metaDelete("k", { invalidate: true, newCas: "555" });
      assert.deepEqual(pick(await client.metaGet("k", { returnCas: true }), { value: "w", cas: "555", stale: true }), {
        value: "w",
        cas: "555",
        stale: true,
      });
      // mg: only the item N creates gets it; a hit keeps its cas.
      const won = await client.metaGet("lease", { vivify: 30, newCas: 44, returnCas: true });
      assert.deepEqual(pick(won, { win: true, cas: "44" }), { win: true, cas: "44" });
      assert.equal((await client.metaGet("lease", { vivify: 30, newCas: 45, returnCas: true })).cas, "44");
      // In a batch, every item it creates.
      const batch = await client.metaGetMany(["m1", "lease", "m2"], { vivify: 30, newCas: 50, returnCas: true });
      assert.deepEqual([...batch].map(([k, r]) => [k, r.win, r.cas]), [
        ["m1", true, "50"],
        ["lease", false, "44"],
        ["m2", true, "50"],
      ]);
      // ma: vivified and changed counters alike.
      assert.deepEqual(
        pick(await client.metaArithmetic("n", { vivify: 0, initial: 5, newCas: 46, returnCas: true }), {
          value: 5,
          cas: "46",
        }),
        { value: 5, cas: "46" },
      );
      assert.deepEqual(
        pick(await client.metaArithmetic("n", { newCas: 47, returnCas: true }), { value: 6, cas: "47" }),
        {
          value: 6,
          cas: "47",
        },
      );
    });

    test("removeValue: the item stays with an empty value, client flags 0, no TTL unless given, its cas", async () => {
      await using server = await startMemcached({ version: "1.6.38" });
      await using client = makeClient(server.spec);
      const { cas } = await client.metaSet("k", "abc", { flags: 7, expire: 100, returnCas: true });
      assert.deepEqual(await client.metaDelete("k", { removeValue: true }), {
        status: "HD",
        hit: true,
        deleted: true,
        win: false,
        stale: false,
        winnerExists: false,
      });
      const kept = await client.metaGet("k", all);
      assert.deepEqual(pick(kept, { hit: true, size: 0, flags: 0, ttl: -1, cas, value: new Uint8Array(0) }), {
        hit: true,
        size: 0,
        flags: 0,
        ttl: -1, // the item's TTL of 100 s is gone
        cas, // not bumped
        value: new Uint8Array(0),
      });
      // With expire, that TTL; with newCas, that cas; with invalidate, stale too.
      await client.metaSet("k", "abc", { flags: 7, expire: 100 });
      await client.metaDelete("k", { removeValue: true, expire: 50, newCas: 777 });
      const timed = await client.metaGet("k", all);
      assert.ok(timed.ttl! > 40 && timed.ttl! <= 50, `ttl ${timed.ttl}`);
      assert.deepEqual(pick(timed, { cas: "777", size: 0, flags: 0 }), { cas: "777", size: 0, flags: 0 });
      await client.metaDelete("k", { removeValue: true, invalidate: true });
      assert.deepEqual(pick(await client.metaGet("k", all), { stale: true, win: true, size: 0 }), {
        stale: true,
        win: true,
        size: 0,
      });
      assert.deepEqual(
        pick(await client.metaDelete("absent", { removeValue: true }), { status: "NF", deleted: false }),
        {
          status: "NF",
          deleted: false,
        },
      );
      assert.equal((await client.metaDelete("absent", { removeValue: true, noreply: true })).status, "NF");
    });

    test("returnSize: the stored value's size (append: the whole), and of the value sent when not stored", async () => {
      await using server = await startMemcached({ version: "1.6.38" });
      await using client = makeClient(server.spec);
      const bytes = (s: string) => new TextEncoder().encode(s);
      assert.deepEqual(pick(await client.metaSet("k", bytes("abc"), { returnSize: true }), { stored: true, size: 3 }), {
        stored: true,
        size: 3,
      });
      assert.equal((await client.metaSet("k", bytes("xyz"), { mode: "append", returnSize: true })).size, 6);
      assert.deepEqual(
        pick(await client.metaSet("nope", bytes("abcd"), { mode: "replace", returnSize: true }), {
          status: "NS",
          size: 4,
        }),
        { status: "NS", size: 4 },
      );
      const binary = await client.metaSet(new Uint8Array([0, 255]), bytes("12345"), {
        returnSize: true,
        returnKey: true,
      });
      assert.equal(binary.size, 5);
    });
  });
}
