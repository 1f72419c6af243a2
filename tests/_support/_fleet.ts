/**
 * The many-process getOrSet test's parent side: spawns processes of
 * tests/_support/_get_or_set_child.ts on the runtime running the test, each
 * with `callers` concurrent getOrSet calls of one key against `spec`, lets
 * them go at once, and collects what each reports. Used against memcached
 * (tests/features/get_or_set_test.ts) and through memcached's proxy
 * (tests/interop/proxy_test.ts).
 */
import { spawn } from "node:child_process";
import process from "node:process";

/** What one process reports: its loader runs, the values its callers got, how many, and their errors. */
export interface FleetReport {
  runs: number;
  values: unknown[];
  count: number;
  errors: string[];
}

/** The exit codes and reports of every process. */
export interface FleetResult {
  codes: (number | null)[];
  reports: FleetReport[];
}

/**
 * Runs `processes` children × `callers` getOrSet calls of `key` (a loader
 * taking `loadMs`, counting its runs at `counter`), started together.
 * Children still running when it fails are killed.
 */
export async function runFleet(
  spec: string,
  key: string,
  counter: string,
  { processes = 4, callers = 250, loadMs = 300 } = {},
): Promise<FleetResult> {
  const isDeno = typeof process.versions.deno === "string";
  const child = new URL(isDeno ? "./_get_or_set_child.ts" : "./_get_or_set_child.js", import.meta.url).pathname;
  const command = isDeno ? [process.execPath, "run", "--allow-all", child] : [process.execPath, child];
  const children = Array.from({ length: processes }, () => {
    const proc = spawn(command[0], [...command.slice(1), spec, key, counter, String(callers), String(loadMs)], {
      stdio: ["pipe", "pipe", "inherit"],
    });
    let out = "";
    const ready = new Promise<void>((resolve) => {
      proc.stdout!.on("data", (d) => {
        out += d;
        if (out.startsWith("ready\n")) resolve();
      });
    });
    const exited = new Promise<number | null>((resolve) => proc.once("close", resolve));
    return { proc, ready, exited, output: () => out.slice("ready\n".length).trim() };
  });
  try {
    await Promise.all(children.map((c) => c.ready));
    for (const c of children) c.proc.stdin!.end("go\n");
    const codes = await Promise.all(children.map((c) => c.exited));
    return { codes, reports: children.map((c) => JSON.parse(c.output() || "null") as FleetReport) };
  } finally {
    for (const c of children) if (c.proc.exitCode === null) c.proc.kill("SIGKILL");
    await Promise.all(children.map((c) => c.exited));
  }
}
