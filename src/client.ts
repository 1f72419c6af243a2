/**
 * `Client`: one memcached server over one pipelined connection, with
 * pymemcache's `Client` API and semantics.
 *
 * @module
 */

import { Connection } from "./_connection.ts";
import { defaultTransport } from "./_default_transport.ts";
import { checkKey as checkWireKey, keyBytes } from "./_keys.ts";
import {
  encodeArithmetic,
  encodeCacheMemlimit,
  encodeDelete,
  encodeFlushAll,
  encodeQuit,
  encodeRaw,
  encodeRetrieve,
  encodeShutdown,
  encodeStats,
  encodeStore,
  encodeTouch,
  encodeVerbosity,
  encodeVersion,
  EXPECT_LINE,
  EXPECT_RAW,
  EXPECT_STATS,
  EXPECT_VALUES,
  type Item,
  type Outbox,
  type Reply,
  type Status,
} from "./_protocol.ts";
import { convertStats } from "./_stats.ts";
import {
  checkCas,
  checkDelta,
  checkExpire,
  checkFlags,
  checkInt,
  checkToken,
  inContext,
  parseCounter,
  splitKeys,
} from "./_validate.ts";
import { MemcacheIllegalInputError, MemcacheUnexpectedCloseError, MemcacheUnknownError } from "./errors.ts";
import { defaultSerde, type Serde } from "./serde.ts";
import {
  addressName,
  parseServerSpec,
  type ServerAddress,
  type ServerSpec,
  type TlsOptions,
  type Transport,
} from "./transport.ts";

/** Options of {@linkcode Client}. Durations the client measures are in ms. */
export interface ClientOptions {
  /** Turns values into bytes and flags and back. @default {defaultSerde} */
  serde?: Serde;
  /** ms to wait for a connection to open; `undefined` waits as long as the OS does. */
  connectTimeout?: number;
  /**
   * ms a request may take, from the call until its reply (connecting
   * included). On expiry the request rejects with `MemcacheTimeoutError`
   * and the connection is closed. `undefined`: no limit.
   */
  timeout?: number;
  /** Set TCP_NODELAY where the transport can. @default {true} */
  noDelay?: boolean;
  /** TCP keep-alive where the transport can; `idle` in ms. */
  keepAlive?: boolean | { idle?: number };
  /** get, gets, getMany, getsMany, gat and gats return misses instead of throwing. @default {false} */
  ignoreExc?: boolean;
  /** Prepended to every key on the wire; results are keyed without it. @default {""} */
  keyPrefix?: string;
  /**
   * Storage, delete, touch and flushAll skip waiting for the reply unless
   * told otherwise (not cas, incr or decr). @default {true}
   */
  defaultNoreply?: boolean;
  /** Allow non-ASCII keys (sent UTF-8 encoded). @default {false} */
  allowUnicodeKeys?: boolean;
  /** TLS; `true` uses the runtime's trust store. @default {false} */
  tls?: boolean | TlsOptions;
  /** How to open sockets. @default the running runtime's transport */
  transport?: Transport;
}

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

/** What a serde's serialize returns. */
type Serialized = [Uint8Array | string, number];

/** A storage call checked and ready to encode. */
interface PreparedStore {
  wireKey: string;
  noreply: boolean;
  expire: number;
  /** Flags given by the caller, overriding the serde's. */
  flags: number | undefined;
  serialized: Serialized | Promise<Serialized>;
}

/** A memcached item's value, as the serde returns it. */
// deno-lint-ignore no-explicit-any
export type Value = any;

/** Key/value pairs for {@linkcode Client.setMany}. */
export type Mapping = Map<string, unknown> | Record<string, unknown> | Iterable<readonly [string, unknown]>;

const encoder = new TextEncoder();

function isPromise<T>(value: unknown): value is Promise<T> {
  // Bytes first: looking up a missing `then` on a typed array is slow in JavaScriptCore.
  if (value === null || (typeof value !== "object" && typeof value !== "function") || ArrayBuffer.isView(value)) {
    return false;
  }
  return typeof (value as Promise<T>).then === "function";
}

function entriesOf(values: Mapping): Iterable<readonly [string, unknown]> {
  if (values instanceof Map) return values;
  if (Symbol.iterator in values) return values as Iterable<readonly [string, unknown]>;
  return Object.entries(values);
}

