/**
 * `PooledClient`: one memcached server over a pool of connections, with
 * pymemcache's `PooledClient` API and semantics.
 *
 * @module
 */

import {
  Client,
  type ClientOptions,
  type Mapping,
  type NoreplyOptions,
  type StoreOptions,
  type Value,
} from "./client.ts";
import {
  MemcacheError,
  MemcacheIllegalInputError,
  MemcacheServerError,
  MemcacheUnexpectedCloseError,
  MemcacheUnknownCommandError,
} from "./errors.ts";
import type { Serde } from "./serde.ts";
import type { ServerAddress, ServerSpec } from "./transport.ts";
import { defaultPoolLimit } from "./_default_transport.ts";

/** Options of {@linkcode PooledClient}: those of {@linkcode ClientOptions} plus the pool's. */
export interface PooledClientOptions extends ClientOptions {
  /**
   * Most connections open at once. A call gets a connection to itself
   * while one is free or can be opened, as in pymemcache; past that, see
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
   * When all `maxPoolSize` connections are busy: `true` queues the call on
   * the connection with the fewest requests in flight (it waits behind
   * them, pipelined); `false` rejects it with `MemcacheError` at once.
   * @default {true}
   */
  poolBlocking?: boolean;
}

/** Default {@linkcode PooledClientOptions.maxPoolSize}. */
const DEFAULT_MAX_POOL_SIZE = 10;

interface Idle {
  client: Client;
  since: number;
}

/**
 * Whether an error leaves the connection it happened on in doubt. Input
 * errors, serde errors, `ERROR` and a well-framed `SERVER_ERROR` leave it
 * intact; anything else (timeouts, closes, `CLIENT_ERROR`, unparseable
 * replies) means the connection is gone.
 */
function breaksConnection(error: unknown): boolean {
  if (!(error instanceof MemcacheError)) return false; // thrown by the serde or a caller's value
  if (error instanceof MemcacheIllegalInputError || error instanceof MemcacheUnknownCommandError) return false;
  if (error instanceof MemcacheServerError && !(error instanceof MemcacheUnexpectedCloseError)) return false;
  return true;
}

