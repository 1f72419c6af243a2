/**
 * KeyvMemcache (keyv.ts) against real memcached, read from memcached's side:
 * clear() clears one namespace with one write and never flush_all; another
 * process's clear() is seen; TTLs as memcached holds them; any key; any
 * client, and who closes it. Keyv's own suite runs in tests/keyv/ (vitest);
 * Keyv, cacheable and cache-manager over the adapter in keyv_consumers_test.ts.
 */
import assert from "node:assert/strict";
import { describe, it } from "../_support/_harness.ts";
import {
  Client,
  type Commands,
  CompressedSerde,
  FLAG_COMPRESSED,
  HashClient,
  type Observer,
  PooledClient,
  RetryingClient,
} from "../../mod.ts";
import { KeyvMemcache } from "../../keyv.ts";
import { startMemcached } from "../_support/_memcached.ts";

/** A namespace's current generation as the adapter writes it in keys. */
async function generation(client: Commands, tag: string): Promise<string> {
  const result = await client.metaArithmetic(`${tag}:g`, { delta: 0 });
  assert.ok(result.hit, `the counter ${tag}:g exists`);
  return (result.value as number | bigint).toString(36);
}

/** Seconds left of a key as memcached holds it (-1: no expiry), or null when absent. */
async function ttlOf(client: Client, wireKey: string): Promise<number | null> {
  const result = await client.metaGet(wireKey, { returnTtl: true, value: false });
  return result.hit ? result.ttl! : null;
}

/** Counts connection closes (and commands by name) of the clients it is given to. */
function recorder(): Observer & { closes: number; commands: string[] } {
  const seen = {
    closes: 0,
    commands: [] as string[],
    onConnection(event: { type: string }) {
      if (event.type === "close") seen.closes++;
    },
    onCommand(event: { command: string }) {
      seen.commands.push(event.command);
    },
  };
  return seen;
}

describe("KeyvMemcache clear()", () => {
  it("clears its namespace only, with one command and no flush_all", async () => {
    await using server = await startMemcached();
    const seen = recorder();
    await using client = new Client(server.spec, { observer: seen });
    await using raw = new Client(server.spec, { defaultNoreply: false });
    const a = new KeyvMemcache(client, { namespace: "a" });
    const b = new KeyvMemcache(client, { namespace: "b" });
    const none = new KeyvMemcache(client);
    await raw.set("other", "x");
    await raw.set("a:foo", "plain key that looks namespaced");
    await a.set("foo", "A");
    await a.set("bar", "A2");
    await b.set("foo", "B");
    await none.set("foo", "N");

    seen.commands.length = 0;
    await a.clear();
    assert.deepEqual(seen.commands, ["metaArithmetic"], "clear() is one ma");

    assert.equal(await a.get("foo"), undefined);
    assert.equal(await a.get("bar"), undefined);
    assert.equal(await a.has("foo"), false);
    assert.equal(await b.get("foo"), "B");
    assert.equal(await none.get("foo"), "N");
    assert.equal(await raw.get("other"), "x");
    assert.equal(await raw.get("a:foo"), "plain key that looks namespaced");
    const stats = await raw.stats();
    assert.equal(stats.cmd_flush, 0, "no flush_all reached memcached");

    await a.set("foo", "A again");
    assert.equal(await a.get("foo"), "A again", "the namespace is usable after clear()");
    await none.clear();
    assert.equal(await none.get("foo"), undefined);
    assert.equal(await b.get("foo"), "B", "clearing no namespace leaves the named ones");
  });

  it("sees another process's clear() on its next call, and writes after it into the new generation", async () => {
    await using server = await startMemcached();
    // Two clients: two connections, as two processes have.
    await using one = new Client(server.spec);
    await using two = new Client(server.spec);
    const first = new KeyvMemcache(one, { namespace: "shared" });
    const second = new KeyvMemcache(two, { namespace: "shared" });
    await first.set("k", "v1");
    assert.equal(await first.get("k"), "v1"); // first has the generation cached now
    assert.equal(await second.get("k"), "v1");
    await second.clear();
    assert.equal(await first.get("k"), undefined, "a cached generation is checked with each call");
    assert.deepEqual(await first.getMany(["k"]), [undefined]);
    await second.set("k", "v2");
    await second.clear();
    await first.set("k", "v3"); // first's cached generation is two clears old
    assert.equal(await second.get("k"), "v3", "a write after another process's clear() is not lost");
    assert.equal(await first.delete("k"), true);
    assert.equal(await second.get("k"), undefined);
  });

  it("a counter that memcached lost never brings cleared entries back", async () => {
    await using server = await startMemcached();
    await using client = new Client(server.spec, { defaultNoreply: false });
    const store = new KeyvMemcache(client, { namespace: "n" });
    await store.set("k", "old");
    const before = await generation(client, "n");
    await client.delete("n:g"); // as an eviction would
    await new Promise((resolve) => setTimeout(resolve, 2)); // the next ms
    assert.equal(await store.get("k"), undefined);
    const after = await generation(client, "n");
    assert.ok(parseInt(after, 36) > parseInt(before, 36), `new counter ${after} above the lost ${before}`);
    assert.equal(await client.get(`n:${before}:k`), "old", "the old entry is still in memcached, unreachable");
  });
});

