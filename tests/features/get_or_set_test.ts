/**
 * Stampede-protected reads (issue 16): getOrSet and invalidate against a
 * real memcached, counting loader runs, on every client class, in one
 * process and in four. Loaders that must still be running when callers
 * settle wait on a gate the test opens, so no assertion depends on timing.
 */
import assert from "node:assert/strict";
import { assertLoadedOnce, runFleet } from "../_support/_fleet.ts";
import { describe, it } from "../_support/_harness.ts";
import {
  Client,
  type Commands,
  HashClient,
  MemcachedCache,
  MemcacheIllegalInputError,
  PooledClient,
  RetryingClient,
} from "../../mod.ts";
import { freePort, sleep, startFakeServer, startMemcached } from "../_support/_memcached.ts";
import type { GetOrSetOptions, StampedeErrorEvent } from "../../src/clients/_get_or_set.ts";
import { MemcacheConnectionError } from "../../src/errors.ts";

type Make = (spec: string) => Commands;
const CLASSES: [string, Make][] = [
  ["Client", (spec) => new Client(spec)],
  ["PooledClient", (spec) => new PooledClient(spec, { maxPoolSize: 4 })],
  ["HashClient", (spec) => new HashClient([spec])],
  ["RetryingClient", (spec) => new RetryingClient(new Client(spec))],
];

/** A promise the test resolves: loaders wait on it to be "still running" for as long as the test wants. */
function gate(): { wait: Promise<void>; open: () => void } {
  let open!: () => void;
  const wait = new Promise<void>((resolve) => (open = resolve));
  return { wait, open };
}

/** A loader that counts its runs, waits for `until` (if any), then returns `value`. */
function counting<T>(value: T, until?: Promise<void>) {
  const loader = async (_key: string) => {
    loader.runs++;
    await (until ?? sleep(20));
    return value;
  };
  loader.runs = 0;
  return loader;
}

/** The server's cmd_get, cmd_set and get_misses (mg counts as a get). */
async function counters(client: Client): Promise<{ gets: number; sets: number }> {
  const s = await client.stats();
  return { gets: Number(s.cmd_get), sets: Number(s.cmd_set) };
}

/** The background refreshes a test waits for before ending (sanitizers: nothing may outlive it). */
function background() {
  const pending: Promise<unknown>[] = [];
  return {
    waitUntil: (p: Promise<unknown>) => void pending.push(p),
    started: () => pending.length,
    settled: () => Promise.all(pending),
  };
}

async function closeAll(clients: Commands[]): Promise<void> {
  await Promise.all(clients.map((c) => c.close()));
}

let unique = 0;
const freshKey = (name: string) => `gos:${name}:${Date.now()}:${unique++}`;

