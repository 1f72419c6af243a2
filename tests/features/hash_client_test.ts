/**
 * HashClient against several real memcached processes: placement, split
 * multi-key calls, per-server commands, and failover with servers killed
 * and restarted.
 */
import assert from "node:assert/strict";
import { describe, it } from "../_support/_harness.ts";
import { Client, HashClient, MemcacheConnectionError, MemcacheError, MemcacheIllegalInputError } from "../../mod.ts";
import { RendezvousHash } from "../../src/placement/_rendezvous.ts";
import { KetamaHash } from "../../src/placement/_ketama.ts";
import { JumpHash, poolSeed } from "../../src/placement/_jump.ts";
import { type MemcachedServer, startMemcached } from "../_support/_memcached.ts";

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Starts `n` memcached servers; disposing the result stops them all. */
async function cluster(n: number): Promise<MemcachedServer[] & AsyncDisposable> {
  const servers = await Promise.all(Array.from({ length: n }, () => startMemcached()));
  return Object.assign(servers, {
    async [Symbol.asyncDispose]() {
      await Promise.all(servers.map((s) => s[Symbol.asyncDispose]()));
    },
  });
}

/** Which keys each server holds, read with a plain Client per server. */
async function holdings(servers: MemcachedServer[], keys: string[]): Promise<string[][]> {
  return await Promise.all(servers.map(async (server) => {
    await using direct = new Client(server.spec);
    return [...(await direct.getMany(keys)).keys()].sort();
  }));
}

/** A key the client places on `server`. */
function keyOn(client: HashClient, server: MemcachedServer, prefix = "key"): string {
  for (let i = 0;; i++) if (client.serverFor(`${prefix}${i}`) === server.spec) return `${prefix}${i}`;
}

const keys = Array.from({ length: 300 }, (_, i) => `key:${i}`);

describe("HashClient: placement", () => {
  it("rendezvous (default): each key is stored on the server pymemcache would pick, and only there", async () => {
    await using servers = await cluster(3);
    await using client = new HashClient(servers.map((s) => s.spec));
    assert.deepEqual(await client.setMany(Object.fromEntries(keys.map((k) => [k, k])), { noreply: false }), []);
    const ring = new RendezvousHash(servers.map((s) => `127.0.0.1:${s.port}`));
    const expected = servers.map((s) => keys.filter((k) => ring.getNode(k) === `127.0.0.1:${s.port}`).sort());
    assert.deepEqual(await holdings(servers, keys), expected);
    assert.ok(expected.every((held) => held.length > 50), "every server holds a share");
  });

  it("ketama: each key is stored on the server libmemcached would pick, and only there", async () => {
    await using servers = await cluster(3);
    await using client = new HashClient(servers.map((s) => s.spec), { hasher: "ketama" });
    await client.setMany(Object.fromEntries(keys.map((k) => [k, k])), { noreply: false });
    const ring = new KetamaHash(servers.map((s) => ({ node: s.spec, host: "127.0.0.1", port: s.port })));
    const expected = servers.map((s) => keys.filter((k) => ring.getNode(k) === s.spec).sort());
    assert.deepEqual(await holdings(servers, keys), expected);
    assert.ok(expected.every((held) => held.length > 50), "every server holds a share");
  });

  it("jump: each key (prefix included) is stored on the server a proxy pool would pick; binary keys by their base64", async () => {
    await using servers = await cluster(3);
    const specs = servers.map((s) => s.spec);
    await using client = new HashClient(specs, { hasher: "jump", seed: "s1", keyPrefix: "app:" });
    await client.setMany(Object.fromEntries(keys.map((k) => [k, k])), { noreply: false });
    const ring = new JumpHash(specs, poolSeed("s1"));
    const expected = servers.map((s) => keys.filter((k) => ring.getNode(`app:${k}`) === s.spec).map((k) => `app:${k}`));
    const held = await Promise.all(servers.map(async (server) => {
      await using direct = new Client(server.spec);
      return [...(await direct.getMany(keys.map((k) => `app:${k}`))).keys()];
    }));
    assert.deepEqual(held.map((h) => h.sort()), expected.map((e) => e.sort()));
    assert.ok(expected.every((e) => e.length > 50), "every server holds a share");
    // A binary meta key travels as the base64 of prefix + bytes, and is placed by that text.
    const binary = new Uint8Array([0, 1, 2, 255, 10, 13]);
    const wire = btoa(String.fromCharCode(...new TextEncoder().encode("app:"), ...binary));
    assert.equal((await client.metaSet(binary, "bin")).stored, true);
    await using owner = new Client(ring.getNode(wire)!);
    assert.equal((await owner.metaGet(new Uint8Array([...new TextEncoder().encode("app:"), ...binary]))).value, "bin");
  });

  it("places by the key without the prefix; duplicates in the server list count once", async () => {
    await using servers = await cluster(2);
    const specs = servers.map((s) => s.spec);
    await using plain = new HashClient(specs);
    await using prefixed = new HashClient([...specs, specs[0]], { keyPrefix: "app:" });
    assert.deepEqual(prefixed.servers, specs);
    for (const k of keys) assert.equal(prefixed.serverFor(k), plain.serverFor(k));
    await prefixed.set("k", "v", { noreply: false });
    await using direct = new Client(prefixed.serverFor("k")!);
    assert.equal(await direct.get("app:k"), "v");
  });
});

