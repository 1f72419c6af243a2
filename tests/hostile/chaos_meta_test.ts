// The chaos proxy (tests/hostile/_hostile_proxy.ts) in front of a real memcached,
// under a mixed load of getOrSet (with recacheWithin and leases, keys shared
// by every lane and client), metaGet, metaGetMany and metaSet
// (tests/hostile/_hostile_meta_load.ts) alongside the text commands' load: random
// latency, stalls, cuts, truncations and resets, then memcached killed and
// restarted. The ledger: late 0, hung 0, wrong 0 (every value names its key,
// a getOrSet loader is only ever asked for its own key), lost 0 (every
// acknowledged metaSet is on the server), no error but a MemcacheError.
//
// Knobs: MEMKIT_CHAOS_SECONDS (default 3 here), MEMKIT_CHAOS_KILLS (default
// 2 here), MEMKIT_SEED (a number, or "random"); a failure prints the seed.
import assert from "node:assert/strict";
import { describe, it } from "../_support/_harness.ts";
import { Client, type ClientOptions, HashClient, PooledClient } from "../../mod.ts";
import { delay, envInt, harnessSeed, Rng, withSeed } from "./_hostile.ts";
import { type ChaosProxy, faultsUnderLoad, startChaosProxy } from "./_hostile_proxy.ts";
import { Invariants } from "./_hostile_ledger.ts";
import { type LoadClient, MixedLoad } from "./_hostile_load.ts";
import { MetaLoad, type MetaLoadClient } from "./_hostile_meta_load.ts";
import { haveMemcached, type MemcachedServer, startMemcached } from "../_support/_memcached.ts";

const SECONDS = envInt("MEMKIT_CHAOS_SECONDS", 3);
const KILLS = envInt("MEMKIT_CHAOS_KILLS", 2);
const TIMEOUT = 500;
const skip = haveMemcached() ? false : "memcached is not installed";

type Closable = LoadClient & MetaLoadClient & { close(): Promise<void> };

function clientsThrough(proxy: ChaosProxy, options: ClientOptions): { name: string; client: Closable }[] {
  return [
    { name: "Client", client: new Client(proxy.spec, options) as Closable },
    { name: "PooledClient", client: new PooledClient(proxy.spec, { ...options, maxPoolSize: 4 }) as Closable },
    {
      name: "HashClient",
      client: new HashClient([proxy.spec], { ...options, retryAttempts: 1e6, retryTimeout: 0 }) as Closable,
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

/** Both loads on the same clients and ledger; pause/resume/stop them together. */
function loads(clients: { name: string; client: Closable }[], inv: Invariants, rng: Rng, prefix: string) {
  const meta = new MetaLoad({ clients, inv, rng, timeout: TIMEOUT, prefix: `${prefix}m` });
  const text = new MixedLoad({ clients, inv, rng, timeout: TIMEOUT, lanes: 3, prefix: `${prefix}t` });
  return {
    meta,
    start: () => (meta.start(), text.start()),
    pause: () => Promise.all([meta.pause(), text.pause()]),
    resume: () => (meta.resume(), text.resume()),
    stop: () => Promise.all([meta.stop(), text.stop()]),
  };
}

describe("chaos proxy: getOrSet and meta commands under random faults", () => {
  const seed = harnessSeed(16_001);
  it(`${SECONDS} s of latency, stalls, cuts, truncations and resets (seed ${seed})`, () =>
    withSeed(seed, async () => {
      await using server = await startMemcached();
      await using proxy = await startChaosProxy({ port: () => server.port });
      const rng = new Rng(seed);
      const inv = new Invariants("chaos/meta");
      const clients = clientsThrough(proxy, { timeout: TIMEOUT, connectTimeout: TIMEOUT });
      const load = loads(clients, inv, rng, `cm${seed}`);
      let faults;
      try {
        faults = await faultsUnderLoad(proxy, rng, SECONDS, load, () => inv.verify(witness(server)));
      } finally {
        await Promise.all(clients.map((c) => c.client.close()));
      }
      await inv.drain(2 * TIMEOUT + 300);
      const checked = await inv.verify(witness(server));
      console.log(
        `# ${inv.summary()}; faults ${JSON.stringify(faults)}; ${checked} acknowledged keys read back; ` +
          `${load.meta.loads} loader runs`,
      );
      inv.assertClean();
      assert.equal(load.meta.crossedLoads, 0);
      assert.ok(inv.report.ok > 100, "hardly any call succeeded");
      assert.ok(load.meta.loads > 0, "no getOrSet ever loaded");
    }), { skip });
});

describe("chaos: memcached killed and restarted under getOrSet and meta load", () => {
  const seed = harnessSeed(16_002);
  it(`${KILLS} kill/restart cycles through the proxy (seed ${seed})`, () =>
    withSeed(seed, async () => {
      await using server = await startMemcached();
      await using proxy = await startChaosProxy({ port: () => server.port });
      const rng = new Rng(seed);
      const inv = new Invariants("kill/restart meta");
      const clients = clientsThrough(proxy, { timeout: TIMEOUT, connectTimeout: TIMEOUT });
      const load = loads(clients, inv, rng, `km${seed}`);
      let checked = 0;
      load.start();
      try {
        for (let cycle = 0; cycle < KILLS; cycle++) {
          await delay(600 + rng.int(400));
          await load.pause();
          checked += await inv.verify(witness(server));
          load.resume();
          inv.outageBegins();
          await server.stop();
          await delay(100 + rng.int(400)); // calls fail meanwhile; getOrSet goes on without memcached
          await server.restart();
          inv.outageEnds();
        }
        await delay(600);
        await load.pause();
        checked += await inv.verify(witness(server));
      } finally {
        await load.stop();
        await Promise.all(clients.map((c) => c.client.close()));
      }
      await inv.drain(2 * TIMEOUT + 300);
      console.log(`# ${inv.summary()}; ${checked} acknowledged keys read back; ${load.meta.loads} loader runs`);
      console.log(`# error samples: ${JSON.stringify(inv.samples)}`);
      inv.assertClean();
      assert.equal(load.meta.crossedLoads, 0);
      assert.ok(checked > 0, "no write was acknowledged");
    }), { skip });
});
