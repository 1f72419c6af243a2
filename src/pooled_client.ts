/**
 * `PooledClient`: one memcached server over a pool of connections, with
 * pymemcache's `PooledClient` API and semantics.
 *
 * @module
 */

import { Client, type ClientOptions } from "./client.ts";
import type { GetOrSetOptions, InvalidateOptions, Loader } from "./_stampede.ts"; // generated: the commands' types
import type { Mapping, NoreplyOptions, StoreOptions, Value } from "./client.ts"; // generated: the commands' types
import type {
  MetaArithmeticOptions,
  MetaDeleteOptions,
  MetaGetManyOptions,
  MetaGetOptions,
  MetaKey,
  MetaResult,
  MetaSetOptions,
} from "./_meta.ts"; // generated: the commands' types
import { type CommandName, type Commands, missOf, rowOf, runComposed } from "./commands.ts";
import { MemcacheError, MemcacheIllegalInputError } from "./errors.ts";
import type { Serde } from "./serde.ts";
import type { ServerAddress, ServerSpec } from "./transport.ts";
import { defaultPoolLimit } from "./_default_transport.ts";
import { checkMs } from "./_options.ts";
import { leavesConnectionUsable } from "./_usable.ts";

/** Options of {@linkcode PooledClient}: those of {@linkcode ClientOptions} plus the pool's. */
export interface PooledClientOptions extends ClientOptions {
  /**
   * Most connections open at once. Connections open only when they help:
   * small calls share one connection's pipeline until 64 are in flight on
   * it, and a call with a value of 64 KiB or more gets a connection of its
   * own (see {@linkcode PooledClient}); past `maxPoolSize`, see
   * `poolBlocking`.
   * @default {10}
   */
  maxPoolSize?: number;
  /**
   * ms a connection may sit unused in the pool before it is closed;
   * `0` keeps idle connections open.
   * @default {0}
   */
  poolIdleTimeout?: number;
  /**
   * When all `maxPoolSize` connections are taken (each with 64 requests
   * in flight or a large value): `true` queues the call on the least busy
   * one, a connection without a large value first (it waits behind them,
   * pipelined); `false` rejects it with `MemcacheError` at once.
   * @default {true}
   */
  poolBlocking?: boolean;
}

/** Default {@linkcode PooledClientOptions.maxPoolSize}. */
const DEFAULT_MAX_POOL_SIZE = 10;

interface Idle {
  client: Client;
  since: number;
  /** Its slot, kept for its next use. */
  slot: Slot;
}

/**
 * A client in use: the calls running on it, and how many of them carry a
 * large value; with the handlers that give it back after a small call,
 * made once per client rather than twice per call.
 */
interface Slot {
  calls: number;
  large: number;
  done: (result: unknown) => unknown;
  failed: (error: unknown) => never;
}

/**
 * Requests a pooled connection carries at once before a small call goes
 * to another connection. A pipeline is the cheapest way to carry small
 * requests (one write and one read for many, on one event loop); past
 * this depth another connection spreads the work over the server's
 * threads. Measured with 50 in flight (bench S2/S3), in one process
 * against a Client: at 32 the 50 split over two connections and the pool
 * ran S3 at about half a Client's rate, S2 at 0.7; at 64 they stay on one
 * connection, and the pool runs at 0.88-0.94 of a Client (the rest is the
 * pool's own bookkeeping per call).
 */
const PIPELINE_DEPTH = 64;

/**
 * A value at least this large (bytes, or UTF-16 units of a string)
 * occupies its connection while it streams: small calls avoid that
 * connection, and the large call prefers one of its own (bench S7).
 */
const LARGE_VALUE = 65536;

/** The commands whose second argument is the value written. */
const STORES: ReadonlySet<string> = new Set(["set", "add", "replace", "append", "prepend", "cas", "metaSet"]);

/** Whether a value is large enough to take a connection for itself. */
function isLarge(value: unknown): boolean {
  if (typeof value === "string") return value.length >= LARGE_VALUE;
  return ArrayBuffer.isView(value) && value.byteLength >= LARGE_VALUE;
}

