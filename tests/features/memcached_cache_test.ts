/**
 * MemcachedCache against real memcached: cachelib's own cache tests
 * (tests/common.py, clear.py, has.py, delete_many_with_prefix.py and their
 * sample data) translated, then what the memcached backend promises on top
 * (key rules, timeouts, counters). Every case runs on each way of building
 * the cache: its own HashClient (one server, a pool, two servers) and a
 * Client passed in.
 */
import assert from "node:assert/strict";
import { describe, it } from "../_support/_harness.ts";
import {
  type CacheClientLike,
  Client,
  HashClient,
  MemcacheClientError,
  MemcachedCache,
  type MemcachedCacheOptions,
  MemcacheError,
  MemcacheIllegalInputError,
  PooledClient,
  RetryingClient,
  type Transport,
} from "../../mod.ts";
import { type MemcachedServer, startMemcached } from "../_support/_memcached.ts";

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

// cachelib's tests/conftest.py TestData (256 is a number key in Python; JSON makes it "256" either way).
const SAMPLE_NUMBERS = [0, 10, 1024000, 9, 5000000000000, 99, 738, 2000000];
const SAMPLE_PAIRS: Record<string, unknown> = {
  "128": false,
  beef: true,
  crevettes: {},
  "1024": "spam",
  bacon: "eggs",
  sausage: 2048,
  "3072": [],
  brandy: [{}, "fried eggs"],
  lobster: ["baked beans", [512]],
  "4096": { sauce: [], 256: "truffle" },
};
const SAMPLE_KEYS = Object.keys(SAMPLE_PAIRS);
const SAMPLE_VALUES = Object.values(SAMPLE_PAIRS);

/** A way to build the cache over the servers a test started. */
interface CacheTarget {
  name: string;
  servers: number;
  make(specs: string[], options?: MemcachedCacheOptions): MemcachedCache;
  /** Also run the case that sleeps through an expiry. */
  slow?: boolean;
}

const targets: CacheTarget[] = [
  { name: "servers list", servers: 1, slow: true, make: (specs, o) => new MemcachedCache(specs, o) },
  { name: "poolSize 4", servers: 1, make: (specs, o) => new MemcachedCache(specs, { poolSize: 4, ...o }) },
  { name: "two servers", servers: 2, make: (specs, o) => new MemcachedCache(specs, o) },
  {
    // a client with pymemcache's noreply default: the cache must still get replies
    name: "Client passed in",
    servers: 1,
    make: (specs, o) => new MemcachedCache(new Client(specs[0], { allowUnicodeKeys: true }), o),
  },
];

/** Servers for one test, stopped at the end. */
async function startServers(n: number): Promise<AsyncDisposable & { specs: string[] }> {
  const servers: MemcachedServer[] = [];
  try {
    for (let i = 0; i < n; i++) servers.push(await startMemcached());
  } catch (error) {
    await Promise.all(servers.map((s) => s[Symbol.asyncDispose]()));
    throw error;
  }
  return {
    specs: servers.map((s) => s.spec),
    async [Symbol.asyncDispose]() {
      await Promise.all(servers.map((s) => s[Symbol.asyncDispose]()));
    },
  };
}

/** A plain client on the same servers, to look at what the cache stored. */
function probeFor(specs: string[]): HashClient {
  return new HashClient(specs, { allowUnicodeKeys: true, defaultNoreply: false });
}

/** The sum of a counter of `stats` over every server. */
async function stat(probe: HashClient, name: string): Promise<number> {
  let sum = 0;
  for (const s of (await probe.stats()).values()) sum += s[name] as number;
  return sum;
}

/** Seconds left to live of a wire key (-1: never expires), read with `mg <key> t`; null if absent. */
async function ttl(specs: string[], wireKey: string): Promise<number | null> {
  for (const spec of specs) {
    await using raw = new Client(spec);
    const line = new TextDecoder().decode(await raw.rawCommand(`mg ${wireKey} t`));
    const match = /^HD t(-?\d+)/.exec(line);
    if (match) return Number(match[1]);
  }
  return null;
}