describe("KeyvMemcache TTL, as memcached holds it", () => {
  it("rounds ms up to whole seconds", async () => {
    await using server = await startMemcached();
    await using client = new Client(server.spec, { defaultNoreply: false });
    const store = new KeyvMemcache(client, { namespace: "t" });
    // memcached's clock ticks each second: compare with a key set with 2 s in the same tick.
    let got: Array<number | null> = [];
    for (let attempt = 0; attempt < 3; attempt++) {
      await store.set("k", "v", 1001);
      await client.set("ref", "v", { expire: 2 });
      const wire = `t:${await generation(client, "t")}:k`;
      got = [await ttlOf(client, wire), await ttlOf(client, "ref")];
      if (got[0] === got[1]) break;
    }
    assert.ok(got[0] !== null && got[0] === got[1], `1001 ms is 2 s: ${got}`);
  });

  it("no TTL, 0 and Infinity mean no expiry; a negative TTL deletes", async () => {
    await using server = await startMemcached();
    await using client = new Client(server.spec, { defaultNoreply: false });
    const store = new KeyvMemcache(client, { namespace: "t" });
    for (const ttl of [undefined, 0, Infinity]) {
      await store.set("k", "v", ttl);
      assert.equal(await ttlOf(client, `t:${await generation(client, "t")}:k`), -1, `ttl ${ttl}`);
    }
    await store.set("k", "v", -1);
    assert.equal(await store.get("k"), undefined);
    assert.equal(await ttlOf(client, `t:${await generation(client, "t")}:k`), null);
  });

  it("sends over 30 days as a unix time, 30 days as seconds", async () => {
    await using server = await startMemcached();
    await using client = new Client(server.spec, { defaultNoreply: false });
    const store = new KeyvMemcache(client, { namespace: "t" });
    const day = 86_400;
    await store.set("forty", "v", 40 * day * 1000);
    await store.set("thirty", "v", 30 * day * 1000);
    const gen = await generation(client, "t");
    // Sent as a relative 3,456,000 s, memcached would read a 1970 unix time: gone at once.
    const forty = await ttlOf(client, `t:${gen}:forty`);
    assert.ok(forty !== null && Math.abs(forty - 40 * day) <= 2, `40 days: ${forty}`);
    const thirty = await ttlOf(client, `t:${gen}:thirty`);
    assert.ok(thirty !== null && Math.abs(thirty - 30 * day) <= 2, `30 days: ${thirty}`);
    assert.equal(await store.get("forty"), "v");
  });

  it("setMany gives each entry its own TTL", async () => {
    await using server = await startMemcached();
    await using client = new Client(server.spec, { defaultNoreply: false });
    const store = new KeyvMemcache(client, { namespace: "t" });
    await store.set("d", "old");
    await store.setMany([
      { key: "a", value: "1", ttl: 100_000 },
      { key: "b", value: "2" },
      { key: "c", value: "3", ttl: 100_000 },
      { key: "d", value: "4", ttl: -5 },
    ]);
    const gen = await generation(client, "t");
    const a = await ttlOf(client, `t:${gen}:a`);
    assert.ok(a !== null && a >= 99 && a <= 100, `a: ${a}`);
    assert.equal(await ttlOf(client, `t:${gen}:b`), -1);
    assert.equal(await ttlOf(client, `t:${gen}:d`), null);
    assert.deepEqual(await store.getMany(["a", "b", "c", "d"]), ["1", "2", "3", undefined]);
    assert.deepEqual(await store.hasMany(["a", "d"]), [true, false]);
  });

  it("rejects a TTL that is not a number", async () => {
    await using server = await startMemcached();
    await using client = new Client(server.spec);
    const store = new KeyvMemcache(client);
    await assert.rejects(store.set("k", "v", "1h" as unknown as number), TypeError);
    await assert.rejects(store.set("k", "v", NaN), TypeError);
  });
});

