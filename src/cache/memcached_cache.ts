/**
 * `MemcachedCache`: cachelib's (Flask's, Werkzeug's) memcached cache, with
 * its methods and promises, over this package's clients.
 *
 * @module
 */

import type { AuthOptions, Mapping, Value } from "../clients/client.ts";
import type { Commands } from "../clients/commands.ts";
import { isCachelibKey } from "./_cache_keys.ts";
import { checkCacheDelta, fromStored, int64Of, signed, toStored, wrapDelta } from "./_cache_ints.ts";
import { defaultTransport } from "../connection/_default_transport.ts";
import { MemcacheClientError, MemcacheIllegalInputError, MemcacheUnknownCommandError } from "../errors.ts";
import { HashClient } from "../clients/hash_client.ts";
import { checkCompatibleWith, countPython, type PythonClientName } from "../clients/_python_compat.ts";
import { entriesOf } from "../clients/_mapping.ts";
import type { Observer } from "../clients/_observe.ts";
import type { ServerSpec, TlsOptions, Transport } from "../connection/transport.ts";

/**
 * A client `MemcachedCache` can run on: {@linkcode Commands}, as
 * {@linkcode Client}, {@linkcode PooledClient}, {@linkcode HashClient} and
 * {@linkcode RetryingClient} are.
 *
 * @deprecated Use {@linkcode Commands}; this name stays so imports keep working.
 */
export type CacheClientLike = Commands;

/** Options of {@linkcode MemcachedCache}. */
export interface MemcachedCacheOptions {
  /**
   * Seconds an item lives when a call gives no timeout; `0`: never expires.
   * @default {300}
   */
  defaultTimeout?: number;
  /**
   * Prepended to every key, so applications can share a server. `clear()`
   * still flushes every key, whatever its prefix.
   * @default {""}
   */
  keyPrefix?: string;
  /**
   * Connections per server. `1` is one pipelined connection per server;
   * more gives each server a pool of up to `poolSize` connections, opened
   * as `PooledClient` opens them (small calls share a connection up to 64
   * in flight; a value of 64 KiB or more takes one of its own). Only used
   * when the cache builds its own client.
   * @default {1}
   */
  poolSize?: number;
  /**
   * When every pooled connection is full (see `PooledClient`): `true`
   * queues the call, `false` rejects it (and turns on pooling even with
   * `poolSize` 1). Only used when the cache builds its own client.
   * @default {true}
   */
  poolBlocking?: boolean;
  /** How the cache's own client opens sockets. @default the running runtime's transport */
  transport?: Transport;
  /**
   * The cache's own client logs in with these (memcached `-Y`), as a
   * client's `auth` option. Checked here, before any I/O.
   */
  auth?: AuthOptions;
  /** TLS for the cache's own client, as a client's `tls` option. @default {false} */
  tls?: boolean | TlsOptions;
  /**
   * Passed to the cache's own client, as a client's `observer` option: its
   * commands (`get`, `getMany`, `set`...: the client's, not the cache's
   * method names), connections and servers leaving the ring.
   */
  observer?: Observer;
  /**
   * Share the cache with a Python app using cachelib's `MemcachedCache`
   * over pylibmc or python-memcached, or pymemcache: the cache's own client
   * gets that library's serde ({@linkcode PickleSerde}) and key placement
   * (see {@linkcode HashClientOptions.compatibleWith}), and integers are
   * stored as Python writes them (decimal, any size, negative ones with a
   * minus sign) instead of in two's complement. `inc`/`dec` stay one atomic
   * `incr` while the value stays within 0..2^64−1; a result outside that
   * range is counted as cachelib does (read, then write), not atomically.
   * With a client passed in, only the integer handling changes: build that
   * client with the same `compatibleWith`.
   */
  compatibleWith?: PythonClientName;
}

/** memcached reads an expiry above this many seconds (30 days) as a unix time. */
const MAX_RELATIVE_EXPIRE = 60 * 60 * 24 * 30;
/** The latest expiry memcached takes (its exptime is a signed 32-bit number). */
const MAX_EXPIRE = 2 ** 31 - 1;
/** Attempts of `inc`/`dec` when other clients keep creating or deleting the key meanwhile. */
const COUNTER_ATTEMPTS = 10;
const EMPTY = new Uint8Array(0);
const REPLY = { noreply: false } as const;