describe("HashClient: commands across servers", () => {
  it("multi-key calls are split per server and merged keyed as passed", async () => {
    await using servers = await cluster(3);
    await using client = new HashClient(servers.map((s) => s.spec), { keyPrefix: "p:" });
    assert.deepEqual(await client.setMany(new Map(keys.map((k, i) => [k, i])), { noreply: false }), []);
    const asked = ["missing", ...keys.slice(0, 50).reverse(), "key:7", "gone"];
    const got = await client.getMany(asked);
    assert.deepEqual([...got.keys()], keys.slice(0, 50).reverse()); // in the order passed, found keys only
    got.forEach((v, k) => assert.equal(v, Number(k.slice(4))));
    const withCas = await client.getsMany(keys.slice(0, 20));
    assert.equal(withCas.size, 20);
    withCas.forEach(([v, cas], k) => {
      assert.equal(v, Number(k.slice(4)));
      assert.match(cas, /^\d+$/);
    });
    assert.equal(await client.deleteMany(keys.slice(0, 100), { noreply: false }), true);
    assert.equal((await client.getMany(keys)).size, 200);
    const held = await holdings(servers, keys.map((k) => `p:${k}`));
    assert.equal(held.flat().length, 200);
    assert.ok(held.every((h) => h.length > 0));
  });

  it("single-key commands go to the key's server", async () => {
    await using servers = await cluster(2);
    await using client = new HashClient(servers.map((s) => s.spec), { defaultNoreply: false });
    const [k0, k1] = [keyOn(client, servers[0]), keyOn(client, servers[1])];
    assert.equal(await client.add(k0, 1), true);
    assert.equal(await client.add(k0, 2), false);
    assert.equal(await client.incr(k0, 5), 6);
    assert.equal(await client.decr(k0, 1), 5);
    assert.equal(await client.set(k1, "a"), true);
    assert.equal(await client.append(k1, "b"), true);
    assert.equal(await client.prepend(k1, "<"), true);
    assert.equal(await client.replace(k1, "<ab>"), true);
    const [value, cas] = await client.gets(k1);
    assert.equal(value, "<ab>");
    assert.equal(await client.cas(k1, "new", cas!), true);
    assert.equal(await client.touch(k1, 100), true);
    assert.equal(await client.gat(k1, 100), "new");
    assert.equal((await client.gats(k1, 100))[0], "new");
    assert.equal(await client.delete(k0), true);
    assert.deepEqual(await holdings(servers, [k0, k1]), [[], [k1]]);
  });

  it("stats() and version() answer per server, keyed host:port; flushAll flushes every server", async () => {
    await using servers = await cluster(3);
    await using client = new HashClient(servers.map((s) => s.spec));
    const stats = await client.stats();
    assert.deepEqual([...stats.keys()], servers.map((s) => `127.0.0.1:${s.port}`));
    const pids = [...stats.values()].map((s) => s.pid);
    assert.equal(new Set(pids).size, 3);
    assert.ok(pids.every((p) => typeof p === "number"));
    const settings = await client.stats("settings");
    assert.ok([...settings.values()].every((s) => s.growth_factor === 1.25));
    const versions = await client.version();
    assert.equal(versions.size, 3);
    assert.ok([...versions.values()].every((v) => /^\d+\.\d+/.test(v)));
    await client.setMany(Object.fromEntries(keys.map((k) => [k, 1])), { noreply: false });
    assert.equal(await client.flushAll(0, { noreply: false }), true);
    assert.equal((await client.getMany(keys)).size, 0);
    assert.equal(await client.cacheMemlimit(100), true);
    assert.ok([...(await client.stats("settings")).values()].every((s) => s.maxbytes === 100 * 1024 * 1024));
  });

  it("usePooling gives each server a PooledClient: up to maxPoolSize connections per server", async () => {
    await using servers = await cluster(2);
    await using probes = Object.assign(servers.map((s) => new Client(s.spec)), {
      async [Symbol.asyncDispose]() {
        await Promise.all(probes.map((p) => p.close()));
      },
    });
    const baseline = await Promise.all(probes.map(async (p) => (await p.stats()).curr_connections as number));
    const opened = async () =>
      (await Promise.all(probes.map(async (p) => (await p.stats()).curr_connections as number))).map((n, i) =>
        n - baseline[i]
      );
    await using pooled = new HashClient(servers.map((s) => s.spec), { usePooling: true, maxPoolSize: 3 });
    const results = await Promise.all(keys.map((k, i) => pooled.set(k, i, { noreply: false })));
    assert.ok(results.every((r) => r === true));
    assert.deepEqual(await opened(), [3, 3]);
    const values = await Promise.all(keys.map((k) => pooled.get(k)));
    assert.deepEqual(values, keys.map((_, i) => i));
    await using single = new HashClient(servers.map((s) => s.spec));
    await Promise.all(keys.map((k) => single.get(k)));
    assert.deepEqual(await opened(), [4, 4]); // one more each: a plain Client per server
  });

  it("checks keys and options before any I/O", async () => {
    await using servers = await cluster(1);
    await using client = new HashClient([servers[0].spec]);
    await assert.rejects(client.getMany(["fine", "bad key"]), MemcacheIllegalInputError);
    await assert.rejects(client.setMany({ fine: 1, "é": 2 }), MemcacheIllegalInputError);
    assert.throws(() => client.serverFor("a b"), MemcacheIllegalInputError);
    assert.equal((await client.stats()).get(servers[0].spec)!.cmd_get, 0);
    // deno-lint-ignore no-explicit-any
    assert.throws(() => new HashClient([servers[0].spec], { hasher: "md5" as any }), TypeError);
    assert.throws(() => new HashClient([servers[0].spec], { retryTimeout: -1 }), TypeError);
    assert.throws(() => new HashClient(["bad:port"]), TypeError);
  });

  it("setMany with one unserializable value stores nothing on any server and rejects", async () => {
    await using servers = await cluster(2);
    const specs = servers.map((s) => s.spec);
    await using client = new HashClient(specs);
    const a = keyOn(client, servers[0], "a");
    const b = keyOn(client, servers[1], "b");
    // JSON cannot hold a BigInt inside an object: the value of `b` fails, `a`'s would be fine.
    const bad = { [a]: { fine: 1 }, [b]: { big: 1n } };
    await assert.rejects(client.setMany(bad, { noreply: false }), (error: unknown) => {
      assert.ok(error instanceof MemcacheIllegalInputError, String(error));
      assert.match((error as Error).message, new RegExp(b));
      return true;
    });
    assert.deepEqual(await holdings(servers, [a, b]), [[], []]);

    // A serde that throws for one key, and one that returns something it may not: the same.
    const picky = {
      serialize: (key: string, value: unknown): [string, number] => {
        if (key === b) throw new Error("no");
        return [String(value), 0];
      },
      deserialize: (_key: string, value: Uint8Array) => new TextDecoder().decode(value),
    };
    await using strict = new HashClient(specs, { serde: picky });
    await assert.rejects(strict.setMany([[a, "x"], [b, "y"]], { noreply: false }), MemcacheIllegalInputError);
    const wrong = { ...picky, serialize: (key: string) => [key === b ? 42 : "ok", 0] as [string, number] };
    await using wrongly = new HashClient(specs, { serde: wrong });
    await assert.rejects(wrongly.setMany(new Map([[a, 1], [b, 2]]), { noreply: false }), MemcacheIllegalInputError);
    await assert.rejects(wrongly.setMany({ [a]: 1 }, { noreply: false, flags: -1 }), MemcacheIllegalInputError);
    assert.deepEqual(await holdings(servers, [a, b]), [[], []]);

    // Values serialized once are stored as serialized, flags included, on the right servers.
    const pairs: [string, unknown][] = [[a, { fine: 1 }], [b, "text"]];
    assert.deepEqual(await client.setMany(pairs, { noreply: false }), []);
    assert.deepEqual(pairs, [[a, { fine: 1 }], [b, "text"]]); // the caller's pairs are not touched
    assert.deepEqual(await holdings(servers, [a, b]), [[a], [b]]);
    assert.deepEqual(await client.getMany([b, a]), new Map<string, unknown>([[b, "text"], [a, { fine: 1 }]]));
    await using direct = new Client(servers[0].spec);
    assert.deepEqual(await direct.get(a), { fine: 1 });
  });
});