describe("getOrSet", () => {
  for (const [name, make] of CLASSES) {
    it(`${name}: 1,000 concurrent calls of a cold key run the loader once and send one mg and one ms`, async () => {
      await using server = await startMemcached();
      await using admin = new Client(server.spec);
      const client = make(server.spec);
      try {
        const key = freshKey(name);
        const loader = counting({ answer: 42 });
        await client.version(); // connected (HashClient, PooledClient: their first connection)
        const before = await counters(admin);
        const values = await Promise.all(Array.from({ length: 1000 }, () => client.getOrSet(key, loader, { ttl: 60 })));
        const after = await counters(admin);
        assert.equal(loader.runs, 1);
        assert.equal(values.length, 1000);
        for (const v of values) assert.deepEqual(v, { answer: 42 });
        assert.equal(after.gets - before.gets, 1, "one mg on the wire");
        assert.equal(after.sets - before.sets, 1, "one ms on the wire");
        // Stored: the next call is a hit, without the loader.
        assert.deepEqual(await client.getOrSet(key, loader, { ttl: 60 }), { answer: 42 });
        assert.equal(loader.runs, 1);
        assert.deepEqual(await admin.get(key), { answer: 42 });
      } finally {
        await client.close();
      }
    });

    it(`${name}: a throwing loader rejects its callers with its error and releases the lease at once`, async () => {
      await using server = await startMemcached();
      const a = make(server.spec);
      const b = make(server.spec);
      try {
        const key = freshKey(name);
        const boom = new Error("database down");
        let runs = 0;
        const failing = async () => {
          runs++;
          await sleep(10);
          throw boom;
        };
        const results = await Promise.allSettled(
          Array.from({ length: 50 }, () => a.getOrSet(key, failing, { ttl: 60, lease: { ttl: 30 } })),
        );
        assert.equal(runs, 1);
        for (const r of results) {
          assert.equal(r.status, "rejected");
          assert.equal((r as PromiseRejectedResult).reason, boom);
        }
        // The lease lives 30 s; the next caller, on another client, wins at once all the same.
        const loader = counting("second");
        assert.equal(await b.getOrSet(key, loader, { ttl: 60, lease: { ttl: 30, wait: 30_000 } }), "second");
        assert.equal(loader.runs, 1);
      } finally {
        await closeAll([a, b]);
      }
    });
  }

  it("4 processes × 250 concurrent callers: the loader runs once in all, every caller gets its value", async () => {
    await using server = await startMemcached();
    await using admin = new Client(server.spec);
    const key = freshKey("fleet");
    const counter = freshKey("fleet-runs");
    await admin.set(counter, 0, { noreply: false });
    await assertLoadedOnce(await runFleet(server.spec, key, counter), (k) => admin.get(k), key, counter);
  });

  it("recache window: one caller fleet-wide refreshes in the background, all get the current value meanwhile", async () => {
    await using server = await startMemcached();
    const clients = Array.from({ length: 4 }, () => new Client(server.spec));
    const bg = background();
    try {
      const key = freshKey("recache");
      // Stored with 2 s to live: inside a 30 s recache window from the start.
      assert.equal(await clients[0].getOrSet(key, () => "v1", { ttl: 2 }), "v1");
      const g = gate();
      const loader = counting("v2", g.wait);
      const options: GetOrSetOptions = { ttl: 60, recacheWithin: 30, waitUntil: bg.waitUntil };
      const values = await Promise.all(
        clients.flatMap((c) => Array.from({ length: 50 }, () => c.getOrSet(key, loader, options))),
      );
      // Every caller settled while the refresh is still running (its loader waits on the gate).
      assert.deepEqual(new Set(values), new Set(["v1"]));
      assert.equal(loader.runs, 1);
      assert.equal(bg.started(), 1, "one refresh, fleet-wide");
      g.open();
      await bg.settled();
      assert.equal(loader.runs, 1);
      assert.equal(await clients[1].get(key), "v2");
      const { ttl } = await clients[1].metaGet(key, { returnTtl: true });
      assert.ok(ttl! > 30, `stored with the new ttl, ${ttl} s left`);
    } finally {
      await closeAll(clients);
    }
  });

  it("invalidate: callers get the stale value at once while exactly one recomputes; then the new value", async () => {
    await using server = await startMemcached();
    const clients = Array.from({ length: 4 }, () => new Client(server.spec));
    const bg = background();
    try {
      const key = freshKey("stale");
      assert.equal(await clients[0].getOrSet(key, () => "old", { ttl: 600 }), "old");
      assert.equal(await clients[0].invalidate(key, { staleFor: 30 }), true);
      const marked = await clients[0].metaGet(key, { returnTtl: true, noLruBump: true });
      assert.equal(marked.stale, true);
      assert.ok(marked.ttl! <= 30);
      // metaGet above took the win (W); hand it back as getOrSet's winners would, by marking it stale again.
      await clients[0].invalidate(key, { staleFor: 30 });
      const g = gate();
      const loader = counting("new", g.wait);
      const values = await Promise.all(
        clients.flatMap((c) =>
          Array.from({ length: 50 }, () => c.getOrSet(key, loader, { ttl: 600, waitUntil: bg.waitUntil }))
        ),
      );
      assert.deepEqual(new Set(values), new Set(["old"]));
      assert.equal(loader.runs, 1);
      assert.equal(bg.started(), 1, "one recompute, fleet-wide");
      g.open();
      await bg.settled();
      const fresh = await clients[2].metaGet(key, { returnTtl: true });
      assert.equal(fresh.value, "new");
      assert.equal(fresh.stale, false);
      assert.ok(fresh.ttl! > 30);
      assert.equal(await clients[3].getOrSet(key, loader, { ttl: 600 }), "new");
      assert.equal(loader.runs, 1);
      assert.equal(await clients[0].invalidate(freshKey("absent")), false);
    } finally {
      await closeAll(clients);
    }
  });

  it("a winner that dies holds the key up at most lease.ttl, then exactly one new winner loads", async () => {
    await using server = await startMemcached();
    await using dead = new Client(server.spec);
    const clients = [new Client(server.spec), new PooledClient(server.spec)];
    try {
      const key = freshKey("dead");
      const won = await dead.metaGet(key, { vivify: 1 }); // wins, and never stores
      assert.equal(won.win, true);
      const loader = counting("after the lease");
      const options = { ttl: 60, lease: { ttl: 1, wait: 10_000 } };
      const values = await Promise.all(
        clients.flatMap((c) => Array.from({ length: 20 }, () => c.getOrSet(key, loader, options))),
      );
      assert.deepEqual(new Set(values), new Set(["after the lease"]));
      assert.equal(loader.runs, 1);
    } finally {
      await closeAll(clients);
    }
  });

  it("a loader slower than lease.wait: waiters load themselves (unstored), the winner's value is stored", async () => {
    await using server = await startMemcached();
    await using a = new Client(server.spec);
    await using b = new Client(server.spec);
    const key = freshKey("slow");
    const g = gate();
    const slow = counting("winner's", g.wait);
    const first = a.getOrSet(key, slow, { ttl: 60, lease: { ttl: 30, wait: 50 } });
    while (slow.runs === 0) await sleep(5); // a has won
    const impatient = counting("waiter's");
    assert.equal(await b.getOrSet(key, impatient, { ttl: 60, lease: { ttl: 30, wait: 50 } }), "waiter's");
    assert.equal(impatient.runs, 1);
    g.open();
    assert.equal(await first, "winner's");
    assert.equal(await b.get(key), "winner's");
  });

  it("memcached down: the loader's value is returned and the error reported to onError", async () => {
    const port = await freePort(); // nothing listens here
    for (const client of [new Client(`127.0.0.1:${port}`), new RetryingClient(new PooledClient(`127.0.0.1:${port}`))]) {
      try {
        const events: [unknown, StampedeErrorEvent][] = [];
        const loader = counting("from the database");
        const values = await Promise.all(Array.from({ length: 10 }, () =>
          client.getOrSet("k", loader, {
            ttl: 60,
            onError: (error, event) => events.push([error, event]),
          })));
        assert.deepEqual(new Set(values), new Set(["from the database"]));
        assert.equal(loader.runs, 1);
        assert.equal(events.length, 1);
        assert.ok(events[0][0] instanceof MemcacheConnectionError, String(events[0][0]));
        assert.deepEqual(events[0][1], { key: "k", stage: "get" });
      } finally {
        await client.close();
      }
    }
  });

  it("an item the serde cannot read is reported, loaded and replaced", async () => {
    await using server = await startMemcached();
    await using client = new Client(server.spec);
    const key = freshKey("unreadable");
    await client.set(key, "{not json", { flags: 32, noreply: false }); // flags 32: JSON
    const events: StampedeErrorEvent[] = [];
    const loader = counting({ fixed: true });
    const options = { ttl: 60, onError: (_: unknown, event: StampedeErrorEvent) => events.push(event) };
    assert.deepEqual(await client.getOrSet(key, loader, options), { fixed: true });
    assert.deepEqual(events, [{ key, stage: "get" }]);
    assert.deepEqual(await client.get(key), { fixed: true });
    assert.deepEqual(await client.getOrSet(key, loader, options), { fixed: true });
    assert.equal(loader.runs, 1);
  });

  it("a loader returning undefined: returned, not stored, lease released", async () => {
    await using server = await startMemcached();
    await using a = new Client(server.spec);
    await using b = new Client(server.spec);
    const key = freshKey("undefined");
    const nothing = counting(undefined);
    assert.equal(await a.getOrSet(key, nothing, { ttl: 60, lease: { ttl: 30 } }), undefined);
    assert.equal(nothing.runs, 1);
    assert.equal((await a.metaGet(key)).hit, false, "nothing stored, the lease's item gone");
    const loader = counting(null);
    assert.equal(await b.getOrSet(key, loader, { ttl: 60, lease: { ttl: 30, wait: 30_000 } }), null);
    assert.equal(loader.runs, 1);
    assert.equal(await b.getOrSet(key, loader, { ttl: 60 }), null, "null is a value: stored and read back");
    assert.equal(loader.runs, 1);
  });

  it("RetryingClient: a retried request never runs the loader again", async () => {
    await using server = await startMemcached();
    await using inner = new Client(server.spec);
    let setFailures = 1;
    // Delegates to a real client; its first metaSet fails as a lost connection would.
    const flaky = new Proxy(inner, {
      get(target, name) {
        const value = Reflect.get(target, name);
        if (name === "metaSet") {
          return (...args: Parameters<Client["metaSet"]>) =>
            setFailures-- > 0 ? Promise.reject(new MemcacheConnectionError("refused")) : target.metaSet(...args);
        }
        return typeof value === "function" ? value.bind(target) : value;
      },
    });
    const retrying = new RetryingClient(flaky, { attempts: 2, retryDelay: 0 });
    const key = freshKey("retry");
    const loader = counting("once");
    const errors: unknown[] = [];
    const options = { ttl: 60, onError: (e: unknown) => errors.push(e) };
    assert.equal(await retrying.getOrSet(key, loader, options), "once");
    assert.equal(loader.runs, 1);
    assert.equal(setFailures, -1, "the ms was sent twice");
    assert.deepEqual(errors, []);
    assert.equal(await inner.get(key), "once");
  });

  it("PooledClient holds no connection while the loader runs", async () => {
    await using server = await startMemcached();
    // One connection, never waited for: a call while it is taken fails at once.
    await using pooled = new PooledClient(server.spec, { maxPoolSize: 1, poolBlocking: false });
    const key = freshKey("pool");
    const g = gate();
    const loader = counting("loaded", g.wait);
    const pending = pooled.getOrSet(key, loader, { ttl: 60 });
    while (loader.runs === 0) await sleep(5);
    assert.equal(await pooled.set(`${key}:other`, "x", { noreply: false }), true, "the connection is free");
    assert.equal(await pooled.get(`${key}:other`), "x");
    g.open();
    assert.equal(await pending, "loaded");
  });

  it("lease false: each client loads on a miss (no fleet-wide win), still once per client", async () => {
    await using server = await startMemcached();
    const clients = [new Client(server.spec), new Client(server.spec)];
    try {
      const key = freshKey("nolease");
      const g = gate();
      const loader = counting("v", g.wait);
      const all = Promise.all(
        clients.flatMap((c) => Array.from({ length: 10 }, () => c.getOrSet(key, loader, { ttl: 60, lease: false }))),
      );
      while (loader.runs < 2) await sleep(5);
      g.open();
      assert.deepEqual(new Set(await all), new Set(["v"]));
      assert.equal(loader.runs, 2);
    } finally {
      await closeAll(clients);
    }
  });

  it("HashClient over two servers: each key's server arbitrates; the loader runs once per key across clients", async () => {
    await using s1 = await startMemcached();
    await using s2 = await startMemcached();
    const clients = [new HashClient([s1.spec, s2.spec]), new HashClient([s1.spec, s2.spec])];
    const direct = new Map([[s1.spec, new Client(s1.spec)], [s2.spec, new Client(s2.spec)]]);
    try {
      const keys = Array.from({ length: 8 }, (_, i) => freshKey(`ring${i}`));
      const runs = new Map<string, number>();
      const loader = async (key: string) => {
        runs.set(key, (runs.get(key) ?? 0) + 1);
        await sleep(30);
        return `value of ${key}`;
      };
      const values = await Promise.all(
        clients.flatMap((c) =>
          keys.flatMap((k) => Array.from({ length: 10 }, () => c.getOrSet(k, loader, { ttl: 60 })))
        ),
      );
      assert.equal(values.length, 160);
      for (const k of keys) {
        assert.equal(runs.get(k), 1, k);
        const home = clients[0].serverFor(k)!;
        assert.equal(await direct.get(home)!.get(k), `value of ${k}`);
      }
      assert.ok(new Set(keys.map((k) => clients[0].serverFor(k))).size === 2, "the keys span both servers");
    } finally {
      await closeAll([...clients, ...direct.values()]);
    }
  });

  it("MemcachedCache.getOrSet: timeout as the cache's, one loader run, integers round-trip", async () => {
    await using server = await startMemcached();
    await using cache = new MemcachedCache([server.spec], { keyPrefix: "app:" });
    await using raw = new Client(server.spec);
    const loader = counting(-7);
    const values = await Promise.all(Array.from({ length: 100 }, () => cache.getOrSet("count", loader, 120)));
    assert.deepEqual(new Set(values), new Set([-7]));
    assert.equal(loader.runs, 1);
    assert.equal(await cache.get("count"), -7);
    const { ttl } = await raw.metaGet("app:count", { returnTtl: true });
    assert.ok(ttl! > 100 && ttl! <= 120, `ttl ${ttl}`);
    assert.equal(await cache.getOrSet("count", loader), -7);
    assert.equal(loader.runs, 1);
    await assert.rejects(cache.getOrSet("bad key", loader), MemcacheIllegalInputError);
  });

  it("bad input fails with MemcacheIllegalInputError before any I/O", async () => {
    const port = await freePort(); // nothing listens: I/O would fail with a connection error instead
    const clients = CLASSES.map(([, make]) => make(`127.0.0.1:${port}`));
    try {
      const ok = () => 1;
      const bad: [string, unknown, unknown, unknown][] = [
        ["loader not a function", "k", "not a function", { ttl: 1 }],
        ["no options", "k", ok, undefined],
        ["ttl missing", "k", ok, {}],
        ["ttl negative", "k", ok, { ttl: -1 }],
        ["ttl fractional", "k", ok, { ttl: 1.5 }],
        ["recacheWithin 0", "k", ok, { ttl: 1, recacheWithin: 0 }],
        ["recacheWithin fractional", "k", ok, { ttl: 1, recacheWithin: 0.5 }],
        ["lease.ttl negative", "k", ok, { ttl: 1, lease: { ttl: -5 } }],
        ["lease.ttl fractional", "k", ok, { ttl: 1, lease: { ttl: 2.5 } }],
        ["lease.wait negative", "k", ok, { ttl: 1, lease: { wait: -1 } }],
        ["lease not an object", "k", ok, { ttl: 1, lease: 5 }],
        ["unknown option", "k", ok, { ttl: 1, expire: 5 }],
        ["onError not a function", "k", ok, { ttl: 1, onError: "log" }],
        ["key with a space", "a b", ok, { ttl: 1 }],
        ["key not a string", 5, ok, { ttl: 1 }],
      ];
      for (const client of clients) {
        for (const [what, key, loader, options] of bad) {
          await assert.rejects(
            // deno-lint-ignore no-explicit-any
            (client.getOrSet as any)(key, loader, options),
            MemcacheIllegalInputError,
            what,
          );
        }
        for (const staleFor of [-1, 1.5, 0, "5"]) {
          // deno-lint-ignore no-explicit-any
          await assert.rejects(client.invalidate("k", { staleFor } as any), MemcacheIllegalInputError);
        }
      }
    } finally {
      await closeAll(clients);
    }
  });

  it("concurrent calls for different keys, or after a call settled, do not share", async () => {
    await using server = await startMemcached();
    await using client = new Client(server.spec);
    const a = counting("a");
    const b = counting("b");
    const [ka, kb] = [freshKey("a"), freshKey("b")];
    assert.deepEqual(
      await Promise.all([client.getOrSet(ka, a, { ttl: 60 }), client.getOrSet(kb, b, { ttl: 60 })]),
      ["a", "b"],
    );
    assert.equal(a.runs + b.runs, 2);
    await client.delete(ka, { noreply: false });
    assert.equal(await client.getOrSet(ka, a, { ttl: 60 }), "a");
    assert.equal(a.runs, 2, "a settled call's flight is gone: a new miss loads again");
  });
});

