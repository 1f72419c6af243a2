/**
 * Keyv inside workerd: cases of the Worker (worker.ts), each run in one
 * request, with Keyv 5 over KeyvMemcache on the package's default transport
 * (CloudflareTransport, picked by itself in a Worker) against the memcached
 * run.ts keeps for the stage.
 */
import assert from "node:assert/strict";
import Keyv from "keyv";
import { Client } from "../../mod.ts";
import { defaultTransport } from "../../src/connection/_default_transport.ts";
import { KeyvMemcache } from "../../keyv.ts";
import { describe, it } from "./_harness.ts";

/** Registers the cases; `memcached()` is the stage's memcached, known once a request runs. */
export function keyvCases(memcached: () => string): void {
  describe("workerd Keyv", () => {
    it("Keyv over KeyvMemcache on a Client: set, get, getMany, delete, clear of one namespace", async () => {
      assert.equal((await defaultTransport()).name, "cloudflare");
      await using client = new Client(memcached());
      const run = crypto.randomUUID();
      const users = new Keyv({ store: new KeyvMemcache(client), namespace: `users-${run}` });
      const posts = new Keyv({ store: new KeyvMemcache(client), namespace: `posts-${run}` });
      assert.equal(await users.set("ada", { name: "Ada" }, 60_000), true);
      assert.equal(await posts.set("ada", "a post"), true);
      assert.deepEqual(await users.get("ada"), { name: "Ada" });
      assert.deepEqual(await users.get(["ada", "bob"]), [{ name: "Ada" }, undefined]);
      // Keys memcached cannot take: encoded (a long one hashed with crypto.subtle).
      const long = "ключ ".repeat(100);
      assert.equal(await users.set(long, "long"), true);
      assert.equal(await users.get(long), "long");
      assert.equal(await users.delete(long), true);
      await users.clear();
      assert.equal(await users.get("ada"), undefined);
      assert.equal(await posts.get("ada"), "a post");
    });

    it("KeyvMemcache built from a server spec, closed by Keyv's disconnect() within the request", async () => {
      const keyv = new Keyv({ store: new KeyvMemcache(memcached()), namespace: crypto.randomUUID() });
      await keyv.set("k", [1, 2, 3]);
      assert.deepEqual(await keyv.get("k"), [1, 2, 3]);
      await keyv.disconnect();
    });
  });
}
