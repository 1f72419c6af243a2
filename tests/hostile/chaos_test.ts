// A chaos proxy (tests/hostile/_hostile_proxy.ts) between the clients and a real
// memcached: latency, stalls, connections cut or truncated mid-reply,
// resets; then mixed load under random faults, and memcached killed and
// restarted under load. Every call is checked against the harness
// invariants (settles within timeout + 100 ms, never another key's value, no
// error but a MemcacheError), and every acknowledged write is read back
// over an independent connection straight to memcached.
//
// Sizes: MEMKIT_CHAOS_SECONDS (default 5) of random faults, and
// MEMKIT_CHAOS_KILLS (default 3) kill/restart cycles. Seed: MEMKIT_SEED.
import assert from "node:assert/strict";
import { describe, it } from "../_support/_harness.ts";
import {
  Client,
  type ClientOptions,
  HashClient,
  MemcacheError,
  MemcacheTimeoutError,
  PooledClient,
} from "../../mod.ts";
import { delay, envInt, harnessSeed, Rng, taggedValue, withSeed } from "./_hostile.ts";
import { type ChaosProxy, faultsUnderLoad, startChaosProxy } from "./_hostile_proxy.ts";
import { Invariants, unlessStarved } from "./_hostile_ledger.ts";
import { type LoadClient, MixedLoad } from "./_hostile_load.ts";
import { haveMemcached, type MemcachedServer, startMemcached } from "../_support/_memcached.ts";

const SECONDS = envInt("MEMKIT_CHAOS_SECONDS", 5);
const KILLS = envInt("MEMKIT_CHAOS_KILLS", 3);
const TIMEOUT = 500;
const skip = haveMemcached() ? false : "memcached is not installed";

type Closable = LoadClient & { close(): Promise<void> };

/** Client, PooledClient and a one-server HashClient, all through `proxy`. */
function clientsThrough(proxy: ChaosProxy, options: ClientOptions): { name: string; client: Closable }[] {
  return [
    { name: "Client", client: new Client(proxy.spec, options) },
    { name: "PooledClient", client: new PooledClient(proxy.spec, { ...options, maxPoolSize: 4 }) },
    {
      name: "HashClient",
      client: new HashClient([proxy.spec], { ...options, retryAttempts: 1e6, retryTimeout: 0 }),
    },
  ];
}

/** Reads keys straight from memcached on a fresh connection: the ledger's independent witness. */
function witness(server: MemcachedServer) {
  return async (keys: string[]) => {
    await using direct = new Client(server.spec, { timeout: 5000, connectTimeout: 5000 });
    return await direct.getMany(keys);
  };
}

describe("chaos proxy: one fault at a time", () => {
  it("latency both ways: every call is right, every acknowledged write is on the server", async () => {
    await using server = await startMemcached();
    await using proxy = await startChaosProxy({ port: () => server.port });
    proxy.onLink = (link) => ((link.up.latency = 30), (link.down.latency = 60));
    const inv = new Invariants("latency");
    const clients = clientsThrough(proxy, { timeout: 1000, connectTimeout: 1000 });
    try {
      const calls = [];
      for (let i = 0; i < 300; i++) {
        const { name, client } = clients[i % clients.length];
        const key = `lat:${i}`;
        const value = taggedValue(key, inv.serial(), 100 + i * 10);
        calls.push(inv.write(`${name} set`, key, value, 1000, () => client.set(key, value, { noreply: false })));
      }
      await Promise.all(calls);
      const reads = [];
      for (let i = 0; i < 300; i++) {
        const { name, client } = clients[i % clients.length];
        const key = `lat:${(i * 7) % 300}`;
        reads.push(inv.call(`${name} get`, 1000, () => client.get(key), (v) =>
          inv.checkRead(key, v) ?? (
            v === null ? `${key} acknowledged but missing` : undefined
          )));
      }
      await Promise.all(reads);
    } finally {
      await Promise.all(clients.map((c) => c.client.close()));
    }
    assert.equal(await inv.verify(witness(server)), 300);
    inv.assertClean();
    assert.equal(inv.report.ok, 600);
  }, { skip });

  for (const fault of ["stall", "truncate"] as const) {
    it(`a ${fault} of the replies: calls time out within timeout + 100 ms, then the clients recover`, async () => {
      await using server = await startMemcached();
      await using proxy = await startChaosProxy({ port: () => server.port });
      const inv = new Invariants(fault);
      const clients = clientsThrough(proxy, { timeout: 300, connectTimeout: 300 });
      try {
        // Warm: every client has its connection (tried again if it timed out only because the process was starved).
        for (const { name, client } of clients) {
          const warm = await unlessStarved(
            () => inv.call(`${name} warm`, 300, () => client.set("warm", "x", { noreply: false })),
            (error) => error instanceof MemcacheTimeoutError,
          );
          assert.ok(warm.ok, `${name} could not warm up: ${(warm as { error?: unknown }).error}`);
        }
        for (const link of proxy.links()) {
          if (fault === "stall") link.down.stall();
          else link.down.truncateAfter(20); // two and a half STORED lines, then nothing
        }
        const calls = [];
        for (let i = 0; i < 60; i++) {
          const { name, client } = clients[i % clients.length];
          const key = `st:${i}`;
          const value = taggedValue(key, inv.serial(), 500);
          calls.push(inv.write(`${name} set`, key, value, 300, () => client.set(key, value, { noreply: false })));
        }
        const outcomes = await Promise.all(calls);
        assert.ok(outcomes.some((o) => !o.ok && o.error instanceof MemcacheTimeoutError), "nothing timed out");
        // New connections are clean: the clients recover by themselves.
        for (const { name, client } of clients) {
          const key = `st:after:${name}`;
          const value = taggedValue(key, inv.serial(), 10);
          const o = await unlessStarved(
            () => inv.write(`${name} set after`, key, value, 300, () => client.set(key, value, { noreply: false })),
            (error) => error instanceof MemcacheTimeoutError,
          );
          assert.ok(o.ok, `${name} did not recover: ${(o as { error?: unknown }).error}`);
        }
      } finally {
        await Promise.all(clients.map((c) => c.client.close()));
      }
      await inv.verify(witness(server));
      inv.assertClean();
    }, { skip });
  }

  for (const reset of [false, true]) {
    it(
      `a connection ${
        reset ? "reset" : "cut"
      } in the middle of a large reply: a MemcacheError, promptly; then recovery`,
      async () => {
        await using server = await startMemcached();
        await using proxy = await startChaosProxy({ port: () => server.port });
        const inv = new Invariants(reset ? "reset" : "cut");
        const clients = clientsThrough(proxy, { timeout: 2000, connectTimeout: 2000 });
        try {
          await using direct = new Client(server.spec);
          const big = taggedValue("big", 1, 300_000);
          inv.issued("big", 1);
          await direct.set("big", big, { noreply: false });
          for (const { name, client } of clients) {
            await client.set("warm", "x", { noreply: false });
            for (const link of proxy.links()) link.down.cutAfter(20_000, { reset });
            const o = await inv.call(`${name} get big`, 2000, () => client.get("big"), (v) => inv.checkRead("big", v));
            assert.ok(!o.ok && o.error instanceof MemcacheError, `${name}: ${(o as { error?: unknown }).error}`);
            // Seen as a close, not left to the timeout.
            assert.ok(!(o.error instanceof MemcacheTimeoutError), `${name}: ${o.error}`);
            const again = await inv.call(`${name} get big again`, 2000, () => client.get("big"), (v) => {
              return v === big ? undefined : `get big after the cut gave ${String(v).slice(0, 40)}`;
            });
            assert.ok(again.ok, `${name} did not recover`);
          }
        } finally {
          await Promise.all(clients.map((c) => c.client.close()));
        }
        inv.assertClean();
      },
      { skip },
    );
  }
});

