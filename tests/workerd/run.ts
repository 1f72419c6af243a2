/**
 * The workerd stage's runner (Node): bundles tests/workerd/worker.ts with
 * esbuild, starts it in workerd through miniflare, and
 *
 * 1. runs every case of the Client behaviour suite inside the Worker, one
 *    `fetch` per case, against memcached processes it spawns on loopback for
 *    the Worker (the CONTROL service binding), and the Workers-only cases;
 * 2. drives the multi-request scenarios: many sequential and concurrent
 *    requests sharing a module-scope Client / PooledClient, and per-request
 *    clients closed with ctx.waitUntil, then checks that no socket outlives
 *    the requests (memcached's curr_connections back to idle);
 * 3. with `--measure`, times module-scope vs per-request clients instead.
 *
 * Prints one "ok"/"not ok" line per case and last "N passed, N failed".
 * The Worker may connect to loopback only (outboundService allow "local").
 *
 * Built and run by scripts/stages/35-workerd.sh:
 *   node .tmp/workerd/run.mjs <repo root> [--measure]
 */
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import net from "node:net";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import process from "node:process";
import { createInterface } from "node:readline";
import type { Readable } from "node:stream";
import { build, type Plugin } from "esbuild";
import { Miniflare, Response as MfResponse } from "miniflare";
import { freePort, type MemcachedServer, startMemcached, testCertificate } from "../_support/_memcached.ts";

const root = resolve(process.argv[2] ?? ".");
const measure = process.argv.includes("--measure");
const CASE_LIMIT = 120_000;
const REQUEST_LIMIT = 30_000;

// ---- the Worker bundle: the suite's files (tests/suites/_suite*.ts) get the workerd harness

const suitePrefix = resolve(root, "tests/suites/_suite");
const workerHarness = resolve(root, "tests/workerd/_harness.ts");
const harness: Plugin = {
  name: "workerd-harness",
  setup(b) {
    b.onResolve(
      { filter: /^\.\.\/_support\/_harness\.ts$/ },
      (args) => args.importer.startsWith(suitePrefix) ? { path: workerHarness } : undefined,
    );
  },
};
const bundled = await build({
  entryPoints: [resolve(root, "tests/workerd/worker.ts")],
  bundle: true,
  write: false,
  format: "esm",
  platform: "neutral",
  target: "es2022",
  external: ["cloudflare:*", "node:*"],
  plugins: [harness],
  logLevel: "warning",
});
const script = bundled.outputFiles[0].text;

// ---- what the Worker asks for over CONTROL

const servers = new Map<number, MemcachedServer>();
interface FakeServer {
  server: net.Server;
  sockets: Map<number, net.Socket>;
  /** Events go to the Worker one at a time, in order. */
  queue: Promise<void>;
}
const fakes = new Map<number, FakeServer>();
const blackholes = new Map<number, { stop: () => Promise<void> }>();
let nextId = 1;

/** Fake-script socket actions, applied in the Worker's order (seq). */
const actions = new Map<number, { id: number; conn: number; op: string; data?: string }>();
let nextAction = 0;
let stallTimer: ReturnType<typeof setTimeout> | undefined;
function applyActions(): void {
  for (let a = actions.get(nextAction); a !== undefined; a = actions.get(nextAction)) {
    actions.delete(nextAction++);
    const socket = fakes.get(a.id)?.sockets.get(a.conn);
    if (!socket || socket.destroyed) continue;
    if (a.op === "write") socket.write(Buffer.from(a.data ?? "", "latin1"));
    else socket.destroy();
  }
  clearTimeout(stallTimer);
  // An action lost on the way (its request failed) must not stall the rest.
  if (actions.size > 0) {
    stallTimer = setTimeout(() => {
      nextAction = Math.min(...actions.keys());
      applyActions();
    }, 1000);
  }
}

function sendFakeEvent(id: number, event: Record<string, unknown>): void {
  const fake = fakes.get(id)!;
  fake.queue = fake.queue.then(async () => {
    const res = await mf.dispatchFetch("http://worker.test/fake-event", {
      method: "POST",
      body: JSON.stringify({ id, ...event }),
    });
    await res.text();
  }).catch((error) => console.log(`# fake event failed: ${error}`));
}

