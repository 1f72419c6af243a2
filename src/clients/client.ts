/**
 * `Client`: one memcached server over one pipelined connection, with
 * pymemcache's `Client` API and semantics.
 *
 * The class keeps its public members (gen_commands.ts reads their signatures
 * and docs here), the pipeline and the single-key reads that coalesce on it;
 * the rest is in the _client_*.ts modules it delegates to over a `ClientCore`.
 *
 * @module
 */

import { Connection } from "../connection/_connection.ts";
import type { ConnectionObserver } from "../connection/_connection_options.ts";
import { defaultTransport } from "../connection/_default_transport.ts";
import { checkKey as checkWireKey, keyBytes } from "../protocol/_keys.ts";
import { encodeQuit, encodeRetrieve } from "../protocol/_text_commands.ts";
import { EXPECT_VALUES } from "../protocol/_reply_parser.ts";
import type { Item } from "../protocol/_wire.ts";
import type { Mapping } from "./_mapping.ts";
import { checkLimitMs } from "./_options.ts";
import { endBackground, requestTimeout } from "./_background.ts";
import type {
  MetaArithmeticOptions,
  MetaDeleteOptions,
  MetaGetManyOptions,
  MetaGetOptions,
  MetaKey,
  MetaResult,
  MetaSetOptions,
} from "../protocol/_meta.ts";
import {
  getOrSet as stampedeGetOrSet,
  type GetOrSetOptions,
  invalidate as stampedeInvalidate,
  type InvalidateOptions,
  type Loader,
} from "./_get_or_set.ts";
import { connectionObserver, observeCommands } from "./_observe.ts";
import { checkCas, checkExpire } from "../protocol/_validate.ts";
import { defaultSerde, type Serde } from "../values/serde.ts";
import { addressName, parseServerSpec, type ServerAddress, type ServerSpec } from "../connection/transport.ts";
import type { Transport } from "../connection/transport.ts";
import {
  type ClientCore,
  type ClientOptions,
  DEFAULT_CONNECT_TIMEOUT,
  DEFAULT_MAX_QUEUE,
  DEFAULT_TIMEOUT,
  type GetFlight,
} from "./_client_types.ts";
import { checkClientCert, clientLogin, type Login, loginTransport } from "./_client_auth.ts";
import { context, deserialize, inputs, isPromise, noCas } from "./_client_core.ts";
import { arithmetic, deleteOne, fetchMany, store, storeMany, touchOne } from "./_client_store.ts";
import * as meta from "./_client_meta.ts";
import * as admin from "./_client_server.ts";

export type { Mapping };
export type { AuthOptions, ClientOptions } from "./_client_types.ts";

// StoreOptions, NoreplyOptions and Value are declared here, not in _client_types.ts: gen_commands.ts
// imports the types of Client's signatures from where client.ts declares or imports them.

/** Per-call options of the storage commands. */
export interface StoreOptions {
  /** Seconds until the item expires (0: never; over 30 days: a unix time). @default {0} */
  expire?: number;
  /** Do not wait for the server's reply. @default {ClientOptions.defaultNoreply} */
  noreply?: boolean;
  /** Overrides the flags the serde chose. */
  flags?: number;
}

/** Per-call option of commands that only take `noreply`. */
export interface NoreplyOptions {
  /** Do not wait for the server's reply. */
  noreply?: boolean;
}

/** Workers: a connection of another request stalled this long (ms) was abandoned by it. */
const ABANDONED_MS = 60_000;

/** A memcached item's value, as the serde returns it. */
// deno-lint-ignore no-explicit-any
export type Value = any;