describe("KeyvMemcache keys", () => {
  const long = "x".repeat(400);
  const keys = [
    "plain",
    "key 2",
    "ключ",
    "ключ".repeat(100),
    long,
    "",
    "a\r\nset b 0 0 1",
    "with:colons:",
    "~plain-looking",
    // What "key 2" is sent as: a plain key equal to an encoded one must not share its item.
    `~b${btoa("key 2").replace(/=+$/, "")}`,
    // 246 printable bytes: fits alone, not with the namespace and generation.
    "y".repeat(246),
  ];

  it("any string works as a key and no two keys share an item, on a client without unicode keys", async () => {
    await using server = await startMemcached();
    await using client = new Client(server.spec); // allowUnicodeKeys false, defaultNoreply true
    const store = new KeyvMemcache(client, { namespace: "k" });
    for (const [i, key] of keys.entries()) assert.equal(await store.set(key, `value ${i}`), true, JSON.stringify(key));
    for (const [i, key] of keys.entries()) assert.equal(await store.get(key), `value ${i}`, JSON.stringify(key));
    assert.deepEqual(await store.getMany(keys), keys.map((_, i) => `value ${i}`));
    assert.equal(await store.deleteMany([keys[1], keys[3]]), true);
    assert.equal(await store.get("key 2"), undefined);
    assert.equal(await store.get(`~b${btoa("key 2").replace(/=+$/, "")}`), "value 9");
    assert.equal(await store.delete(long), true);
    assert.equal(await store.delete(long), false);
    const stats = await client.stats();
    assert.equal(stats.curr_items, keys.length - 3 + 1, "one item per key left, plus the counter");
  });

  it("a plain key is sent as it is, a key memcached cannot take encoded", async () => {
    await using server = await startMemcached();
    await using client = new Client(server.spec, { defaultNoreply: false });
    const store = new KeyvMemcache(client, { namespace: "k" });
    await store.set("plain", "p");
    await store.set("key 2", "s");
    const gen = await generation(client, "k");
    assert.equal(await client.get(`k:${gen}:plain`), "p");
    assert.equal(await client.get(`k:${gen}:~b${btoa("key 2").replace(/=+$/, "")}`), "s");
  });

  it("namespaces memcached cannot take, or that contain ':', still separate", async () => {
    await using server = await startMemcached();
    await using client = new Client(server.spec);
    const names = ["a", "a:1", "my namespace", "пространство", "n".repeat(300), "~h"];
    const stores = names.map((namespace) => new KeyvMemcache(client, { namespace }));
    for (const [i, store] of stores.entries()) await store.set("1:k", `ns ${i}`);
    // With "a" at generation G, "a:1" must not be the key "a:G" read as "1:k" or the like.
    for (const [i, store] of stores.entries()) assert.equal(await store.get("1:k"), `ns ${i}`, names[i]);
    await stores[3].clear();
    assert.deepEqual(await Promise.all(stores.map((s) => s.get("1:k"))), [
      "ns 0",
      "ns 1",
      "ns 2",
      undefined,
      "ns 4",
      "ns 5",
    ]);
  });

  it("a namespace never reads another namespace's entry as its counter", async () => {
    await using server = await startMemcached();
    await using client = new Client(server.spec);
    const a = new KeyvMemcache(client, { namespace: "a" });
    await a.set("g", "not a number");
    // Sent as it is, "a:<gen>" would keep its counter in "a:<gen>:g": the entry above.
    const b = new KeyvMemcache(client, { namespace: `a:${await generation(client, "a")}` });
    await b.set("k", "v");
    assert.equal(await b.get("k"), "v");
    await b.clear();
    assert.equal(await b.get("k"), undefined);
    assert.equal(await a.get("g"), "not a number");
  });

  it("follows the namespace Keyv assigns to its property", async () => {
    await using server = await startMemcached();
    await using client = new Client(server.spec);
    const store = new KeyvMemcache(client);
    store.namespace = "one";
    await store.set("k", "1");
    store.namespace = "two";
    assert.equal(await store.get("k"), undefined);
    await store.set("k", "2");
    await store.clear();
    store.namespace = "one";
    assert.equal(await store.get("k"), "1");
  });
});