async function startFake(): Promise<{ id: number; spec: string }> {
  const id = nextId++;
  let conns = 0;
  const sockets = new Map<number, net.Socket>();
  const server = net.createServer((socket) => {
    const conn = ++conns;
    sockets.set(conn, socket);
    socket.on("error", () => {});
    socket.on("close", () => sockets.delete(conn));
    sendFakeEvent(id, { conn, type: "accept" });
    socket.on("data", (chunk) => sendFakeEvent(id, { conn, type: "data", text: chunk.toString("latin1") }));
  });
  fakes.set(id, { server, sockets, queue: Promise.resolve() });
  await new Promise<void>((done) => server.listen(0, "127.0.0.1", done));
  return { id, spec: `127.0.0.1:${(server.address() as net.AddressInfo).port}` };
}

/**
 * A listener whose accept queue is full and never drains: a memcached with
 * backlog 1, stopped (SIGSTOP) after it started, then sent connections until
 * one does not complete. The kernel drops further SYNs, so a new connect to
 * it never completes.
 */
async function startBlackhole(): Promise<{ id: number; spec: string }> {
  const port = await freePort();
  const args = ["-U", "0", "-l", "127.0.0.1", "-p", String(port), "-b", "1"];
  if (process.getuid?.() === 0) args.push("-u", "root");
  const child = spawn(process.env.MEMCACHED_BIN ?? "memcached", args, { stdio: "ignore" });
  const exited = new Promise((done) => child.once("exit", done));
  const held: net.Socket[] = [];
  const stop = async () => {
    held.forEach((s) => s.destroy());
    child.kill("SIGKILL");
    await exited;
  };
  const connects = (socket: net.Socket, ms: number) =>
    new Promise<boolean>((done) => {
      const timer = setTimeout(() => done(false), ms);
      socket.once("connect", () => (clearTimeout(timer), done(true)));
    });
  for (let ready = false, i = 0; !ready && i < 100; i++) {
    const probe = net.connect({ host: "127.0.0.1", port }).on("error", () => {});
    ready = await connects(probe, 50);
    probe.destroy();
  }
  child.kill("SIGSTOP");
  for (let i = 0; i < 20; i++) {
    const socket = net.connect({ host: "127.0.0.1", port }).on("error", () => {});
    held.push(socket);
    if (!(await connects(socket, 300))) {
      const id = nextId++;
      blackholes.set(id, { stop });
      return { id, spec: `127.0.0.1:${port}` };
    }
  }
  await stop();
  throw new Error("could not fill the accept queue");
}

async function controlRoute(path: string, body: Record<string, unknown>): Promise<unknown> {
  const id = body.id as number;
  switch (path) {
    case "/memcached/start": {
      const server = await startMemcached(body as { args?: string[]; tls?: boolean });
      servers.set(nextId, server);
      return { id: nextId++, spec: server.spec, cert: server.cert };
    }
    case "/authfile": {
      // An authfile for memcached -Y (the Worker cannot write files): removed when the runner exits.
      const dir = mkdtempSync(join(tmpdir(), "memkit-workerd-auth-"));
      process.on("exit", () => rmSync(dir, { recursive: true, force: true }));
      writeFileSync(join(dir, "authfile"), String((body as { lines: string }).lines), { mode: 0o600 });
      return { path: join(dir, "authfile") };
    }
    case "/memcached/stop":
      await servers.get(id)?.stop();
      return {};
    case "/memcached/restart":
      await servers.get(id)?.restart();
      return {};
    case "/memcached/dispose":
      await servers.get(id)?.[Symbol.asyncDispose]();
      servers.delete(id);
      return {};
    case "/fake/start":
      return await startFake();
    case "/fake/act":
      actions.set(body.seq as number, body as { id: number; conn: number; op: string; data?: string });
      applyActions();
      return {};
    case "/fake/dispose": {
      const fake = fakes.get(id);
      fakes.delete(id);
      if (fake) {
        fake.sockets.forEach((s) => s.destroy());
        await new Promise((done) => fake.server.close(done));
      }
      return {};
    }
    case "/free-port":
      return { port: await freePort() };
    case "/blackhole/start":
      return await startBlackhole();
    case "/blackhole/stop": {
      const hole = blackholes.get(id);
      blackholes.delete(id);
      await hole?.stop();
      return {};
    }
  }
  throw new Error(`no control route ${path}`);
}

async function control(request: Request): Promise<MfResponse> {
  try {
    const path = new URL(request.url).pathname;
    const text = await request.text();
    const result = await controlRoute(path, text ? JSON.parse(text) : {});
    return new MfResponse(JSON.stringify(result), { headers: { "content-type": "application/json" } });
  } catch (error) {
    return new MfResponse(String((error as Error)?.stack ?? error), { status: 500 });
  }
}

// ---- helpers

