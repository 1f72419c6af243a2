/**
 * `deno task bench`: starts a memcached of its own on a free loopback port,
 * measures every client on every runtime against that runtime's raw-socket
 * baseline, repeats, and writes the medians to bench/RESULTS.md.
 *
 * Each (runtime, client, repeat) runs in a fresh child process
 * (bench/runner.ts), so no client's garbage or JIT state affects another.
 * Node 20 cannot run TypeScript: the runner is bundled with the pinned
 * esbuild into bench/.out/ first (peers stay external, loaded from
 * node_modules).
 *
 * Options (flag or environment variable):
 *   --quick                 short run (3 × 300 ms, S6 with 200,000 ops)
 *   --repeats N             BENCH_REPEATS       (default 5; 3 with --quick)
 *   --duration MS           BENCH_DURATION_MS   per scenario and repeat (default 800)
 *   --warmup MS             BENCH_WARMUP_MS     before each measurement (default 1000: Bun's JIT
 *                                               needs about that long to reach its top tier)
 *   --s6-ops N              BENCH_S6_OPS        (default 1,000,000)
 *   --runtimes a,b          BENCH_RUNTIMES      node,deno,bun,python (python: pymemcache, Debian's
 *                                               python3-pymemcache under /usr/bin/python3)
 *   --clients a,b           BENCH_CLIENTS       raw,floor,memkit,memkit-pooled,memkit-meta,memjs,memcached,memcache-client,
 *                                               pymemcache
 *                                               (memkit-meta: Client's metaGet in S1/S2 and metaGetMany in S4,
 *                                               beside memkit's get and getMany)
 *   --scenarios a,b         BENCH_SCENARIOS     S1,...,S7 (S7: Client and PooledClient only)
 *   --s6-peers              BENCH_S6_PEERS=1    also run S6 for the peers (slow)
 *   --out PATH              BENCH_OUT           (default bench/RESULTS.md; "-" to write nothing)
 *   --pin same|split|none   BENCH_PIN           CPU placement, see `Placement` (default same)
 *   BENCH_NODE_FLAGS        extra node flags for the children, e.g. "--cpu-prof --cpu-prof-dir=bench/.out/prof"
 *   MEMCACHED_BIN, MEMCACHED_ARGS   which memcached, extra arguments
 *
 * @module
 */

import type { Result, RunConfig, Scenario } from "./_common.ts";
import { type Options, PEERS, type Placement, render, type Row, type Runtime, RUNTIMES } from "./_report.ts";

const ROOT = new URL("..", import.meta.url).pathname.replace(/\/$/, "");
const OUT_DIR = `${ROOT}/bench/.out`;
const ALL_CLIENTS = [
  "raw",
  "floor",
  "memkit",
  "memkit-pooled",
  "memkit-meta",
  "memjs",
  "memcached",
  "memcache-client",
  "pymemcache",
];
const ALL_SCENARIOS: Scenario[] = ["S1", "S2", "S3", "S4", "S5", "S6", "S7"];
/** S7 (small gets beside streaming large sets) is for our two clients: Client against PooledClient. */
const S7_CLIENTS = ["memkit", "memkit-pooled"];
/**
 * Where S7 runs under `--pin same`: memcached on a core of its own. S7 is
 * about head-of-line blocking, the wait of small requests behind a large
 * value on the way to a server that works in parallel with the client. On
 * one shared core there is no such wait to avoid: the core that streams
 * the 512 KiB value is the one that answers the gets, whichever connection
 * they are on, and a second connection only adds a memcached thread that
 * competes for it (measured: the pool's gets' p99 0.6-1× a Client's there,
 * 1.3-1.9× better with memcached on its own core).
 */
const S7_PLACEMENT: Placement = "split";
/** pymemcache is synchronous (one request in flight), as memcache-client: the sequential scenarios. */
const PYMEMCACHE_SCENARIOS: Scenario[] = ["S1", "S4", "S5"];
/** Debian's python3-pymemcache is for the system Python, not a pyenv shim's. */
const PYTHON = "/usr/bin/python3";
/** The meta protocol's reads (metaGet, metaGetMany) against the classic ones: the read scenarios. */
const META_SCENARIOS: Scenario[] = ["S1", "S2", "S4"];

// ---- options

