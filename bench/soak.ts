/**
 * Soak: `deno task soak` (not in CI). Mixed load from Client, PooledClient
 * and HashClient through the chaos proxy of tests/hostile/_hostile_proxy.ts (random
 * latency, stalls, cuts, truncations and resets), with memcached killed and
 * restarted every SOAK_KILL_EVERY seconds; before each kill every
 * acknowledged write is read back straight from memcached. Prints calls,
 * errors by class, late/hung/wrong/lost counts, event-loop stalls and the
 * heap at start and end; exits 1 if any invariant broke.
 *
 * The proxy and memcached run in a child process (this file with
 * `--serve`), so the event loop the clients are timed on carries nothing
 * but the clients and the load.
 *
 *   SOAK_SECONDS=600      how long (default 10 minutes)
 *   SOAK_KILL_EVERY=20    seconds between kills of memcached
 *   SOAK_TIMEOUT=500      the clients' timeout (ms)
 *   SOAK_LANES=16         concurrent callers
 *   MEMKIT_SEED=n|random  the seed (default 13013)
 */
import { spawn } from "node:child_process";
import process from "node:process";
import { createInterface } from "node:readline";
import { Client, HashClient, PooledClient } from "../mod.ts";
import { delay, envInt, harnessSeed, Rng } from "../tests/hostile/_hostile.ts";
import { injectFault, startChaosProxy } from "../tests/hostile/_hostile_proxy.ts";
import { Invariants } from "../tests/hostile/_hostile_ledger.ts";
import { type LoadClient, MixedLoad, watchLoop } from "../tests/hostile/_hostile_load.ts";
import { startMemcached } from "../tests/_support/_memcached.ts";

const SECONDS = envInt("SOAK_SECONDS", 600);
const KILL_EVERY = envInt("SOAK_KILL_EVERY", 20);
const TIMEOUT = envInt("SOAK_TIMEOUT", 500);
const LANES = envInt("SOAK_LANES", 16);

if (process.argv.includes("--serve")) await serve(Number(process.argv[process.argv.indexOf("--serve") + 1]));
else await soak(harnessSeed(13_013));

/**
 * The child: memcached and the chaos proxy, faults on random connections
 * every 100-500 ms. Lines on stdin: `kill` (stop memcached, wait, restart;
 * answers `restarted`), `stop` (answers the fault counts, then exits).
 */
async function serve(seed: number): Promise<void> {
  await using server = await startMemcached();
  await using proxy = await startChaosProxy({ port: () => server.port });
  const rng = new Rng(seed ^ 0x5eed);
  const say = (message: unknown) => process.stdout.write(JSON.stringify(message) + "\n");
  const faults = { latency: 0, stall: 0, cut: 0, truncate: 0, reset: 0, kills: 0 };
  const timers = new Set<ReturnType<typeof setTimeout>>();
  proxy.onLink = (link) => {
    if (rng.chance(0.3)) link.down.latency = rng.int(80);
  };
  let stopping = false;
  const lines = createInterface({ input: process.stdin });
  const commands = (async () => {
    for await (const line of lines) {
      if (line === "kill") {
        await server.stop();
        await delay(200 + rng.int(800));
        await server.restart();
        faults.kills++;
        say({ restarted: server.spec });
      } else if (line === "stop") {
        stopping = true;
        break;
      }
    }
    stopping = true;
  })();
  say({ proxy: proxy.spec, server: server.spec });
  while (!stopping) {
    await delay(100 + rng.int(400));
    injectFault(proxy, rng, faults, timers, { maxStallMs: 1000, resetCuts: true });
  }
  for (const timer of timers) clearTimeout(timer);
  lines.close();
  await commands;
  say({ faults });
}