function withLimit<T>(promise: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: ReturnType<typeof setTimeout>;
  const limit = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${what}: no answer after ${ms} ms (hang)`)), ms);
  });
  return Promise.race([promise, limit]).finally(() => clearTimeout(timer));
}

/** One request to the Worker; resolves its body text, throwing unless 200. */
async function call(path: string, init?: RequestInit, limit = REQUEST_LIMIT): Promise<string> {
  const res = await withLimit(
    mf.dispatchFetch(`http://worker.test${path}`, init as never),
    limit,
    path,
  );
  const text = await res.text();
  if (res.status !== 200) throw new Error(`${path}: ${res.status} ${text}`);
  return text;
}

/** memcached's stats over a plain socket (not through the Worker). */
function stats(spec: string): Promise<Record<string, string>> {
  const at = spec.lastIndexOf(":");
  return new Promise((done, fail) => {
    const socket = net.connect({ host: spec.slice(0, at), port: Number(spec.slice(at + 1)) });
    let reply = "";
    socket.on("error", fail);
    socket.on("data", (chunk) => {
      reply += chunk.toString("latin1");
      if (!reply.endsWith("END\r\n")) return;
      socket.destroy();
      done(
        Object.fromEntries(reply.split("\r\n").filter((l) => l.startsWith("STAT ")).map((l) => l.split(" ").slice(1))),
      );
    });
    socket.write("stats\r\n");
  });
}

/** Waits until only our own stats connection is open: no Worker socket outlived its request. */
async function assertNoSocketsLeft(spec: string): Promise<void> {
  let open = "";
  for (let i = 0; i < 40; i++) {
    open = (await stats(spec)).curr_connections;
    if (open === "1") return;
    await new Promise((r) => setTimeout(r, 50));
  }
  assert.fail(`${Number(open) - 1} connection(s) from the Worker still open after its requests ended`);
}

// ---- run

/** workerd's warnings about I/O or promises crossing requests (there must be none). */
const crossRequest: string[] = [];
const { cert } = testCertificate();
const shared = await startMemcached();
const mf = new Miniflare({
  modules: true,
  script,
  compatibilityDate: "2025-09-01",
  // node:assert for the suite's assertions; the client itself needs no flag.
  compatibilityFlags: ["nodejs_compat"],
  bindings: { MEMCACHED: shared.spec },
  serviceBindings: { CONTROL: control as never },
  // Loopback only, trusting the test CA for the TLS cases.
  outboundService: { network: { allow: ["local"], deny: [], tlsOptions: { trustedCertificates: [cert] } } },
  handleRuntimeStdio(stdout: Readable, stderr: Readable) {
    for (const stream of [stdout, stderr]) {
      createInterface({ input: stream }).on("line", (line) => {
        console.log(`# workerd: ${line}`);
        if (/different request/i.test(line)) crossRequest.push(line);
      });
    }
  },
});

let passed = 0;
let failed = 0;
let skipped = 0;
async function report(name: string, body: () => Promise<void>): Promise<void> {
  try {
    await body();
    passed++;
    console.log(`ok - workerd: ${name}`);
  } catch (error) {
    failed++;
    console.log(`not ok - workerd: ${name}\n${String((error as Error)?.stack ?? error).replace(/^/gm, "  ")}`);
  }
}

/** `n` requests to `path(i)`, `concurrency` at a time; resolves when all succeeded. */
async function requests(n: number, concurrency: number, path: (i: number) => string): Promise<void> {
  let next = 0;
  const errors: string[] = [];
  await Promise.all(Array.from({ length: concurrency }, async () => {
    while (next < n) {
      const i = next++;
      await call(path(i)).catch((e) => errors.push(String(e?.message ?? e)));
    }
  }));
  assert.deepEqual(errors.slice(0, 3), [], `${errors.length} of ${n} requests failed`);
}

async function timed(label: string, n: number, concurrency: number, path: (i: number) => string): Promise<void> {
  const before = Number((await stats(shared.spec)).total_connections);
  const start = performance.now();
  await requests(n, concurrency, path);
  const ms = performance.now() - start;
  const opened = Number((await stats(shared.spec)).total_connections) - before - 1; // minus our stats socket
  console.log(
    `# ${label}: ${n} requests, concurrency ${concurrency}: ${(ms / n).toFixed(2)} ms/request, ` +
      `${(n / ms * 1000).toFixed(0)} requests/s, ${(opened / n).toFixed(2)} connections/request`,
  );
}