function parseOptions(args: string[]): Options {
  const flags = new Map<string, string>();
  for (let i = 0; i < args.length; i++) {
    const arg = args[i];
    if (arg === "--help" || arg === "-h") {
      console.log(
        "usage: deno task bench [--quick] [--repeats N] [--duration MS] [--warmup MS] [--s6-ops N]\n" +
          "       [--runtimes node,deno,bun,python] [--clients raw,memkit,...] [--scenarios S1,...] [--s6-peers] [--out PATH|-]",
      );
      Deno.exit(0);
    }
    if (!arg.startsWith("--")) throw new Error(`unexpected argument ${arg}`);
    const eq = arg.indexOf("=");
    if (eq !== -1) flags.set(arg.slice(2, eq), arg.slice(eq + 1));
    else if (["quick", "s6-peers"].includes(arg.slice(2))) flags.set(arg.slice(2), "1");
    else flags.set(arg.slice(2), args[++i] ?? "");
  }
  const known = [
    "pin",
    "quick",
    "repeats",
    "duration",
    "warmup",
    "s6-ops",
    "runtimes",
    "clients",
    "scenarios",
    "s6-peers",
    "out",
  ];
  for (const name of flags.keys()) if (!known.includes(name)) throw new Error(`unknown option --${name}`);
  const env = (name: string) => Deno.env.get(name) || undefined;
  const quick = flags.has("quick") || env("BENCH_QUICK") === "1";
  const int = (flag: string, name: string, fallback: number, min: number) => {
    const text = flags.get(flag) ?? env(name);
    if (text === undefined) return fallback;
    const n = Number(text.replaceAll("_", ""));
    if (!Number.isInteger(n) || n < min) throw new Error(`--${flag} must be an integer ≥ ${min}`);
    return n;
  };
  const list = <T extends string>(flag: string, name: string, all: readonly T[]) => {
    const text = flags.get(flag) ?? env(name);
    if (text === undefined) return [...all];
    const items = text.split(",").map((s) => s.trim()).filter(Boolean) as T[];
    for (const item of items) if (!all.includes(item)) throw new Error(`--${flag}: unknown ${item}`);
    return items;
  };
  return {
    quick,
    repeats: int("repeats", "BENCH_REPEATS", quick ? 3 : 5, 1),
    durationMs: int("duration", "BENCH_DURATION_MS", quick ? 300 : 800, 10),
    warmupMs: int("warmup", "BENCH_WARMUP_MS", quick ? 300 : 1000, 0),
    s6Ops: int("s6-ops", "BENCH_S6_OPS", quick ? 200_000 : 1_000_000, 1000),
    runtimes: list("runtimes", "BENCH_RUNTIMES", RUNTIMES),
    clients: list("clients", "BENCH_CLIENTS", ALL_CLIENTS),
    scenarios: list("scenarios", "BENCH_SCENARIOS", ALL_SCENARIOS),
    s6Peers: flags.has("s6-peers") || env("BENCH_S6_PEERS") === "1",
    out: flags.get("out") ?? env("BENCH_OUT") ?? `${ROOT}/bench/RESULTS.md`,
    nodeFlags: (env("BENCH_NODE_FLAGS") ?? "").split(/\s+/).filter(Boolean),
    pin: list("pin", "BENCH_PIN", ["same", "split", "none"] as const)[0] ?? "same",
  };
}

// ---- processes

async function capture(cmd: string, args: string[]): Promise<string | undefined> {
  try {
    const out = await new Deno.Command(cmd, { args, stdout: "piped", stderr: "piped", cwd: ROOT }).output();
    return out.success ? new TextDecoder().decode(out.stdout).trim() : undefined;
  } catch {
    return undefined;
  }
}

function freePort(): number {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const port = (listener.addr as Deno.NetAddr).port;
  listener.close();
  return port;
}

/** The memcached this run owns: exactly this process is killed at the end. */
interface Memcached {
  port: number;
  pid: number;
  stop(): Promise<void>;
}

