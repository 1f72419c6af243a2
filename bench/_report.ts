/**
 * The report bench/bench.ts writes to bench/RESULTS.md: tables per
 * scenario, the memory table, and the targets.
 *
 * @module
 */

import type { Result, Scenario } from "./_common.ts";

/** Runtimes the library runs on; `python` is only pymemcache's. */
export const RUNTIMES = ["node", "deno", "bun", "python"] as const;
export type Runtime = typeof RUNTIMES[number];
/** The Node peers; pymemcache (on `python`) is a peer too. */
export const PEERS = ["memjs", "memcached", "memcache-client"];
/** Where the client and memcached run; see bench.ts. */
export type Placement = "same" | "split" | "none";

export interface Options {
  quick: boolean;
  repeats: number;
  durationMs: number;
  warmupMs: number;
  s6Ops: number;
  runtimes: Runtime[];
  clients: string[];
  scenarios: Scenario[];
  s6Peers: boolean;
  out: string;
  nodeFlags: string[];
  pin: Placement;
}

export const TITLES: Record<Scenario, string> = {
  S1: "S1 — sequential `get`, 100-byte value (ops/s; latency per call)",
  S2: "S2 — 50 concurrent `get`s, 100-byte values (ops/s)",
  S3: "S3 — 50 concurrent `set`s, 100-byte values, reply awaited (ops/s)",
  S4: "S4 — `getMany` of 100 keys per call, 100-byte values (keys/s)",
  S5: "S5 — `set` + `get` of 512 KiB values, sequential (MB/s of values moved)",
  S6: "S6 — memory over mixed operations",
  S7:
    "S7 — 50 small `get`s in flight while 512 KiB `set`s stream on the same client (gets/s; the latency of the gets started while a set streams)",
};

const ROOT = new URL("..", import.meta.url).pathname.replace(/\/$/, "");

async function capture(cmd: string, args: string[]): Promise<string | undefined> {
  try {
    const out = await new Deno.Command(cmd, { args, stdout: "piped", stderr: "piped", cwd: ROOT }).output();
    return out.success ? new TextDecoder().decode(out.stdout).trim() : undefined;
  } catch {
    return undefined;
  }
}

// ---- statistics and formatting

export const median = (xs: number[]) => {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2;
};

export function fmt(value: number, scenario: Scenario): string {
  if (scenario === "S5") return value.toFixed(value < 100 ? 1 : 0);
  return Math.round(value).toLocaleString("en-US");
}

export const mb = (bytes: number) => (bytes / 1048576).toFixed(1);

export interface Row {
  scenario: Scenario;
  runtime: Runtime;
  client: string;
  values: Result[];
  error?: string;
}

export function table(header: string[], rows: string[][]): string {
  const line = (cells: string[]) => `| ${cells.join(" | ")} |`;
  return [line(header), line(header.map((_, i) => (i < 2 ? "---" : "---:"))), ...rows.map(line)].join("\n");
}

export interface RunInfo {
  started: Date;
  seconds: number;
  versions: Record<string, string | undefined>;
  memcachedVersion: string;
  runtimes: Runtime[];
  pooled: boolean;
  placement: Placement;
}

