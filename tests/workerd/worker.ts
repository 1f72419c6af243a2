/**
 * The Worker of the workerd stage (scripts/stages/35-workerd.sh): run.ts
 * bundles it with esbuild and runs it in workerd through miniflare.
 *
 * - `POST /run {name}` runs one case of the Client behaviour suite
 *   (tests/suites/_suite.ts, the same bodies Deno, Node and Bun run) inside this
 *   request, over CloudflareTransport, plus the Workers-only cases below.
 *   The suite's servers are spawned by run.ts (Node) on loopback; the Worker
 *   asks for them over the CONTROL service binding, and fake servers'
 *   scripts run here, fed by run.ts (`POST /fake-event`).
 * - `/scenario/*` are the requests of the multi-request scenarios run.ts
 *   drives: a module-scope `Client` and `PooledClient` shared by many
 *   sequential and concurrent requests, and per-request clients closed with
 *   `ctx.waitUntil(client.close())`.
 */
import assert from "node:assert/strict";
import { rejectsWith } from "../_support/_assert.ts";
import {
  Client,
  type ClientOptions,
  MemcacheAuthError,
  MemcacheConnectionError,
  MemcachedCache,
  MemcacheError,
  MemcacheTimeoutError,
  PooledClient,
} from "../../mod.ts";
import { defaultTransport } from "../../src/connection/_default_transport.ts";
import { CloudflareTransport } from "../../transports/cloudflare.ts";
import { clientSuite, type FakeSocket, type SuiteFake, type SuiteServer, type SuiteTarget } from "../suites/_suite.ts";
import { metaSuite } from "../suites/_suite_meta.ts";
import { memoryTarget } from "../suites/_memory_target.ts";
import { cases, describe, it } from "./_harness.ts";
import { keyvCases } from "./_keyv_cases.ts";

interface Fetcher {
  fetch(input: string, init?: RequestInit): Promise<Response>;
}
interface Env {
  /** run.ts's control service (a Node function): memcached, fake servers, ports. */
  CONTROL: Fetcher;
  /** A memcached run.ts keeps for the whole stage. */
  MEMCACHED: string;
}
interface Context {
  waitUntil(promise: Promise<unknown>): void;
}

/** The bindings; the same object in every request, set by each. */
let env: Env;

async function control<T = unknown>(path: string, body: unknown = {}): Promise<T> {
  const res = await env.CONTROL.fetch(`http://control${path}`, { method: "POST", body: JSON.stringify(body) });
  const text = await res.text();
  if (!res.ok) throw new Error(`control ${path}: ${text}`);
  return JSON.parse(text) as T;
}

// ---- the suite's servers, spawned by run.ts

async function startMemcached(options: { args?: string[]; unix?: boolean; tls?: boolean } = {}): Promise<SuiteServer> {
  const { id, spec, cert } = await control<{ id: number; spec: string; cert?: string }>("/memcached/start", options);
  return {
    spec,
    cert,
    stop: () => control("/memcached/stop", { id }).then(() => {}),
    restart: () => control("/memcached/restart", { id }).then(() => {}),
    [Symbol.asyncDispose]: () => control("/memcached/dispose", { id }).then(() => {}),
  };
}

type OnData = (socket: FakeSocket, text: string, all: string) => void;
interface Fake {
  onData: OnData;
  received: string;
  connections: number;
  all: Map<number, string>;
}
/** Fake servers by run.ts's id; their scripts run here, on events run.ts forwards. */
const fakes = new Map<number, Fake>();
/** Orders the socket actions of fake scripts (run.ts applies them in this order). */
let actionSeq = 0;

async function startFakeServer(onData: OnData = () => {}): Promise<SuiteFake> {
  const { id, spec } = await control<{ id: number; spec: string }>("/fake/start");
  const fake: Fake = { onData, received: "", connections: 0, all: new Map() };
  fakes.set(id, fake);
  return {
    spec,
    received: () => fake.received,
    connections: () => fake.connections,
    [Symbol.asyncDispose]: async () => {
      fakes.delete(id);
      await control("/fake/dispose", { id });
    },
  };
}