async function startMemcached(): Promise<Memcached> {
  const bin = Deno.env.get("MEMCACHED_BIN") ?? "memcached";
  const extra = (Deno.env.get("MEMCACHED_ARGS") ?? "").split(/\s+/).filter(Boolean);
  for (let attempt = 0; attempt < 3; attempt++) {
    const port = freePort();
    const args = [
      "-U",
      "0",
      "-l",
      "127.0.0.1",
      "-p",
      String(port),
      ...(Deno.uid() === 0 ? ["-u", "root"] : []),
      ...extra,
    ];
    const proc = new Deno.Command(bin, { args, stdin: "null", stdout: "null", stderr: "piped" }).spawn();
    let stderr = "";
    const readErr = (async () => {
      for await (const chunk of proc.stderr.pipeThrough(new TextDecoderStream())) stderr += chunk;
    })();
    let exited = false;
    const status = proc.status.then((s) => {
      exited = true;
      return s;
    });
    const stop = async () => {
      if (!exited) {
        try {
          proc.kill("SIGTERM");
        } catch { /* already gone */ }
        const killer = setTimeout(() => {
          try {
            proc.kill("SIGKILL");
          } catch { /* already gone */ }
        }, 2000);
        await status;
        clearTimeout(killer);
      }
      await readErr;
    };
    for (let waited = 0; waited < 5000 && !exited; waited += 50) {
      try {
        const conn = await Deno.connect({ hostname: "127.0.0.1", port });
        conn.close();
        return { port, pid: proc.pid, stop };
      } catch {
        await new Promise((r) => setTimeout(r, 50));
      }
    }
    await stop();
    if (!exited) throw new Error(`memcached did not start on port ${port}`);
    if (!/bind|address already in use/i.test(stderr)) throw new Error(`memcached exited: ${stderr.trim()}`);
  }
  throw new Error("memcached: no free port after 3 attempts");
}

/** Stores the 1,000 keys S1, S2 and S4 read (flags 0, 100 bytes), pipelined on one socket. */
async function preload(port: number): Promise<void> {
  const { getKey, GET_KEYS, VALUE } = await import("./_common.ts");
  const conn = await Deno.connect({ hostname: "127.0.0.1", port });
  try {
    const parts: Uint8Array[] = [];
    const enc = new TextEncoder();
    for (let i = 0; i < GET_KEYS; i++) {
      parts.push(enc.encode(`set ${getKey(i)} 0 0 ${VALUE.length}\r\n`), VALUE, enc.encode("\r\n"));
    }
    const all = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
    parts.reduce((off, p) => (all.set(p, off), off + p.length), 0);
    for (let off = 0; off < all.length;) off += await conn.write(all.subarray(off));
    const want = "STORED\r\n".repeat(GET_KEYS);
    let got = "";
    const buf = new Uint8Array(65536);
    const dec = new TextDecoder();
    while (got.length < want.length) {
      const n = await conn.read(buf);
      if (n === null) break;
      got += dec.decode(buf.subarray(0, n));
    }
    if (got !== want) throw new Error(`preload: unexpected replies ${JSON.stringify(got.slice(0, 80))}`);
  } finally {
    conn.close();
  }
}

async function bundleForNode(): Promise<void> {
  await Deno.mkdir(OUT_DIR, { recursive: true });
  const out = await new Deno.Command(`${ROOT}/node_modules/.bin/esbuild`, {
    args: [
      "./bench/runner.ts",
      "--bundle",
      "--platform=node",
      "--format=esm",
      "--target=node20",
      "--packages=external",
      "--sourcemap",
      `--outfile=${OUT_DIR}/runner.mjs`,
      "--log-level=warning",
      "--log-override:import-is-undefined=silent",
    ],
    cwd: ROOT,
    stdout: "inherit",
    stderr: "inherit",
  }).output();
  if (!out.success) throw new Error("esbuild failed to bundle bench/runner.ts for Node");
}

let current: Deno.ChildProcess | undefined;

/**
 * Where the client and memcached run. On a small VM (the issue's: 2 vCPUs)
 * a wake-up across cores costs ~60 µs, more than a whole loopback round
 * trip on one core (~9 µs), and where the scheduler puts the two processes
 * changes from run to run: unpinned, the same code measured 150k or 310k
 * gets/s. `same` (the default, with taskset and ≥ 2 cores) runs both on
 * core 0, so every number is the CPU cost of the work: client + kernel +
 * memcached, stable to a few percent. `split` gives each its own core
 * (memcached on 1): closer to a remote server, noisier. `none` leaves it
 * to the scheduler.
 */

async function effectivePlacement(options: Options): Promise<Placement> {
  if (options.pin === "none" || navigator.hardwareConcurrency < 2) return "none";
  return (await capture("taskset", ["-c", "0", "true"])) === undefined ? "none" : options.pin;
}

