/**
 * Soak: `deno task soak` (not in CI). Mixed load from Client, PooledClient
 * and HashClient through the chaos proxy of tests/_hostile.ts (random
 * latency, stalls, cuts, truncations and resets), with memcached killed and
 * restarted every SOAK_KILL_EVERY seconds; before each kill every
 * acknowledged write is read back straight from memcached. Prints calls,
 * errors by class, late/hung/wrong/lost counts and the heap at start and end;
 * exits 1 if any invariant broke.
 *
 *   SOAK_SECONDS=600      how long (default 10 minutes)
 *   SOAK_KILL_EVERY=20    seconds between kills of memcached
 *   SOAK_TIMEOUT=500      the clients' timeout (ms)
 *   SOAK_LANES=16         concurrent callers
 *   MEMKIT_SEED=n|random  the seed (default 13013)
 */
import process from "node:process";
import { Client, HashClient, PooledClient } from "../mod.ts";
import {
  delay,
  envInt,
  harnessSeed,
  Invariants,
  type LoadClient,
  MixedLoad,
  Rng,
  startChaosProxy,
  watchLoop,
} from "../tests/_hostile.ts";
import { startMemcached } from "../tests/_memcached.ts";

const SECONDS = envInt("SOAK_SECONDS", 600);
const KILL_EVERY = envInt("SOAK_KILL_EVERY", 20);
const TIMEOUT = envInt("SOAK_TIMEOUT", 500);
const LANES = envInt("SOAK_LANES", 16);
const seed = harnessSeed(13_013);

/** Heap in use after a full GC where the runtime lets us ask for one (`--v8-flags=--expose-gc`). */
function heapMB(): number {
  (globalThis as { gc?: () => void }).gc?.();
  return process.memoryUsage().heapUsed / 1e6;
}

const runtime = typeof (globalThis as { Deno?: unknown }).Deno === "object" ? "deno" : "node";
console.log(
  `# soak: ${SECONDS} s, memcached killed every ${KILL_EVERY} s, timeout ${TIMEOUT} ms, ${LANES} lanes, ` +
    `seed ${seed}, ${runtime}`,
);

await using server = await startMemcached();
await using proxy = await startChaosProxy({ port: () => server.port });
const rng = new Rng(seed);
const inv = new Invariants("soak");
const options = { timeout: TIMEOUT, connectTimeout: TIMEOUT };
const clients: { name: string; client: LoadClient & { close(): Promise<void> } }[] = [
  { name: "Client", client: new Client(proxy.spec, options) },
  { name: "PooledClient", client: new PooledClient(proxy.spec, { ...options, maxPoolSize: 4 }) },
  { name: "HashClient", client: new HashClient([proxy.spec], { ...options, retryAttempts: 1e6, retryTimeout: 0 }) },
];
const load = new MixedLoad({ clients, inv, rng, timeout: TIMEOUT, lanes: LANES, prefix: `soak${seed}` });
const witness = async (keys: string[]) => {
  await using direct = new Client(server.spec, { timeout: 5000, connectTimeout: 5000 });
  return await direct.getMany(keys);
};

// Warm up, then measure the heap the load starts from (paused: a full GC holds the loop).
load.start();
await delay(2000);
await load.pause();
const heapStart = heapMB();
load.resume();
const loop = watchLoop();
const started = Date.now();
const faults = { latency: 0, stall: 0, cut: 0, truncate: 0, reset: 0, kills: 0 };
let verified = 0;
const timers = new Set<ReturnType<typeof setTimeout>>();
proxy.onLink = (link) => {
  if (rng.chance(0.3)) link.down.latency = rng.int(80);
};

let nextKill = started + KILL_EVERY * 1000;
let nextReport = started + 30_000;
while (Date.now() - started < SECONDS * 1000) {
  await delay(100 + rng.int(400));
  const links = proxy.links();
  if (links.length > 0) {
    const link = rng.pick(links);
    const dir = rng.chance(0.8) ? link.down : link.up;
    const roll = rng.int(5);
    if (roll === 0) (dir.latency = rng.int(150), faults.latency++);
    else if (roll === 1) {
      dir.stall();
      faults.stall++;
      const timer = setTimeout(() => (timers.delete(timer), dir.resume()), 100 + rng.int(900));
      timers.add(timer);
    } else if (roll === 2) (dir.cutAfter(rng.int(5000), { reset: rng.chance(0.5) }), faults.cut++);
    else if (roll === 3) (dir.truncateAfter(rng.int(5000)), faults.truncate++);
    else (link.reset(), faults.reset++);
  }
  if (Date.now() >= nextKill) {
    await load.pause();
    verified += await inv.verify(witness);
    load.resume();
    inv.outageBegins();
    await server.stop();
    await delay(200 + rng.int(800));
    await server.restart();
    inv.outageEnds();
    faults.kills++;
    nextKill = Date.now() + KILL_EVERY * 1000;
  }
  if (Date.now() >= nextReport) {
    const s = ((Date.now() - started) / 1000).toFixed(0);
    console.log(`# ${s} s: ${inv.summary()}`);
    nextReport += 30_000;
  }
}
await load.pause();
verified += await inv.verify(witness);
for (const timer of timers) clearTimeout(timer);
await load.stop();
await inv.drain(TIMEOUT + 200);
const worstStall = loop.stop();
const elapsed = (Date.now() - started) / 1000;
for (const { client } of clients) await client.close();
const heapEnd = heapMB();

const r = inv.report;
console.log(`\n# soak result after ${elapsed.toFixed(0)} s (${runtime}, seed ${seed})`);
console.log(`calls          ${r.calls} (${(r.calls / elapsed).toFixed(0)}/s), ${r.ok} ok`);
console.log(`errors         ${Object.entries(r.errors).map(([k, v]) => `${k} ${v}`).join(", ") || "none"}`);
console.log(`late           ${r.late}   (settled after timeout + 100 ms; slowest ${r.maxMs.toFixed(0)} ms)`);
console.log(`hung           ${r.hung}`);
console.log(`wrong          ${r.wrong}`);
console.log(`lost           ${r.lost}   (of ${verified} acknowledged writes read back)`);
console.log(`foreign errors ${r.foreign}`);
console.log(`faults         ${JSON.stringify(faults)}`);
console.log(`heap           ${heapStart.toFixed(1)} MB at start, ${heapEnd.toFixed(1)} MB at end`);
console.log(
  `event loop     ${loop.stalls.length} stalls over 100 ms (worst ${worstStall.toFixed(0)} ms)` +
    (loop.stalls.length
      ? `: ${loop.stalls.slice(0, 10).map(([t, ms]) => `+${(t / 1000).toFixed(1)} s ${ms.toFixed(0)} ms`).join(", ")}`
      : ""),
);
for (const v of inv.violations.slice(0, 20)) console.log(`  ${v}`);
console.log("first errors of each class:");
for (const [name, messages] of Object.entries(inv.samples)) {
  for (const m of messages) console.log(`  ${name}: ${m}`);
}
const broken = r.late + r.hung + r.wrong + r.lost + r.foreign;
if (broken > 0) process.exitCode = 1;