function isClient(value: unknown): value is Commands {
  return typeof value === "object" && value !== null && typeof (value as Commands).get === "function";
}

/**
 * A cache on memcached with cachelib's `MemcachedCache` API: the cache
 * object Flask and Werkzeug users know, for Deno, Node, Bun and Workers.
 *
 * - Keys are strings, UTF-8 encoded on the fly; with the prefix they must
 *   be 1 to 250 bytes without control characters, spaces or `!` (cachelib's
 *   test). The get side (`get`, `getMany`, `getDict`, `has`, `delete`,
 *   `deleteMany`) treats other keys as misses, without a request, since
 *   they often come from users; the set side throws
 *   `MemcacheIllegalInputError`.
 * - Timeouts are seconds: `undefined` uses `defaultTimeout`, `0` never
 *   expires, more than 30 days works too (sent as a unix time).
 * - Values are stored with the client's serde (`defaultSerde`: strings,
 *   integers, JSON, bytes; readable by pymemcache), not pickled. Integers
 *   must be within the signed 64-bit range; negative ones are stored as
 *   their two's complement so that {@linkcode MemcachedCache.inc} and
 *   {@linkcode MemcachedCache.dec} are one atomic `incr`.
 * - A miss is `null`; a failure (server down, timeout) rejects with the
 *   client's error.
 *
 * @example
 * ```ts ignore
 * import { MemcachedCache } from "@memkit/memcache";
 * await using cache = new MemcachedCache(["127.0.0.1:11211"], { keyPrefix: "app:" });
 * await cache.set("user:1", { name: "Ada" }, 60);
 * console.log(await cache.get("user:1")); // { name: "Ada" }
 * console.log(await cache.inc("visits")); // 1
 * ```
 */
export class MemcachedCache {
  /** The client the cache runs on: its own {@linkcode HashClient}, or the one passed in. */
  readonly client: Commands;
  /** Seconds an item lives when a call gives no timeout (0: never expires). */
  readonly defaultTimeout: number;
  /** Prepended to every key. */
  readonly keyPrefix: string;
  /** Connections per server of the cache's own client. */
  readonly poolSize: number;
  /** Whether a call waits for a busy pool. */
  readonly poolBlocking: boolean;
  /** The Python client library the cache is compatible with, if any. */
  readonly compatibleWith: PythonClientName | undefined;
  #transport: Transport | undefined;
  #auth: AuthOptions | undefined;
  #tls: boolean | TlsOptions | undefined;
  #observer: Observer | undefined;

  /**
   * Creates the cache. With a list of servers (default
   * `["127.0.0.1:11211"]`) it builds its client as
   * {@linkcode MemcachedCache.importPreferredMemcacheLib} does; a client
   * object ({@linkcode Commands}: any client class) is used as it is. The
   * cache asks for replies on every call (`noreply: false`), whatever the
   * client's `defaultNoreply`; the client should allow unicode keys
   * (`allowUnicodeKeys: true`) for non-ASCII keys to work, and store a
   * `Uint8Array` as is (as `defaultSerde` does) for
   * {@linkcode MemcachedCache.has}. Nothing connects until the first call.
   *
   * @throws {TypeError} for an invalid server spec or option.
   */
  constructor(servers?: ServerSpec[] | Commands | null, options: MemcachedCacheOptions = {}) {
    const { defaultTimeout = 300, keyPrefix = "", poolSize = 1, poolBlocking = true, transport } = options;
    if (!Number.isInteger(defaultTimeout)) {
      throw new TypeError(`defaultTimeout must be an integer number of seconds, got ${String(defaultTimeout)}`);
    }
    if (typeof keyPrefix !== "string" || (keyPrefix !== "" && !isCachelibKey(keyPrefix))) {
      throw new TypeError(`keyPrefix must be a string without control characters, spaces or "!", got ${keyPrefix}`);
    }
    if (!Number.isInteger(poolSize) || poolSize < 1) {
      throw new TypeError(`poolSize must be a positive integer, got ${String(poolSize)}`);
    }
    if (typeof poolBlocking !== "boolean") throw new TypeError("poolBlocking must be a boolean");
    this.defaultTimeout = defaultTimeout;
    this.keyPrefix = keyPrefix;
    this.poolSize = poolSize;
    this.poolBlocking = poolBlocking;
    this.#transport = transport;
    this.#auth = options.auth;
    this.#tls = options.tls;
    this.#observer = options.observer;
    this.compatibleWith = checkCompatibleWith(options.compatibleWith);
    if (servers === undefined || servers === null) this.client = this.#build(["127.0.0.1:11211"], transport);
    else if (Array.isArray(servers)) this.client = this.#build(servers, transport);
    else if (isClient(servers)) this.client = servers;
    else throw new TypeError(`servers must be a list of server specs or a client, got ${String(servers)}`);
  }

