/**
 * `Client`: one memcached server over one pipelined connection, with
 * pymemcache's `Client` API and semantics.
 *
 * @module
 */

import { Connection, type ConnectionObserver, type FirstRequest } from "../connection/_connection.ts";
import { defaultTransport } from "../connection/_default_transport.ts";
import { checkKey as checkWireKey, keyBytes } from "../protocol/_keys.ts";
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
} from "../protocol/_text_commands.ts";
import {
  EXPECT_LINE,
  EXPECT_META,
  EXPECT_META_QUIET,
  EXPECT_RAW,
  EXPECT_STATS,
  EXPECT_VALUES,
  INVALID_FLAG_SWALLOWS_DATA,
  type Reply,
  type Status,
  WITH_DATA,
} from "../protocol/_reply_parser.ts";
import { type Item, ProtocolError } from "../protocol/_wire.ts";
import type { Outbox } from "../protocol/_outbox.ts";
import { entriesOf, type Mapping } from "./_mapping.ts";
import { checkLimitMs } from "./_options.ts";
import { endBackground, requestTimeout } from "./_background.ts";
import {
  binaryWireKey,
  encodeBase64,
  encodeMeta,
  encodeMetaGetBatch,
  encodeMetaSet,
  isQuiet,
  metaArithmeticFlags,
  type MetaArithmeticOptions,
  type MetaCommonOptions,
  metaDeleteFlags,
  type MetaDeleteOptions,
  metaGetFlags,
  type MetaGetManyOptions,
  type MetaGetOptions,
  type MetaKey,
  type MetaLine,
  type MetaResult,
  type MetaSetOptions,
  type MetaSetPlan,
  metaSetPlan,
  type MetaStatus,
  newer,
} from "../protocol/_meta.ts";
import { metaResult, parseCounterValue, QUIET_SUCCESS } from "../protocol/_meta_reply.ts";
import {
  getOrSet as stampedeGetOrSet,
  type GetOrSetOptions,
  invalidate as stampedeInvalidate,
  type InvalidateOptions,
  type Loader,
} from "./_get_or_set.ts";
import { connectionObserver, observeCommands, type Observer } from "./_observe.ts";
import { convertStats } from "../protocol/_stats.ts";
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
} from "../protocol/_validate.ts";
import {
  MemcacheAuthError,
  MemcacheClientError,
  MemcacheError,
  MemcacheIllegalInputError,
  MemcacheSerdeError,
  MemcacheUnexpectedCloseError,
} from "../errors.ts";
import { defaultSerde, type Serde } from "../values/serde.ts";
import {
  addressName,
  parseServerSpec,
  type ServerAddress,
  type ServerSpec,
  type TlsOptions,
  type Transport,
} from "../connection/transport.ts";

export type { Mapping };