function assertNear(actual: number | null, expected: number, slack: number, what: string) {
  assert.ok(actual !== null && Math.abs(actual - expected) <= slack, `${what}: expected ~${expected}, got ${actual}`);
}

for (const target of targets) {
  const setup = async (options?: MemcachedCacheOptions) => {
    const servers = await startServers(target.servers);
    const cache = target.make(servers.specs, options);
    return {
      servers,
      cache,
      async [Symbol.asyncDispose]() {
        await cache.close();
        await servers[Symbol.asyncDispose]();
      },
    };
  };

  describe(`MemcachedCache (${target.name}): cachelib's common tests`, () => {
    it("set/get every sample pair", async () => {
      await using t = await setup();
      for (const [k, v] of Object.entries(SAMPLE_PAIRS)) {
        assert.equal(await t.cache.set(k, v), true);
        assert.deepEqual(await t.cache.get(k), v, k);
      }
    });

    it("setMany returns every key; getMany returns the values in order", async () => {
      await using t = await setup();
      assert.deepEqual(await t.cache.setMany(SAMPLE_PAIRS), SAMPLE_KEYS);
      assert.deepEqual(await t.cache.getMany(...SAMPLE_KEYS), SAMPLE_VALUES);
      assert.deepEqual(await t.cache.getMany(...[...SAMPLE_KEYS].reverse()), [...SAMPLE_VALUES].reverse());
    });

    it("getDict returns the sample pairs", async () => {
      await using t = await setup();
      await t.cache.setMany(SAMPLE_PAIRS);
      assert.deepEqual(await t.cache.getDict(...SAMPLE_KEYS), new Map(Object.entries(SAMPLE_PAIRS)));
    });

    it("delete each key: true, then a miss; again: false", async () => {
      await using t = await setup();
      for (const [k, v] of Object.entries(SAMPLE_PAIRS)) {
        await t.cache.set(k, v);
        assert.equal(await t.cache.delete(k), true);
        assert.equal(await t.cache.get(k), null);
        assert.equal(await t.cache.delete(k), false);
      }
    });

    it("deleteMany returns every key deleted; all are misses after", async () => {
      await using t = await setup();
      await t.cache.setMany(SAMPLE_PAIRS);
      assert.deepEqual(await t.cache.deleteMany(...SAMPLE_KEYS), SAMPLE_KEYS);
      assert.deepEqual(await t.cache.getMany(...SAMPLE_KEYS), SAMPLE_KEYS.map(() => null));
    });

    it("deleteMany ignores missing keys (and does not list them)", async () => {
      await using t = await setup();
      await t.cache.set("bacon", "spam");
      assert.deepEqual(await t.cache.deleteMany("eggs", "bacon"), ["bacon"]);
      assert.equal(await t.cache.get("bacon"), null);
    });

    it("add: false for existing keys (values untouched), true for new ones", async () => {
      await using t = await setup();
      await t.cache.setMany(SAMPLE_PAIRS);
      for (const k of SAMPLE_KEYS) assert.equal(await t.cache.add(k, "updated"), false, k);
      assert.deepEqual(await t.cache.getMany(...SAMPLE_KEYS), SAMPLE_VALUES);
      for (const [k, v] of Object.entries(SAMPLE_PAIRS)) {
        assert.equal(await t.cache.add(`${k}-new`, v), true);
        assert.deepEqual(await t.cache.get(`${k}-new`), v);
      }
    });

    it("inc/dec of the sample numbers: missing keys start at ±delta, results below zero are exact", async () => {
      await using t = await setup();
      for (const n of SAMPLE_NUMBERS) {
        assert.equal(await t.cache.get(`${n}-key-inc`), null);
        assert.equal(await t.cache.inc(`${n}-key-inc`, n), n);
        assert.equal(await t.cache.get(`${n}-key-inc`), n);
        assert.equal(await t.cache.dec(`${n}-key-dec`, n), 0 - n); // 0 - 0 is 0, not -0
        assert.equal(await t.cache.get(`${n}-key-dec`), 0 - n);
        assert.equal(await t.cache.dec(`${n}-key-inc`, 5), n - 5);
        assert.equal(await t.cache.get(`${n}-key-inc`), n - 5);
      }
    });

    // The server expires items, so one target is enough for the case that sleeps.
    if (target.slow) {
      it("expiration: timeout 0 stays, timeout 1 expires", async () => {
        await using t = await setup();
        for (const [k, v] of Object.entries(SAMPLE_PAIRS)) {
          await t.cache.set(`${k}-t0`, v, 0);
          await t.cache.set(`${k}-t1`, v, 1);
        }
        await sleep(2500); // memcached's clock ticks once a second: gone within 2 s
        for (const [k, v] of Object.entries(SAMPLE_PAIRS)) {
          assert.deepEqual(await t.cache.get(`${k}-t0`), v);
          assert.equal(await t.cache.get(`${k}-t1`), null);
        }
      });
    }

    it("clear empties the cache", async () => {
      await using t = await setup();
      assert.deepEqual(await t.cache.setMany(SAMPLE_PAIRS), SAMPLE_KEYS);
      assert.equal(await t.cache.clear(), true);
      assert.deepEqual(await t.cache.getMany(...SAMPLE_KEYS), SAMPLE_KEYS.map(() => null));
    });

    it("has: true for every stored key, false for an unknown one", async () => {
      await using t = await setup();
      assert.ok((await t.cache.setMany(SAMPLE_PAIRS)).length);
      for (const k of SAMPLE_KEYS) assert.equal(await t.cache.has(k), true, k);
      assert.equal(await t.cache.has("unknown"), false);
    });

    it("deleteMany with a key prefix returns the keys as passed", async () => {
      await using t = await setup({ keyPrefix: "test_prefix:" });
      await t.cache.setMany({ foo: 1, bar: 2, baz: 3 });
      assert.deepEqual(await t.cache.deleteMany("foo", "bar", "baz"), ["foo", "bar", "baz"]);
      assert.deepEqual(await t.cache.getMany("foo", "bar", "baz"), [null, null, null]);
    });
  });

  describe(`MemcachedCache (${target.name}): keys`, () => {
    // Each fails cachelib's [^\x00-\x21\xff]{1,250} on its UTF-8 bytes, or memcached's own rules.
    const INVALID = [
      "",
      "with space",
      "tab\tkey",
      "new\nline",
      "trailing\n",
      "bang!",
      "nul\0",
      "x".repeat(251),
      "é".repeat(126), // 252 bytes
      "del\x7f", // passes cachelib's regex; memcached clients refuse DEL
      "lone\ud800", // not well-formed: it would be sent as another key
    ];

    it("get, getMany, getDict, has, delete, deleteMany: invalid keys are misses, and nothing is sent", async () => {
      await using t = await setup();
      await using probe = probeFor(t.servers.specs);
      await t.cache.set("ok", "fine");
      const before = await probe.stats();
      for (const key of INVALID) {
        assert.equal(await t.cache.get(key), null, JSON.stringify(key));
        assert.equal(await t.cache.has(key), false);
        assert.equal(await t.cache.delete(key), false);
      }
      assert.deepEqual(await t.cache.getMany(...INVALID), INVALID.map(() => null));
      assert.deepEqual(await t.cache.getDict(...INVALID), new Map(INVALID.map((k) => [k, null])));
      assert.deepEqual(await t.cache.deleteMany(...INVALID), []);
      const after = await probe.stats();
      for (const [server, s] of after) {
        for (const name of ["cmd_get", "cmd_set", "cmd_touch", "delete_misses", "delete_hits"]) {
          assert.equal(s[name], before.get(server)![name], `${name} on ${server}`);
        }
      }
      // valid keys mixed with invalid ones keep their places
      assert.deepEqual(await t.cache.getMany("bang!", "ok", "", "missing", "ok"), [null, "fine", null, null, "fine"]);
      assert.deepEqual(
        await t.cache.getDict("bang!", "ok", "missing"),
        new Map([["bang!", null], ["ok", "fine"], ["missing", null]]),
      );
      assert.deepEqual(await t.cache.deleteMany("with space", "ok"), ["ok"]);
    });

    it("set, add, setMany, inc, dec: invalid keys throw MemcacheIllegalInputError before anything is sent", async () => {
      await using t = await setup();
      await using probe = probeFor(t.servers.specs);
      const before = await stat(probe, "cmd_set");
      for (const key of INVALID) {
        const label = JSON.stringify(key);
        await assert.rejects(t.cache.set(key, 1), MemcacheIllegalInputError, label);
        await assert.rejects(t.cache.add(key, 1), MemcacheIllegalInputError, label);
        await assert.rejects(t.cache.setMany({ fine: 1, [key]: 2 }), MemcacheIllegalInputError, label);
        await assert.rejects(t.cache.inc(key), MemcacheIllegalInputError, label);
        await assert.rejects(t.cache.dec(key), MemcacheIllegalInputError, label);
      }
      assert.equal(await stat(probe, "cmd_set"), before);
      assert.equal(await t.cache.get("fine"), null); // setMany stored nothing
    });

    it("the prefix counts toward 250 bytes; getDict and getMany are keyed as passed", async () => {
      await using t = await setup({ keyPrefix: "p:" });
      await using probe = probeFor(t.servers.specs);
      const longest = "x".repeat(248);
      assert.equal(await t.cache.set(longest, "long"), true);
      assert.equal(await t.cache.get(longest), "long");
      assert.equal(await probe.get(`p:${longest}`), "long");
      assert.equal(await t.cache.get(`${longest}x`), null);
      await assert.rejects(t.cache.set(`${longest}x`, 1), MemcacheIllegalInputError);
      await t.cache.setMany(new Map([["a", 1], ["b", 2]]));
      assert.deepEqual(await t.cache.getDict("a", "b", "c", "a"), new Map([["a", 1], ["b", 2], ["c", null]]));
      assert.deepEqual(await t.cache.getMany("a", "b", "c", "a"), [1, 2, null, 1]);
      assert.equal(await probe.get("a"), null); // the prefix is on the wire
      assert.equal(await probe.get("p:a"), 1);
      assert.equal(await t.cache.get(""), null); // "p:" is a valid key of its own
      assert.equal(await t.cache.set("", "empty"), true);
      assert.equal(await probe.get("p:"), "empty");
    });

    it("unicode keys are UTF-8 encoded on the fly, up to 250 bytes", async () => {
      await using t = await setup();
      await using probe = probeFor(t.servers.specs);
      const keys = ["ключ", "日本語", "emoji😀", "€".repeat(83), "😀".repeat(62) + "ab"]; // the last two: 249, 250 bytes
      for (const [i, key] of keys.entries()) {
        assert.equal(await t.cache.set(key, i), true, key);
        assert.equal(await t.cache.get(key), i);
        assert.equal(await t.cache.has(key), true);
        assert.equal(await probe.get(key), i); // same bytes on the wire as a client sending UTF-8
      }
      assert.deepEqual(await t.cache.getMany(...keys), keys.map((_, i) => i));
      assert.equal(await t.cache.get("€".repeat(84)), null);
      await assert.rejects(t.cache.set("€".repeat(84), 1), MemcacheIllegalInputError);
      assert.deepEqual(await t.cache.deleteMany(...keys), keys);
    });
  });

  describe(`MemcachedCache (${target.name}): has, timeouts, values`, () => {
    it("has reads no value and changes nothing: value, flags and expiry stay", async () => {
      await using t = await setup();
      await using probe = probeFor(t.servers.specs);
      await t.cache.set("big", new Uint8Array(100_000).fill(7), 1000);
      await t.cache.set("json", { a: [1, 2] }, 0);
      const gets = await stat(probe, "cmd_get");
      const written = await stat(probe, "bytes_written");
      assert.equal(await t.cache.has("big"), true);
      assert.equal(await t.cache.has("json"), true);
      assert.equal(await t.cache.has("nope"), false);
      assert.equal(await stat(probe, "cmd_get"), gets);
      // the server wrote reply lines (and the stats replies), not the 100 kB value
      const sent = (await stat(probe, "bytes_written")) - written;
      assert.ok(sent < 10_000, `${sent} bytes written`);
      assert.deepEqual(await t.cache.get("big"), new Uint8Array(100_000).fill(7));
      assert.deepEqual(await t.cache.get("json"), { a: [1, 2] });
      assertNear(await ttl(t.servers.specs, "big"), 1000, 30, "ttl of big");
      assert.equal(await ttl(t.servers.specs, "json"), -1);
      assert.equal(await t.cache.has("nope"), false); // has never creates a key
    });

    it("timeouts: undefined → defaultTimeout, 0 → never, n → n s, over 30 days → still n s", async () => {
      await using t = await setup({ defaultTimeout: 120 });
      const day = 24 * 60 * 60;
      await t.cache.set("dflt", 1);
      await t.cache.set("null", 1, null);
      await t.cache.set("zero", 1, 0);
      await t.cache.set("fifty", 1, 50);
      await t.cache.set("month", 1, 30 * day); // memcached's longest relative expiry
      await t.cache.set("month+", 1, 31 * day); // sent as a unix time
      await t.cache.set("year", 1, 365 * day);
      await t.cache.add("added", 1, 40 * day);
      await t.cache.setMany({ many: 1 }, 60 * day);
      await t.cache.inc("counter"); // a new counter gets the default timeout
      const specs = t.servers.specs;
      assertNear(await ttl(specs, "dflt"), 120, 10, "default");
      assertNear(await ttl(specs, "null"), 120, 10, "null");
      assert.equal(await ttl(specs, "zero"), -1);
      assertNear(await ttl(specs, "fifty"), 50, 10, "50 s");
      assertNear(await ttl(specs, "month"), 30 * day, 10, "30 days");
      assertNear(await ttl(specs, "month+"), 31 * day, 10, "31 days");
      assertNear(await ttl(specs, "year"), 365 * day, 10, "365 days");
      assertNear(await ttl(specs, "added"), 40 * day, 10, "add, 40 days");
      assertNear(await ttl(specs, "many"), 60 * day, 10, "setMany, 60 days");
      assertNear(await ttl(specs, "counter"), 120, 10, "inc");
      for (const key of ["month+", "year", "added", "many"]) assert.equal(await t.cache.get(key), 1, key);
      // a negative timeout expires the item at once, as in memcached
      assert.equal(await t.cache.set("gone", 1, -1), true);
      assert.equal(await t.cache.get("gone"), null);
      await assert.rejects(t.cache.set("frac", 1, 1.5), MemcacheIllegalInputError);
    });

    it("defaultTimeout 0 never expires", async () => {
      await using t = await setup({ defaultTimeout: 0 });
      await t.cache.set("k", "v");
      assert.equal(await ttl(t.servers.specs, "k"), -1);
    });

    it("values round-trip with defaultSerde, stored with pymemcache's flags", async () => {
      await using t = await setup();
      await using probe = probeFor(t.servers.specs);
      const values: [string, unknown][] = [
        ["text", "héllo ✓"],
        ["bytes", new Uint8Array([0, 13, 10, 255])],
        ["int", 42],
        ["neg", -42],
        ["float", 2.5],
        ["bigint", 2n ** 60n],
        ["minInt64", -(2n ** 63n)],
        ["maxInt64", 2n ** 63n - 1n],
        ["unsafe", 2 ** 60], // an integer number beyond 2^53 reads back as an exact bigint
        ["json", { nested: [1, "two", { three: null }] }],
        ["false", false],
        ["empty", ""],
      ];
      for (const [key, value] of values) assert.equal(await t.cache.set(key, value), true);
      for (const [key, value] of values) {
        const expected = typeof value === "number" && !Number.isSafeInteger(value) && Number.isInteger(value)
          ? BigInt(value)
          : value;
        assert.deepEqual(await t.cache.get(key), expected, key);
      }
      // what any pymemcache-compatible client reads
      assert.equal(await probe.get("text"), "héllo ✓");
      assert.equal(await probe.get("int"), 42);
      assert.deepEqual(await probe.get("json"), { nested: [1, "two", { three: null }] });
      // negative integers are stored as their two's complement (so inc/dec stay one incr)
      assert.equal(await probe.get("neg"), 2n ** 64n - 42n);
      // integers outside int64 are refused rather than read back wrong
      await assert.rejects(t.cache.set("big", 2n ** 63n), MemcacheIllegalInputError);
      await assert.rejects(t.cache.set("big", -(2n ** 63n) - 1n), MemcacheIllegalInputError);
      await assert.rejects(t.cache.setMany({ a: 1, big: 2n ** 64n }), MemcacheIllegalInputError);
      assert.equal(await t.cache.get("a"), null);
    });
  });

  describe(`MemcachedCache (${target.name}): counters`, () => {
    it("200 concurrent increments from two separate caches end exact", async () => {
      await using t = await setup();
      await using other = target.make(t.servers.specs);
      const results = await Promise.all(
        Array.from({ length: 200 }, (_, i) => (i % 2 ? t.cache : other).inc("hits")),
      );
      assert.equal(await t.cache.get("hits"), 200);
      // each increment saw its own result: 1..200, each once
      assert.deepEqual(
        [...results].sort((a, b) => Number(a) - Number(b)),
        Array.from({ length: 200 }, (_, i) => i + 1),
      );
    });

    it("concurrent decrements across zero from two caches end exact and negative", async () => {
      await using t = await setup();
      await using other = target.make(t.servers.specs);
      await t.cache.set("balance", 30);
      await Promise.all(
        Array.from({ length: 200 }, (_, i) => {
          const cache = i % 2 ? t.cache : other;
          return i % 4 === 0 ? cache.inc("balance", 3) : cache.dec("balance", 2);
        }),
      );
      // 50 × +3, 150 × −2, from 30
      assert.equal(await t.cache.get("balance"), 30 + 150 - 300);
      assert.equal(await other.get("balance"), -120);
      assert.equal(await t.cache.inc("balance", 120), 0);
      assert.equal(await t.cache.dec("fresh", 7), -7);
      assert.equal(await other.inc("fresh", 10), 3);
    });

    it("inc and dec: defaults, negative deltas, bigint deltas and int64 bounds", async () => {
      await using t = await setup();
      assert.equal(await t.cache.inc("a"), 1);
      assert.equal(await t.cache.inc("a"), 2);
      assert.equal(await t.cache.dec("a"), 1);
      assert.equal(await t.cache.inc("a", -3), -2);
      assert.equal(await t.cache.dec("a", -5), 3);
      assert.equal(await t.cache.inc("a", 10n), 13);
      assert.equal(await t.cache.dec("b", 2n ** 62n), -(2n ** 62n));
      assert.equal(await t.cache.get("b"), -(2n ** 62n));
      assert.equal(await t.cache.set("c", -5), true);
      assert.equal(await t.cache.inc("c", 2), -3);
      assert.equal(await t.cache.set("max", 2n ** 63n - 1n), true);
      assert.equal(await t.cache.inc("max"), -(2n ** 63n)); // wraps as int64 does
      assert.equal(await t.cache.dec("max"), 2n ** 63n - 1n);
      assert.equal(await t.cache.inc("zero", 0), 0);
      await assert.rejects(t.cache.inc("a", 1.5), MemcacheIllegalInputError);
      await assert.rejects(t.cache.inc("a", Number.MAX_SAFE_INTEGER + 1), MemcacheIllegalInputError);
      await assert.rejects(t.cache.inc("a", "1" as unknown as number), MemcacheIllegalInputError);
      assert.equal(await t.cache.get("a"), 13);
    });

    it("a negative counter another client wrote as -5 is counted with gets/cas", async () => {
      await using t = await setup({ keyPrefix: "app:" });
      await using probe = probeFor(t.servers.specs);
      await probe.set("app:py", -5); // pymemcache and pylibmc write a negative int as "-5" (flag 2)
      assert.equal(await t.cache.inc("py", 2), -3);
      assert.equal(await t.cache.get("py"), -3);
      assert.equal(await t.cache.inc("py", 10), 7); // now in the cache's own form: one incr
      assert.equal(await probe.get("app:py"), 7);
    });

    it("inc on a value that is not an integer rejects with MemcacheClientError, and the value stays", async () => {
      await using t = await setup();
      await t.cache.set("text", "abc");
      await t.cache.set("json", { a: 1 });
      await assert.rejects(t.cache.inc("text"), MemcacheClientError);
      await assert.rejects(t.cache.dec("json"), MemcacheClientError);
      assert.equal(await t.cache.get("text"), "abc");
      assert.deepEqual(await t.cache.get("json"), { a: 1 });
      assert.equal(await t.cache.inc("after"), 1); // the cache keeps working
    });
  });
}