try {
  if (measure) {
    await call("/scenario/module?key=warm&ops=1");
    for (const ops of [1, 5]) {
      for (const concurrency of [1, 8]) {
        for (const kind of ["per-request", "module", "pooled"]) {
          await timed(
            `${kind} client, ${ops} round(s) of set/get/incr`,
            300,
            concurrency,
            (i) => `/scenario/${kind}?key=m${i % 50}-${concurrency}-${kind}&ops=${ops}`,
          );
        }
      }
    }
  } else {
    const list = JSON.parse(await call("/cases")) as { name: string; skip: string | false }[];
    for (const { name, skip } of list) {
      if (skip) {
        skipped++;
        console.log(`ok - workerd: ${name} # SKIP ${skip}`);
        continue;
      }
      await report(name, async () => {
        await call("/run", { method: "POST", body: JSON.stringify({ name }) }, CASE_LIMIT);
      });
    }

    await report(
      "module-scope Client: 60 sequential requests",
      () => requests(60, 1, (i) => `/scenario/module?key=seq-${i}&ops=3`),
    );
    await report(
      "module-scope Client: 200 requests, 20 concurrent, interleaving at every await",
      () => requests(200, 20, (i) => `/scenario/module?key=conc-${i}&ops=3&pause=${i % 3}`),
    );
    await report(
      "module-scope PooledClient: 200 requests, 20 concurrent",
      () => requests(200, 20, (i) => `/scenario/pooled?key=pool-${i}&ops=3&pause=${i % 2}`),
    );
    await report(
      "per-request Client closed with ctx.waitUntil: 60 sequential, then 200 with 20 concurrent",
      async () => {
        await requests(60, 1, (i) => `/scenario/per-request?key=pr-seq-${i}`);
        await requests(200, 20, (i) => `/scenario/per-request?key=pr-conc-${i}&pause=${i % 2}`);
      },
    );
    await report(
      "module-scope MemcachedCache: 200 requests, 20 concurrent; a shared counter ends exact",
      async () => {
        await requests(200, 20, (i) => `/scenario/cache?key=cache-${i}&pause=${i % 2}`);
        await requests(100, 20, () => `/scenario/cache-counter?key=hits`);
        assert.equal(await call(`/scenario/cache-counter?key=hits`), "101");
      },
    );
    await report("module-scope Client: a noreply set in ctx.waitUntil lands after the response", async () => {
      for (const size of [10, 500_000]) {
        for (let i = 0; i < 10; i++) {
          await call(`/scenario/module-background-set?key=bg-${size}-${i}&size=${size}`);
          assert.equal(await call(`/scenario/module-get?key=bg-${size}-${i}`), String(size));
        }
      }
    });
    await report(
      "module-scope Client: a request that returns with a get in flight breaks no later request",
      async () => {
        for (let i = 0; i < 5; i++) {
          await call(`/scenario/module-abandon?key=ab-${i}`);
          await requests(10, 5, (j) => `/scenario/module?key=after-ab-${i}-${j}&ops=2`);
        }
        await call("/scenario/module-close"); // and close() from a later request does not wait for it
        await requests(10, 5, (j) => `/scenario/module?key=after-close-${j}&ops=1`);
      },
    );
    await report(
      "getOrSet: 40 requests, 20 concurrent, 5 calls each, on module-scope clients: the loader runs once per key",
      async () => {
        for (const kind of ["module", "pooled"]) {
          const key = `gos-${kind}`;
          const pooled = kind === "pooled" ? "&pooled=1" : "";
          const seen = new Set<string>();
          await requests(40, 20, () => `/scenario/get-or-set?key=${key}${pooled}`);
          for (const value of JSON.parse(await call(`/scenario/get-or-set?key=${key}${pooled}`))) seen.add(value);
          assert.deepEqual([...seen], [`${key}:loaded`]);
          assert.equal(await call(`/scenario/module-get?key=${key}-runs`), "1");
        }
      },
    );
    await report("no socket outlives the requests that opened it", () => assertNoSocketsLeft(shared.spec));
    await report("workerd logged no I/O or promise crossing requests", () => {
      assert.deepEqual(crossRequest, []);
      return Promise.resolve();
    });
  }
} finally {
  await mf.dispose();
  for (const server of servers.values()) await server[Symbol.asyncDispose]();
  for (const fake of fakes.values()) fake.server.close();
  await shared[Symbol.asyncDispose]();
}
if (!measure) console.log(`# ${skipped} skipped`);
console.log(`${passed} passed, ${failed} failed`);
process.exit(failed === 0 ? 0 : 1);