  /**
   * The client the cache builds for `servers`, on the running runtime's
   * transport (or the `transport` option): a {@linkcode HashClient}, for
   * one server too, waiting for every reply (`defaultNoreply: false`) and
   * taking unicode keys; with `poolSize` > 1 (or `poolBlocking: false`)
   * each server gets a pool of up to `poolSize` connections.
   *
   * @throws {TypeError} for an invalid server spec, or when no transport can be loaded.
   */
  async importPreferredMemcacheLib(servers: ServerSpec[]): Promise<HashClient> {
    const transport = this.#transport ?? await defaultTransport();
    return this.#build(servers, transport);
  }

  #build(servers: ServerSpec[], transport: Transport | undefined): HashClient {
    if (!Array.isArray(servers) || servers.length === 0) {
      throw new TypeError("servers must be a non-empty list of server specs");
    }
    return new HashClient(servers, {
      auth: this.#auth,
      tls: this.#tls,
      observer: this.#observer,
      defaultNoreply: false,
      allowUnicodeKeys: true,
      transport,
      usePooling: this.poolSize > 1 || !this.poolBlocking,
      maxPoolSize: this.poolSize,
      poolBlocking: this.poolBlocking,
      compatibleWith: this.compatibleWith,
    });
  }

  /** A value as stored: integers in two's complement (see _cache_ints.ts), or as Python stores them. */
  #toStored(value: unknown): unknown {
    return this.compatibleWith === undefined ? toStored(value) : value;
  }

  /** A value as read back. */
  #fromStored(value: unknown): unknown {
    return this.compatibleWith === undefined ? fromStored(value) : value;
  }

  // ---- keys and timeouts

  /** The key sent to the client, or `null` for a key the cache treats as a miss. */
  #wire(key: string): string | null {
    if (typeof key !== "string") return null;
    const full = this.keyPrefix + key;
    if (!isCachelibKey(full)) return null;
    if (typeof this.client.checkKey === "function") {
      try {
        this.client.checkKey(full);
      } catch (error) {
        if (error instanceof MemcacheIllegalInputError) return null;
        throw error;
      }
    }
    return full;
  }

  /** The key sent to the client, for the set side: a key the get side would miss throws. */
  #storeKey(key: string): string {
    if (typeof key !== "string") {
      throw new MemcacheIllegalInputError(`MemcachedCache keys are strings, got ${typeof key}`);
    }
    const full = this.keyPrefix + key;
    if (!isCachelibKey(full)) {
      throw new MemcacheIllegalInputError(
        `MemcachedCache keys (with the prefix) are 1 to 250 UTF-8 bytes without control characters, ` +
          `spaces or "!": ${JSON.stringify(full)}`,
      );
    }
    // The client's own rules, with its own error, before any key is sent.
    if (typeof this.client.checkKey === "function") this.client.checkKey(full);
    return full;
  }

  /** cachelib's `_normalize_timeout`: seconds, or a unix time beyond 30 days. */
  #expire(timeout: number | null | undefined): number {
    const seconds = timeout ?? this.defaultTimeout;
    if (!Number.isInteger(seconds)) {
      throw new MemcacheIllegalInputError(`timeout must be an integer number of seconds, got ${String(seconds)}`);
    }
    // memcached reads more than 30 days as a unix time. Shorter timeouts stay
    // relative (cachelib sends every timeout as a unix time): they do not
    // depend on this host's clock agreeing with the server's.
    if (seconds > MAX_RELATIVE_EXPIRE) return Math.min(Math.floor(Date.now() / 1000) + seconds, MAX_EXPIRE);
    return seconds;
  }

  // ---- reading

  /** The value of `key`, or `null` on a miss or for a key memcached could not take. */
  async get(key: string): Promise<Value> {
    const wire = this.#wire(key);
    if (wire === null) return null;
    return this.#fromStored(await this.client.get(wire));
  }

  /** The values of `keys`, in order; `null` for each miss or unusable key. */
  async getMany(...keys: string[]): Promise<Value[]> {
    const found = await this.#fetch(keys);
    return keys.map((_, i) => found[i]);
  }

  /** Every key asked, as passed, with its value or `null`. */
  async getDict(...keys: string[]): Promise<Map<string, Value>> {
    const found = await this.#fetch(keys);
    const result = new Map<string, Value>();
    keys.forEach((key, i) => {
      if (!result.has(key)) result.set(key, found[i]);
    });
    return result;
  }

  async #fetch(keys: string[]): Promise<Value[]> {
    const wires = keys.map((key) => this.#wire(key));
    const asked = [...new Set(wires.filter((w): w is string => w !== null))];
    const found = asked.length === 0 ? new Map<string, Value>() : await this.client.getMany(asked);
    return wires.map((w) => (w !== null && found.has(w) ? this.#fromStored(found.get(w)) : null));
  }

  /**
   * Whether `key` exists, without reading its value: an empty `append`
   * (as cachelib), which memcached answers `STORED` for an existing item
   * and `NOT_STORED` otherwise. The value, flags and expiry stay as they
   * are; the item gets a new cas token.
   */
  async has(key: string): Promise<boolean> {
    const wire = this.#wire(key);
    if (wire === null) return false;
    return await this.client.append(wire, EMPTY, REPLY);
  }

  /**
   * The value of `key`, or on a miss `loader(key)`'s value, stored for
   * `timeout` seconds (as {@linkcode MemcachedCache.set} takes it), with the
   * client's `getOrSet` guarantees: concurrent callers, in this process and
   * across processes, run the loader once (the others wait for its value);
   * a loader that throws rejects its callers; a loader result of
   * `undefined` is returned and not stored; a failing memcached makes the
   * call return the loader's value (the error goes to `console.warn`; use
   * the client's `getOrSet` with `onError` to route it elsewhere).
   *
   * @throws {MemcacheIllegalInputError} for a key or timeout `set` refuses, or a loader that is not a function (nothing is sent).
   */
  async getOrSet(key: string, loader: (key: string) => unknown, timeout?: number | null): Promise<Value> {
    const wire = this.#storeKey(key);
    this.#expire(timeout); // checked as set checks it; getOrSet takes it relative and converts it itself
    const ttl = timeout ?? this.defaultTimeout;
    if (typeof loader !== "function") {
      throw new MemcacheIllegalInputError(`loader must be a function, got ${typeof loader}`);
    }
    const load = async () => {
      const value = await loader(key);
      return value === undefined ? value : this.#toStored(value);
    };
    return this.#fromStored(await this.client.getOrSet(wire, load, { ttl }));
  }

  // ---- writing

  /**
   * Stores `value` for `timeout` seconds (`undefined`: `defaultTimeout`;
   * `0`: no expiry). Resolves `true` once stored.
   *
   * @throws {MemcacheIllegalInputError} for an unusable key, timeout or value (nothing is sent).
   */
  async set(key: string, value: unknown, timeout?: number | null): Promise<boolean> {
    const wire = this.#storeKey(key);
    const options = { expire: this.#expire(timeout), noreply: false };
    return Boolean(await this.client.set(wire, this.#toStored(value), options));
  }

  /** Like {@linkcode MemcachedCache.set}, only for a key not stored yet: `false` if it exists. */
  async add(key: string, value: unknown, timeout?: number | null): Promise<boolean> {
    const wire = this.#storeKey(key);
    const options = { expire: this.#expire(timeout), noreply: false };
    return Boolean(await this.client.add(wire, this.#toStored(value), options));
  }

  /**
   * Stores every key/value pair of `mapping` (a `Map`, a plain object or
   * pairs), pipelined. Resolves to the keys stored, in the mapping's order.
   *
   * @throws {MemcacheIllegalInputError} for an unusable key, timeout or value (nothing is sent).
   */
  async setMany(mapping: Mapping, timeout?: number | null): Promise<string[]> {
    const expire = this.#expire(timeout);
    const pairs = [...entriesOf(mapping)].map(([key, value]) =>
      [key, this.#storeKey(key), this.#toStored(value)] as const
    );
    if (pairs.length === 0) return [];
    const failed = new Set(
      await this.client.setMany(pairs.map(([, w, v]) => [w, v] as const), { expire, noreply: false }),
    );
    return pairs.filter(([, wire]) => !failed.has(wire)).map(([key]) => key);
  }

  /** Deletes `key`: `true` if it existed, `false` if not (or the key is unusable). */
  async delete(key: string): Promise<boolean> {
    const wire = this.#wire(key);
    if (wire === null) return false;
    return await this.client.delete(wire, REPLY);
  }

  /**
   * Deletes `keys`, pipelined. Resolves to the keys that existed and were
   * deleted (cachelib lists every usable key no longer there, including
   * keys that were already missing).
   */
  async deleteMany(...keys: string[]): Promise<string[]> {
    const wires = keys.map((key) => this.#wire(key));
    const deleted = await Promise.all(wires.map((w) => (w === null ? false : this.client.delete(w, REPLY))));
    return keys.filter((_, i) => deleted[i]);
  }

  /** Flushes the whole server (every key, whatever its prefix): `true` once done. */
  async clear(): Promise<boolean> {
    return await this.client.flushAll(0, REPLY);
  }

  // ---- counters

  /**
   * Adds `delta` to the integer at `key`, atomically on the server, and
   * resolves to the new value (`number`, or `bigint` beyond 2^53-1). A
   * missing key starts at `delta`, with the default timeout; an existing
   * key keeps its expiry. Counters are signed 64-bit: the result may be
   * negative, and wraps around past 2^63-1 as int64 does. `null` when the
   * client reports a failure as a miss (`ignoreExc`).
   *
   * @throws {MemcacheIllegalInputError} for an unusable key or a non-integer delta.
   * @throws {MemcacheClientError} when the value is not an integer.
   */
  inc(key: string, delta: number | bigint = 1): Promise<number | bigint | null> {
    return this.#count(key, () => checkCacheDelta(delta));
  }

  /** Subtracts `delta`, as {@linkcode MemcachedCache.inc} adds it: a missing key starts at `-delta`. */
  dec(key: string, delta: number | bigint = 1): Promise<number | bigint | null> {
    return this.#count(key, () => -checkCacheDelta(delta));
  }

  async #count(key: string, getDelta: () => bigint): Promise<number | bigint | null> {
    const wire = this.#storeKey(key);
    if (this.compatibleWith !== undefined) {
      return await countPython(this.client, wire, getDelta(), this.#expire(undefined));
    }
    const delta = wrapDelta(getDelta());
    const start = signed(delta); // a missing key starts at delta, as int64
    for (let attempt = 0; attempt < COUNTER_ATTEMPTS; attempt++) {
      let result: number | bigint | null;
      try {
        // +d is `incr d`, -d is `incr 2^64-d`: modulo 2^64 both are int64 arithmetic.
        result = await this.client.incr(wire, delta, REPLY);
      } catch (error) {
        // memcached refuses a value that is not unsigned decimal, such as
        // `-5` written by another client: count it with gets/cas instead.
        if (
          !(error instanceof MemcacheClientError) || error instanceof MemcacheIllegalInputError ||
          error instanceof MemcacheUnknownCommandError
        ) throw error;
        const counted = await this.#countByCas(wire, delta, error);
        if (counted !== undefined) return counted;
        continue;
      }
      if (result !== null) return signed(BigInt(result));
      // Missing: create it. If another client created it meanwhile, incr again.
      if (await this.client.add(wire, toStored(start), { expire: this.#expire(undefined), noreply: false })) {
        return start;
      }
    }
    return null; // the key kept changing under us, or the client reports failures as misses
  }

  /** One gets/cas round of a counter memcached cannot `incr`; `undefined`: try again. */
  async #countByCas(wire: string, delta: bigint, refused: Error): Promise<number | bigint | null | undefined> {
    const [value, cas] = await this.client.gets(wire);
    if (cas === null) return undefined; // gone meanwhile
    const current = int64Of(value);
    if (current === null) throw refused; // not an integer at all
    const next = signed(wrapDelta(current + delta));
    const stored = await this.client.cas(wire, toStored(next), cas, {
      expire: this.#expire(undefined),
      noreply: false,
    });
    return stored === true ? next : undefined;
  }

  // ---- lifecycle

  /**
   * Closes the client's connections (a client passed in too); the cache
   * and the client stay usable: the next call reconnects.
   */
  async close(): Promise<void> {
    await this.client.close();
  }

  /** Same as {@linkcode MemcachedCache.close}, for `await using`. */
  [Symbol.asyncDispose](): Promise<void> {
    return this.close();
  }
}