/**
 * A client for one memcached server that runs requests on up to
 * `maxPoolSize` connections, with pymemcache's `PooledClient` options.
 *
 * A connection opens only when it helps. A pipelined connection is the
 * fastest way to carry small requests, so a small call joins the pipeline
 * of a connection already in use while that one has fewer than 64
 * requests in flight and no large value streaming. A call that stores a
 * value of 64 KiB or more (bytes, or UTF-16 units of a string) takes a
 * connection of its own, and small calls stay off it while it streams,
 * so they do not wait behind it (head-of-line blocking). Otherwise a call
 * takes a free connection (the most recently used one first), or opens a
 * new one while fewer than `maxPoolSize` are open. When all are taken,
 * the call queues behind the requests on the least busy connection, one
 * without a large value first, and is pipelined with them
 * (`poolBlocking: true`, the default; its `timeout` counts the wait, and
 * if a request ahead of it times out, the connection closes and the call
 * fails with it), or rejects at once (`poolBlocking: false`). The pool never has more than `maxPoolSize`
 * sockets: connections still closing count, and a call that finds every
 * slot taken by closing ones waits for the first to be gone. A connection that failed
 * (timeout, unexpected close, unparseable reply, `CLIENT_ERROR`) is closed
 * and never handed out again; the pool opens a new one when needed. With
 * `poolIdleTimeout`, connections unused for that many ms are closed.
 *
 * Calls made without awaiting each other may run on different
 * connections, so unlike a {@linkcode Client}'s they are not ordered: await
 * a write before reading it back.
 *
 * Methods and results are those of {@linkcode Client}.
 *
 * @example
 * ```ts ignore
 * import { PooledClient } from "@memkit/memcache";
 * await using pool = new PooledClient("127.0.0.1:11211", { maxPoolSize: 4 });
 * await Promise.all(Array.from({ length: 100 }, (_, i) => pool.set(`k${i}`, i)));
 * console.log(await pool.get("k42")); // 42
 * ```
 */
export class PooledClient implements Commands {
  /** The server as `"host:port"` or a socket path. */
  readonly server: string;
  /** The parsed server address. */
  readonly address: ServerAddress;
  /** The serde in use. */
  readonly serde: Serde;
  /** The key prefix. */
  readonly keyPrefix: string;
  /** Whether storage commands skip replies by default. */
  readonly defaultNoreply: boolean;
  /** Whether get-family errors become misses. */
  readonly ignoreExc: boolean;
  /** Whether non-ASCII keys are allowed. */
  readonly allowUnicodeKeys: boolean;
  /** Most connections open at once. */
  readonly maxPoolSize: number;
  /** ms before an unused connection is closed (0: never). */
  readonly poolIdleTimeout: number;
  /** Whether calls wait when every connection is busy. */
  readonly poolBlocking: boolean;
  #spec: ServerSpec;
  #options: ClientOptions;
  /** Validates the options up front and answers checkKey; never connects. */
  #template: Client;
  /** Free clients, most recently used last (handed out first). */
  #idle: Idle[] = [];
  /** Clients in use, with how many calls each is running. */
  #busy = new Map<Client, Slot>();
  #timer: ReturnType<typeof setTimeout> | undefined;
  #closing = new Set<Promise<void>>();

  /**
   * Creates the pool; no connection opens until the first call.
   *
   * @param server where the server listens; see {@linkcode ServerSpec}.
   * @throws {TypeError} for an invalid server spec, timeout or pool option.
   * @throws {MemcacheIllegalInputError} for an invalid key prefix.
   */
  constructor(server: ServerSpec, options: PooledClientOptions = {}) {
    const { maxPoolSize, poolIdleTimeout, poolBlocking, ...clientOptions } = options;
    this.#template = new Client(server, clientOptions);
    this.#spec = server;
    // Pooled clients always throw, so the pool sees every failure; the
    // pool itself applies ignoreExc to the get family.
    this.#options = { ...clientOptions, ignoreExc: false };
    this.server = this.#template.server;
    this.address = this.#template.address;
    this.serde = this.#template.serde;
    this.keyPrefix = this.#template.keyPrefix;
    this.defaultNoreply = this.#template.defaultNoreply;
    this.ignoreExc = this.#template.ignoreExc;
    this.allowUnicodeKeys = this.#template.allowUnicodeKeys;
    // On a runtime with a connection limit (Workers: 6) the default stays below it.
    this.maxPoolSize = maxPoolSize ?? defaultPoolLimit(options.transport, DEFAULT_MAX_POOL_SIZE);
    if (!Number.isInteger(this.maxPoolSize) || this.maxPoolSize < 1) {
      throw new TypeError(`maxPoolSize must be a positive integer, got ${String(maxPoolSize)}`);
    }
    this.poolIdleTimeout = checkMs("poolIdleTimeout", poolIdleTimeout ?? 0);
    this.poolBlocking = poolBlocking ?? true;
  }