/** Options of {@linkcode Client}. Durations the client measures are in ms. */
export interface ClientOptions {
  /** Turns values into bytes and flags and back. @default {defaultSerde} */
  serde?: Serde;
  /**
   * ms to wait for a connection to open (TLS handshake included); on expiry
   * the waiting requests reject with `MemcacheTimeoutError`. `0` or
   * `Infinity`: wait as long as the OS does.
   * @default {5000}
   */
  connectTimeout?: number;
  /**
   * ms a request may take, from the call until its reply (connecting
   * included). On expiry the request rejects with `MemcacheTimeoutError`
   * and the connection is closed. `0` or `Infinity`: no limit.
   * @default {5000}
   */
  timeout?: number;
  /**
   * Most requests that may wait on one connection (sent and unanswered, or
   * not yet written). A call past it fails at once with `MemcacheError`
   * instead of queueing: memory stays bounded when a server stops
   * answering (each waiting request holds about 1 KB). A multi-key call
   * (getMany, setMany, deleteMany) is admitted whole while the queue is
   * below the limit. `Infinity`: no limit.
   * @default {10000}
   */
  maxQueue?: number;
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
  /**
   * Credentials for memcached's ASCII authentication (`memcached -Y
   * <authfile>`, whose lines are `username:password`; memcached 1.5.15+).
   * They are sent as the first request of every new connection, before
   * anything queued on it. A refused login rejects every call on that
   * connection with {@linkcode MemcacheAuthError}; calls in the second after
   * it fail at once with it too, without connecting, so a wrong password
   * never hammers the server. Neither may be empty or hold whitespace or
   * control characters. They appear in no error message. Unencrypted
   * unless `tls` is set.
   */
  auth?: AuthOptions;
  /** How to open sockets. @default the running runtime's transport */
  transport?: Transport;
  /**
   * Callbacks for each command (start and end: name, server, keys, hits,
   * misses, bytes, duration, error) and each connection (open, close,
   * failure); see {@linkcode Observer} and the README's "Observability".
   * PooledClient and HashClient pass it to the client of each connection
   * and server: a HashClient call split over servers is one event per
   * server; HashClient also reports servers leaving and rejoining the ring
   * (`onServer`). A throwing observer (or a getter of a callback that
   * throws) never breaks a call (its first error is logged with
   * `console.error`). Calls a callback makes before it returns (an
   * `onCommandStart` reading the cache) are not reported to that observer,
   * so a callback never starts itself again; calls a command makes inside
   * itself (`getOrSet`'s `mg`/`ms`, `deleteMany`'s deletes) are not
   * reported beside it. Without one, commands run with no
   * observation cost (on runtimes with `diagnostics_channel` the same
   * events are published there while someone subscribes).
   */
  observer?: Observer;
}

/** Credentials for memcached's ASCII authentication; see {@linkcode ClientOptions.auth}. */
export interface AuthOptions {
  /** A user of the server's authfile. */
  username: string;
  /** That user's password. */
  password: string;
}

/** ms after a refused login during which calls fail at once instead of logging in again. */
const AUTH_RETRY_MS = 1000;
/**
 * When each server last refused a login, per `auth` object: shared by the
 * clients a PooledClient or HashClient makes from one options object, so a
 * pool whose clients are replaced after each failure does not log in again
 * and again either.
 */
const refusals = new WeakMap<object, Map<string, number>>();
/** The key of the login `set` (memcached ignores it; a server without `-Y` stores it already expired). */
const AUTH_KEY = "_memkit_auth";

/**
 * The login request (memcached `-Y`): `set <key> 0 -1 <n>` with `username
 * password` as its data. The expiry of -1 means a server that does not
 * check logins keeps nothing of it. `refused` builds each call's error.
 */
function loginRequest(auth: AuthOptions, refused: (error: Error, command: string) => Error): FirstRequest {
  const token = encoder.encode(`${auth.username} ${auth.password}`);
  return {
    command: "auth",
    expect: EXPECT_LINE | WITH_DATA,
    encode: (out) => encodeStore(out, "set", AUTH_KEY, 0, -1, token, false),
    check: (reply) => {
      if (reply.type !== "status" || reply.status !== "STORED") throw unexpected(reply);
    },
    failure: refused,
  };
}

/** Checks `auth` before any I/O; messages never show the values. */
function checkAuth(auth: unknown): AuthOptions | undefined {
  if (auth === undefined) return undefined;
  if (typeof auth !== "object" || auth === null) throw new TypeError("auth must be { username, password }");
  const { username, password } = auth as Record<string, unknown>;
  for (const [name, value] of [["username", username], ["password", password]] as const) {
    // memcached splits the token at the first space and reads it up to CR/LF.
    // deno-lint-ignore no-control-regex
    if (typeof value !== "string" || value === "" || /[\s\x00-\x1f\x7f]/.test(value)) {
      throw new TypeError(`auth.${name} must be a non-empty string without whitespace or control characters`);
    }
  }
  return { username: username as string, password: password as string };
}