/** A fake server's event (a connection accepted, bytes received), forwarded by run.ts. */
function onFakeEvent(
  event: { id: number; conn: number; type: "accept" | "data"; text?: string },
  ctx: Context,
): void {
  const fake = fakes.get(event.id);
  if (!fake) return;
  if (event.type === "accept") {
    fake.connections++;
    fake.all.set(event.conn, "");
    return;
  }
  const text = event.text ?? "";
  const all = (fake.all.get(event.conn) ?? "") + text;
  fake.all.set(event.conn, all);
  fake.received += text;
  const acts: Promise<unknown>[] = [];
  const act = (op: "write" | "destroy", data?: string) =>
    acts.push(control("/fake/act", { seq: actionSeq++, id: event.id, conn: event.conn, op, data }));
  fake.onData({ write: (data) => act("write", data), destroy: () => act("destroy") }, text, all);
  // Scripts may act later (setTimeout): keep this request alive a while for them.
  ctx.waitUntil(new Promise((resolve) => setTimeout(resolve, 200)).then(() => Promise.all(acts)));
}

// ---- the Client behaviour suite over CloudflareTransport

const transport = new CloudflareTransport();

const target: SuiteTarget = {
  name: "Client/CloudflareTransport",
  makeClient: (spec: string, options?: ClientOptions) => new Client(spec, { transport, ...options }),
  startMemcached,
  startFakeServer,
  freePort: () => control<{ port: number }>("/free-port").then((r) => r.port),
  skip: {
    "unix socket connections": "Workers' connect() is TCP only (the workerd cases check the refusal)",
    "TLS against memcached -Z with a self-signed certificate":
      "Workers trusts only the platform's certificate store: no caCerts (the workerd cases run TLS with the test CA in it)",
  },
};

clientSuite(target);
metaSuite(target);

// The same suites against MemoryServer (testing.ts) inside the Worker, through its transport.
const memory = memoryTarget("Client/memory", {
  startFakeServer,
  freePort: target.freePort,
  makeClient: target.makeClient,
});
clientSuite(memory);
metaSuite(memory);

keyvCases(() => env.MEMCACHED);

// ---- Workers-only cases