/** Pins every thread of memcached; returns the command prefix that pins a child. */
async function place(placement: Placement, memcachedPid: number): Promise<string[]> {
  if (placement === "none") return [];
  const cpu = placement === "same" ? "0" : "1";
  if ((await capture("taskset", ["-a", "-p", "-c", cpu, String(memcachedPid)])) === undefined) {
    throw new Error("taskset could not pin memcached");
  }
  return ["taskset", "-c", "0"];
}

function command(runtime: Runtime, options: Options, config: RunConfig): string[] {
  const json = JSON.stringify(config);
  switch (runtime) {
    case "node":
      return ["node", "--expose-gc", ...options.nodeFlags, `${OUT_DIR}/runner.mjs`, json];
    case "deno":
      return [Deno.execPath(), "run", "--allow-all", "--v8-flags=--expose-gc", "bench/runner.ts", json];
    case "bun":
      return [`${ROOT}/node_modules/.bin/bun`, "bench/runner.ts", json];
    case "python":
      return [PYTHON, "bench/runner_pymemcache.py", json];
  }
}

/** Runs one child with a hard time limit; returns its results or why it failed. */
async function runChild(
  runtime: Runtime,
  options: Options,
  config: RunConfig,
  budgetMs: number,
  prefix: string[],
): Promise<{ results: Result[]; error?: string }> {
  const [cmd, ...args] = [...prefix, ...command(runtime, options, config)];
  const child = new Deno.Command(cmd, { args, cwd: ROOT, stdin: "null", stdout: "piped", stderr: "piped" }).spawn();
  current = child;
  let timedOut = false;
  const timer = setTimeout(() => {
    timedOut = true;
    try {
      child.kill("SIGKILL");
    } catch { /* exited meanwhile */ }
  }, budgetMs);
  const out = await child.output();
  clearTimeout(timer);
  current = undefined;
  const results: Result[] = [];
  for (const line of new TextDecoder().decode(out.stdout).split("\n")) {
    if (line.startsWith("RESULT ")) results.push(JSON.parse(line.slice(7)));
  }
  if (out.success && results.length === config.scenarios.length) return { results };
  const stderr = new TextDecoder().decode(out.stderr).trim().split("\n");
  const why = timedOut
    ? `killed after ${Math.round(budgetMs / 1000)} s`
    : stderr.find((l) => /Error|error:/.test(l)) ?? stderr.at(-1) ?? `exit code ${out.code}`;
  return { results, error: why.trim().slice(0, 160) };
}

// ---- main