  /** Connections open or opening now that calls may use (busy and idle; not those still closing). */
  get size(): number {
    return this.#busy.size + this.#idle.length;
  }

  // ---- the pool

  /**
   * A client for one call. Small requests share connections: the call
   * joins the pipeline of a connection already in use while that one has
   * fewer than {@linkcode PIPELINE_DEPTH} requests in flight and no large
   * value streaming (a pipelined connection carries small requests faster
   * than several do). Otherwise, and always for a call with a large value:
   * an idle client (the most recently used), else a new one while fewer
   * than maxPoolSize exist (clients still closing count: their sockets are
   * still open), else (blocking) the busy one with the fewest requests in
   * flight, where the call queues behind them in the pipeline, or, with
   * none busy, the first one free once a closing one is gone.
   */
  #acquire(large: boolean): Client | Promise<Client> {
    if (!large && this.#busy.size > 0) {
      for (const [client, slot] of this.#busy) {
        if (slot.large === 0 && slot.calls < PIPELINE_DEPTH) {
          slot.calls++;
          return client;
        }
      }
    }
    const top = this.#idle[this.#idle.length - 1];
    if (top !== undefined && this.poolIdleTimeout > 0 && top.since <= Date.now() - this.poolIdleTimeout) {
      this.#disarm(); // the timer is late: expire now (if the newest expired, all have)
      this.#expire();
    }
    const idle = this.#idle.pop();
    if (idle !== undefined) {
      if (this.#idle.length === 0) this.#disarm();
      idle.slot.calls = 1;
      idle.slot.large = large ? 1 : 0;
      this.#busy.set(idle.client, idle.slot);
      return idle.client;
    }
    if (this.#busy.size + this.#closing.size < this.maxPoolSize) {
      const client = new Client(this.#spec, this.#options);
      this.#busy.set(client, {
        calls: 1,
        large: large ? 1 : 0,
        done: (result) => {
          this.#release(client, false, false);
          return result;
        },
        failed: (error) => {
          this.#release(client, false, !leavesConnectionUsable(error));
          throw error;
        },
      });
      return client;
    }
    if (!this.poolBlocking) {
      throw new MemcacheError(`All ${this.maxPoolSize} pooled connections are busy (poolBlocking is false)`, {
        server: this.server,
      });
    }
    if (this.#busy.size === 0) return Promise.race(this.#closing).then(() => this.#acquire(large));
    // The least busy, a connection without a large value first.
    let best!: Client;
    let bestSlot!: Slot;
    for (const [client, slot] of this.#busy) {
      if (
        bestSlot === undefined || (slot.large === 0) > (bestSlot.large === 0) ||
        ((slot.large === 0) === (bestSlot.large === 0) && slot.calls < bestSlot.calls)
      ) {
        best = client;
        bestSlot = slot;
      }
    }
    bestSlot.calls++;
    if (large) bestSlot.large++;
    return best;
  }