describe("MemcachedCache: construction", () => {
  it("defaults: 127.0.0.1:11211 over a HashClient that waits for replies and takes unicode keys", async () => {
    await using cache = new MemcachedCache();
    assert.equal(cache.defaultTimeout, 300);
    assert.equal(cache.keyPrefix, "");
    assert.equal(cache.poolSize, 1);
    assert.equal(cache.poolBlocking, true);
    assert.ok(cache.client instanceof HashClient);
    assert.deepEqual(cache.client.servers, ["127.0.0.1:11211"]);
    assert.equal(cache.client.defaultNoreply, false);
    assert.equal(cache.client.allowUnicodeKeys, true);
    await using two = new MemcachedCache(["127.0.0.1:11311", { host: "::1", port: 11312 }], { keyPrefix: "x" });
    assert.deepEqual((two.client as HashClient).servers, ["127.0.0.1:11311", "[::1]:11312"]);
  });

  it("a client passed in is used as it is", async () => {
    await using server = await startMemcached();
    const clients: CacheClientLike[] = [
      new Client(server.spec),
      new PooledClient(server.spec, { maxPoolSize: 2 }),
      new HashClient([server.spec]),
      new RetryingClient(new Client(server.spec)),
    ];
    for (const [i, client] of clients.entries()) {
      await using cache = new MemcachedCache(client, { keyPrefix: "c:" });
      assert.equal(cache.client, client);
      assert.equal(await cache.set(`k${i}`, i), true);
      assert.equal(await cache.add(`k${i}`, i), false); // even with the client's noreply default
      assert.equal(await cache.get(`k${i}`), i);
      assert.equal(await client.get(`c:k${i}`), i);
      assert.equal(await cache.has(`k${i}`), true);
      assert.equal(await cache.inc(`n${i}`, -2), -2);
      assert.deepEqual(await cache.deleteMany(`k${i}`, `none`), [`k${i}`]);
      assert.equal(await cache.get("ключ"), null); // the client refuses non-ASCII keys: a miss
    }
  });

  it("invalid arguments throw TypeError", () => {
    assert.throws(() => new MemcachedCache("127.0.0.1:11211" as unknown as string[]), TypeError);
    assert.throws(() => new MemcachedCache([]), TypeError);
    assert.throws(() => new MemcachedCache(["host:notaport"]), TypeError);
    assert.throws(() => new MemcachedCache(undefined, { defaultTimeout: 1.5 }), TypeError);
    assert.throws(() => new MemcachedCache(undefined, { poolSize: 0 }), TypeError);
    assert.throws(() => new MemcachedCache(undefined, { keyPrefix: "a b" }), TypeError);
    assert.throws(() => new MemcachedCache(undefined, { poolBlocking: "no" as unknown as boolean }), TypeError);
  });

  it("importPreferredMemcacheLib resolves to the client the cache would use, on the runtime's transport", async () => {
    await using server = await startMemcached();
    await using cache = new MemcachedCache([server.spec], { poolSize: 3 });
    await using client = await cache.importPreferredMemcacheLib([server.spec]);
    assert.ok(client instanceof HashClient);
    assert.equal(client.defaultNoreply, false);
    assert.equal(client.allowUnicodeKeys, true);
    assert.equal(await client.set("ключ", "value"), true);
    assert.equal(await cache.get("ключ"), "value");
    await assert.rejects(cache.importPreferredMemcacheLib([]), TypeError);
  });

  it("importPreferredMemcacheLib and the cache use the transport option", async () => {
    const tried: string[] = [];
    const transport: Transport = {
      name: "refusing",
      connect(address) {
        tried.push("port" in address ? `${address.host}:${address.port}` : address.path);
        return Promise.reject(new Error("refused by the test transport"));
      },
    };
    await using cache = new MemcachedCache(["127.0.0.1:1"], { transport });
    await assert.rejects(cache.get("k"), MemcacheError);
    await using client = await cache.importPreferredMemcacheLib(["127.0.0.1:2"]);
    await assert.rejects(client.get("k"), MemcacheError);
    assert.deepEqual(tried, ["127.0.0.1:1", "127.0.0.1:2"]);
  });

  it("poolSize: up to that many connections per server under load (64 calls pipelined on each); 1 is one pipelined connection", async () => {
    await using server = await startMemcached();
    await using probe = new Client(server.spec);
    const connections = async () => (await probe.stats()).curr_connections as number;
    await probe.version();
    const base = await connections();
    for (const [poolSize, calls, expected] of [[1, 300, 1], [3, 20, 1], [3, 300, 3]]) {
      await using cache = new MemcachedCache([server.spec], { poolSize });
      const values = await Promise.all(Array.from({ length: calls }, (_, i) => cache.get(`k${i}`)));
      assert.deepEqual(values, Array(calls).fill(null));
      assert.equal((await connections()) - base, expected, `poolSize ${poolSize}, ${calls} calls`);
      await cache.close();
    }
  });

  it("poolBlocking false: a call finding every pooled connection full (64 calls in flight each) rejects", async () => {
    await using server = await startMemcached();
    await using cache = new MemcachedCache([server.spec], { poolBlocking: false });
    const settled = await Promise.allSettled(Array.from({ length: 65 }, (_, i) => cache.get(`k${i}`)));
    assert.deepEqual(settled.slice(0, 64).map((s) => s.status), Array(64).fill("fulfilled"));
    assert.equal(settled[64].status, "rejected");
    assert.ok((settled[64] as PromiseRejectedResult).reason instanceof MemcacheError);
  });
});