/**
 * A client for one memcached server, mirroring pymemcache's `Client`.
 *
 * Requests are pipelined on one connection: calls made in the same tick
 * go out in one write, and replies are matched in order. Concurrent `get`s
 * of one key with no other command between them share one request (each
 * caller still gets a value of its own). The constructor
 * does not connect; the first call does. After a timeout, an unexpected
 * close or an unparseable reply the connection is dropped, every request
 * waiting on it rejects, and the next call reconnects.
 *
 * Keys are strings of at most 250 bytes (prefix included), without
 * whitespace or control characters; non-ASCII only with `allowUnicodeKeys`.
 *
 * @example
 * ```ts ignore
 * import { Client } from "@memkit/memcache";
 * await using client = new Client("127.0.0.1:11211");
 * await client.set("greeting", "hello", { expire: 60 });
 * console.log(await client.get("greeting")); // "hello"
 * ```
 */
export class Client {
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
  #options: ClientOptions;
  /** ms, or `undefined` for no limit (see ClientOptions). */
  #connectTimeout: number | undefined;
  #timeout: number | undefined;
  #transport: Transport | Promise<Transport> | undefined;
  /** `auth`'s login, sent first on every connection (see _client_auth.ts). */
  #login: Login | undefined;
  /** What the modules this class delegates to see of it (see ClientCore). */
  #core: ClientCore;
  #conn: Connection | null = null;
  /** Every connection opened and not yet closed. */
  #closing = new Set<Connection>();
  /** Those of them that carry the pipeline (not rawCommand's). */
  #pipelines = new Set<Connection>();
  /**
   * The last `get` sent on the pipeline, while unanswered and no other
   * command was issued after it: a `get` of the same key joins it instead
   * of sending its own (in-process coalescing of a hot key). Any other
   * command ends it (see #connection): a `get` made after a `set` sees it.
   */
  #lastGet: GetFlight | undefined;