describe("workerd", () => {
  it("import { Client } from the package picks CloudflareTransport by itself", async () => {
    assert.equal((await defaultTransport()).name, "cloudflare");
    await using client = new Client(env.MEMCACHED);
    await client.set("picked", "by itself", { noreply: false });
    assert.equal(await client.get("picked"), "by itself");
  });

  it("TLS (secureTransport on) against memcached -Z, with the test CA in the platform's store", async () => {
    await using server = await startMemcached({ tls: true });
    await using client = new Client(server.spec, { transport, tls: true });
    await client.set("k", "secret", { noreply: false });
    assert.equal(await client.get("k"), "secret");
    const big = new Uint8Array(300_000).fill(7);
    await client.set("big", big);
    assert.deepEqual(await client.get("big"), big);
    await using plain = new Client(server.spec, { transport, timeout: 2000 });
    await rejectsWith(plain.get("k"), MemcacheError); // plaintext to a TLS port
    await using tlsToPlain = new Client(env.MEMCACHED, { transport, tls: true, timeout: 2000 });
    await rejectsWith(tlsToPlain.get("k"), MemcacheError); // TLS to a plaintext port
  });

  it('IPv6 loopback: [::1]:port and { host: "::1" }', async () => {
    await using server = await startMemcached({ args: ["-l", "::1"] }); // and 127.0.0.1
    const port = Number(server.spec.slice(server.spec.lastIndexOf(":") + 1));
    for (const spec of [`[::1]:${port}`, { host: "::1", port }]) {
      await using client = new Client(spec, { transport });
      await client.set("v6", "over ::1", { noreply: false });
      assert.equal(await client.get("v6"), "over ::1");
    }
  });

  it("unix paths and TLS options Workers cannot honour are refused with a TypeError, before connecting", async () => {
    const refused: [string, ClientOptions, RegExp][] = [
      ["unix:/tmp/memcached.sock", {}, /TCP only/],
      [env.MEMCACHED, { tls: { caCerts: ["-----BEGIN CERTIFICATE-----"] } }, /CA certificates/],
      [env.MEMCACHED, { tls: { serverName: "other.example" } }, /server name/],
      [env.MEMCACHED, { tls: { rejectUnauthorized: false } }, /certificate checks/],
      [
        env.MEMCACHED,
        { tls: { cert: "-----BEGIN CERTIFICATE-----\n", key: "-----BEGIN PRIVATE KEY-----\n" } },
        /client certificate/,
      ],
    ];
    for (const [spec, options, why] of refused) {
      await using client = new Client(spec, { transport, ...options });
      await assert.rejects(client.get("k"), (error: unknown) => {
        assert.ok(error instanceof MemcacheConnectionError, String(error));
        assert.ok((error as Error).cause instanceof TypeError, String((error as Error).cause));
        assert.match((error as Error).message, why);
        return true;
      });
    }
  });

  it("auth: memcached -Y logins over CloudflareTransport; a refused one rejects every queued call", async () => {
    const { path } = await control<{ path: string }>("/authfile", { lines: "worker:w0rker-pw\n" });
    await using server = await startMemcached({ args: ["-Y", path] });
    await using client = new Client(server.spec, { transport, auth: { username: "worker", password: "w0rker-pw" } });
    const [stored, value] = await Promise.all([client.set("k", "v", { noreply: false }), client.get("k")]);
    assert.deepEqual([stored, value], [true, "v"]);
    await using wrong = new Client(server.spec, { transport, auth: { username: "worker", password: "nope" } });
    const calls = await Promise.allSettled([wrong.get("k"), wrong.set("k", "x"), wrong.version()]);
    for (const call of calls) {
      assert.ok(call.status === "rejected" && call.reason instanceof MemcacheAuthError, String(call));
      assert.ok(!String(call.reason.message).includes("nope"));
    }
    assert.equal(await client.get("k"), "v");
  });

  it("connectTimeout: a connect that never completes gives MemcacheTimeoutError", async () => {
    const { id, spec } = await control<{ id: number; spec: string }>("/blackhole/start");
    try {
      await using client = new Client(spec, { transport, connectTimeout: 300 });
      await rejectsWith(client.get("k"), MemcacheTimeoutError, /Connect timed out after 300 ms/);
      await rejectsWith(client.set("k", "v", { noreply: false }), MemcacheTimeoutError);
    } finally {
      await control("/blackhole/stop", { id });
    }
  });

  it("a client shared by concurrent work in one request pipelines on one connection", async () => {
    await using client = new Client(env.MEMCACHED, { transport });
    const before = (await client.stats()).total_connections as number;
    await Promise.all(Array.from({ length: 200 }, (_, i) => client.set(`one-${i}`, i, { noreply: false })));
    const got = await client.getMany(Array.from({ length: 200 }, (_, i) => `one-${i}`));
    assert.equal(got.size, 200);
    assert.equal((await client.stats()).total_connections, before);
  });
});

// ---- the multi-request scenarios (driven by run.ts)

/** Made at module scope, as users write it; shared by every request of the isolate. */
let moduleClient: Client | undefined;
let modulePool: PooledClient | undefined;
let moduleCache: MemcachedCache | undefined;

