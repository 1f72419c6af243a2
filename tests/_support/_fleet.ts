/**
 * The many-process getOrSet test's parent side: spawns processes of
 * tests/_support/_get_or_set_child.ts on the runtime running the test, each
 * with `callers` concurrent getOrSet calls of one key against `spec`, lets
 * them go at once, and collects what each reports. Used against memcached
 * (tests/features/get_or_set_test.ts) and through memcached's proxy
 * (tests/interop/proxy_test.ts).
 */
import assert from "node:assert/strict";
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

/**
 * What a fleet of `processes` × `callers` must show when the lease holds:
 * every process exits 0, the loader ran once in all (its counter at
 * `counter` is 1, and one report counts the run), every caller got that
 * one value, with no error, and it is what `key` holds. `read` gets a key
 * from the server (a client of the test's own).
 */
export async function assertLoadedOnce(
  { codes, reports }: FleetResult,
  read: (key: string) => Promise<unknown>,
  key: string,
  counter: string,
  { processes = 4, callers = 250 } = {},
): Promise<void> {
  assert.deepEqual(codes, Array(processes).fill(0));
  assert.equal(Number(await read(counter)), 1, "the loader ran once across the processes");
  assert.equal(reports.reduce((n, r) => n + r.runs, 0), 1);
  const values = new Set(reports.flatMap((r) => r.values));
  assert.equal(values.size, 1, `every caller got the same value: ${[...values]}`);
  assert.equal(reports.reduce((n, r) => n + r.count, 0), processes * callers);
  assert.deepEqual(reports.flatMap((r) => r.errors), []);
  assert.equal(await read(key), [...values][0]);
}