/**
 * Checks `tls.cert` and `tls.key` before any I/O: both or neither, each
 * PEM. Whether the PEM parses is known only when a connection is made
 * (`MemcacheConnectionError` then, with the runtime's reason).
 */
function checkClientCert(tls: ClientOptions["tls"]): void {
  if (typeof tls !== "object" || tls === null || (tls.cert === undefined && tls.key === undefined)) return;
  if (typeof tls.cert !== "string" || !/-----BEGIN [A-Z0-9 ]*CERTIFICATE-----/.test(tls.cert)) {
    throw new TypeError("tls.cert must be a PEM certificate (-----BEGIN CERTIFICATE-----), given with tls.key");
  }
  if (typeof tls.key !== "string" || !/-----BEGIN [A-Z0-9 ]*PRIVATE KEY-----/.test(tls.key)) {
    throw new TypeError("tls.key must be the PEM private key of tls.cert (-----BEGIN PRIVATE KEY-----)");
  }
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

/** Default {@linkcode ClientOptions.connectTimeout}, ms. */
export const DEFAULT_CONNECT_TIMEOUT = 5000;
/** Default {@linkcode ClientOptions.timeout}, ms. */
export const DEFAULT_TIMEOUT = 5000;
/** Default {@linkcode ClientOptions.maxQueue}. */
export const DEFAULT_MAX_QUEUE = 10_000;

/** The statuses each meta command may answer (see _meta.ts). */
const GET_STATUSES: readonly MetaStatus[] = ["VA", "HD", "EN"];
const SET_STATUSES: readonly MetaStatus[] = ["HD", "NS", "EX", "NF"];
const DELETE_STATUSES: readonly MetaStatus[] = ["HD", "NF", "EX"];
const ARITHMETIC_STATUSES: readonly MetaStatus[] = ["HD", "VA", "NF", "NS", "EX"];

/** A `get` on the pipeline, for others of its key to join (see Client's #lastGet). */
interface GetFlight {
  wire: string;
  conn: Connection;
  promise: Promise<unknown>;
  /** Set when the reply comes: its item, or `null` for a miss. */
  item: Item | null | undefined;
}

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

const encoder = new TextEncoder();

function isPromise<T>(value: unknown): value is Promise<T> {
  // Bytes first: looking up a missing `then` on a typed array is slow in JavaScriptCore.
  if (value === null || (typeof value !== "object" && typeof value !== "function") || ArrayBuffer.isView(value)) {
    return false;
  }
  return typeof (value as Promise<T>).then === "function";
}

/** A reply that does not fit its request: the connection closes (see Connection.request). */
function unexpected(reply: Reply): ProtocolError {
  const text = reply.type === "line" ? reply.text : reply.type === "status" ? reply.status : reply.type;
  return new ProtocolError(`Unexpected reply ${JSON.stringify(text)}`);
}

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
  #login: FirstRequest | undefined;
  /** When this server last refused these credentials (see refusals), keyed by server. */
  #refusals: Map<string, number> | undefined;
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
    const auth = checkAuth(options.auth);
    if (auth !== undefined) {
      this.#login = loginRequest(auth, (error, command) => this.#refused(error, command));
      const key = options.auth as object;
      if (!refusals.has(key)) refusals.set(key, new Map());
      this.#refusals = refusals.get(key);
    }
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

  /** The error of a call on a connection whose login the server refused. */
  #refused(error: Error, command: string): MemcacheAuthError {
    this.#refusals!.set(this.server, Date.now());
    // The server's reply is in `cause`; the message is the same whatever memcached answered
    // (pipelined behind a refused login, it may say "unauthenticated" instead).
    const why = error instanceof MemcacheClientError ? "wrong username or password" : "unexpected reply";
    return new MemcacheAuthError(`The server refused the login (${why})`, {
      server: this.server,
      command,
      cause: error,
    });
  }

  #open(): Connection {
    const o = this.#options;
    this.#transport ??= defaultTransport();
    const since = Date.now() - (this.#refusals?.get(this.server) ?? 0);
    // Within a second of a refused login: no new login, every request rejects at once.
    const transport = since < AUTH_RETRY_MS
      ? Promise.reject(
        new MemcacheAuthError(
          `The server refused the login ${since} ms ago; it is tried again ${AUTH_RETRY_MS} ms after`,
          { server: this.server },
        ),
      )
      : this.#transport;
    const conn = new Connection(
      transport,
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
        first: this.#login,
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
    // A synchronous serde sends in this tick, so calls made after this one go after it.
    const serialized = prepared.some((p) => isPromise(p.serialized))
      ? await this.#inputs("set", () => Promise.all(prepared.map((p) => p.serialized)))
      : prepared.map((p) => p.serialized as Serialized);
    const flags = this.#inputs("set", () => prepared.map((p, i) => this.#checkSerialized(p, serialized[i])));
    // Sent in one synchronous loop: one write, in order, admitted as one call.
    const sends = this.#connection().batch(
      "set",
      () => prepared.map((p, i) => this.#sendStore("set", p, serialized[i][0], flags[i], undefined, false)),
    );
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
    const wireKey = this.#key(key);
    const noreply = this.#noreply(options.noreply);
    const expire = options.expire === undefined ? 0 : checkExpire(options.expire);
    const flags = options.flags === undefined ? undefined : checkFlags(options.flags);
    let serialized: Serialized | Promise<Serialized>;
    try {
      serialized = this.serde.serialize(key, value);
    } catch (error) {
      throw unserializable(key, error);
    }
    if (isPromise<Serialized>(serialized)) {
      serialized = serialized.catch((error) => Promise.reject(unserializable(key, error)));
    }
    return { wireKey, noreply, expire, flags, serialized };
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
    return conn.request(command, EXPECT_LINE | WITH_DATA, encode, undefined, undefined, (reply) => {
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
      throw unexpected(reply);
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
    return await conn.request(command, EXPECT_LINE, (out) => encode(out, false), undefined, undefined, (reply) => {
      if (reply.type === "status" && reply.status === ok) return true;
      if (reply.type === "status" && miss !== undefined && reply.status === miss) return false;
      throw unexpected(reply);
    });
  }

  /** What a serde's deserialize threw, as an error naming the key and flags (a MemcacheError passes as it is). */
  #undeserializable(key: string, flags: number, error: unknown): unknown {
    if (error instanceof MemcacheError) return error;
    return new MemcacheSerdeError(
      `Could not deserialize the value of ${JSON.stringify(key)} (flags ${flags}): ${
        (error as Error)?.message ?? error
      }`,
      { server: this.server, cause: error },
    );
  }

  /** Deserializes one item; a failure (sync or async) becomes #undeserializable's error. */
  #deserialize(key: string, item: Item): unknown {
    let value: unknown;
    try {
      value = this.serde.deserialize(key, item.value, item.flags);
    } catch (error) {
      throw this.#undeserializable(key, item.flags, error);
    }
    return isPromise(value)
      ? value.catch((error) => Promise.reject(this.#undeserializable(key, item.flags, error)))
      : value;
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
          const value = this.#deserialize(key, item);
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
      return this.#deserialize(key, { key: item.key, flags: item.flags, value: item.value.slice() }) as T;
    };
    const joined = flight.promise.then(own, (error) => {
      if (flight.item !== undefined) return own(); // the reply came; the first caller's serde failed
      if (!flight.conn.usable) throw error;
      if (this.#lastGet === flight) this.#lastGet = undefined;
      return this.#fetchOne("get", key, false, undefined, miss);
    });
    return this.ignoreExc ? joined.catch(() => miss) : joined;
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
      // gets/gats: every hit must carry its cas token.
      const check = withCas ? checkCasItems : undefined;
      const ask = (batch: string[]) =>
        conn.request(
          command,
          EXPECT_VALUES,
          (out) => encodeRetrieve(out, command, batch, expire),
          batch,
          undefined,
          check,
        );
      const replies = batches.length === 1
        ? [await ask(batches[0])]
        : await Promise.all(conn.batch(command, () => batches.map(ask)));
      const pending: Promise<void>[] = [];
      for (let r = 0; r < replies.length; r++) {
        const items = (replies[r] as { items: Item[] }).items;
        for (let i = 0; i < items.length; i++) {
          const item = items[i];
          const key = byWire === undefined ? item.key : byWire.get(item.key)!;
          const value = this.#deserialize(key, item);
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
    return await conn.request(
      command,
      EXPECT_LINE,
      (out) => encodeArithmetic(out, command, wireKey, delta, false),
      undefined,
      undefined,
      (reply) => {
        if (reply.type === "status" && reply.status === "NOT_FOUND") return null;
        if (reply.type === "line") return parseCounter(reply.text.trimEnd());
        throw unexpected(reply);
      },
    );
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
    return await this.#connection().request(
      "stats",
      EXPECT_STATS,
      (out) => encodeStats(out, args),
      undefined,
      undefined,
      (reply) => {
        if (reply.type !== "stats") throw unexpected(reply);
        return convertStats(reply.entries);
      },
    );
  }

  /** Sets the server's memory limit in megabytes. Resolves `true`. */
  async cacheMemlimit(megabytes: number): Promise<true> {
    const mb = this.#inputs("cache_memlimit", () => checkInt("megabytes", megabytes, 0, 2147483647));
    await this.#simple("cache_memlimit", false, (out, nr) => encodeCacheMemlimit(out, mb, nr), "OK");
    return true;
  }

  /** The server's version string, such as `"1.6.18"`. */
  async version(): Promise<string> {
    return await this.#connection().request("version", EXPECT_LINE, encodeVersion, undefined, undefined, (reply) => {
      if (reply.type === "line" && reply.text.startsWith("VERSION ")) return reply.text.slice(8);
      throw unexpected(reply);
    });
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
      await conn.request(
        "shutdown",
        EXPECT_LINE,
        (out) => encodeShutdown(out, graceful),
        undefined,
        undefined,
        (reply) => {
          throw unexpected(reply);
        },
      );
    } catch (error) {
      if (error instanceof MemcacheUnexpectedCloseError) return;
      throw error;
    }
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
    const line = typeof command === "string" ? encoder.encode(command) : command;
    const end = typeof endTokens === "string" ? encoder.encode(endTokens) : endTokens;
    if (end.length === 0) {
      throw new MemcacheIllegalInputError("endTokens must not be empty", { server: this.server, command: "raw" });
    }
    const conn = this.#open();
    try {
      return await conn.request(
        "raw",
        EXPECT_RAW | WITH_DATA,
        (out) => encodeRaw(out, line),
        undefined,
        end,
        (reply) => {
          if (reply.type !== "raw") throw unexpected(reply);
          return reply.bytes;
        },
      );
    } finally {
      await conn.close();
    }
  }

  // ---- meta protocol (memcached ≥ 1.6.10; the codec is in _meta.ts)

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
    let wire: string;
    let flags: string;
    const binary = typeof key !== "string";
    try {
      wire = this.#metaKey(key);
      flags = metaGetFlags(options, binary);
    } catch (error) {
      return Promise.reject(this.#context(error, "mg"));
    }
    try {
      return newer(
        this.#connection().request(
          "mg",
          EXPECT_META,
          (out) => encodeMeta(out, "mg", wire, binary, flags, false),
          undefined,
          undefined,
          (reply) =>
            this.#metaRead(this.#metaCheck(this.#metaLine(reply, GET_STATUSES, "mg"), wire, options), key, options),
        ) as Promise<MetaResult>,
        options,
      );
    } catch (error) {
      return Promise.reject(error);
    }
  }

  /**
   * Reads many keys in one round trip: a quiet `mg … q` per key (misses
   * send nothing) closed by one `mn`. Resolves to the hits, keyed by the
   * keys as passed (a `Uint8Array` key: that very object).
   */
  metaGetMany(keys: Iterable<MetaKey>, options?: MetaGetManyOptions): Promise<Map<MetaKey, MetaResult>> {
    let list: MetaKey[];
    let wire: string[];
    let binary: boolean[] | undefined;
    let flags: string;
    let binaryFlags: string;
    try {
      list = [...keys];
      wire = list.map((k) => this.#metaKey(k));
      binary = list.some((k) => typeof k !== "string") ? list.map((k) => typeof k !== "string") : undefined;
      flags = metaGetFlags(options, false, true);
      binaryFlags = binary === undefined ? flags : metaGetFlags(options, true, true);
    } catch (error) {
      return Promise.reject(this.#context(error, "mg"));
    }
    if (list.length === 0) return Promise.resolve(new Map());
    try {
      return newer(
        this.#connection().request(
          "mg",
          EXPECT_META_QUIET,
          (out) => encodeMetaGetBatch(out, wire, binary, flags, binaryFlags),
          wire,
          undefined,
          (reply) => this.#metaReadMany(reply, list, wire, options),
        ) as Promise<Map<MetaKey, MetaResult>>,
        options,
      );
    } catch (error) {
      return Promise.reject(error);
    }
  }

  /** A metaGetMany reply: each hit placed by its `O<index>`. */
  #metaReadMany(
    reply: Reply,
    list: MetaKey[],
    wire: string[],
    options: MetaGetManyOptions | undefined,
  ): Map<MetaKey, MetaResult> | Promise<Map<MetaKey, MetaResult>> {
    if (reply.type !== "metaGroup") throw this.#metaOutOfStep(reply.type, "mg");
    const results = new Map<MetaKey, MetaResult>();
    let pending: Promise<void>[] | undefined;
    const lines = reply.lines;
    for (let i = 0; i < lines.length; i++) {
      const line = lines[i];
      const index = line.opaque === undefined || line.opaque.length > 9 ? -1 : +line.opaque;
      if (!(Number.isInteger(index) && index >= 0 && index < list.length) || line.status === "EN") {
        throw this.#metaOutOfStep(`${line.status} O${line.opaque}`, "mg");
      }
      const key = list[index];
      if (line.key !== undefined && line.key !== wire[index]) throw this.#metaOutOfStep(`k${line.key}`, "mg");
      line.opaque = undefined; // the batch's own tag
      const result = this.#metaRead(line, key, options);
      if (isPromise<MetaResult>(result)) (pending ??= []).push(result.then((r) => void results.set(key, r)));
      else results.set(key, result);
    }
    return pending === undefined ? results : Promise.all(pending).then(() => results);
  }

  /**
   * `ms`: stores `value` (through the serde) under `key`, by `mode` (set,
   * add, replace, append, prepend), optionally against a `cas` (with
   * `invalidate`: an older cas stores a stale item). Resolves with
   * `stored`; `status` says why not (`NS` not stored, `EX` cas mismatch,
   * `NF` not found). With `noreply` the server answers only failures.
   */
  metaSet(key: MetaKey, value: unknown, options?: MetaSetOptions): Promise<MetaResult> {
    try {
      const binary = typeof key !== "string";
      const wire = this.#metaKey(key);
      const plan = metaSetPlan(options, binary);
      const serdeKey = this.#serdeKey(key);
      let serialized: Serialized | Promise<Serialized>;
      try {
        serialized = this.serde.serialize(serdeKey, value);
      } catch (error) {
        throw unserializable(serdeKey, error); // as set's: bad input, nothing sent
      }
      return isPromise<Serialized>(serialized)
        ? serialized.then(
          (pair) => this.#inputs("ms", () => this.#sendMetaSet(key, wire, plan, pair, options)),
          (error) => Promise.reject(this.#context(unserializable(serdeKey, error), "ms")),
        )
        : this.#sendMetaSet(key, wire, plan, serialized, options);
    } catch (error) {
      return Promise.reject(this.#context(error, "ms"));
    }
  }

  #sendMetaSet(
    key: MetaKey,
    wire: string,
    plan: MetaSetPlan,
    [data, serdeFlags]: Serialized,
    options: MetaSetOptions | undefined,
  ): Promise<MetaResult> {
    if (typeof data !== "string" && !(data instanceof Uint8Array)) {
      throw new MemcacheIllegalInputError("The serde must return a string or Uint8Array");
    }
    const bytes = typeof data === "string" ? encoder.encode(data) : data;
    const flags = plan.flags ?? checkFlags(serdeFlags);
    const binary = typeof key !== "string";
    // With E: a server that does not know it answers after reading the data block (see _protocol.ts).
    const swallows = options?.newCas !== undefined ? INVALID_FLAG_SWALLOWS_DATA : 0;
    return newer(
      this.#connection().request(
        "ms",
        (plan.quiet ? EXPECT_META_QUIET : EXPECT_META) | WITH_DATA | swallows,
        (out) => encodeMetaSet(out, wire, binary, bytes, flags, plan.tail, plan.quiet),
        plan.quiet ? [wire] : undefined,
        undefined,
        (reply) => {
          const line = this.#metaCheck(this.#metaLine(reply, SET_STATUSES, "ms"), wire, options);
          const result = metaResult(line, options?.returnKey ? key : undefined);
          result.stored = result.status === "HD";
          return result;
        },
      ),
      options,
    );
  }

  /**
   * `md`: deletes `key` (`deleted`), optionally only at a `cas`; with
   * `invalidate` it marks the item stale instead, so the next reader gets
   * `win` and the others the old value with `stale`.
   */
  metaDelete(key: MetaKey, options?: MetaDeleteOptions): Promise<MetaResult> {
    return this.#metaSimple("md", key, options, metaDeleteFlags, DELETE_STATUSES, (result) => {
      result.deleted = result.status === "HD";
    });
  }

  /**
   * `ma`: adds `delta` (default 1) to a decimal counter, or subtracts it
   * with `mode: "decr"` (stopping at 0); with `vivify` a missing counter is
   * created at `initial` (the delta is not applied then). `value` is the
   * new counter, a `number` or, above 2^53-1, a `bigint`.
   */
  metaArithmetic(key: MetaKey, options?: MetaArithmeticOptions): Promise<MetaResult> {
    return this.#metaSimple("ma", key, options, metaArithmeticFlags, ARITHMETIC_STATUSES, (result, line) => {
      if (line.item === undefined) return;
      const value = parseCounterValue(line.item.value);
      if (value === undefined) throw new ProtocolError("an ma reply's value is not a decimal number");
      result.value = value;
    });
  }

  /** `mn`: resolves `true` once the server has answered everything sent before it. */
  async metaNoop(): Promise<true> {
    const reply = await this.#connection().request("mn", EXPECT_META, (out) => out.text("mn\r\n"));
    if (reply.type !== "meta" || reply.status !== "MN") throw this.#metaOutOfStep(reply.type, "mn");
    return true;
  }

  /** md and ma: one line (quiet: a trailing mn), read into a result by `finish`. */
  #metaSimple<O extends { noreply?: boolean }>(
    command: "md" | "ma",
    key: MetaKey,
    options: O | undefined,
    flagsOf: (options: O | undefined, binary: boolean) => string,
    statuses: readonly MetaStatus[],
    finish: (result: MetaResult, line: MetaLine) => void,
  ): Promise<MetaResult> {
    let wire: string;
    let flags: string;
    const binary = typeof key !== "string";
    const quiet = isQuiet(options);
    try {
      wire = this.#metaKey(key);
      flags = flagsOf(options, binary);
    } catch (error) {
      return Promise.reject(this.#context(error, command));
    }
    try {
      return newer(
        this.#connection().request(
          command,
          quiet ? EXPECT_META_QUIET : EXPECT_META,
          (out) => encodeMeta(out, command, wire, binary, flags, quiet),
          quiet ? [wire] : undefined,
          undefined,
          (reply) => {
            const line = this.#metaCheck(this.#metaLine(reply, statuses, command), wire, options as MetaCommonOptions);
            const result = metaResult(line, (options as MetaCommonOptions | undefined)?.returnKey ? key : undefined);
            finish(result, line);
            return result;
          },
        ),
        options,
      );
    } catch (error) {
      return Promise.reject(error);
    }
  }

  /** The wire form of a meta key: checked and prefixed; bytes in base64. */
  #metaKey(key: MetaKey): string {
    if (typeof key === "string") return this.#key(key);
    if (key instanceof Uint8Array) return binaryWireKey(key, this.keyPrefix);
    throw new MemcacheIllegalInputError(`Key must be a string or Uint8Array, got ${typeof key}`);
  }

  /** The key the serde sees: a string as passed; bytes as their base64. */
  #serdeKey(key: MetaKey): string {
    return typeof key === "string" ? key : encodeBase64(key);
  }

  /**
   * The one meta line of a reply (a quiet command's MN alone: success),
   * which must have one of `statuses`; anything else is a reply out of step.
   */
  #metaLine(reply: Reply, statuses: readonly MetaStatus[], command: string): MetaLine {
    let line: MetaLine | undefined;
    if (reply.type === "meta") line = reply;
    else if (reply.type === "metaGroup" && reply.lines.length <= 1) line = reply.lines[0] ?? QUIET_SUCCESS;
    if (line === undefined || !statuses.includes(line.status)) {
      throw this.#metaOutOfStep(reply.type === "meta" ? reply.status : reply.type, command);
    }
    return line;
  }

  /** A reply's `k` and `O` must be the request's: another's means the stream is out of step. */
  #metaCheck(line: MetaLine, wire: string, options: MetaCommonOptions | undefined): MetaLine {
    if ((line.key !== undefined && line.key !== wire) || line.opaque !== options?.opaque) {
      throw new ProtocolError(`a meta reply for another request (key ${line.key}, opaque ${line.opaque})`);
    }
    return line;
  }

  #metaOutOfStep(what: string, command: string): ProtocolError {
    return new ProtocolError(`Unexpected reply ${JSON.stringify(what)} to ${command}`);
  }

  /** An mg line as a result: the value deserialized (maybe asynchronously). */
  #metaRead(line: MetaLine, key: MetaKey, options: MetaGetManyOptions | undefined): MetaResult | Promise<MetaResult> {
    const result = metaResult(line, options?.returnKey ? key : undefined);
    const item = line.item;
    if (item === undefined) return result;
    item.flags = line.flags ?? 0;
    const value = this.#deserialize(this.#serdeKey(key), item); // a failure: MemcacheSerdeError, as get's
    if (!isPromise(value)) {
      result.value = value;
      return result;
    }
    return value.then((v) => {
      result.value = v;
      return result;
    });
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

/** A value the serde could not serialize: bad input, refused before anything is sent. */
function unserializable(key: string, error: unknown): unknown {
  if (error instanceof MemcacheError) return error;
  return new MemcacheIllegalInputError(
    `Could not serialize the value of ${JSON.stringify(key)}: ${(error as Error)?.message ?? error}`,
    { cause: error },
  );
}

/** A gets/gats hit without its cas token: a reply that does not fit the request. */
function noCas(item: Item): ProtocolError {
  return new ProtocolError(`A gets reply without a cas token for ${JSON.stringify(item.key)}`);
}

/** The map of a gets/gats batch: every hit must carry its cas token. */
function checkCasItems(reply: Reply): Reply {
  if (reply.type === "values") { for (const item of reply.items) if (item.cas === undefined) throw noCas(item); }
  return reply;
}