/** The parent: the clients, the load and the ledger. */
async function soak(seed: number): Promise<void> {
  const runtime = typeof (globalThis as { Deno?: unknown }).Deno === "object" ? "deno" : "node";
  console.log(
    `# soak: ${SECONDS} s, memcached killed every ${KILL_EVERY} s, timeout ${TIMEOUT} ms, ${LANES} lanes, ` +
      `seed ${seed}, ${runtime}`,
  );
  const self = new URL(import.meta.url).pathname;
  const args = runtime === "deno"
    ? ["run", "--allow-all", self, "--serve", String(seed)]
    : [self, "--serve", String(seed)];
  const child = spawn(process.execPath, args, { stdio: ["pipe", "pipe", "inherit"] });
  const exited = new Promise<void>((resolve) => child.once("close", () => resolve()));
  const replies = createInterface({ input: child.stdout! })[Symbol.asyncIterator]();
  const next = async () => {
    const line = await replies.next();
    if (line.done) throw new Error("the soak's server process ended");
    return JSON.parse(line.value);
  };
  const { proxy, server } = await next() as { proxy: string; server: string };

  const rng = new Rng(seed);
  const inv = new Invariants("soak");
  const options = { timeout: TIMEOUT, connectTimeout: TIMEOUT };
  const clients: { name: string; client: LoadClient & { close(): Promise<void> } }[] = [
    { name: "Client", client: new Client(proxy, options) },
    { name: "PooledClient", client: new PooledClient(proxy, { ...options, maxPoolSize: 4 }) },
    { name: "HashClient", client: new HashClient([proxy], { ...options, retryAttempts: 1e6, retryTimeout: 0 }) },
  ];
  const load = new MixedLoad({ clients, inv, rng, timeout: TIMEOUT, lanes: LANES, prefix: `soak${seed}` });
  let serverSpec = server;
  const witness = async (keys: string[]) => {
    await using direct = new Client(serverSpec, { timeout: 5000, connectTimeout: 5000 });
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
  let verified = 0;
  let nextKill = started + KILL_EVERY * 1000;
  let nextReport = started + 30_000;
  while (Date.now() - started < SECONDS * 1000) {
    await delay(200);
    if (Date.now() >= nextKill) {
      await load.pause();
      verified += await inv.verify(witness);
      load.resume();
      inv.outageBegins();
      child.stdin!.write("kill\n");
      serverSpec = ((await next()) as { restarted: string }).restarted;
      inv.outageEnds();
      nextKill = Date.now() + KILL_EVERY * 1000;
    }
    if (Date.now() >= nextReport) {
      console.log(`# ${((Date.now() - started) / 1000).toFixed(0)} s: ${inv.summary()}`);
      nextReport += 30_000;
    }
  }
  await load.pause();
  verified += await inv.verify(witness);
  await load.stop();
  await inv.drain(TIMEOUT + 200);
  const worstStall = loop.stop();
  const elapsed = (Date.now() - started) / 1000;
  for (const { client } of clients) await client.close();
  const heapEnd = heapMB();
  child.stdin!.write("stop\n");
  const { faults } = await next() as { faults: Record<string, number> };
  child.stdin!.end();
  await exited;

  const r = inv.report;
  const stalls = loop.stalls.slice(0, 10).map(([t, ms, cpu]) =>
    `+${(t / 1000).toFixed(1)} s ${ms.toFixed(0)} ms (${cpu.toFixed(0)} ms CPU)`
  );
  const starved = loop.stalls.filter(([, ms, cpu]) => cpu < ms / 2).length;
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
    `event loop     ${loop.stalls.length} stalls over 100 ms (worst ${
      worstStall.toFixed(0)
    } ms; in ${starved} of them ` +
      `the process had under half the CPU time: the OS ran other work)` +
      (stalls.length ? `: ${stalls.join(", ")}` : ""),
  );
  for (const v of inv.violations.slice(0, 20)) console.log(`  ${v}`);
  console.log("first errors of each class:");
  for (const [name, messages] of Object.entries(inv.samples)) {
    for (const m of messages) console.log(`  ${name}: ${m}`);
  }
  if (r.late + r.hung + r.wrong + r.lost + r.foreign > 0) process.exitCode = 1;
}

/** Heap in use after a full GC where the runtime lets us ask for one (`--v8-flags=--expose-gc`). */
function heapMB(): number {
  (globalThis as { gc?: () => void }).gc?.();
  return process.memoryUsage().heapUsed / 1e6;
}
