/**
 * KeyvMemcache under Keyv 6 (installed as `keyv6`: it needs Node ≥ 22, so it
 * runs here on Deno only). Keyv 6 hands namespacing to a store that has a
 * `namespace` property and takes its keys unprefixed, so these cases check
 * that it does: clear() through Keyv 6 clears one namespace with one
 * command, and keys arrive without Keyv's prefix.
 */
import assert from "node:assert/strict";
import { describe, it } from "../_support/_harness.ts";
import Keyv from "keyv6";
import { Client, type Observer } from "../../mod.ts";
import { KeyvMemcache } from "../../keyv.ts";
import { startMemcached } from "../_support/_memcached.ts";

describe("KeyvMemcache under Keyv 6", () => {
  it("Keyv 6 leaves namespaces to the adapter: clear() is one ma and keeps the other namespaces", async () => {
    await using server = await startMemcached();
    const commands: string[] = [];
    const observer: Observer = { onCommand: (event) => void commands.push(event.command) };
    await using client = new Client(server.spec, { observer });
    const users = new Keyv({ store: new KeyvMemcache(client), namespace: "users" });
    const posts = new Keyv({ store: new KeyvMemcache(client), namespace: "posts" });
    assert.equal(await users.set("ada", { name: "Ada" }, 60_000), true);
    assert.equal(await posts.set("ada", "a post"), true);
    assert.deepEqual(await users.get("ada"), { name: "Ada" });
    assert.deepEqual(await users.get(["ada", "bob"]), [{ name: "Ada" }, undefined]);
    assert.equal(await users.has("ada"), true);
    // The key arrives unprefixed: "users:<gen>:ada", not "users:<gen>:users::ada".
    const gen = ((await client.metaArithmetic("users:g", { delta: 0 })).value as number).toString(36);
    const stored = await client.metaGet(`users:${gen}:ada`, { returnTtl: true });
    assert.ok(stored.hit && stored.ttl === 60, `ttl ${stored.ttl}`);
    commands.length = 0;
    await users.clear();
    assert.deepEqual(commands, ["metaArithmetic"]);
    assert.equal(await users.get("ada"), undefined);
    assert.equal(await posts.get("ada"), "a post");
    assert.equal(await posts.delete("ada"), true);
    assert.equal(await posts.delete("ada"), false);
    await users.set("x", 1);
    await users.set("y", 2);
    assert.deepEqual(await users.deleteMany(["x", "y"]), [true, true]);
    assert.equal((await client.stats()).cmd_flush, 0);
  });
});