async function main(): Promise<void> {
  const options = parseOptions(Deno.args);
  const started = new Date();
  const t0 = performance.now();

  // Which runtimes exist here.
  const versions: Record<string, string | undefined> = {
    node: await capture("node", ["--version"]),
    deno: `${Deno.version.deno} (V8 ${Deno.version.v8})`,
    bun: await capture(`${ROOT}/node_modules/.bin/bun`, ["--version"]),
    python: await capture(PYTHON, ["-c", "import pymemcache; print(pymemcache.__version__)"]),
    pythonRuntime: await capture(PYTHON, ["-c", "import platform; print(platform.python_version())"]),
  };
  const runtimes = options.runtimes.filter((r) => {
    if (versions[r] === undefined) console.error(`skipping ${r}: not found`);
    return versions[r] !== undefined;
  });
  if (runtimes.includes("node")) await bundleForNode();
  // PooledClient only if the library has one yet.
  const pooled = await Deno.stat(`${ROOT}/src/clients/pooled_client.ts`).then(() => true, () => false);
  // pymemcache is the python "runtime"'s only client; the Node peers run on Node only.
  const clientsFor = (runtime: Runtime) =>
    runtime === "python"
      ? options.clients.filter((c) => c === "pymemcache")
      : options.clients.filter((c) =>
        c !== "pymemcache" && (runtime === "node" || !PEERS.includes(c)) && (c !== "memkit-pooled" || pooled)
      );
  const scenariosFor = (client: string) =>
    options.scenarios.filter((s) =>
      s !== "S6" && (s !== "S7" || S7_CLIENTS.includes(client)) &&
      (client !== "pymemcache" || PYMEMCACHE_SCENARIOS.includes(s)) &&
      (client !== "memkit-meta" || META_SCENARIOS.includes(s))
    );

  const placement = await effectivePlacement(options);
  const server = await startMemcached();
  const stopAll = async () => {
    try {
      current?.kill("SIGKILL");
    } catch { /* gone */ }
    await server.stop();
  };
  const onSignal = () => {
    console.error("\ninterrupted: stopping memcached");
    stopAll().finally(() => Deno.exit(130));
  };
  Deno.addSignalListener("SIGINT", onSignal);
  Deno.addSignalListener("SIGTERM", onSignal);

  const rows = new Map<string, Row>();
  const rowOf = (scenario: Scenario, runtime: Runtime, client: string) => {
    const id = `${scenario}|${runtime}|${client}`;
    if (!rows.has(id)) rows.set(id, { scenario, runtime, client, values: [] });
    return rows.get(id)!;
  };
  let memcachedVersion = "?";
  try {
    await preload(server.port);
    memcachedVersion =
      (await capture(Deno.env.get("MEMCACHED_BIN") ?? "memcached", ["-V"]))?.replace(/^memcached /, "") ??
        "?";
    const base = {
      port: server.port,
      warmupMs: options.warmupMs,
      durationMs: options.durationMs,
      concurrency: 50,
      manyKeys: 100,
      bigBytes: 512 * 1024,
      s6Ops: options.s6Ops,
      s6WarmupOps: Math.min(50_000, Math.round(options.s6Ops / 10)),
    };
    const perScenarioMs = options.warmupMs + options.durationMs;
    const prefix = await place(placement, server.pid);
    for (let repeat = 1; repeat <= options.repeats; repeat++) {
      for (const runtime of runtimes) {
        for (const client of clientsFor(runtime)) {
          const all = scenariosFor(client);
          // S7 runs in a child of its own, with memcached on a core of its own (see S7_PLACEMENT).
          for (const scenarios of [all.filter((s) => s !== "S7"), all.filter((s) => s === "S7")]) {
            if (scenarios.length === 0) continue;
            const s7 = scenarios[0] === "S7" && placement === "same";
            if (s7) await place(S7_PLACEMENT, server.pid);
            const label = `[${repeat}/${options.repeats}] ${runtime} ${client} ${scenarios.join(",")}`;
            const budget = 30_000 + scenarios.length * perScenarioMs * 4;
            const { results, error } = await runChild(
              runtime,
              options,
              { ...base, runtime, client, scenarios },
              budget,
              prefix,
            ).finally(() => s7 ? place(placement, server.pid) : undefined);
            for (const r of results) rowOf(r.scenario, runtime, client).values.push(r);
            if (error) {
              for (const s of scenarios.slice(results.length)) rowOf(s, runtime, client).error = error;
            }
            console.error(
              `${label}${error ? `  FAILED: ${error}` : ""}  (${((performance.now() - t0) / 1000).toFixed(0)} s)`,
            );
          }
        }
      }
    }
    if (options.scenarios.includes("S6")) {
      for (const runtime of runtimes) {
        for (const client of clientsFor(runtime)) {
          if (
            ["raw", "floor", "memkit-pooled", "memkit-meta", "pymemcache"].includes(client) ||
            (PEERS.includes(client) && !options.s6Peers)
          ) {
            continue;
          }
          const budget = 60_000 + options.s6Ops / 5;
          const { results, error } = await runChild(
            runtime,
            options,
            {
              ...base,
              runtime,
              client,
              scenarios: ["S6"],
            },
            budget,
            prefix,
          );
          const row = rowOf("S6", runtime, client);
          row.values.push(...results);
          if (error) row.error = error;
          console.error(
            `S6 ${runtime} ${client}${error ? `  FAILED: ${error}` : ""}  (${
              ((performance.now() - t0) / 1000).toFixed(0)
            } s)`,
          );
        }
      }
    }
  } finally {
    Deno.removeSignalListener("SIGINT", onSignal);
    Deno.removeSignalListener("SIGTERM", onSignal);
    await stopAll();
  }

  const seconds = (performance.now() - t0) / 1000;
  const report = await render(options, rows, {
    started,
    seconds,
    versions,
    memcachedVersion,
    runtimes,
    pooled,
    placement,
  });
  console.log(report);
  if (options.out !== "-") {
    await Deno.writeTextFile(options.out, report);
    console.error(`wrote ${options.out}`);
  }
}

await main();