export async function render(options: Options, rows: Map<string, Row>, info: RunInfo): Promise<string> {
  const peerVersion = async (name: string) => {
    try {
      return JSON.parse(await Deno.readTextFile(`${ROOT}/node_modules/${name}/package.json`)).version;
    } catch {
      return "?";
    }
  };
  const ours = JSON.parse(await Deno.readTextFile(`${ROOT}/deno.json`)).version;
  const commit = await capture("git", ["rev-parse", "--short", "HEAD"]);
  const dirty = await capture("git", ["status", "--porcelain", "--", "src", "transports", "mod.ts"]);
  const cpu = (await Deno.readTextFile("/proc/cpuinfo").catch(() => "")).match(/model name\s*:\s*(.*)/)?.[1] ?? "?";
  const mem = Deno.systemMemoryInfo();
  const out: string[] = [];
  out.push("# Benchmark results", "");
  out.push(
    `Written by \`deno task bench${
      Deno.args.length ? " " + Deno.args.join(" ") : ""
    }\` on ${info.started.toISOString()} ` +
      `(${
        info.seconds.toFixed(0)
      } s). Every number is the median of ${options.repeats} runs, each in a fresh process; ` +
      `“× raw” divides by the median of the raw-socket baseline on the same runtime in the same run.`,
    "",
  );
  out.push(
    `- Machine: ${cpu}, ${navigator.hardwareConcurrency} cores, ${(mem.total / 2 ** 30).toFixed(1)} GiB RAM, ` +
      `${Deno.build.os} ${Deno.osRelease()} ${Deno.build.arch}`,
    `- Runtimes: Node ${info.versions.node ?? "—"}, Deno ${info.versions.deno}, Bun ${info.versions.bun ?? "—"}`,
    `- memcached ${info.memcachedVersion} on 127.0.0.1 (\`-U 0\`${
      Deno.env.get("MEMCACHED_ARGS") ? " " + Deno.env.get("MEMCACHED_ARGS") : ""
    }), started by the benchmark`,
    `- Clients: @memkit/memcache ${ours} (${commit ?? "?"}${dirty ? ", with uncommitted core changes" : ""}; ` +
      `Client${
        info.pooled ? ", PooledClient with maxPoolSize 4 (memkit-pooled)" : "; no PooledClient in this build"
      }), ` +
      `memjs ${await peerVersion("memjs")}, memcached ${await peerVersion("memcached")}, ` +
      `memcache-client ${await peerVersion("memcache-client")}, pymemcache ${info.versions.python ?? "—"} ` +
      `(Debian's python3-pymemcache on Python ${
        info.versions.pythonRuntime ?? "?"
      }; synchronous like memcache-client: ` +
      `S1/S4/S5 only; its “× raw” is against Node's raw) — each with its default settings; ours and the peers ` +
      `wait for every reply (no noreply)`,
    `- Per scenario and run: ${options.warmupMs} ms warm-up, then ${options.durationMs} ms measured` +
      (options.quick ? " (**--quick**)" : ""),
    `- Raw baseline: commands encoded before the clock starts, the same number in flight as the clients, ` +
      `replies counted by length (not parsed or copied); \`node:net\` on Node (reading into one reused buffer, as our NodeTransport does) and Bun, \`Deno.connect\` on Deno`,
    "- floor: a minimal client on the same socket (bench/_floor.ts): one promise per request, commands " +
      "coalesced per tick, values parsed and copied out, nothing else (no validation, serde, timeouts or errors). " +
      "It is what the promise-per-request API itself costs: our client can at best approach it",
    info.placement === "same"
      ? "- CPU placement (`--pin same`, taskset): the client and memcached share core 0, so each number is the CPU " +
        "cost of the work (client + kernel + memcached) and not the VM's ~60 µs cross-core wake-ups, which made " +
        "unpinned runs vary 2× from run to run. A ratio is (memcached + kernel + raw client) ÷ (memcached + kernel + client). S7 alone runs " +
        "with memcached on core 1 (head-of-line blocking is a wait for a server working beside the client; on one " +
        "shared core the core that takes the large value answers the gets too)"
      : info.placement === "split"
      ? "- CPU placement (`--pin split`, taskset): the client on core 0, memcached on core 1"
      : "- CPU placement: left to the scheduler (`--pin none`, or no taskset)",
    "",
  );

  const ratioOf = (scenario: Scenario, runtime: Runtime, client: string): number | undefined => {
    const row = rows.get(`${scenario}|${runtime}|${client}`);
    // pymemcache (python) against Node's raw socket: the peers' table is Node's.
    const raw = rows.get(`${scenario}|${runtime === "python" ? "node" : runtime}|raw`);
    if (!row?.values.length || !raw?.values.length) return undefined;
    return median(row.values.map((r) => r.value!)) / median(raw.values.map((r) => r.value!));
  };
  const valueOf = (scenario: Scenario, runtime: Runtime, client: string): number | undefined => {
    const row = rows.get(`${scenario}|${runtime}|${client}`);
    return row?.values.length ? median(row.values.map((r) => r.value!)) : undefined;
  };

  for (const scenario of options.scenarios.filter((s) => s !== "S6")) {
    const body: string[][] = [];
    for (const row of rows.values()) {
      if (row.scenario !== scenario) continue;
      const name = row.client === "memjs" && scenario === "S4" ? "memjs (100 `get`s: no multi-get)" : row.client;
      if (!row.values.length) {
        const extra = scenario === "S1" || scenario === "S7" ? ["", ""] : scenario === "S5" ? [""] : [];
        body.push([row.runtime, name, `failed: ${row.error ?? "?"}`, "", "", ...extra]);
        continue;
      }
      const vs = row.values.map((r) => r.value!);
      const ratio = ratioOf(scenario, row.runtime, row.client);
      const cells = [
        row.runtime,
        row.error ? `${name} (${row.values.length} of ${options.repeats} runs)` : name,
        fmt(median(vs), scenario),
        `${fmt(Math.min(...vs), scenario)}–${fmt(Math.max(...vs), scenario)}`,
        ratio === undefined ? "—" : ratio.toFixed(2),
      ];
      if (scenario === "S1" || scenario === "S7") {
        cells.push(median(row.values.map((r) => r.p50!)).toFixed(0), median(row.values.map((r) => r.p99!)).toFixed(0));
      }
      if (scenario === "S5") {
        const cpu = row.values.map((r) => r.cpu).filter((c): c is number => c !== undefined);
        cells.push(cpu.length ? median(cpu).toFixed(0) : "—");
      }
      body.push(cells);
    }
    if (!body.length) continue;
    out.push(`## ${TITLES[scenario]}`, "");
    const unit = scenario === "S4" ? "keys/s" : scenario === "S5" ? "MB/s" : "ops/s";
    const extra = scenario === "S1" || scenario === "S7"
      ? ["p50 µs", "p99 µs"]
      : scenario === "S5"
      ? ["CPU µs per round"]
      : [];
    out.push(table(["Runtime", "Client", `Median ${unit}`, "Min–max", "× raw", ...extra], body), "");
    if (scenario === "S5") {
      out.push(
        "CPU µs per round: the client process's user + system time per set + get (memcached's not included).",
        "",
      );
    }
  }

  const s6 = [...rows.values()].filter((r) => r.scenario === "S6");
  if (s6.length) {
    out.push(`## ${TITLES.S6}`, "");
    out.push(
      `${options.s6Ops.toLocaleString("en-US")} operations from 50 workers over 10,000 keys (60% get, 15% set, ` +
        `10% noreply set where the client has it, 10% getMany of 10, 5% delete), after a warm-up; heap and RSS ` +
        `sampled after a full GC at the start, every quarter and the end. Growth = end − start.`,
      "",
    );
    const body = s6.map((row) => {
      const r = row.values[0];
      if (!r) return [row.runtime, row.client, `failed: ${row.error ?? "?"}`, "", "", "", "", ""];
      const heap = r.heap!, rss = r.rss!;
      return [
        row.runtime,
        row.client,
        `${(r.ops! / r.seconds!).toLocaleString("en-US", { maximumFractionDigits: 0 })}`,
        `${mb(heap[0])} → ${mb(heap.at(-1)!)}`,
        mb(heap.at(-1)! - heap[0]),
        heap.map(mb).join(", "),
        mb(rss.at(-1)! - rss[0]),
        rss.map(mb).join(", "),
      ];
    });
    out.push(
      table(
        [
          "Runtime",
          "Client",
          "ops/s",
          "Heap MB",
          "Heap growth MB",
          "Heap samples MB",
          "RSS growth MB",
          "RSS samples MB",
        ],
        body,
      ),
      "",
    );
  }

  // Targets of issue 7.
  // The floor's ratio beside each ratio target: where the floor (a bare
  // promise-per-request client) misses a goal too, the bound is the API and
  // the runtime, not this client's code.
  const checks: string[][] = [];
  const target = (what: string, got: number | undefined, goal: number, unit = "× raw", floor?: number) =>
    checks.push([
      what,
      got === undefined ? "—" : got.toFixed(2),
      `≥ ${goal}${unit === "× raw" ? "" : " " + unit}`,
      got === undefined ? "not run" : got >= goal ? "met" : "**missed**",
      floor === undefined ? "" : floor.toFixed(2),
    ]);
  const goals: [Scenario, number][] = [["S1", 0.9], ["S2", 0.9], ["S3", 0.85], ["S4", 0.6], ["S5", 0.85]];
  for (const [s, goal] of goals) {
    if (!options.scenarios.includes(s)) continue;
    target(`${s} Node: Client × raw`, ratioOf(s, "node", "memkit"), goal, "× raw", ratioOf(s, "node", "floor"));
  }
  const peerValues = (s: Scenario) =>
    [...PEERS.map((p) => valueOf(s, "node", p)), valueOf(s, "python", "pymemcache")].filter((v): v is number =>
      v !== undefined
    );
  for (const [s, goal] of [["S3", 2], ["S4", 2], ["S5", 1]] as [Scenario, number][]) {
    if (!options.scenarios.includes(s)) continue;
    const peers = peerValues(s);
    const ours = valueOf(s, "node", "memkit");
    target(`${s} Node: Client ÷ best peer`, peers.length && ours ? ours / Math.max(...peers) : undefined, goal, "×");
  }
  const cpuOf = (runtime: Runtime, client: string) => {
    const cpu = rows.get(`S5|${runtime}|${client}`)?.values.map((r) => r.cpu).filter((c) => c !== undefined);
    return cpu?.length ? median(cpu as number[]) : undefined;
  };
  const pyCpu = cpuOf("python", "pymemcache");
  const nodeCpu = cpuOf("node", "memkit");
  if (pyCpu !== undefined && nodeCpu !== undefined) {
    target("S5 Node: pymemcache's CPU per round ÷ Client's", pyCpu / nodeCpu, 1, "×");
  }
  for (const runtime of ["deno", "bun"] as Runtime[]) {
    if (!info.runtimes.includes(runtime)) continue;
    for (
      const [s, goal] of [["S1", 0.8], ["S2", 0.8], ["S3", 0.85], ["S4", 0.8], ["S5", 0.75]] as [Scenario, number][]
    ) {
      if (!options.scenarios.includes(s)) continue;
      const name = `${s} ${runtime[0].toUpperCase() + runtime.slice(1)}: Client × raw`;
      target(name, ratioOf(s, runtime, "memkit"), goal, "× raw", ratioOf(s, runtime, "floor"));
    }
  }
  // Pools never lose: PooledClient against Client, and in S7 the small gets' p99 (Client's ÷ the pool's).
  for (const runtime of info.runtimes) {
    const name = runtime[0].toUpperCase() + runtime.slice(1);
    for (const s of ["S1", "S2", "S3", "S4", "S5"] as Scenario[]) {
      const pool = valueOf(s, runtime, "memkit-pooled");
      const one = valueOf(s, runtime, "memkit");
      if (pool === undefined || one === undefined) continue;
      target(`${s} ${name}: PooledClient ÷ Client`, pool / one, 0.95, "×");
    }
    const p99 = (client: string) => {
      const row = rows.get(`S7|${runtime}|${client}`);
      return row?.values.length ? median(row.values.map((r) => r.p99!)) : undefined;
    };
    const pool = p99("memkit-pooled");
    const one = p99("memkit");
    if (pool !== undefined && one !== undefined) {
      target(`S7 ${name}: Client's get p99 ÷ the pool's`, one / pool, 1, "×");
    }
  }
  // Issue 15: the meta protocol's reads beside the classic ones, same client, same runtime.
  for (const runtime of info.runtimes) {
    for (const [s, goal] of [["S1", 0.9], ["S2", 0.9], ["S4", 1]] as [Scenario, number][]) {
      const meta = valueOf(s, runtime, "memkit-meta");
      const classic = valueOf(s, runtime, "memkit");
      if (meta === undefined || classic === undefined) continue;
      const what = s === "S4" ? "metaGetMany ÷ getMany" : "metaGet ÷ get";
      target(`${s} ${runtime[0].toUpperCase() + runtime.slice(1)}: ${what}`, meta / classic, goal, "×");
    }
  }
  for (const row of s6) {
    if (!row.client.startsWith("memkit") || !row.values[0]) continue;
    const heap = row.values[0].heap!;
    const growth = (heap.at(-1)! - heap[0]) / 1048576;
    checks.push([
      `S6 ${row.runtime}: heap growth`,
      `${growth.toFixed(1)} MB`,
      "< 5 MB",
      growth < 5 ? "met" : "**missed**",
      "",
    ]);
  }
  if (checks.length) {
    out.push("## Targets", "", table(["Target", "Measured", "Goal", "", "Floor × raw"], checks), "");
  }
  return out.join("\n");
}
