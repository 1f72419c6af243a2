/**
 * Every client measured, behind one small interface, each with its own
 * default settings except where a scenario needs an acknowledged write.
 *
 * Peers are loaded only when asked for (and only on Node), so Deno and Bun
 * never touch node_modules.
 *
 * @module
 */

import { Client } from "../src/clients/client.ts";
import { type Observer, setChannelLoader } from "../src/clients/_observe.ts";
import type { Transport } from "../src/connection/transport.ts";

/**
 * `BENCH_OBSERVE` (the cost of observing, issue 19): `count` gives memkit and
 * memkit-pooled an observer counting calls and hits; `channels` loads
 * diagnostics_channel as mod.ts does, with nobody subscribed (each call then
 * checks for subscribers). Unset: neither, as users of src/ directly get.
 */
function observing(): { observer?: Observer } {
  // deno-lint-ignore no-explicit-any
  const g = globalThis as any;
  const mode = g.process?.env?.BENCH_OBSERVE;
  if (mode === "channels") setChannelLoader(() => g.process?.getBuiltinModule?.("node:diagnostics_channel"));
  if (mode !== "count") return {};
  const seen = { calls: 0, hits: 0 };
  return { observer: { onCommand: (event) => void (seen.calls++, seen.hits += event.hits) } };
}

/**
 * The library from its sources with the runtime's transport passed in (not
 * through mod.ts, whose Workers branch a Node bundle must not contain).
 */
async function transport(): Promise<Transport> {
  // deno-lint-ignore no-explicit-any
  if (typeof (globalThis as any).Deno?.connect === "function") {
    return new (await import("../transports/deno.ts")).DenoTransport();
  }
  return new (await import("../transports/node.ts")).NodeTransport();
}

/** What a scenario needs from a client. */
export interface Adapter {
  /** The value (bytes or string), or null/undefined on a miss. */
  get(key: string): Promise<unknown>;
  /** An acknowledged set (the reply is waited for). */
  set(key: string, value: Uint8Array): Promise<unknown>;
  /** Fire-and-forget set where the client has one (S6 mixes both). */
  setNoreply?(key: string, value: Uint8Array): Promise<unknown>;
  /** Multi-get; resolves to the number of keys found. */
  getMany(keys: string[]): Promise<number>;
  delete(key: string): Promise<unknown>;
  close(): Promise<void>;
}

/** Opens `name` against 127.0.0.1:`port`, connected and ready. */
export async function open(name: string, port: number): Promise<Adapter> {
  const spec = `127.0.0.1:${port}`;
  switch (name) {
    case "memkit":
      return await ours(new Client(spec, { transport: await transport(), ...observing() }));
    case "memkit-pooled": {
      const { PooledClient } = await import("../src/clients/pooled_client.ts");
      return await ours(new PooledClient(spec, { transport: await transport(), maxPoolSize: 4, ...observing() }));
    }
    case "memkit-meta":
      return await oursMeta(new Client(spec, { transport: await transport() }));
    case "floor":
      return await (await import("./_floor.ts")).floor(port);
    case "memjs":
      return await memjs(spec);
    case "memcached":
      return await memcached3(spec);
    case "memcache-client":
      return await memcacheClient(spec);
  }
  throw new Error(`unknown client ${name}`);
}

interface OursLike {
  get(key: string): Promise<unknown>;
  set(key: string, value: unknown, options?: { noreply?: boolean }): Promise<unknown>;
  getMany(keys: string[]): Promise<Map<string, unknown>>;
  delete(key: string, options?: { noreply?: boolean }): Promise<unknown>;
  version(): Promise<string>;
  close(): Promise<void>;
}

async function ours(client: OursLike): Promise<Adapter> {
  await client.version();
  const acked = { noreply: false };
  return {
    get: (key) => client.get(key),
    set: (key, value) => client.set(key, value, acked),
    setNoreply: (key, value) => client.set(key, value),
    getMany: async (keys) => (await client.getMany(keys)).size,
    delete: (key) => client.delete(key, acked),
    close: () => client.close(),
  };
}

/** Reads through the meta protocol (metaGet, metaGetMany); writes as `ours`. */
async function oursMeta(client: Client): Promise<Adapter> {
  const classic = await ours(client);
  const valueOf = (result: { value?: unknown }) => result.value;
  return {
    ...classic,
    get: (key) => client.metaGet(key).then(valueOf),
    getMany: async (keys) => (await client.metaGetMany(keys)).size,
  };
}

// ---- peers (Node only). Their own defaults, promisified where they take callbacks.

/**
 * The peers recognise bytes only as a Node `Buffer` (a plain Uint8Array
 * would be sent as JSON): the benchmark's constant values are wrapped once.
 */
const buffers = new WeakMap<Uint8Array, Uint8Array>();
function asBuffer(value: Uint8Array): Uint8Array {
  let buffer = buffers.get(value);
  if (buffer === undefined) {
    // deno-lint-ignore no-explicit-any
    const NodeBuffer = (globalThis as any).Buffer;
    buffer = NodeBuffer.from(value.buffer, value.byteOffset, value.byteLength) as Uint8Array;
    buffers.set(value, buffer);
  }
  return buffer;
}

async function memjs(spec: string): Promise<Adapter> {
  // deno-lint-ignore no-explicit-any
  const memjs: any = (await import("memjs" as string)).default;
  const client = memjs.Client.create(spec, { retries: 0, logger: { log() {} } });
  await client.set("bench:warm", "1", { expires: 0 });
  const get = async (key: string) => (await client.get(key)).value;
  return {
    get,
    set: (key, value) => client.set(key, asBuffer(value), { expires: 0 }),
    // memjs has no multi-get: the keys go out as concurrent gets.
    getMany: async (keys) => (await Promise.all(keys.map(get))).filter((v) => v != null).length,
    delete: (key) => client.delete(key),
    close: () => Promise.resolve(client.close()),
  };
}

async function memcached3(spec: string): Promise<Adapter> {
  // deno-lint-ignore no-explicit-any
  const Memcached: any = (await import("memcached" as string)).default;
  const client = new Memcached(spec, { retries: 0 });
  const call = <T>(fn: (cb: (error: unknown, data: T) => void) => void) =>
    new Promise<T>((resolve, reject) => fn((error, data) => (error ? reject(error) : resolve(data))));
  await call((cb) => client.set("bench:warm", "1", 0, cb));
  return {
    get: (key) => call((cb) => client.get(key, cb)),
    set: (key, value) => call((cb) => client.set(key, asBuffer(value), 0, cb)),
    getMany: async (keys) => Object.keys(await call<Record<string, unknown>>((cb) => client.getMulti(keys, cb))).length,
    delete: (key) => call((cb) => client.del(key, cb)),
    close: () => Promise.resolve(client.end()),
  };
}

async function memcacheClient(spec: string): Promise<Adapter> {
  // deno-lint-ignore no-explicit-any
  const { MemcacheClient }: any = await import("memcache-client" as string);
  const client = new MemcacheClient({ server: spec, logger: { error() {}, info() {}, debug() {}, warn() {} } });
  await client.set("bench:warm", "1");
  return {
    get: async (key) => (await client.get(key))?.value,
    set: (key, value) => client.set(key, asBuffer(value)),
    getMany: async (keys) => Object.keys(await client.get(keys)).length,
    delete: (key) => client.delete(key),
    close: () => Promise.resolve(client.shutdown()),
  };
}