  /**
   * Creates a client for `server`; it connects on the first call, not here.
   *
   * @param server where the server listens; see {@linkcode ServerSpec}.
   * @throws {TypeError} for an invalid server spec.
   * @throws {MemcacheIllegalInputError} for an invalid key prefix.
   */
  constructor(server: ServerSpec, options: ClientOptions = {}) {
    this.address = parseServerSpec(server);
    this.server = addressName(this.address);
    this.#options = options;
    this.serde = options.serde ?? defaultSerde;
    this.keyPrefix = options.keyPrefix ?? "";
    this.defaultNoreply = options.defaultNoreply ?? true;
    this.ignoreExc = options.ignoreExc ?? false;
    this.allowUnicodeKeys = options.allowUnicodeKeys ?? false;
    this.#transport = options.transport;
    this.#observer = connectionObserver(options.observer);
    observeCommands(this, this.server, options.observer, true);
    if (this.keyPrefix !== "") checkWireKey(this.keyPrefix, "", this.allowUnicodeKeys);
    this.#connectTimeout = checkLimitMs("connectTimeout", options.connectTimeout, DEFAULT_CONNECT_TIMEOUT);
    this.#timeout = checkLimitMs("timeout", options.timeout, DEFAULT_TIMEOUT);
    const maxQueue = options.maxQueue;
    if (maxQueue !== undefined && !(maxQueue === Infinity || (Number.isInteger(maxQueue) && maxQueue >= 1))) {
      throw new TypeError(`maxQueue must be a positive integer or Infinity, got ${String(maxQueue)}`);
    }
    checkClientCert(options.tls);
    this.#login = clientLogin(options.auth, this.server);
    this.#core = {
      server: this.server,
      serde: this.serde,
      keyPrefix: this.keyPrefix,
      defaultNoreply: this.defaultNoreply,
      ignoreExc: this.ignoreExc,
      allowUnicodeKeys: this.allowUnicodeKeys,
      connection: () => this.#connection(),
    };
  }

  // ---- connection management

  /** Set when observed: what its connections report to (see _observe.ts). */
  #observer: ConnectionObserver | undefined;

  #connection(): Connection {
    this.#lastGet = undefined; // a later get must not join one sent before this command
    return this.#pipeline();
  }

  /** The pipeline's connection (Workers: the calling request's own), opened if need be. */
  #pipeline(): Connection {
    const conn = this.#conn;
    if (conn !== null && conn.usable) return conn;
    // Workers: #conn may be another request's; this request's own may still be open.
    for (const own of this.#pipelines) if (own.usable) return this.#conn = own;
    const fresh = this.#conn = this.#open();
    this.#pipelines.add(fresh);
    fresh.closed.finally(() => this.#pipelines.delete(fresh));
    return fresh;
  }

  #open(): Connection {
    const o = this.#options;
    this.#transport ??= defaultTransport();
    const conn = new Connection(
      loginTransport(this.#login, this.server, this.#transport),
      this.address,
      this.server,
      {
        connectTimeout: this.#connectTimeout,
        timeout: this.#timeout,
        maxQueue: o.maxQueue ?? DEFAULT_MAX_QUEUE,
        noDelay: o.noDelay,
        keepAlive: o.keepAlive,
        tls: o.tls === true ? {} : o.tls || undefined,
        observer: this.#observer,
        first: this.#login?.request,
      },
      (closed) => {
        if (this.#conn === closed) this.#conn = null;
      },
    );
    // close() and quit() wait for every connection this client opened to be
    // fully closed, including ones that died on their own: no socket leaks.
    this.#track(conn);
    return conn;
  }

  /** Keeps track of a connection until it is closed, so close() can await it. */
  #track(conn: Connection): void {
    // Workers: an idle connection of another request is closed by that
    // request, or was closed by the runtime when it ended: stop tracking it.
    // So is one stalled mid-call for a minute: its request was cancelled,
    // and nothing of it will run again (kept, it would pile up in a
    // long-lived isolate).
    for (const other of this.#closing) {
      if (other.foreign && (other.pending === 0 || other.stalledFor > ABANDONED_MS)) {
        this.#closing.delete(other);
        this.#pipelines.delete(other);
      }
    }
    this.#closing.add(conn);
    conn.closed.finally(() => this.#closing.delete(conn));
  }

  /**
   * Checks a key and adds the prefix.
   *
   * @returns the key's wire bytes, prefix included.
   * @throws {MemcacheIllegalInputError} for a key memcached cannot take.
   */
  checkKey(key: string): Uint8Array {
    return keyBytes(this.#key(key));
  }

  #key(key: string): string {
    return checkWireKey(key, this.keyPrefix, this.allowUnicodeKeys);
  }

  // ---- storage

  /**
   * Stores a value. Resolves to `true` (always, as pymemcache: with
   * noreply nothing is known; otherwise failures throw).
   *
   * @throws {MemcacheIllegalInputError} for a bad key, value, expire or flags (nothing is sent).
   * @throws {MemcacheServerError} e.g. for a value over the server's item size (with noreply the server stays silent).
   */
  set(key: string, value: unknown, options: StoreOptions = {}): Promise<true> {
    return store(this.#core, "set", key, value, options, undefined, true) as Promise<true>;
  }

  /** Stores only if the key is absent: `true` if stored (or noreply), `false` if it exists. */
  async add(key: string, value: unknown, options: StoreOptions = {}): Promise<boolean> {
    return (await store(this.#core, "add", key, value, options)) !== false;
  }

  /** Stores only if the key exists: `true` if stored (or noreply), `false` if it is absent. */
  async replace(key: string, value: unknown, options: StoreOptions = {}): Promise<boolean> {
    return (await store(this.#core, "replace", key, value, options)) !== false;
  }

  /** Appends bytes to an existing value: `true` if done (or noreply), `false` if absent. */
  async append(key: string, value: unknown, options: StoreOptions = {}): Promise<boolean> {
    return (await store(this.#core, "append", key, value, options)) !== false;
  }

  /** Prepends bytes to an existing value: `true` if done (or noreply), `false` if absent. */
  async prepend(key: string, value: unknown, options: StoreOptions = {}): Promise<boolean> {
    return (await store(this.#core, "prepend", key, value, options)) !== false;
  }

  /**
   * Check-and-set: `true` if stored, `false` if the item changed since
   * `cas` was read, `null` if it does not exist. Waits for the reply unless
   * `noreply: true` (then `true`).
   */
  async cas(
    key: string,
    value: unknown,
    cas: string | number | bigint,
    options: StoreOptions = {},
  ): Promise<boolean | null> {
    const token = inputs(this.#core, "cas", () => checkCas(cas));
    const result = await store(this.#core, "cas", key, value, { ...options, noreply: options.noreply ?? false }, token);
    return result === undefined ? true : result;
  }

  /**
   * Stores many values, pipelined. Resolves to the keys (as passed) that
   * were not stored; always empty with noreply.
   */
  async setMany(values: Mapping, options: StoreOptions = {}): Promise<string[]> {
    return await storeMany(this.#core, values, options);
  }

  /** Alias of {@linkcode Client.setMany}. */
  setMulti(values: Mapping, options: StoreOptions = {}): Promise<string[]> {
    return this.setMany(values, options);
  }

  // ---- retrieval

  /**
   * The value of `key`, or `defaultValue` on a miss. A byte value up to
   * 4 KiB may be a view of a shared `ArrayBuffer`; see {@linkcode Client.getMany}.
   */
  get(key: string, defaultValue: Value = null): Promise<Value> {
    return this.#fetchOne("get", key, false, undefined, defaultValue);
  }

  /**
   * The values of the keys found, keyed as passed (without the prefix).
   * Byte values up to 4 KiB may be views of a shared 8 KiB `ArrayBuffer`,
   * as Node's pooled Buffers are (see the README): `value.slice()` before
   * transferring a value's `.buffer` or keeping it for long.
   */
  getMany(keys: Iterable<string>): Promise<Map<string, Value>> {
    return fetchMany(this.#core, "get", [...keys], false);
  }

  /** Alias of {@linkcode Client.getMany}. */
  getMulti(keys: Iterable<string>): Promise<Map<string, Value>> {
    return this.getMany(keys);
  }

  /** `[value, cas]` of `key`, or `[defaultValue, casDefault]` on a miss. */
  gets(
    key: string,
    defaultValue: Value = null,
    casDefault: string | null = null,
  ): Promise<[Value, string | null]> {
    return this.#fetchOne("gets", key, true, undefined, [defaultValue, casDefault]);
  }

  /** `[value, cas]` of every key found, keyed as passed. */
  getsMany(keys: Iterable<string>): Promise<Map<string, [Value, string]>> {
    return fetchMany(this.#core, "gets", [...keys], true);
  }

  /** Like {@linkcode Client.get}, setting the item's expiry to `expire` seconds. */
  gat(key: string, expire = 0, defaultValue: Value = null): Promise<Value> {
    return this.#fetchOne("gat", key, false, expire, defaultValue);
  }

  /** Like {@linkcode Client.gets}, setting the item's expiry to `expire` seconds. */
  gats(
    key: string,
    expire = 0,
    defaultValue: Value = null,
    casDefault: string | null = null,
  ): Promise<[Value, string | null]> {
    return this.#fetchOne("gats", key, true, expire, [defaultValue, casDefault]);
  }

  /**
   * The single-key path of get, gets, gat and gats: what {@linkcode Client.getMany}
   * does for one key, without its maps and batching, and in one promise: the
   * value (`[value, cas]` with `withCas`) or `miss`. Bad input rejects even
   * with ignoreExc; only the request's own failures become `miss`.
   */
  #fetchOne<T>(command: string, key: string, withCas: boolean, expire: number | undefined, miss: T): Promise<T> {
    let keys: string[];
    let exptime: number | undefined;
    try {
      exptime = expire === undefined ? undefined : checkExpire(expire);
      keys = [this.#key(key)]; // throws before any I/O
    } catch (error) {
      return Promise.reject(context(this.#core, error, command));
    }
    let result: Promise<T>;
    let flight: GetFlight | undefined;
    try {
      let conn: Connection;
      if (command === "get") {
        conn = this.#pipeline();
        const last = this.#lastGet;
        if (last !== undefined && last.wire === keys[0] && last.conn === conn && last.item === undefined) {
          return this.#joinGet(last, key, miss);
        }
      } else conn = this.#connection();
      result = conn.request(
        command,
        EXPECT_VALUES,
        (out) => encodeRetrieve(out, command, keys, exptime),
        keys,
        undefined,
        (reply) => {
          const item = (reply as { items: Item[] }).items[0];
          if (flight !== undefined) {
            flight.item = item ?? null;
            if (this.#lastGet === flight) this.#lastGet = undefined;
          }
          if (item === undefined) return miss;
          if (withCas && item.cas === undefined) throw noCas(item);
          const value = deserialize(this.#core, key, item);
          if (!withCas) return value as T;
          const cas = item.cas;
          return (isPromise(value) ? value.then((v) => [v, cas]) : [value, cas]) as T;
        },
      );
      if (command === "get") this.#lastGet = flight = { wire: keys[0], conn, promise: result, item: undefined };
    } catch (error) {
      result = Promise.reject(error);
    }
    return this.ignoreExc ? result.catch(() => miss) : result;
  }

  /**
   * A `get` that shares `flight`'s request: its own value from the same
   * reply (deserialized again, bytes copied, so no two callers share an
   * object) or `miss`. If the request failed without a reply on a
   * connection still usable (an error reply), it sends its own instead.
   */
  #joinGet<T>(flight: GetFlight, key: string, miss: T): Promise<T> {
    const own = (): T => {
      const item = flight.item!;
      if (item === null) return miss;
      return deserialize(this.#core, key, { key: item.key, flags: item.flags, value: item.value.slice() }) as T;
    };
    const joined = flight.promise.then(own, (error) => {
      if (flight.item !== undefined) return own(); // the reply came; the first caller's serde failed
      if (!flight.conn.usable) throw error;
      if (this.#lastGet === flight) this.#lastGet = undefined;
      return this.#fetchOne("get", key, false, undefined, miss);
    });
    return this.ignoreExc ? joined.catch(() => miss) : joined;
  }

  // ---- other key commands

  /** Deletes `key`: `true` if deleted (or noreply), `false` if it was absent. */
  async delete(key: string, options: NoreplyOptions = {}): Promise<boolean> {
    return await deleteOne(this.#core, key, options);
  }

  /** Deletes many keys, pipelined. Resolves `true`. */
  async deleteMany(keys: Iterable<string>, options: NoreplyOptions = {}): Promise<true> {
    const list = [...keys];
    inputs(this.#core, "delete", () => list.forEach((k) => this.#key(k))); // all keys checked before any is sent
    await Promise.all(this.#connection().batch("delete", () => list.map((k) => this.delete(k, options))));
    return true;
  }

  /** Alias of {@linkcode Client.deleteMany}. */
  deleteMulti(keys: Iterable<string>, options: NoreplyOptions = {}): Promise<true> {
    return this.deleteMany(keys, options);
  }

  /**
   * Adds `value` to a decimal counter. Resolves to the new value (a
   * `bigint` above 2^53-1), or `null` if the key is absent or with
   * noreply. Waits for the reply unless `noreply: true`.
   */
  incr(key: string, value: number | bigint, options: NoreplyOptions = {}): Promise<number | bigint | null> {
    return arithmetic(this.#core, "incr", key, value, options);
  }

  /** Subtracts from a counter; memcached stops at 0. Otherwise as {@linkcode Client.incr}. */
  decr(key: string, value: number | bigint, options: NoreplyOptions = {}): Promise<number | bigint | null> {
    return arithmetic(this.#core, "decr", key, value, options);
  }

  /** Sets the expiry of `key`: `true` if touched (or noreply), `false` if absent. */
  async touch(key: string, expire = 0, options: NoreplyOptions = {}): Promise<boolean> {
    return await touchOne(this.#core, key, expire, options);
  }

  // ---- server commands

  /**
   * Server statistics, `stats` plus optional arguments (`"settings"`,
   * `"slabs"`, ...). Values are converted as pymemcache's STAT_TYPES:
   * integers where they parse, a few floats and booleans, else strings.
   */
  async stats(...args: string[]): Promise<Record<string, string | number | boolean>> {
    return await admin.stats(this.#core, args);
  }

  /** Sets the server's memory limit in megabytes. Resolves `true`. */
  async cacheMemlimit(megabytes: number): Promise<true> {
    return await admin.cacheMemlimit(this.#core, megabytes);
  }

  /** The server's version string, such as `"1.6.18"`. */
  async version(): Promise<string> {
    return await admin.version(this.#core);
  }

  /** Sets the server's log verbosity. Resolves `true`. */
  async verbosity(level: number, options: NoreplyOptions = {}): Promise<true> {
    return await admin.verbosity(this.#core, level, options);
  }

  /**
   * Invalidates every item, after `delay` seconds. `true` once the server
   * confirms (or with noreply).
   */
  async flushAll(delay = 0, options: NoreplyOptions = {}): Promise<boolean> {
    return await admin.flushAll(this.#core, delay, options);
  }

  /**
   * Asks the server to shut down (memcached needs `-A`). Resolves once the
   * server closed the connection.
   *
   * @throws {MemcacheUnknownCommandError} when the server has shutdown disabled.
   */
  async shutdown(graceful = false): Promise<void> {
    return await admin.shutdown(this.#core, graceful);
  }

  /**
   * Sends one command line as is and returns the reply bytes before the
   * first `endTokens` (error lines throw). It runs on a connection of its
   * own, closed afterwards, so a reply longer than `endTokens` says can
   * never be read as another request's reply. A reply may hold at most
   * 64 MiB before `endTokens`; past that the call rejects with
   * `MemcacheUnknownError` and the connection closes.
   */
  async rawCommand(command: string | Uint8Array, endTokens: string | Uint8Array = "\r\n"): Promise<Uint8Array> {
    return await admin.raw(this.#core, () => this.#open(), command, endTokens, admin.rawReplyLimits.get(this));
  }

  // ---- meta protocol (memcached ≥ 1.6.10; in _client_meta.ts, over the codec in _meta.ts)

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
    return meta.metaGet(this.#core, key, options);
  }

  /**
   * Reads many keys in one round trip: a quiet `mg … q` per key (misses
   * send nothing) closed by one `mn`. Resolves to the hits, keyed by the
   * keys as passed (a `Uint8Array` key: that very object).
   */
  metaGetMany(keys: Iterable<MetaKey>, options?: MetaGetManyOptions): Promise<Map<MetaKey, MetaResult>> {
    return meta.metaGetMany(this.#core, keys, options);
  }

  /**
   * `ms`: stores `value` (through the serde) under `key`, by `mode` (set,
   * add, replace, append, prepend), optionally against a `cas` (with
   * `invalidate`: an older cas stores a stale item). Resolves with
   * `stored`; `status` says why not (`NS` not stored, `EX` cas mismatch,
   * `NF` not found). With `noreply` the server answers only failures.
   */
  metaSet(key: MetaKey, value: unknown, options?: MetaSetOptions): Promise<MetaResult> {
    return meta.metaSet(this.#core, key, value, options);
  }

  /**
   * `md`: deletes `key` (`deleted`), optionally only at a `cas`; with
   * `invalidate` it marks the item stale instead, so the next reader gets
   * `win` and the others the old value with `stale`.
   */
  metaDelete(key: MetaKey, options?: MetaDeleteOptions): Promise<MetaResult> {
    return meta.metaDelete(this.#core, key, options);
  }

  /**
   * `ma`: adds `delta` (default 1) to a decimal counter, or subtracts it
   * with `mode: "decr"` (stopping at 0); with `vivify` a missing counter is
   * created at `initial` (the delta is not applied then). `value` is the
   * new counter, a `number` or, above 2^53-1, a `bigint`.
   */
  metaArithmetic(key: MetaKey, options?: MetaArithmeticOptions): Promise<MetaResult> {
    return meta.metaArithmetic(this.#core, key, options);
  }

  /** `mn`: resolves `true` once the server has answered everything sent before it. */
  async metaNoop(): Promise<true> {
    return await meta.metaNoop(this.#core);
  }

  // ---- stampede-protected reads (src/clients/_get_or_set.ts, over the meta commands above)

  /**
   * The value of `key`, or on a miss `loader(key)`'s value, stored for
   * `options.ttl` seconds, such that concurrent callers run the loader
   * once: in this client (concurrent calls for a key share one request and
   * one loader run), and across clients, processes and machines (a meta
   * lease: one caller wins and loads, the others wait for its value up to
   * `lease.wait` ms, then load themselves). With `recacheWithin`, a hit
   * about to expire is refreshed in the background by one caller
   * fleet-wide while every caller gets the current value; a stale item
   * (see {@linkcode Client.invalidate}) is served the same way while one
   * caller recomputes it. A loader that throws rejects its callers with
   * that error and hands the lease back at once. A loader result of
   * `undefined` is returned and not stored. When memcached fails, the
   * loader's value is returned all the same and the error goes to
   * `options.onError`. No connection is held while the loader runs. See
   * {@linkcode GetOrSetOptions}.
   *
   * @throws {MemcacheIllegalInputError} for a bad key, a loader that is not a function or bad options (nothing is sent).
   */
  getOrSet(key: string, loader: Loader, options: GetOrSetOptions): Promise<Value> {
    return stampedeGetOrSet(this, key, loader, options);
  }

  /**
   * Marks `key` stale instead of deleting it (`md I`, for `staleFor`
   * seconds if given): every {@linkcode Client.getOrSet} of it then gets
   * the stale value at once while one of them, fleet-wide, recomputes it.
   * Resolves `true` if the item existed, `false` if not.
   *
   * @throws {MemcacheIllegalInputError} for a bad key or `staleFor` (nothing is sent).
   */
  invalidate(key: string, options?: InvalidateOptions): Promise<boolean> {
    return stampedeInvalidate(this, key, options);
  }

  // ---- lifecycle

  /**
   * Sends `quit` and waits for the server to close the connection. The
   * client stays usable: the next call reconnects. Background refreshes
   * end first, as in {@linkcode Client.close}.
   */
  async quit(): Promise<void> {
    const ending = endBackground(this, this.#timeout);
    if (ending !== undefined) await ending;
    const own = this.#own();
    this.#conn = null;
    // rawCommand's connections close by themselves after their reply.
    await Promise.all(own.map((conn) => this.#pipelines.has(conn) ? conn.quit(encodeQuit) : conn.closed));
  }

  /**
   * Closes the connection: queued noreply requests are written first;
   * requests still waiting for replies reject. The client stays usable.
   *
   * First it ends the client's background work, the refreshes
   * {@linkcode Client.getOrSet} started (`recacheWithin`, stale items):
   * none starts once close() was called; those under way get up to
   * `timeout` ms to finish (5 s with no limit set), then are dropped (a
   * dropped refresh stores nothing and reports nothing; one whose request
   * is in flight gets up to `timeout` more for its reply). So when close()
   * resolves, no refresh reopens a connection or prints anything.
   */
  async close(): Promise<void> {
    const ending = endBackground(this, this.#timeout);
    if (ending !== undefined) await ending;
    const own = this.#own();
    this.#conn = null;
    await Promise.all(own.map((conn) => conn.close()));
  }

  /**
   * This client's connections open now (Workers: only the calling
   * request's). close() and quit() act on these and wait for them alone:
   * calls made meanwhile open a new connection, which they leave alone.
   */
  #own(): Connection[] {
    return [...this.#closing].filter((conn) => !conn.foreign);
  }

  /** Same as {@linkcode Client.close}, for `await using`. */
  [Symbol.asyncDispose](): Promise<void> {
    return this.close();
  }

  /** @internal The request limit (ms; `undefined`: none) close() bounds background work with. */
  get [requestTimeout](): number | undefined {
    return this.#timeout;
  }
}