  /** Gives a client back after a call; `failed` destroys it instead. */
  #release(client: Client, large: boolean, failed: boolean): void {
    const slot = this.#busy.get(client);
    if (slot === undefined) return; // destroyed by another call, or the pool was closed
    if (large) slot.large--;
    if (failed && slot.calls === 1) {
      this.#busy.delete(client);
      this.#destroy(client);
    } else if (slot.calls > 1) {
      // Other calls still run on this client. The failed connection closed
      // itself (at once) and failed what was queued on it; calls made since
      // are on the client's next connection, which closing the client would
      // fail for nothing. The last call out destroys it, if that one fails.
      slot.calls--;
    } else {
      this.#busy.delete(client);
      this.#idle.push({ client, since: this.poolIdleTimeout > 0 ? Date.now() : 0, slot });
      this.#arm();
    }
  }

  /** Closes a client; until it is closed it counts toward maxPoolSize. */
  #destroy(client: Client): void {
    const closing = client.close();
    this.#closing.add(closing);
    closing.finally(() => this.#closing.delete(closing));
  }

  /**
   * Runs `call` on a pooled client, giving it back (or destroying it)
   * afterwards. Not an async function: with a client at hand the call
   * costs one promise more than on a Client, not three.
   */
  #use<T>(call: (client: Client) => Promise<T>, large: boolean): Promise<T> {
    let acquired: Client | Promise<Client>;
    try {
      acquired = this.#acquire(large);
    } catch (error) {
      return Promise.reject(error);
    }
    if (acquired instanceof Client) return this.#useOn(acquired, call, large);
    return acquired.then((client) => this.#useOn(client, call, large));
  }

  #useOn<T>(client: Client, call: (client: Client) => Promise<T>, large: boolean): Promise<T> {
    const slot = this.#busy.get(client)!;
    let running: Promise<T>;
    try {
      running = call(client);
    } catch (error) {
      this.#release(client, large, !leavesConnectionUsable(error));
      return Promise.reject(error);
    }
    if (!large) return running.then(slot.done as (result: T) => T, slot.failed);
    return running.then((result) => {
      this.#release(client, large, false);
      return result;
    }, (error) => {
      this.#release(client, large, !leavesConnectionUsable(error));
      throw error;
    });
  }

  // ---- idle timeout: one timer, armed for the oldest idle client

  #arm(): void {
    if (this.poolIdleTimeout === 0 || this.#timer !== undefined || this.#idle.length === 0) return;
    const due = this.#idle[0].since + this.poolIdleTimeout;
    this.#timer = setTimeout(() => this.#expire(), Math.max(0, due - Date.now()));
  }

  #disarm(): void {
    if (this.#timer !== undefined) {
      clearTimeout(this.#timer);
      this.#timer = undefined;
    }
  }

  #expire(): void {
    this.#timer = undefined;
    const cutoff = Date.now() - this.poolIdleTimeout;
    let n = 0;
    while (n < this.#idle.length && this.#idle[n].since <= cutoff) n++;
    for (const { client } of this.#idle.splice(0, n)) this.#destroy(client);
    this.#arm();
  }

  // ---- the commands: each runs on a pooled connection

  /**
   * Checks a key and adds the prefix.
   *
   * @returns the key's wire bytes, prefix included.
   * @throws {MemcacheIllegalInputError} for a key memcached cannot take.
   */
  checkKey(key: string): Uint8Array {
    return this.#template.checkKey(key);
  }

  /** Runs command `name` on a pooled client; the get family's failures give its miss with ignoreExc. */
  #run(name: CommandName, args: unknown[]): Promise<unknown> {
    // deno-lint-ignore no-explicit-any
    const call = (client: Client) => (client[name] as (...args: any[]) => Promise<unknown>)(...args);
    const row = rowOf(name);
    const large = STORES.has(name) && isLarge(args[1]);
    if (!row.read || !this.ignoreExc) return this.#use(call, large);
    return this.#use(call, large).catch((error) => {
      if (error instanceof MemcacheIllegalInputError) throw error;
      return missOf(row, args);
    });
  }

  // ---- generated by scripts/gen_commands.ts from src/commands.ts: do not edit by hand
  /**
   * Stores a value. Resolves to `true` (always, as pymemcache: with
   * noreply nothing is known; otherwise failures throw).
   *
   * @throws {MemcacheIllegalInputError} for a bad key, value, expire or flags (nothing is sent).
   * @throws {MemcacheServerError} e.g. for a value over the server's item size (with noreply the server stays silent).
   */
  set(key: string, value: unknown, options: StoreOptions = {}): Promise<true> {
    return this.#run("set", [key, value, options]) as Promise<true>;
  }

  /** Stores only if the key is absent: `true` if stored (or noreply), `false` if it exists. */
  add(key: string, value: unknown, options: StoreOptions = {}): Promise<boolean> {
    return this.#run("add", [key, value, options]) as Promise<boolean>;
  }

  /** Stores only if the key exists: `true` if stored (or noreply), `false` if it is absent. */
  replace(key: string, value: unknown, options: StoreOptions = {}): Promise<boolean> {
    return this.#run("replace", [key, value, options]) as Promise<boolean>;
  }

  /** Appends bytes to an existing value: `true` if done (or noreply), `false` if absent. */
  append(key: string, value: unknown, options: StoreOptions = {}): Promise<boolean> {
    return this.#run("append", [key, value, options]) as Promise<boolean>;
  }

  /** Prepends bytes to an existing value: `true` if done (or noreply), `false` if absent. */
  prepend(key: string, value: unknown, options: StoreOptions = {}): Promise<boolean> {
    return this.#run("prepend", [key, value, options]) as Promise<boolean>;
  }

  /**
   * Check-and-set: `true` if stored, `false` if the item changed since
   * `cas` was read, `null` if it does not exist. Waits for the reply unless
   * `noreply: true` (then `true`).
   */
  cas(key: string, value: unknown, cas: string | number | bigint, options: StoreOptions = {}): Promise<boolean | null> {
    return this.#run("cas", [key, value, cas, options]) as Promise<boolean | null>;
  }

  /**
   * Stores many values, pipelined. Resolves to the keys (as passed) that
   * were not stored; always empty with noreply.
   */
  setMany(values: Mapping, options: StoreOptions = {}): Promise<string[]> {
    return this.#run("setMany", [values, options]) as Promise<string[]>;
  }

  /** Alias of {@linkcode PooledClient.setMany}. */
  setMulti(values: Mapping, options: StoreOptions = {}): Promise<string[]> {
    return this.setMany(values, options);
  }

  /**
   * The value of `key`, or `defaultValue` on a miss. A byte value up to
   * 4 KiB may be a view of a shared `ArrayBuffer`; see {@linkcode PooledClient.getMany}.
   */
  get(key: string, defaultValue: Value = null): Promise<Value> {
    return this.#run("get", [key, defaultValue]) as Promise<Value>;
  }

  /**
   * The values of the keys found, keyed as passed (without the prefix).
   * Byte values up to 4 KiB may be views of a shared 8 KiB `ArrayBuffer`,
   * as Node's pooled Buffers are (see the README): `value.slice()` before
   * transferring a value's `.buffer` or keeping it for long.
   */
  getMany(keys: Iterable<string>): Promise<Map<string, Value>> {
    return this.#run("getMany", [keys]) as Promise<Map<string, Value>>;
  }

  /** Alias of {@linkcode PooledClient.getMany}. */
  getMulti(keys: Iterable<string>): Promise<Map<string, Value>> {
    return this.getMany(keys);
  }

  /** `[value, cas]` of `key`, or `[defaultValue, casDefault]` on a miss. */
  gets(key: string, defaultValue: Value = null, casDefault: string | null = null): Promise<[Value, string | null]> {
    return this.#run("gets", [key, defaultValue, casDefault]) as Promise<[Value, string | null]>;
  }

  /** `[value, cas]` of every key found, keyed as passed. */
  getsMany(keys: Iterable<string>): Promise<Map<string, [Value, string]>> {
    return this.#run("getsMany", [keys]) as Promise<Map<string, [Value, string]>>;
  }

  /** Like {@linkcode PooledClient.get}, setting the item's expiry to `expire` seconds. */
  gat(key: string, expire = 0, defaultValue: Value = null): Promise<Value> {
    return this.#run("gat", [key, expire, defaultValue]) as Promise<Value>;
  }

  /** Like {@linkcode PooledClient.gets}, setting the item's expiry to `expire` seconds. */
  gats(
    key: string,
    expire = 0,
    defaultValue: Value = null,
    casDefault: string | null = null,
  ): Promise<[Value, string | null]> {
    return this.#run("gats", [key, expire, defaultValue, casDefault]) as Promise<[Value, string | null]>;
  }

  /** Deletes `key`: `true` if deleted (or noreply), `false` if it was absent. */
  delete(key: string, options: NoreplyOptions = {}): Promise<boolean> {
    return this.#run("delete", [key, options]) as Promise<boolean>;
  }

  /** Deletes many keys, pipelined. Resolves `true`. */
  deleteMany(keys: Iterable<string>, options: NoreplyOptions = {}): Promise<true> {
    return this.#run("deleteMany", [keys, options]) as Promise<true>;
  }

  /** Alias of {@linkcode PooledClient.deleteMany}. */
  deleteMulti(keys: Iterable<string>, options: NoreplyOptions = {}): Promise<true> {
    return this.deleteMany(keys, options);
  }

  /**
   * Adds `value` to a decimal counter. Resolves to the new value (a
   * `bigint` above 2^53-1), or `null` if the key is absent or with
   * noreply. Waits for the reply unless `noreply: true`.
   */
  incr(key: string, value: number | bigint, options: NoreplyOptions = {}): Promise<number | bigint | null> {
    return this.#run("incr", [key, value, options]) as Promise<number | bigint | null>;
  }

  /** Subtracts from a counter; memcached stops at 0. Otherwise as {@linkcode PooledClient.incr}. */
  decr(key: string, value: number | bigint, options: NoreplyOptions = {}): Promise<number | bigint | null> {
    return this.#run("decr", [key, value, options]) as Promise<number | bigint | null>;
  }

  /** Sets the expiry of `key`: `true` if touched (or noreply), `false` if absent. */
  touch(key: string, expire = 0, options: NoreplyOptions = {}): Promise<boolean> {
    return this.#run("touch", [key, expire, options]) as Promise<boolean>;
  }

  /**
   * Server statistics, `stats` plus optional arguments (`"settings"`,
   * `"slabs"`, ...). Values are converted as pymemcache's STAT_TYPES:
   * integers where they parse, a few floats and booleans, else strings.
   */
  stats(...args: string[]): Promise<Record<string, string | number | boolean>> {
    return this.#run("stats", args) as Promise<Record<string, string | number | boolean>>;
  }

  /** Sets the server's memory limit in megabytes. Resolves `true`. */
  cacheMemlimit(megabytes: number): Promise<true> {
    return this.#run("cacheMemlimit", [megabytes]) as Promise<true>;
  }

  /** The server's version string, such as `"1.6.18"`. */
  version(): Promise<string> {
    return this.#run("version", []) as Promise<string>;
  }

  /** Sets the server's log verbosity. Resolves `true`. */
  verbosity(level: number, options: NoreplyOptions = {}): Promise<true> {
    return this.#run("verbosity", [level, options]) as Promise<true>;
  }

  /**
   * Invalidates every item, after `delay` seconds. `true` once the server
   * confirms (or with noreply).
   */
  flushAll(delay = 0, options: NoreplyOptions = {}): Promise<boolean> {
    return this.#run("flushAll", [delay, options]) as Promise<boolean>;
  }

  /**
   * Asks the server to shut down (memcached needs `-A`). Resolves once the
   * server closed the connection.
   *
   * @throws {MemcacheUnknownCommandError} when the server has shutdown disabled.
   */
  shutdown(graceful = false): Promise<void> {
    return this.#run("shutdown", [graceful]) as Promise<void>;
  }

  /**
   * Sends one command line as is and returns the reply bytes before the
   * first `endTokens` (error lines throw). It runs on a connection of its
   * own, closed afterwards, so a reply longer than `endTokens` says can
   * never be read as another request's reply. A reply may hold at most
   * 64 MiB before `endTokens`; past that the call rejects with
   * `MemcacheUnknownError` and the connection closes.
   */
  rawCommand(command: string | Uint8Array, endTokens: string | Uint8Array = "\r\n"): Promise<Uint8Array> {
    return this.#run("rawCommand", [command, endTokens]) as Promise<Uint8Array>;
  }

  /**
   * `mg`: reads `key` (a string, or any bytes as a `Uint8Array`, sent
   * base64) with what `options` asks for: by default its value (through
   * the serde), plus any of cas, TTL, size, last access, hit-before, and
   * touch, vivify-on-miss and early-recache leases. A miss resolves to
   * `{ hit: false, … }`. See {@linkcode MetaGetOptions}, {@linkcode MetaResult}.
   *
   * @throws {MemcacheIllegalInputError} for a bad key or option (nothing is sent).
   * @throws {MemcacheUnknownCommandError} when the server does not speak meta.
   */
  metaGet(key: MetaKey, options?: MetaGetOptions): Promise<MetaResult> {
    return this.#run("metaGet", [key, options]) as Promise<MetaResult>;
  }

  /**
   * Reads many keys in one round trip: a quiet `mg … q` per key (misses
   * send nothing) closed by one `mn`. Resolves to the hits, keyed by the
   * keys as passed (a `Uint8Array` key: that very object).
   */
  metaGetMany(keys: Iterable<MetaKey>, options?: MetaGetManyOptions): Promise<Map<MetaKey, MetaResult>> {
    return this.#run("metaGetMany", [keys, options]) as Promise<Map<MetaKey, MetaResult>>;
  }

  /**
   * `ms`: stores `value` (through the serde) under `key`, by `mode` (set,
   * add, replace, append, prepend), optionally against a `cas` (with
   * `invalidate`: an older cas stores a stale item). Resolves with
   * `stored`; `status` says why not (`NS` not stored, `EX` cas mismatch,
   * `NF` not found). With `noreply` the server answers only failures.
   */
  metaSet(key: MetaKey, value: unknown, options?: MetaSetOptions): Promise<MetaResult> {
    return this.#run("metaSet", [key, value, options]) as Promise<MetaResult>;
  }

  /**
   * `md`: deletes `key` (`deleted`), optionally only at a `cas`; with
   * `invalidate` it marks the item stale instead, so the next reader gets
   * `win` and the others the old value with `stale`.
   */
  metaDelete(key: MetaKey, options?: MetaDeleteOptions): Promise<MetaResult> {
    return this.#run("metaDelete", [key, options]) as Promise<MetaResult>;
  }

  /**
   * `ma`: adds `delta` (default 1) to a decimal counter, or subtracts it
   * with `mode: "decr"` (stopping at 0); with `vivify` a missing counter is
   * created at `initial` (the delta is not applied then). `value` is the
   * new counter, a `number` or, above 2^53-1, a `bigint`.
   */
  metaArithmetic(key: MetaKey, options?: MetaArithmeticOptions): Promise<MetaResult> {
    return this.#run("metaArithmetic", [key, options]) as Promise<MetaResult>;
  }

  /** `mn`: resolves `true` once the server has answered everything sent before it. */
  metaNoop(): Promise<true> {
    return this.#run("metaNoop", []) as Promise<true>;
  }

  /**
   * The value of `key`, or on a miss `loader(key)`'s value, stored for
   * `options.ttl` seconds, such that concurrent callers run the loader
   * once: in this client (concurrent calls for a key share one request and
   * one loader run), and across clients, processes and machines (a meta
   * lease: one caller wins and loads, the others wait for its value up to
   * `lease.wait` ms, then load themselves). With `recacheWithin`, a hit
   * about to expire is refreshed in the background by one caller
   * fleet-wide while every caller gets the current value; a stale item
   * (see {@linkcode PooledClient.invalidate}) is served the same way while one
   * caller recomputes it. A loader that throws rejects its callers with
   * that error and hands the lease back at once. A loader result of
   * `undefined` is returned and not stored. When memcached fails, the
   * loader's value is returned all the same and the error goes to
   * `options.onError`. No connection is held while the loader runs. See
   * {@linkcode GetOrSetOptions}.
   *
   * Each memcached request in it takes a pooled connection for itself alone: none is held while the loader
   * runs.
   *
   * @throws {MemcacheIllegalInputError} for a bad key, a loader that is not a function or bad options (nothing is sent).
   */
  getOrSet(key: string, loader: Loader, options: GetOrSetOptions): Promise<Value> {
    return runComposed("getOrSet", this, [key, loader, options]) as Promise<Value>;
  }

  /**
   * Marks `key` stale instead of deleting it (`md I`, for `staleFor`
   * seconds if given): every {@linkcode PooledClient.getOrSet} of it then gets
   * the stale value at once while one of them, fleet-wide, recomputes it.
   * Resolves `true` if the item existed, `false` if not.
   *
   * @throws {MemcacheIllegalInputError} for a bad key or `staleFor` (nothing is sent).
   */
  invalidate(key: string, options?: InvalidateOptions): Promise<boolean> {
    return this.#run("invalidate", [key, options]) as Promise<boolean>;
  }
  // ---- end of generated code

  // ---- lifecycle

  /**
   * Sends `quit` on every connection (after the requests already on it)
   * and waits for them to close. The client stays usable.
   */
  quit(): Promise<void> {
    return this.#clear((client) => client.quit());
  }

  /**
   * Closes every connection: requests waiting for replies reject, as in
   * {@linkcode Client.close}. The client stays usable: the next call opens
   * a new connection.
   */
  close(): Promise<void> {
    return this.#clear((client) => client.close());
  }

  async #clear(end: (client: Client) => Promise<void>): Promise<void> {
    this.#disarm();
    const clients = [...this.#idle.map((i) => i.client), ...this.#busy.keys()];
    this.#idle = [];
    this.#busy.clear();
    // Connections destroyed before this call are waited for too; ones that
    // calls made meanwhile open are theirs, not this call's.
    const destroyed = [...this.#closing];
    await Promise.all([...clients.map(end), ...destroyed]);
  }

  /** Same as {@linkcode PooledClient.close}, for `await using`. */
  [Symbol.asyncDispose](): Promise<void> {
    return this.close();
  }
}