describe("HashClient: failover", () => {
  const retryTimeout = 300;
  const deadTimeout = 800;

  it("a killed server fails fast until retryTimeout, leaves the ring after its retries, and returns after deadTimeout", async () => {
    await using servers = await cluster(3);
    const specs = servers.map((s) => s.spec);
    const options = { retryAttempts: 1, retryTimeout, deadTimeout, timeout: 2000 };
    await using client = new HashClient(specs, options);
    await using lenient = new HashClient(specs, { ...options, ignoreExc: true });
    const victim = servers[1];
    const k = keyOn(client, victim);
    const other = keyOn(client, servers[0]);
    await client.setMany({ [k]: "v", [other]: "o" }, { noreply: false });
    await victim.stop();

    // First failure: an error (a miss with ignoreExc); the other servers' keys still work.
    await assert.rejects(client.get(k), MemcacheError);
    assert.equal(await lenient.get(k, "dflt"), "dflt");
    assert.deepEqual(await lenient.getMany([k, other]), new Map([[other, "o"]]));
    // Within retryTimeout the server is not tried: fail fast.
    await assert.rejects(client.get(k), (e) => e instanceof MemcacheConnectionError && /retried/.test(e.message));
    await assert.rejects(client.set(k, "x"), MemcacheConnectionError); // not only the get family
    assert.equal(await client.get(other), "o");
    assert.equal(client.serverFor(k), victim.spec); // still in the ring

    // After retryTimeout one call retries; it fails: that was the last retry, the server is dead.
    await sleep(retryTimeout + 50);
    await assert.rejects(client.get(k), MemcacheConnectionError);
    assert.notEqual(client.serverFor(k), victim.spec);
    assert.equal(await client.get(k), null); // its keys now fall to the others: a miss
    await client.set(k, "moved", { noreply: false });
    assert.equal(await client.get(k), "moved");

    // Back after deadTimeout (restarted empty).
    await victim.restart();
    await sleep(deadTimeout + 50);
    assert.equal(client.serverFor(k), victim.spec);
    assert.equal(await client.get(k), null);
    await client.set(k, "home", { noreply: false });
    await using direct = new Client(victim.spec);
    assert.equal(await direct.get(k), "home");
  });

  it("jump: a dead server leaves the pool's order (the others close up) and comes back in its place", async () => {
    await using servers = await cluster(3);
    const specs = servers.map((s) => s.spec);
    await using client = new HashClient(specs, { hasher: "jump", retryAttempts: 0, retryTimeout, deadTimeout });
    const before = keys.map((k) => client.serverFor(k));
    const victim = servers[0];
    const k = keyOn(client, victim);
    await victim.stop();
    await assert.rejects(client.get(k), MemcacheConnectionError); // dead at once (retryAttempts 0)
    const without = new JumpHash([specs[1], specs[2]]);
    assert.deepEqual(keys.map((key) => client.serverFor(key)), keys.map((key) => without.getNode(key)));
    await victim.restart();
    await sleep(deadTimeout + 50);
    assert.deepEqual(keys.map((key) => client.serverFor(key)), before);
    assert.equal(await client.set(k, "home", { noreply: false }), true);
    await using direct = new Client(victim.spec);
    assert.equal(await direct.get(k), "home");
  });

  it("a successful retry clears the failure; requests in flight together count as one failure", async () => {
    await using servers = await cluster(2);
    await using client = new HashClient(servers.map((s) => s.spec), { retryAttempts: 1, retryTimeout, deadTimeout });
    const victim = servers[0];
    const onVictim = Array.from({ length: 40 }, (_, i) => keyOn(client, victim, `k${i}-`));
    await victim.stop();
    // 40 concurrent calls fail together: one failure, not 40 (retryAttempts 1 would otherwise kill it).
    const settled = await Promise.allSettled(onVictim.map((k) => client.get(k)));
    assert.ok(settled.every((r) => r.status === "rejected"));
    assert.equal(client.serverFor(onVictim[0]), victim.spec);
    await victim.restart();
    await sleep(retryTimeout + 50);
    assert.equal(await client.get(onVictim[0]), null); // the retry succeeds
    await client.set(onVictim[0], "ok", { noreply: false });
    // The failure was cleared: a new outage starts over (fails fast, stays in the ring).
    await victim.stop();
    await assert.rejects(client.get(onVictim[0]), MemcacheError);
    await assert.rejects(client.get(onVictim[0]), /retried/);
    assert.equal(client.serverFor(onVictim[0]), victim.spec);
  });

  it("defaults are pymemcache's: retryAttempts 2, retryTimeout 1000 ms, deadTimeout 60000 ms", async () => {
    await using client = new HashClient(["127.0.0.1:11211"]); // never connects
    assert.equal(client.retryAttempts, 2);
    assert.equal(client.retryTimeout, 1000);
    assert.equal(client.deadTimeout, 60000);
    assert.equal(client.ignoreExc, false);
  });

  it("server-wide commands go through failover: dead servers skipped, failures dropped with ignoreExc", async () => {
    await using servers = await cluster(2);
    const specs = servers.map((s) => s.spec);
    const [live, victim] = servers;
    // retryTimeout 0: each call retries at once, so three calls use up retryAttempts 2.
    await using client = new HashClient(specs, { retryAttempts: 2, retryTimeout: 0, deadTimeout });
    await using lenient = new HashClient(specs, { retryAttempts: 0, deadTimeout, ignoreExc: true });
    const onVictim = keyOn(client, victim);
    const onLive = keyOn(client, live);
    await client.setMany({ [onVictim]: "v", [onLive]: "l" }, { noreply: false });
    await victim.stop();
    await using direct = new Client(live.spec);

    // ignoreExc: the failure marks the server dead (retryAttempts 0); the live one answers.
    assert.equal(await lenient.flushAll(0, { noreply: false }), false); // not every server flushed
    assert.equal(await direct.get(onLive), null); // the live server was flushed
    assert.notEqual(lenient.serverFor(onVictim), victim.spec); // marked dead: out of the ring
    const stats = await lenient.stats();
    assert.deepEqual([...stats.keys()], [live.spec]);
    assert.equal(typeof stats.get(live.spec)!.pid, "number");
    const versions = await lenient.version();
    assert.deepEqual([...versions.keys()], [live.spec]);
    assert.match(versions.get(live.spec)!, /^\d+\.\d+/);
    assert.deepEqual([...(await lenient.rawCommand("version")).keys()], [live.spec]);
    assert.equal(await lenient.cacheMemlimit(100), true);
    assert.equal(await lenient.verbosity(0, { noreply: false }), true);
    assert.equal(await lenient.flushAll(0, { noreply: false }), false); // the dead server is skipped, unflushed
    // A reply error is a failure too: dropped with ignoreExc, as pymemcache.
    assert.deepEqual(await lenient.rawCommand("bogus_command"), new Map());

    // Without ignoreExc each failure rejects, and counts: the third uses up retryAttempts 2.
    await direct.set(onLive, "l", { noreply: false });
    await assert.rejects(client.flushAll(0, { noreply: false }), MemcacheConnectionError);
    await assert.rejects(client.stats(), MemcacheConnectionError);
    assert.equal(client.serverFor(onVictim), victim.spec); // failing, not dead yet
    await assert.rejects(client.version(), MemcacheConnectionError);
    assert.notEqual(client.serverFor(onVictim), victim.spec); // dead now
    assert.equal(await direct.get(onLive), null); // the live server was flushed all the same
    assert.deepEqual([...(await client.stats()).keys()], [live.spec]); // dead: skipped, no error
    assert.deepEqual([...(await client.version()).keys()], [live.spec]);
    assert.equal(await client.flushAll(0, { noreply: false }), false);

    // Back after deadTimeout: included again.
    await victim.restart();
    await sleep(deadTimeout + 50);
    for (const c of [client, lenient]) {
      assert.deepEqual([...(await c.stats()).keys()], specs);
      assert.deepEqual([...(await c.version()).keys()], specs);
      assert.equal(await c.flushAll(0, { noreply: false }), true);
      assert.equal(c.serverFor(onVictim), victim.spec);
    }
  });

  it('every server dead: "All servers seem to be down right now", or the default with ignoreExc', async () => {
    await using servers = await cluster(2);
    const specs = servers.map((s) => s.spec);
    await using client = new HashClient(specs, { retryAttempts: 0 });
    await using lenient = new HashClient(specs, { retryAttempts: 0, ignoreExc: true });
    const keyA = keyOn(client, servers[0]);
    const keyB = keyOn(client, servers[1]);
    await Promise.all(servers.map((s) => s.stop()));
    await assert.rejects(client.set(keyA, 1), MemcacheConnectionError); // retryAttempts 0: dead at once
    await assert.rejects(client.set(keyB, 1), MemcacheConnectionError);
    assert.equal(await lenient.set(keyA, 1), false); // ignoreExc: the failure gives the default
    assert.equal(await lenient.set(keyB, 1), false);
    assert.equal(client.serverFor("anything"), null);
    for (const call of [client.get("k"), client.set("k", 1), client.getMany(["a", "b"]), client.deleteMany(["a"])]) {
      await assert.rejects(
        call,
        (e) => e instanceof MemcacheError && /All servers seem to be down right now/.test(e.message),
      );
    }
    assert.equal(await lenient.get("k", "dflt"), "dflt");
    assert.deepEqual(await lenient.gets("k"), [null, null]);
    assert.deepEqual(await lenient.getMany(["a", "b"]), new Map());
    assert.equal(await lenient.set("k", 1), false); // ignoreExc: pymemcache's default for every command
    assert.equal(await lenient.delete("k"), false);
    assert.equal(await lenient.incr("k", 1), null);
    assert.deepEqual(await lenient.setMany({ a: 1, b: 2 }), ["a", "b"]);
    assert.equal(await lenient.deleteMany(["a", "b"]), true);
    // Server-wide commands too: no server to ask.
    for (const call of [client.stats(), client.version(), client.flushAll(), client.rawCommand("version")]) {
      await assert.rejects(call, /All servers seem to be down right now/);
    }
    assert.deepEqual(await lenient.stats(), new Map());
    assert.deepEqual(await lenient.version(), new Map());
    assert.equal(await lenient.flushAll(), false);
    assert.equal(await lenient.verbosity(0), true);
  });
});
