// API.md "Lifecycle": a connection with nothing in flight does not keep the
// process alive, so a script that forgets close() still exits once its work
// is done; one that waits on a request stays until it settles. Each case
// spawns tests/features/_lifecycle_child.ts on the runtime running this test.
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import process from "node:process";
import { describe, it } from "../_support/_harness.ts";
import { startConfigEndpoint } from "../_support/_config_endpoint.ts";
import { startMemcached } from "../_support/_memcached.ts";
import { startScriptedServer } from "../hostile/_hostile_server.ts";

const isDeno = typeof process.versions.deno === "string";
/** A child still running after this long is killed and fails its test (it would have run until killed). */
const KILL_AFTER_MS = 20_000;

interface Run {
  code: number | null;
  killed: boolean;
  stdout: string;
  stderr: string;
}

/** Runs the child script with `args` and waits for it to exit by itself, or kills it after KILL_AFTER_MS. */
function runChild(args: string[]): Promise<Run> {
  const script = new URL(isDeno ? "./_lifecycle_child.ts" : "./_lifecycle_child.js", import.meta.url).pathname;
  const command = isDeno ? ["run", "--allow-all", script, ...args] : [script, ...args];
  const child = spawn(process.execPath, command, { stdio: ["ignore", "pipe", "pipe"] });
  let stdout = "";
  let stderr = "";
  child.stdout!.on("data", (d) => (stdout += d));
  child.stderr!.on("data", (d) => (stderr += d));
  let killed = false;
  const timer = setTimeout(() => {
    killed = true;
    child.kill("SIGKILL");
  }, KILL_AFTER_MS);
  return new Promise((resolve) => {
    child.once("close", (code) => {
      clearTimeout(timer);
      resolve({ code, killed, stdout: stdout.trim(), stderr: stderr.trim() });
    });
  });
}

function assertExited(run: Run, stdout: string): void {
  assert.equal(run.killed, false, `still running after ${KILL_AFTER_MS} ms: the idle connection held the process`);
  assert.equal(run.code, 0, `exit code ${run.code}; stderr: ${run.stderr}`);
  assert.equal(run.stdout, stdout);
}

// On Deno, also NodeTransport (Deno's Node compatibility): its timers are numbers there.
const transports = isDeno ? [[], ["node"]] : [[]];

describe("lifecycle: a script that forgets close()", () => {
  for (const extra of transports) {
    const label = extra.length > 0 ? " (NodeTransport)" : "";
    for (const kind of ["client", "pooled", "pooled-idle", "hash"]) {
      it(`${kind}${label}: exits once its set/get are done`, async () => {
        await using server = await startMemcached();
        assertExited(await runChild([kind, server.spec, ...extra]), "forgot close,noreply");
      });
    }

    it(`discover${label}: auto discovery's polling does not keep the process either`, async () => {
      await using server = await startMemcached();
      await using endpoint = await startConfigEndpoint(1, [server.spec]);
      assertExited(await runChild(["discover", endpoint.spec, ...extra]), "forgot close,noreply");
      assert.ok(endpoint.requests() >= 1);
    });

    it(`client${label}: a request waiting on a silent server keeps the process until it times out`, async () => {
      // Answers each connection's first request only: the second get waits on a connection that went idle before.
      const answered = new Map<number, number>();
      await using server = await startScriptedServer({
        onRequest: (req, io) => {
          const n = answered.get(io.id) ?? 0;
          answered.set(io.id, n + 1);
          if (n === 0) io.answer(req);
        },
      });
      const run = await runChild(["wait", server.spec, ...extra]);
      assertExited(run, "MemcacheTimeoutError");
      assert.equal(server.requests.length, 2, "both gets reached the server, on one connection");
      assert.equal(server.connections(), 1);
    });
  }
});