describe("MemcachedCache: writes are whole or nothing", () => {
  it("setMany with one unserializable value stores nothing on either of two servers and rejects", async () => {
    await using a = await startMemcached();
    await using b = await startMemcached();
    await using cache = new MemcachedCache([a.spec, b.spec]);
    const hash = cache.client as HashClient;
    const keys = Array.from({ length: 40 }, (_, i) => `k${i}`);
    const placed = new Set(keys.map((k) => hash.serverFor(k)));
    assert.equal(placed.size, 2, "the keys span both servers");
    // JSON cannot hold a BigInt inside an object: one value fails, on one server.
    const mapping = Object.fromEntries(keys.map((k, i) => [k, i === 7 ? { big: 1n } : { n: i }]));
    await assert.rejects(cache.setMany(mapping), MemcacheIllegalInputError);
    for (const server of [a, b]) {
      await using direct = new Client(server.spec);
      assert.deepEqual(await direct.getMany(keys), new Map(), `${server.spec} stored part of it`);
    }
    assert.deepEqual(await cache.getMany(...keys), keys.map(() => null));
    delete mapping.k7;
    assert.equal((await cache.setMany(mapping)).length, 39);
  });

  it("set with a key that is not a string fails with MemcacheIllegalInputError, naming its type", async () => {
    await using server = await startMemcached();
    await using cache = new MemcachedCache([server.spec]);
    for (const key of [1n, 42, null, undefined, Symbol("k"), { k: 1 }, ["k"]] as unknown as string[]) {
      for (
        const call of [
          () => cache.set(key, 1),
          () => cache.add(key, 1),
          () => cache.inc(key),
        ]
      ) {
        await assert.rejects(call(), (error: unknown) => {
          assert.ok(error instanceof MemcacheIllegalInputError, `${String(error)}`);
          assert.match((error as Error).message, /keys are strings, got/);
          return true;
        });
      }
      await assert.rejects(cache.setMany(new Map([[key, 1]])), MemcacheIllegalInputError);
      assert.equal(await cache.get(key), null); // the get side: a miss, as cachelib
    }
  });
});