describe("chaos proxy: random faults under mixed load", () => {
  const seed = harnessSeed(13_004);
  it(
    `${SECONDS} s of latency, stalls, cuts, truncations and resets on random connections (seed ${seed})`,
    () =>
      withSeed(seed, async () => {
        await using server = await startMemcached();
        await using proxy = await startChaosProxy({ port: () => server.port });
        const rng = new Rng(seed);
        const inv = new Invariants("chaos");
        const clients = clientsThrough(proxy, { timeout: TIMEOUT, connectTimeout: TIMEOUT });
        const load = new MixedLoad({ clients, inv, rng, timeout: TIMEOUT, prefix: `chaos${seed}` });
        let faults;
        try {
          faults = await faultsUnderLoad(proxy, rng, SECONDS, load, () => inv.verify(witness(server)));
        } finally {
          await Promise.all(clients.map((c) => c.client.close()));
        }
        await inv.drain(TIMEOUT + 200);
        const checked = await inv.verify(witness(server));
        console.log(`# ${inv.summary()}; faults ${JSON.stringify(faults)}; ${checked} acknowledged keys read back`);
        inv.assertClean();
        assert.ok(inv.report.ok > 100, "hardly any call succeeded");
      }),
    { skip },
  );
});

describe("chaos: memcached killed and restarted under load", () => {
  const seed = harnessSeed(13_005);
  it(`${KILLS} kill/restart cycles through the proxy (seed ${seed})`, () =>
    withSeed(seed, async () => {
      await using server = await startMemcached();
      await using proxy = await startChaosProxy({ port: () => server.port });
      const rng = new Rng(seed);
      const inv = new Invariants("kill/restart");
      const clients = clientsThrough(proxy, { timeout: TIMEOUT, connectTimeout: TIMEOUT });
      const load = new MixedLoad({ clients, inv, rng, timeout: TIMEOUT, prefix: `kill${seed}` });
      let checked = 0;
      load.start();
      try {
        for (let cycle = 0; cycle < KILLS; cycle++) {
          await delay(700 + rng.int(500));
          await load.pause();
          checked += await inv.verify(witness(server));
          load.resume();
          inv.outageBegins();
          await server.stop();
          await delay(100 + rng.int(400)); // calls fail meanwhile: connection refused
          await server.restart();
          inv.outageEnds();
        }
        await delay(700);
        await load.pause();
        checked += await inv.verify(witness(server));
      } finally {
        await load.stop();
        await Promise.all(clients.map((c) => c.client.close()));
      }
      await inv.drain(TIMEOUT + 200);
      console.log(`# ${inv.summary()}; ${checked} acknowledged keys read back`);
      inv.assertClean();
      assert.ok(checked > 0, "no write was acknowledged");
    }), { skip });
});