/**
 * A client for one memcached server, mirroring pymemcache's `Client`.
 *
 * Requests are pipelined on one connection: calls made in the same tick
 * go out in one write, and replies are matched in order. The constructor
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
  #transport: Transport | Promise<Transport> | undefined;
  #conn: Connection | null = null;
  /** Every connection opened and not yet closed. */
  #closing = new Set<Connection>();
  /** Those of them that carry the pipeline (not rawCommand's). */
  #pipelines = new Set<Connection>();

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
    if (this.keyPrefix !== "") checkWireKey(this.keyPrefix, "", this.allowUnicodeKeys);
    for (const name of ["connectTimeout", "timeout"] as const) {
      const ms = options[name];
      if (ms !== undefined && !(typeof ms === "number" && ms >= 0 && Number.isFinite(ms))) {
        throw new TypeError(`${name} must be a non-negative number of milliseconds`);
      }
    }
  }

  // ---- connection management

  #connection(): Connection {
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
      this.#transport,
      this.address,
      this.server,
      {
        connectTimeout: o.connectTimeout,
        timeout: o.timeout,
        noDelay: o.noDelay,
        keepAlive: o.keepAlive,
        tls: o.tls === true ? {} : o.tls || undefined,
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

  /** The checked wire keys of `keys` (a list of the caller's own): `keys` itself without a prefix. */
  #wireKeys(command: string, keys: string[]): string[] {
    return this.#inputs(command, () => {
      if (this.keyPrefix !== "") return keys.map((k) => this.#key(k));
      for (let i = 0; i < keys.length; i++) this.#key(keys[i]);
      return keys;
    });
  }

  /**
   * Input checks of `command`: what `check` throws for bad input is thrown
   * again naming this server and the command, as every error does.
   */
  #inputs<T>(command: string, check: () => T): T {
    try {
      return check();
    } catch (error) {
      throw this.#context(error, command);
    }
  }

  #context(error: unknown, command: string): unknown {
    return inContext(error, command, this.server);
  }

  #noreply(noreply: boolean | undefined): boolean {
    if (noreply === undefined) return this.defaultNoreply;
    if (typeof noreply !== "boolean") throw new MemcacheIllegalInputError("noreply must be a boolean");
    return noreply;
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
    return this.#store("set", key, value, options, undefined, true) as Promise<true>;
  }

  /** Stores only if the key is absent: `true` if stored (or noreply), `false` if it exists. */
  async add(key: string, value: unknown, options: StoreOptions = {}): Promise<boolean> {
    return (await this.#store("add", key, value, options)) !== false;
  }

  /** Stores only if the key exists: `true` if stored (or noreply), `false` if it is absent. */
  async replace(key: string, value: unknown, options: StoreOptions = {}): Promise<boolean> {
    return (await this.#store("replace", key, value, options)) !== false;
  }

  /** Appends bytes to an existing value: `true` if done (or noreply), `false` if absent. */
  async append(key: string, value: unknown, options: StoreOptions = {}): Promise<boolean> {
    return (await this.#store("append", key, value, options)) !== false;
  }

  /** Prepends bytes to an existing value: `true` if done (or noreply), `false` if absent. */
  async prepend(key: string, value: unknown, options: StoreOptions = {}): Promise<boolean> {
    return (await this.#store("prepend", key, value, options)) !== false;
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
    const token = this.#inputs("cas", () => checkCas(cas));
    const result = await this.#store("cas", key, value, { ...options, noreply: options.noreply ?? false }, token);
    return result === undefined ? true : result;
  }

  /**
   * Stores many values, pipelined. Resolves to the keys (as passed) that
   * were not stored; always empty with noreply.
   */
  async setMany(values: Mapping, options: StoreOptions = {}): Promise<string[]> {
    const pairs = [...entriesOf(values)];
    // Every key and value is checked and serialized before any is sent:
    // one bad pair fails the call with nothing written.
    const prepared = this.#inputs("set", () => pairs.map(([key, value]) => this.#prepareStore(key, value, options)));
    const serialized = await Promise.all(prepared.map((p) => p.serialized));
    const flags = this.#inputs("set", () => prepared.map((p, i) => this.#checkSerialized(p, serialized[i])));
    // Sent in one synchronous loop: one write, in order.
    const sends = prepared.map((p, i) => this.#sendStore("set", p, serialized[i][0], flags[i], undefined, false));
    const results = await Promise.all(sends);
    const failed: string[] = [];
    results.forEach((stored, i) => {
      if (stored === false) failed.push(pairs[i][0]);
    });
    return failed;
  }

  /** Alias of {@linkcode Client.setMany}. */
  setMulti(values: Mapping, options: StoreOptions = {}): Promise<string[]> {
    return this.setMany(values, options);
  }

  /**
   * Shared path of the storage commands. Encodes synchronously when the
   * serde is synchronous, so calls go out in call order.
   * Resolves `undefined` for noreply, `true` (STORED), `false` (NOT_STORED
   * or EXISTS) or `null` (NOT_FOUND); with `always`, `true` for all of them
   * (set's result, without another promise on top).
   */
  #store(
    command: string,
    key: string,
    value: unknown,
    options: StoreOptions,
    cas?: string,
    always = false,
  ): Promise<boolean | null | undefined> {
    try {
      const prepared = this.#prepareStore(key, value, options);
      const serialized = prepared.serialized;
      return isPromise<Serialized>(serialized)
        ? serialized.then((pair) =>
          this.#inputs(
            command,
            () => this.#sendStore(command, prepared, pair[0], this.#checkSerialized(prepared, pair), cas, always),
          )
        )
        : this.#sendStore(command, prepared, serialized[0], this.#checkSerialized(prepared, serialized), cas, always);
    } catch (error) {
      return Promise.reject(this.#context(error, command));
    }
  }

  /** Checks a storage call's key and options and starts serializing its value; sends nothing. */
  #prepareStore(key: string, value: unknown, options: StoreOptions): PreparedStore {
    return {
      wireKey: this.#key(key),
      noreply: this.#noreply(options.noreply),
      expire: options.expire === undefined ? 0 : checkExpire(options.expire),
      flags: options.flags === undefined ? undefined : checkFlags(options.flags),
      serialized: this.serde.serialize(key, value),
    };
  }

  /** Encodes and sends a checked storage call (see #checkSerialized for its flags). */
  #sendStore(
    command: string,
    store: PreparedStore,
    data: Uint8Array | string,
    flags: number,
    cas: string | undefined,
    always: boolean,
  ): Promise<boolean | null | undefined> {
    const { wireKey, expire, noreply } = store;
    const encode = (out: Outbox) => encodeStore(out, command, wireKey, flags, expire, data, noreply, cas);
    const conn = this.#connection();
    if (noreply) return conn.send(command, encode).then(() => (always ? true : undefined));
    return conn.request(command, EXPECT_LINE, encode, undefined, undefined, (reply) => {
      if (reply.type === "status") {
        switch (reply.status) {
          case "STORED":
            return true;
          case "NOT_STORED":
          case "EXISTS":
            return always || false;
          case "NOT_FOUND":
            return always || null;
        }
      }
      throw this.#unexpected(reply, command);
    });
  }

  /** The flags to send with what the serde returned; throws when that cannot be sent. */
  #checkSerialized(store: PreparedStore, [data, serdeFlags]: Serialized): number {
    if (typeof data !== "string" && !(data instanceof Uint8Array)) {
      throw new MemcacheIllegalInputError(
        `The serde must return a string or Uint8Array for ${JSON.stringify(store.wireKey)}`,
      );
    }
    return store.flags ?? checkFlags(serdeFlags);
  }

  /**
   * A one-line command: with noreply resolves `true` once written; otherwise
   * `true` for the `ok` status, `false` for `miss`, and throws for anything else.
   * Encodes synchronously, like every request, so calls keep their order.
   */
  async #simple(
    command: string,
    noreply: boolean,
    encode: (out: Outbox, noreply: boolean) => void,
    ok: Status,
    miss?: Status,
  ): Promise<boolean> {
    const conn = this.#connection();
    if (noreply) {
      await conn.send(command, (out) => encode(out, true));
      return true;
    }
    const reply = await conn.request(command, EXPECT_LINE, (out) => encode(out, false));
    if (reply.type === "status" && reply.status === ok) return true;
    if (reply.type === "status" && miss !== undefined && reply.status === miss) return false;
    throw this.#unexpected(reply, command);
  }

  #unexpected(reply: Reply, command: string): MemcacheUnknownError {
    const text = reply.type === "line" ? reply.text : reply.type === "status" ? reply.status : reply.type;
    return new MemcacheUnknownError(`Unexpected reply ${JSON.stringify(text)}`, { server: this.server, command });
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
    return this.#fetch("get", [...keys], false);
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
    return this.#fetch("gets", [...keys], true);
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
      return Promise.reject(this.#context(error, command));
    }
    let result: Promise<T>;
    try {
      result = this.#connection().request(
        command,
        EXPECT_VALUES,
        (out) => encodeRetrieve(out, command, keys, exptime),
        keys,
        undefined,
        (reply) => {
          const item = (reply as { items: Item[] }).items[0];
          if (item === undefined) return miss;
          const value = this.serde.deserialize(key, item.value, item.flags);
          if (!withCas) return value as T;
          const cas = item.cas ?? null;
          return (isPromise(value) ? value.then((v) => [v, cas]) : [value, cas]) as T;
        },
      );
    } catch (error) {
      result = Promise.reject(error);
    }
    return this.ignoreExc ? result.catch(() => miss) : result;
  }

  #fetch(command: string, keys: string[], withCas: false, expire?: number): Promise<Map<string, Value>>;
  #fetch(command: string, keys: string[], withCas: true, expire?: number): Promise<Map<string, [Value, string]>>;
  async #fetch(command: string, keys: string[], withCas: boolean, expire?: number): Promise<Map<string, unknown>> {
    const wire = this.#wireKeys(command, keys); // throws before any I/O
    const result = new Map<string, unknown>();
    if (wire.length === 0) return result;
    try {
      // Without a prefix the wire keys are the keys: no map needed.
      let byWire: Map<string, string> | undefined;
      if (wire !== keys) {
        byWire = new Map<string, string>();
        for (let i = 0; i < wire.length; i++) byWire.set(wire[i], keys[i]);
      }
      const conn = this.#connection();
      const batches = splitKeys(wire, command.length + (expire === undefined ? 0 : 12));
      const ask = (batch: string[]) =>
        conn.request(command, EXPECT_VALUES, (out) => encodeRetrieve(out, command, batch, expire), batch);
      const replies = batches.length === 1 ? [await ask(batches[0])] : await Promise.all(batches.map(ask));
      const pending: Promise<void>[] = [];
      const serde = this.serde;
      for (let r = 0; r < replies.length; r++) {
        const items = (replies[r] as { items: Item[] }).items;
        for (let i = 0; i < items.length; i++) {
          const item = items[i];
          const key = byWire === undefined ? item.key : byWire.get(item.key)!;
          const value = serde.deserialize(key, item.value, item.flags);
          if (isPromise(value)) {
            pending.push(value.then((v) => void result.set(key, withCas ? [v, item.cas ?? null] : v)));
          } else {
            result.set(key, withCas ? [value, item.cas ?? null] : value);
          }
        }
      }
      if (pending.length) await Promise.all(pending);
      return result;
    } catch (error) {
      if (this.ignoreExc) return new Map();
      throw error;
    }
  }

  // ---- other key commands

  /** Deletes `key`: `true` if deleted (or noreply), `false` if it was absent. */
  async delete(key: string, options: NoreplyOptions = {}): Promise<boolean> {
    const [wireKey, noreply] = this.#inputs("delete", () => [this.#key(key), this.#noreply(options.noreply)] as const);
    return await this.#simple("delete", noreply, (out, nr) => encodeDelete(out, wireKey, nr), "DELETED", "NOT_FOUND");
  }

  /** Deletes many keys, pipelined. Resolves `true`. */
  async deleteMany(keys: Iterable<string>, options: NoreplyOptions = {}): Promise<true> {
    const list = [...keys];
    this.#inputs("delete", () => list.forEach((k) => this.#key(k))); // all keys checked before any is sent
    await Promise.all(list.map((k) => this.delete(k, options)));
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
    return this.#arithmetic("incr", key, value, options);
  }

  /** Subtracts from a counter; memcached stops at 0. Otherwise as {@linkcode Client.incr}. */
  decr(key: string, value: number | bigint, options: NoreplyOptions = {}): Promise<number | bigint | null> {
    return this.#arithmetic("decr", key, value, options);
  }

  async #arithmetic(
    command: "incr" | "decr",
    key: string,
    value: number | bigint,
    options: NoreplyOptions,
  ): Promise<number | bigint | null> {
    const [wireKey, delta] = this.#inputs(command, () => [this.#key(key), checkDelta(value)] as const);
    const noreply = options.noreply ?? false;
    const conn = this.#connection();
    if (noreply) {
      await conn.send(command, (out) => encodeArithmetic(out, command, wireKey, delta, true));
      return null;
    }
    const reply = await conn.request(
      command,
      EXPECT_LINE,
      (out) => encodeArithmetic(out, command, wireKey, delta, false),
    );
    if (reply.type === "status" && reply.status === "NOT_FOUND") return null;
    if (reply.type === "line") return parseCounter(reply.text.trimEnd(), command, this.server);
    throw this.#unexpected(reply, command);
  }

  /** Sets the expiry of `key`: `true` if touched (or noreply), `false` if absent. */
  async touch(key: string, expire = 0, options: NoreplyOptions = {}): Promise<boolean> {
    const [wireKey, exptime, noreply] = this.#inputs(
      "touch",
      () => [this.#key(key), checkExpire(expire), this.#noreply(options.noreply)] as const,
    );
    return await this.#simple(
      "touch",
      noreply,
      (out, nr) => encodeTouch(out, wireKey, exptime, nr),
      "TOUCHED",
      "NOT_FOUND",
    );
  }

  // ---- server commands

  /**
   * Server statistics, `stats` plus optional arguments (`"settings"`,
   * `"slabs"`, ...). Values are converted as pymemcache's STAT_TYPES:
   * integers where they parse, a few floats and booleans, else strings.
   */
  async stats(...args: string[]): Promise<Record<string, string | number | boolean>> {
    this.#inputs("stats", () => args.forEach((a) => checkToken("stats argument", a)));
    const reply = await this.#connection().request("stats", EXPECT_STATS, (out) => encodeStats(out, args));
    if (reply.type !== "stats") throw this.#unexpected(reply, "stats");
    return convertStats(reply.entries);
  }

  /** Sets the server's memory limit in megabytes. Resolves `true`. */
  async cacheMemlimit(megabytes: number): Promise<true> {
    const mb = this.#inputs("cache_memlimit", () => checkInt("megabytes", megabytes, 0, 2147483647));
    await this.#simple("cache_memlimit", false, (out, nr) => encodeCacheMemlimit(out, mb, nr), "OK");
    return true;
  }

  /** The server's version string, such as `"1.6.18"`. */
  async version(): Promise<string> {
    const reply = await this.#connection().request("version", EXPECT_LINE, encodeVersion);
    if (reply.type === "line" && reply.text.startsWith("VERSION ")) return reply.text.slice(8);
    throw this.#unexpected(reply, "version");
  }

  /** Sets the server's log verbosity. Resolves `true`. */
  async verbosity(level: number, options: NoreplyOptions = {}): Promise<true> {
    const [lvl, noreply] = this.#inputs(
      "verbosity",
      () => [checkInt("level", level, 0, 2147483647), this.#noreply(options.noreply)] as const,
    );
    await this.#simple("verbosity", noreply, (out, nr) => encodeVerbosity(out, lvl, nr), "OK");
    return true;
  }

  /**
   * Invalidates every item, after `delay` seconds. `true` once the server
   * confirms (or with noreply).
   */
  async flushAll(delay = 0, options: NoreplyOptions = {}): Promise<boolean> {
    const [seconds, noreply] = this.#inputs(
      "flush_all",
      () => [checkExpire(delay), this.#noreply(options.noreply)] as const,
    );
    return await this.#simple("flush_all", noreply, (out, nr) => encodeFlushAll(out, seconds, nr), "OK");
  }

  /**
   * Asks the server to shut down (memcached needs `-A`). Resolves once the
   * server closed the connection.
   *
   * @throws {MemcacheUnknownCommandError} when the server has shutdown disabled.
   */
  async shutdown(graceful = false): Promise<void> {
    const conn = this.#connection();
    try {
      const reply = await conn.request("shutdown", EXPECT_LINE, (out) => encodeShutdown(out, graceful));
      throw this.#unexpected(reply, "shutdown");
    } catch (error) {
      if (error instanceof MemcacheUnexpectedCloseError) return;
      throw error;
    }
  }

  /**
   * Sends one command line as is and returns the reply bytes before the
   * first `endTokens` (error lines throw). It runs on a connection of its
   * own, closed afterwards, so a reply longer than `endTokens` says can
   * never be read as another request's reply.
   */
  async rawCommand(command: string | Uint8Array, endTokens: string | Uint8Array = "\r\n"): Promise<Uint8Array> {
    const line = typeof command === "string" ? encoder.encode(command) : command;
    const end = typeof endTokens === "string" ? encoder.encode(endTokens) : endTokens;
    if (end.length === 0) {
      throw new MemcacheIllegalInputError("endTokens must not be empty", { server: this.server, command: "raw" });
    }
    const conn = this.#open();
    try {
      const reply = await conn.request("raw", EXPECT_RAW, (out) => encodeRaw(out, line), undefined, end);
      if (reply.type !== "raw") throw this.#unexpected(reply, "raw");
      return reply.bytes;
    } finally {
      await conn.close();
    }
  }

  // ---- lifecycle

  /**
   * Sends `quit` and waits for the server to close the connection. The
   * client stays usable: the next call reconnects.
   */
  async quit(): Promise<void> {
    const own = this.#own();
    this.#conn = null;
    // rawCommand's connections close by themselves after their reply.
    await Promise.all(own.map((conn) => this.#pipelines.has(conn) ? conn.quit(encodeQuit) : conn.closed));
  }

  /**
   * Closes the connection: queued noreply requests are written first;
   * requests still waiting for replies reject. The client stays usable.
   */
  async close(): Promise<void> {
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
}