/**
 * A client for one memcached server that runs requests on up to
 * `maxPoolSize` connections, mirroring pymemcache's `PooledClient`.
 *
 * A call takes a free connection for itself (the most recently used one
 * first), or opens a new one while fewer than `maxPoolSize` are open, so
 * a slow request only holds up its own connection. When all are busy, the
 * call queues behind the requests on the least busy connection and is
 * pipelined with them (`poolBlocking: true`, the default; its `timeout`
 * counts the wait, and if a request ahead of it times out, the connection
 * closes and the call fails with it), or rejects at once
 * (`poolBlocking: false`). The pool never opens more than `maxPoolSize`
 * connections. A connection that failed
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
export class PooledClient {
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
  #busy = new Map<Client, number>();
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
    this.poolIdleTimeout = poolIdleTimeout ?? 0;
    if (
      !(typeof this.poolIdleTimeout === "number" && this.poolIdleTimeout >= 0 && Number.isFinite(this.poolIdleTimeout))
    ) {
      throw new TypeError("poolIdleTimeout must be a non-negative number of milliseconds");
    }
    this.poolBlocking = poolBlocking ?? true;
  }

  /** Connections open or opening now (busy and idle). */
  get size(): number {
    return this.#busy.size + this.#idle.length;
  }

  // ---- the pool

  /**
   * A client for one call: an idle one, else a new one while under
   * maxPoolSize, else (blocking) the busy one with the fewest requests in
   * flight, where the call queues behind them in the pipeline.
   */
  #acquire(): Client {
    const top = this.#idle[this.#idle.length - 1];
    if (top !== undefined && this.poolIdleTimeout > 0 && top.since <= Date.now() - this.poolIdleTimeout) {
      this.#disarm(); // the timer is late: expire now (if the newest expired, all have)
      this.#expire();
    }
    const idle = this.#idle.pop();
    if (idle !== undefined) {
      if (this.#idle.length === 0) this.#disarm();
      this.#busy.set(idle.client, 1);
      return idle.client;
    }
    if (this.#busy.size < this.maxPoolSize) {
      const client = new Client(this.#spec, this.#options);
      this.#busy.set(client, 1);
      return client;
    }
    if (!this.poolBlocking) {
      throw new MemcacheError(`All ${this.maxPoolSize} pooled connections are busy (poolBlocking is false)`, {
        server: this.server,
      });
    }
    let best!: Client;
    let fewest = Infinity;
    for (const [client, n] of this.#busy) {
      if (n < fewest) {
        fewest = n;
        best = client;
      }
    }
    this.#busy.set(best, fewest + 1);
    return best;
  }

  /** Gives a client back after a call; `failed` destroys it instead. */
  #release(client: Client, failed: boolean): void {
    const n = this.#busy.get(client);
    if (n === undefined) return; // destroyed by another call, or the pool was closed
    if (failed) {
      this.#busy.delete(client);
      this.#destroy(client);
    } else if (n > 1) {
      this.#busy.set(client, n - 1);
    } else {
      this.#busy.delete(client);
      this.#idle.push({ client, since: Date.now() });
      this.#arm();
    }
  }

  #destroy(client: Client): void {
    const closing = client.close();
    this.#closing.add(closing);
    closing.finally(() => this.#closing.delete(closing));
  }

  /** Runs `call` on a pooled client, giving it back (or destroying it) afterwards. */
  async #use<T>(call: (client: Client) => Promise<T>): Promise<T> {
    const client = this.#acquire();
    let result: T;
    try {
      result = await call(client);
    } catch (error) {
      this.#release(client, breaksConnection(error));
      throw error;
    }
    this.#release(client, false);
    return result;
  }

  /** Like #use, for the get family: with ignoreExc, failures (not bad input) give `fallback`. */
  async #get<T>(call: (client: Client) => Promise<T>, fallback: () => T): Promise<T> {
    try {
      return await this.#use(call);
    } catch (error) {
      if (this.ignoreExc && !(error instanceof MemcacheIllegalInputError)) return fallback();
      throw error;
    }
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

  // ---- Client's methods, each on a pooled connection

  /**
   * Checks a key and adds the prefix.
   *
   * @returns the key's wire bytes, prefix included.
   * @throws {MemcacheIllegalInputError} for a key memcached cannot take.
   */
  checkKey(key: string): Uint8Array {
    return this.#template.checkKey(key);
  }

  /** As {@linkcode Client.set}: resolves `true`. */
  set(key: string, value: unknown, options?: StoreOptions): Promise<true> {
    return this.#use((c) => c.set(key, value, options));
  }

  /** As {@linkcode Client.add}: `true` if stored (or noreply), `false` if the key exists. */
  add(key: string, value: unknown, options?: StoreOptions): Promise<boolean> {
    return this.#use((c) => c.add(key, value, options));
  }

  /** As {@linkcode Client.replace}: `true` if stored (or noreply), `false` if the key is absent. */
  replace(key: string, value: unknown, options?: StoreOptions): Promise<boolean> {
    return this.#use((c) => c.replace(key, value, options));
  }

  /** As {@linkcode Client.append}: `true` if done (or noreply), `false` if absent. */
  append(key: string, value: unknown, options?: StoreOptions): Promise<boolean> {
    return this.#use((c) => c.append(key, value, options));
  }

  /** As {@linkcode Client.prepend}: `true` if done (or noreply), `false` if absent. */
  prepend(key: string, value: unknown, options?: StoreOptions): Promise<boolean> {
    return this.#use((c) => c.prepend(key, value, options));
  }

  /** As {@linkcode Client.cas}: `true` stored, `false` changed meanwhile, `null` not found. */
  cas(key: string, value: unknown, cas: string | number | bigint, options?: StoreOptions): Promise<boolean | null> {
    return this.#use((c) => c.cas(key, value, cas, options));
  }

  /** As {@linkcode Client.setMany}: the keys not stored (empty with noreply). */
  setMany(values: Mapping, options?: StoreOptions): Promise<string[]> {
    return this.#use((c) => c.setMany(values, options));
  }

  /** Alias of {@linkcode PooledClient.setMany}. */
  setMulti(values: Mapping, options?: StoreOptions): Promise<string[]> {
    return this.setMany(values, options);
  }

  /** As {@linkcode Client.get}: the value, or `defaultValue` on a miss. */
  get(key: string, defaultValue: Value = null): Promise<Value> {
    return this.#get((c) => c.get(key, defaultValue), () => defaultValue);
  }

  /** As {@linkcode Client.getMany}: the values found, keyed as passed. */
  getMany(keys: Iterable<string>): Promise<Map<string, Value>> {
    return this.#get((c) => c.getMany(keys), () => new Map());
  }

  /** Alias of {@linkcode PooledClient.getMany}. */
  getMulti(keys: Iterable<string>): Promise<Map<string, Value>> {
    return this.getMany(keys);
  }

  /** As {@linkcode Client.gets}: `[value, cas]`, or `[defaultValue, casDefault]` on a miss. */
  gets(key: string, defaultValue: Value = null, casDefault: string | null = null): Promise<[Value, string | null]> {
    return this.#get((c) => c.gets(key, defaultValue, casDefault), () => [defaultValue, casDefault]);
  }

  /** As {@linkcode Client.getsMany}: `[value, cas]` of every key found. */
  getsMany(keys: Iterable<string>): Promise<Map<string, [Value, string]>> {
    return this.#get((c) => c.getsMany(keys), () => new Map());
  }

  /** As {@linkcode Client.gat}: like get, setting the expiry to `expire` seconds. */
  gat(key: string, expire = 0, defaultValue: Value = null): Promise<Value> {
    return this.#get((c) => c.gat(key, expire, defaultValue), () => defaultValue);
  }

  /** As {@linkcode Client.gats}: like gets, setting the expiry to `expire` seconds. */
  gats(
    key: string,
    expire = 0,
    defaultValue: Value = null,
    casDefault: string | null = null,
  ): Promise<[Value, string | null]> {
    return this.#get((c) => c.gats(key, expire, defaultValue, casDefault), () => [defaultValue, casDefault]);
  }

  /** As {@linkcode Client.delete}: `true` if deleted (or noreply), `false` if absent. */
  delete(key: string, options?: NoreplyOptions): Promise<boolean> {
    return this.#use((c) => c.delete(key, options));
  }

  /** As {@linkcode Client.deleteMany}: resolves `true`. */
  deleteMany(keys: Iterable<string>, options?: NoreplyOptions): Promise<true> {
    return this.#use((c) => c.deleteMany(keys, options));
  }

  /** Alias of {@linkcode PooledClient.deleteMany}. */
  deleteMulti(keys: Iterable<string>, options?: NoreplyOptions): Promise<true> {
    return this.deleteMany(keys, options);
  }

  /** As {@linkcode Client.incr}: the new value, or `null` if absent or with noreply. */
  incr(key: string, value: number | bigint, options?: NoreplyOptions): Promise<number | bigint | null> {
    return this.#use((c) => c.incr(key, value, options));
  }

  /** As {@linkcode Client.decr}: the new value (memcached stops at 0), or `null`. */
  decr(key: string, value: number | bigint, options?: NoreplyOptions): Promise<number | bigint | null> {
    return this.#use((c) => c.decr(key, value, options));
  }

  /** As {@linkcode Client.touch}: `true` if touched (or noreply), `false` if absent. */
  touch(key: string, expire = 0, options?: NoreplyOptions): Promise<boolean> {
    return this.#use((c) => c.touch(key, expire, options));
  }

  /** As {@linkcode Client.stats}, on one of the pool's connections. */
  stats(...args: string[]): Promise<Record<string, string | number | boolean>> {
    return this.#use((c) => c.stats(...args));
  }

  /** As {@linkcode Client.cacheMemlimit}: resolves `true`. */
  cacheMemlimit(megabytes: number): Promise<true> {
    return this.#use((c) => c.cacheMemlimit(megabytes));
  }

  /** As {@linkcode Client.version}: the server's version string. */
  version(): Promise<string> {
    return this.#use((c) => c.version());
  }

  /** As {@linkcode Client.verbosity}: resolves `true`. */
  verbosity(level: number, options?: NoreplyOptions): Promise<true> {
    return this.#use((c) => c.verbosity(level, options));
  }

  /** As {@linkcode Client.flushAll}: `true` once confirmed (or with noreply). */
  flushAll(delay = 0, options?: NoreplyOptions): Promise<boolean> {
    return this.#use((c) => c.flushAll(delay, options));
  }

  /** As {@linkcode Client.shutdown}: asks the server to shut down (memcached needs `-A`). */
  shutdown(graceful = false): Promise<void> {
    return this.#use((c) => c.shutdown(graceful));
  }

  /**
   * As {@linkcode Client.rawCommand}. Like Client's, it runs on a
   * short-lived connection of its own (not counted in `maxPoolSize`), while
   * holding a pool slot.
   */
  rawCommand(command: string | Uint8Array, endTokens: string | Uint8Array = "\r\n"): Promise<Uint8Array> {
    return this.#use((c) => c.rawCommand(command, endTokens));
  }

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