describe("get coalescing (Client)", () => {
  it("1,000 concurrent gets of one key send one get; every caller gets its own value object", async () => {
    await using server = await startMemcached();
    await using client = new Client(server.spec);
    const [json, bytes] = [freshKey("json"), freshKey("bytes")];
    await client.set(json, { n: [1, 2] }, { noreply: false });
    await client.set(bytes, new Uint8Array([1, 2, 3]), { noreply: false });
    const before = await counters(client);
    const objects = await Promise.all(Array.from({ length: 1000 }, () => client.get(json)));
    const arrays = await Promise.all(Array.from({ length: 1000 }, () => client.get(bytes)));
    const after = await counters(client);
    assert.equal(after.gets - before.gets, 2, "one get per key on the wire");
    for (const o of objects) assert.deepEqual(o, { n: [1, 2] });
    for (const a of arrays) assert.deepEqual(a, new Uint8Array([1, 2, 3]));
    assert.equal(new Set(objects).size, 1000, "no two callers share an object");
    assert.equal(new Set(arrays).size, 1000);
    arrays[0][0] = 99;
    objects[0].n.push(3);
    assert.equal(arrays[1][0], 1);
    assert.deepEqual(objects[1], { n: [1, 2] });
  });

  it("a get after another command does not join a get before it: it sees a set in between", async () => {
    await using server = await startMemcached();
    await using client = new Client(server.spec);
    const key = freshKey("order");
    await client.set(key, "old", { noreply: false });
    const before = await counters(client);
    const [first, , second, third] = await Promise.all([
      client.get(key),
      client.set(key, "new", { noreply: false }),
      client.get(key),
      client.get(key), // joins the second
    ]);
    const after = await counters(client);
    assert.deepEqual([first, second, third], ["old", "new", "new"]);
    assert.equal(after.gets - before.gets, 2);
  });

  it("each caller gets its own default on a miss; other keys and other commands are not joined", async () => {
    await using server = await startMemcached();
    await using client = new Client(server.spec);
    const key = freshKey("miss");
    const before = await counters(client);
    const results = await Promise.all([
      client.get(key, "a"),
      client.get(key, "b"),
      client.get(key),
      client.gets(key, "c"),
      client.get(key, "d"),
    ]);
    const after = await counters(client);
    assert.deepEqual(results, ["a", "b", null, ["c", null], "d"]);
    assert.equal(after.gets - before.gets, 3, "get ×3 joined, gets on its own, then a new get");
  });

  it("a get whose request failed with an error reply is not joined later: the next get sends its own", async () => {
    let gets = 0;
    await using fake = await startFakeServer((socket, text) => {
      for (const line of text.split("\r\n")) {
        if (!line.startsWith("get ")) continue;
        gets++;
        socket.write(gets === 1 ? "SERVER_ERROR busy\r\n" : "VALUE k 16 2\r\nok\r\nEND\r\n");
      }
    });
    await using client = new Client(fake.spec);
    const [a, b] = await Promise.allSettled([client.get("k"), client.get("k")]);
    assert.equal(a.status, "rejected");
    assert.deepEqual(b, { status: "fulfilled", value: "ok" }, "the joiner sent its own get");
    assert.equal(await client.get("k"), "ok");
    assert.equal(gets, 3);
  });
});