describe("KeyvMemcache values", () => {
  it("go through the client's serde: a CompressedSerde client stores them compressed", async () => {
    await using server = await startMemcached();
    await using client = new Client(server.spec, { serde: new CompressedSerde({ minCompressLen: 100 }) });
    const store = new KeyvMemcache(client, { namespace: "v" });
    const big = JSON.stringify({ value: "abc".repeat(10_000), expires: null }); // as Keyv hands it
    await store.set("big", big);
    assert.equal(await store.get("big"), big);
    const held = await client.metaGet(`v:${await generation(client, "v")}:big`, {
      value: false,
      returnFlags: true,
      returnSize: true,
    });
    assert.ok(held.hit && held.size! < big.length / 10, `stored ${held.size} bytes of ${big.length}`);
    assert.equal(held.flags! & FLAG_COMPRESSED, FLAG_COMPRESSED);
    // And a plain client on the same server reads the counter and the entry's bytes.
    await using plain = new Client(server.spec);
    assert.equal(await new KeyvMemcache(plain, { namespace: "v" }).has("big"), true);
  });
});

describe("KeyvMemcache clients", () => {
  const given: Array<[string, (spec: string, observer: Observer) => Commands]> = [
    ["Client", (spec, observer) => new Client(spec, { observer })],
    ["PooledClient", (spec, observer) => new PooledClient(spec, { observer })],
    ["HashClient", (spec, observer) => new HashClient([spec], { observer })],
    ["RetryingClient", (spec, observer) => new RetryingClient(new Client(spec, { observer }))],
  ];
  for (const [name, make] of given) {
    it(`uses a ${name} passed in, and disconnect() leaves it open`, async () => {
      await using server = await startMemcached();
      const seen = recorder();
      const client = make(server.spec, seen);
      try {
        const store = new KeyvMemcache(client, { namespace: "c" });
        assert.equal(store.client, client);
        await store.set("k", "v");
        assert.equal(await client.get(`c:${await generation(client, "c")}:k`), "v");
        await store.disconnect();
        assert.equal(seen.closes, 0, "no connection closed");
        assert.equal(await store.get("k"), "v");
        assert.equal(seen.closes, 0);
      } finally {
        await client.close();
      }
    });
  }

  it("builds its own HashClient from server specs, and disconnect() closes it", async () => {
    await using one = await startMemcached();
    await using two = await startMemcached();
    for (const specs of [one.spec, [one.spec, two.spec], { host: one.host, port: one.port }]) {
      const seen = recorder();
      const store = new KeyvMemcache(specs, { namespace: "own", observer: seen });
      assert.ok(store.client instanceof HashClient);
      await store.setMany(Array.from({ length: 20 }, (_, i) => ({ key: `k${i}`, value: `${i}` })));
      assert.equal(await store.get("k7"), "7");
      assert.equal(seen.closes, 0);
      await store.disconnect();
      assert.ok(seen.closes >= 1, `connections closed: ${seen.closes}`);
      assert.match(store.opts.url, new RegExp(String(one.port)));
    }
  });

  it("is an event emitter of its own: on, off, emit", () => {
    const store = new KeyvMemcache(new Client("127.0.0.1:1")); // never connects
    const got: unknown[] = [];
    const listener = (error: unknown) => got.push(error);
    assert.equal(store.on("error", listener), store);
    assert.equal(store.emit("error", "boom"), true);
    store.off("error", listener);
    assert.equal(store.emit("error", "again"), false);
    assert.deepEqual(got, ["boom"]);
    assert.equal("namespace" in store, true, "keyv 6 hands namespacing to stores with the property");
    assert.equal(typeof store.opts, "object");
  });
});
