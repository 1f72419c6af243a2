/**
 * The libraries that use Keyv stores, over KeyvMemcache on real memcached:
 * Keyv 5.6 itself, `cacheable` 2 (memcached as its secondary store, under
 * its in-process primary) and `cache-manager` 7 (`createCache({ stores:
 * [new Keyv({ store })] })`), as their READMEs set them up.
 */
import assert from "node:assert/strict";
import { describe, it } from "../_support/_harness.ts";
import Keyv from "keyv";
import { Cacheable } from "cacheable";
import { createCache } from "cache-manager";
import { Client, type Commands } from "../../mod.ts";
import { KeyvMemcache } from "../../keyv.ts";
import { freePort, startMemcached } from "../_support/_memcached.ts";

/** Seconds left of an entry Keyv wrote in `namespace` (-1: no expiry), or null when absent. */
async function keyvTtl(client: Commands, namespace: string, key: string): Promise<number | null> {
  const gen = (await client.metaArithmetic(`${namespace}:g`, { delta: 0 })).value as number;
  // Keyv 5 prefixes keys with "<namespace>:"; the space makes the adapter encode the key.
  const full = `${namespace}:${key}`;
  const part = /^[\x21-\x7e]+$/.test(full) ? full : `~b${btoa(full).replace(/\+/g, "-").replace(/\//g, "_")}`;
  const result = await client.metaGet(`${namespace}:${gen.toString(36)}:${part.replace(/=+$/, "")}`, {
    returnTtl: true,
    value: false,
  });
  return result.hit ? result.ttl! : null;
}

describe("KeyvMemcache under Keyv 5", () => {
  it("stores, reads, expires and clears through Keyv, one namespace at a time", async () => {
    await using server = await startMemcached();
    await using client = new Client(server.spec);
    const users = new Keyv({ store: new KeyvMemcache(client), namespace: "users" });
    const posts = new Keyv({ store: new KeyvMemcache(client), namespace: "posts" });
    assert.equal(await users.set("ada", { name: "Ada", langs: ["en"] }, 90_000), true);
    assert.equal(await posts.set("ada", "a post"), true);
    assert.deepEqual(await users.get("ada"), { name: "Ada", langs: ["en"] });
    assert.deepEqual(await users.get(["ada", "bob"]), [{ name: "Ada", langs: ["en"] }, undefined]);
    assert.equal(await users.has("ada"), true);
    assert.equal(await keyvTtl(client, "users", "ada"), 90);
    // What memcached holds is Keyv's own serialization: any Keyv reads it.
    const other = new Keyv({ store: new KeyvMemcache(new Client(server.spec)), namespace: "users" });
    assert.deepEqual(await other.get("ada"), { name: "Ada", langs: ["en"] });
    await other.disconnect();
    await users.clear();
    assert.equal(await users.get("ada"), undefined);
    assert.equal(await posts.get("ada"), "a post");
    assert.equal((await client.stats()).cmd_flush, 0);
  });

  it("a failing store surfaces as Keyv's error event", async () => {
    const port = await freePort(); // nothing listens
    await using client = new Client(`127.0.0.1:${port}`, { connectTimeout: 500 });
    const keyv = new Keyv({ store: new KeyvMemcache(client) });
    const errors: unknown[] = [];
    keyv.on("error", (error: unknown) => errors.push(error));
    assert.equal(await keyv.set("k", "v"), false);
    assert.equal(errors.length, 1);
    assert.ok(errors[0] instanceof Error);
  });
});

describe("KeyvMemcache as cacheable's secondary store", () => {
  it("writes through to memcached, and a fresh primary reads back from it", async () => {
    await using server = await startMemcached();
    await using client = new Client(server.spec);
    const cache = new Cacheable({ secondary: new KeyvMemcache(client) });
    await cache.set("session", { user: 7 }, "5m");
    assert.deepEqual(await cache.get("session"), { user: 7 });
    // Another process: its own in-process primary, empty, over the same memcached.
    const other = new Cacheable({ secondary: new KeyvMemcache(client) });
    assert.deepEqual(await other.get("session"), { user: 7 });
    const ttl = await keyvTtl(client, "keyv", "session");
    assert.ok(ttl !== null && ttl >= 299 && ttl <= 300, `5m in memcached: ${ttl}`);
    await cache.delete("session");
    assert.equal(await new Cacheable({ secondary: new KeyvMemcache(client) }).get("session"), undefined);
    const wrapped = cache.wrap((n: number) => Promise.resolve({ n, at: Math.random() }), { ttl: "1m" });
    const first = await wrapped(1);
    assert.deepEqual(await wrapped(1), first);
  });
});

describe("KeyvMemcache under cache-manager 7", () => {
  it("createCache({ stores: [new Keyv({ store })] }): get, set, mget, del, wrap, clear", async () => {
    await using server = await startMemcached();
    await using client = new Client(server.spec);
    const cache = createCache({ stores: [new Keyv({ store: new KeyvMemcache(client) })] });
    const untouched = new Keyv({ store: new KeyvMemcache(client), namespace: "untouched" });
    await untouched.set("k", "stays");
    // cache-manager's README key.
    assert.equal(await cache.set("key 2", "value 2", 60_000), "value 2");
    assert.equal(await cache.get("key 2"), "value 2");
    assert.equal(await keyvTtl(client, "keyv", "key 2"), 60);
    await cache.mset<unknown>([{ key: "a", value: 1 }, { key: "b", value: { two: 2 } }]);
    assert.deepEqual(await cache.mget(["a", "b", "c"]), [1, { two: 2 }, undefined]);
    let calls = 0;
    const load = () => Promise.resolve({ loaded: ++calls });
    assert.deepEqual(await cache.wrap("w", load, 60_000), { loaded: 1 });
    assert.deepEqual(await cache.wrap("w", load, 60_000), { loaded: 1 });
    assert.equal(await cache.del("a"), true);
    assert.equal(await cache.get("a"), undefined);
    await cache.clear();
    assert.equal(await cache.get("key 2"), undefined);
    assert.equal(await untouched.get("k"), "stays");
    await cache.disconnect();
  });
});