/** cachelib-style use of a module-scope MemcachedCache; throws if any result is not this request's own. */
async function cacheWork(cache: MemcachedCache, key: string, pause: number): Promise<void> {
  assert.equal(await cache.set(key, { key, n: [1, 2] }, 60), true);
  if (pause > 0) await sleep(pause);
  assert.deepEqual(await cache.get(key), { key, n: [1, 2] });
  assert.equal(await cache.add(key, "other"), false);
  assert.equal(await cache.has(key), true);
  assert.deepEqual(await cache.getMany(key, `${key}-missing`, "bad key"), [{ key, n: [1, 2] }, null, null]);
  assert.equal(await cache.dec(`${key}-n`, 2), -2);
  assert.equal(await cache.inc(`${key}-n`, 5), 3);
  assert.deepEqual(await cache.deleteMany(key, `${key}-n`), [key, `${key}-n`]);
  assert.equal(await cache.get(key), null);
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/**
 * `ops` rounds of set → get → incr on `key`, awaited one after another,
 * with an optional pause (a macrotask: other requests run meanwhile), then
 * one pipelined burst. Throws if any result is not this request's own.
 */
async function work(client: Client | PooledClient, key: string, ops: number, pause: number): Promise<void> {
  await client.set(`${key}-n`, 0);
  for (let i = 0; i < ops; i++) {
    await client.set(key, `${key}:${i}`, { noreply: false });
    if (pause > 0) await sleep(pause);
    assert.equal(await client.get(key), `${key}:${i}`);
    assert.equal(await client.incr(`${key}-n`, 1), i + 1);
  }
  const burst = await Promise.all(Array.from({ length: 10 }, (_, i) => client.get(i % 2 ? key : `${key}-missing`)));
  burst.forEach((value, i) => assert.equal(value, i % 2 ? `${key}:${ops - 1}` : null));
}

async function scenario(url: URL, ctx: Context): Promise<Response> {
  const key = url.searchParams.get("key") ?? "key";
  const ops = Number(url.searchParams.get("ops") ?? "3");
  const pause = Number(url.searchParams.get("pause") ?? "0");
  switch (url.pathname) {
    case "/scenario/module": // a Client made at module scope, by the package's default transport
      moduleClient ??= new Client(env.MEMCACHED);
      await work(moduleClient, key, ops, pause);
      return new Response("ok");
    case "/scenario/pooled":
      modulePool ??= new PooledClient(env.MEMCACHED);
      await work(modulePool, key, ops, pause);
      return new Response("ok");
    case "/scenario/cache": // a MemcachedCache made at module scope, as Flask apps keep theirs
      moduleCache ??= new MemcachedCache([env.MEMCACHED], { keyPrefix: "w:" });
      await cacheWork(moduleCache, key, pause);
      return new Response("ok");
    case "/scenario/cache-counter": { // one shared counter, many requests
      moduleCache ??= new MemcachedCache([env.MEMCACHED], { keyPrefix: "w:" });
      return Response.json(await moduleCache.inc(key));
    }
    case "/scenario/per-request": { // the README's pattern
      const client = new Client(env.MEMCACHED);
      try {
        await work(client, key, ops, pause);
        return new Response("ok");
      } finally {
        ctx.waitUntil(client.close());
      }
    }
    case "/scenario/module-background-set": // a noreply set finished after the response
      moduleClient ??= new Client(env.MEMCACHED);
      ctx.waitUntil(moduleClient.set(key, new Uint8Array(Number(url.searchParams.get("size") ?? "10")).fill(1)));
      return new Response("ok");
    case "/scenario/module-get": {
      moduleClient ??= new Client(env.MEMCACHED);
      const value = await moduleClient.get(key);
      return Response.json(value instanceof Uint8Array ? value.length : value);
    }
    case "/scenario/module-abandon": // a request that returns with a get still in flight
      moduleClient ??= new Client(env.MEMCACHED);
      moduleClient.get(key).catch(() => {});
      return new Response("ok");
    case "/scenario/get-or-set": { // getOrSet of one cold key from many concurrent requests (issue 16)
      const client = url.searchParams.get("pooled") ? (modulePool ??= new PooledClient(env.MEMCACHED)) : (
        moduleClient ??= new Client(env.MEMCACHED)
      );
      const loader = async () => {
        await client.add(`${key}-runs`, 0, { noreply: false });
        await client.incr(`${key}-runs`, 1, { noreply: false });
        await sleep(100);
        return `${key}:loaded`;
      };
      const values = await Promise.all(
        Array.from({ length: 5 }, () => client.getOrSet(key, loader, { ttl: 60, waitUntil: (p) => ctx.waitUntil(p) })),
      );
      return Response.json(values);
    }
    case "/scenario/module-close": // close() on the shared client, from any request
      moduleClient ??= new Client(env.MEMCACHED);
      await moduleClient.close();
      await modulePool?.close();
      await moduleCache?.close();
      return new Response("ok");
  }
  return new Response("no such scenario", { status: 404 });
}

export default {
  async fetch(request: Request, bindings: Env, ctx: Context): Promise<Response> {
    env = bindings;
    const url = new URL(request.url);
    try {
      if (url.pathname === "/cases") return Response.json(cases.map(({ name, skip }) => ({ name, skip })));
      if (url.pathname === "/run") {
        const { name } = await request.json() as { name: string };
        const found = cases.find((c) => c.name === name);
        if (!found) return new Response(`no case ${name}`, { status: 404 });
        await found.body();
        return Response.json({ ok: true });
      }
      if (url.pathname === "/fake-event") {
        onFakeEvent(await request.json(), ctx);
        return new Response("ok");
      }
      if (url.pathname.startsWith("/scenario/")) return await scenario(url, ctx);
      return new Response("not found", { status: 404 });
    } catch (error) {
      const e = error as Error;
      return Response.json({ ok: false, error: `${e?.stack ?? e}` }, { status: 500 });
    }
  },
};
