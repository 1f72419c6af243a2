/**
 * `RetryingClient`: retries failed calls of another client, with
 * pymemcache's `RetryingClient` semantics.
 *
 * @module
 */

import type { Client } from "./client.ts";
import type { GetOrSetOptions, InvalidateOptions, Loader } from "./_get_or_set.ts"; // generated: the commands' types
import type { Mapping } from "./_mapping.ts"; // generated: the commands' types
import type {
  MetaArithmeticOptions,
  MetaDeleteOptions,
  MetaGetManyOptions,
  MetaGetOptions,
  MetaKey,
  MetaSetOptions,
} from "../protocol/_meta.ts"; // generated: the commands' types
import type { NoreplyOptions, StoreOptions, Value } from "./client.ts"; // generated: the commands' types
import { type CommandName, type Commands, rowOf, runComposed } from "./commands.ts";
import { MemcacheAuthError, MemcacheTimeoutError, MemcacheUnexpectedCloseError } from "../errors.ts";
import { entriesOf } from "./_mapping.ts";
import { checkMs } from "./_options.ts";
import { endBackground, requestTimeout, timeoutOf } from "./_background.ts";
import { observeCommands, type Observer } from "./_observe.ts";

/** An error class, such as `MemcacheUnexpectedCloseError` or `TypeError`. */
// deno-lint-ignore no-explicit-any
export type ErrorClass = abstract new (...args: any[]) => Error;

/** Options of {@linkcode RetryingClient}. */
export interface RetryingClientOptions {
  /** How many times a call is made before its error is thrown; at least 1. @default {2} */
  attempts?: number;
  /** ms to wait between attempts. @default {0} */
  retryDelay?: number;
  /** Retry only errors that are instances of one of these classes. @default every error */
  retryFor?: Iterable<ErrorClass>;
  /** Never retry errors that are instances of one of these classes. @default none */
  doNotRetryFor?: Iterable<ErrorClass>;
  /**
   * Told of each call once it settled, after its retries (`onCommandStart`,
   * `onCommand`; bytes are 0 here). Give the wrapped client an observer for
   * each attempt's bytes and server, and its connections.
   */
  observer?: Observer;
}

/**
 * What a {@linkcode RetryingClient} can wrap: {@linkcode Commands}.
 *
 * @deprecated Use {@linkcode Commands}; this name stays so imports keep working.
 */
export type RetryableClient = Commands;

function errorClasses(name: string, value: Iterable<ErrorClass> | undefined): ErrorClass[] {
  if (value === undefined) return [];
  if (value === null || typeof (value as Iterable<ErrorClass>)[Symbol.iterator] !== "function") {
    throw new TypeError(`${name} must be an iterable of error classes`);
  }
  const classes = [...value];
  for (const cls of classes) {
    if (typeof cls !== "function" || !(cls === Error || cls.prototype instanceof Error)) {
      throw new TypeError(`${name} may only contain Error classes, got ${String(cls)}`);
    }
  }
  return classes;
}

const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

/**
 * Wraps a client and retries its calls that fail, as pymemcache's
 * `RetryingClient`: a call is made up to `attempts` times, `retryDelay` ms
 * apart. An error is thrown at once when it was the last attempt, when
 * `retryFor` is given and the error is none of those classes, or when it is
 * one of the `doNotRetryFor` classes. Results are the wrapped client's.
 *
 * A retried call runs again in full. Commands that would apply twice
 * (`incr`, `decr`, `append`, `prepend`, `rawCommand`: `replay: false` in
 * src/clients/commands.ts) are not retried after a timeout or an unexpected close,
 * when the first attempt may have reached the server; other failures
 * (connection refused, a server error reply) are retried for them too. A
 * retried `add`, `cas` or `delete` may report `false` for a change its
 * first attempt made. A refused login (`MemcacheAuthError`) is never
 * retried, whatever `retryFor` says: it would be refused again.
 *
 * @example
 * ```ts ignore
 * import { Client, MemcacheUnexpectedCloseError, RetryingClient } from "@memkit/memcache";
 * await using client = new RetryingClient(new Client("127.0.0.1:11211"), {
 *   attempts: 3,
 *   retryDelay: 10,
 *   retryFor: [MemcacheUnexpectedCloseError],
 * });
 * await client.set("k", "v");
 * ```
 */
export class RetryingCore<C extends Commands = Client> implements Commands {
  /** The wrapped client. */
  readonly client: C;
  /** Attempts per call. */
  readonly attempts: number;
  /** ms between attempts. */
  readonly retryDelay: number;
  readonly #retryFor: ErrorClass[];
  readonly #doNotRetryFor: ErrorClass[];

  /**
   * Wraps `client`.
   *
   * @param client the client whose calls are retried; closing this closes it.
   * @throws {TypeError} if `attempts` is not an integer of at least 1,
   * `retryDelay` not a number of milliseconds, or `retryFor` /
   * `doNotRetryFor` hold anything but error classes, or share a class.
   */
  constructor(client: C, options: RetryingClientOptions = {}) {
    const attempts = options.attempts ?? 2;
    if (!Number.isInteger(attempts) || attempts < 1) {
      throw new TypeError(`attempts must be an integer of at least 1 (otherwise no attempt is made), got ${attempts}`);
    }
    const retryDelay = checkMs("retryDelay", options.retryDelay ?? 0);
    this.#retryFor = errorClasses("retryFor", options.retryFor);
    this.#doNotRetryFor = errorClasses("doNotRetryFor", options.doNotRetryFor);
    for (const cls of this.#retryFor) {
      if (this.#doNotRetryFor.includes(cls)) {
        throw new TypeError(`${cls.name} is in both retryFor and doNotRetryFor; put each class in one only`);
      }
    }
    this.client = client;
    this.attempts = attempts;
    this.retryDelay = retryDelay;
    const { server, servers } = client as { server?: unknown; servers?: unknown };
    const name = typeof server === "string" ? server : Array.isArray(servers) ? servers.join(",") : "";
    observeCommands(this, name, options.observer, false);
  }

  #retryable(error: unknown): boolean {
    if (this.#retryFor.length > 0 && !this.#retryFor.some((cls) => error instanceof cls)) return false;
    return !this.#doNotRetryFor.some((cls) => error instanceof cls);
  }

  /**
   * Calls `client[name](...args)` until it succeeds or may not be retried.
   * A command that may not be replayed is not retried after a failure that
   * may have reached the server.
   */
  async #retry(name: CommandName, args: unknown[]): Promise<unknown> {
    const row = rowOf(name);
    // An iterator could only be read once: keep its keys or pairs for the retries.
    if (row.route === "keys") args[0] = [...(args[0] as Iterable<string>)];
    else if (row.route === "pairs" && !(args[0] instanceof Map) && Symbol.iterator in (args[0] as object)) {
      args[0] = [...entriesOf(args[0] as Mapping)];
    }
    for (let attempt = 1;; attempt++) {
      try {
        // deno-lint-ignore no-explicit-any
        return await (this.client[name] as (...args: any[]) => Promise<unknown>)(...args);
      } catch (error) {
        if (attempt >= this.attempts || error instanceof MemcacheAuthError || !this.#retryable(error)) throw error;
        if (!row.replay && (error instanceof MemcacheTimeoutError || error instanceof MemcacheUnexpectedCloseError)) {
          throw error;
        }
        if (this.retryDelay > 0) await sleep(this.retryDelay);
      }
    }
  }

  /** The wrapped client's `checkKey` (synchronous; nothing to retry). */
  checkKey(key: string): Uint8Array {
    return this.client.checkKey(key);
  }

  // ---- generated by scripts/gen_commands.ts from src/clients/commands.ts: do not edit by hand
  /**
   * Stores a value. Resolves to `true` (always, as pymemcache: with
   * noreply nothing is known; otherwise failures throw).
   *
   * Retried as the class says.
   *
   * @throws {MemcacheIllegalInputError} for a bad key, value, expire or flags (nothing is sent).
   * @throws {MemcacheServerError} e.g. for a value over the server's item size (with noreply the server stays silent).
   */
  set(key: string, value: unknown, options: StoreOptions = {}): ReturnType<C["set"]> {
    return this.#retry("set", [key, value, options]) as ReturnType<C["set"]>;
  }

  /**
   * Stores only if the key is absent: `true` if stored (or noreply), `false` if it exists.
   *
   * Retried as the class says.
   */
  add(key: string, value: unknown, options: StoreOptions = {}): ReturnType<C["add"]> {
    return this.#retry("add", [key, value, options]) as ReturnType<C["add"]>;
  }

  /**
   * Stores only if the key exists: `true` if stored (or noreply), `false` if it is absent.
   *
   * Retried as the class says.
   */
  replace(key: string, value: unknown, options: StoreOptions = {}): ReturnType<C["replace"]> {
    return this.#retry("replace", [key, value, options]) as ReturnType<C["replace"]>;
  }

  /**
   * Appends bytes to an existing value: `true` if done (or noreply), `false` if absent.
   *
   * Not retried after a timeout or an unexpected close, when the first attempt may have been applied: running
   * it again could apply it twice. Other failures are retried as the class says.
   */
  append(key: string, value: unknown, options: StoreOptions = {}): ReturnType<C["append"]> {
    return this.#retry("append", [key, value, options]) as ReturnType<C["append"]>;
  }

  /**
   * Prepends bytes to an existing value: `true` if done (or noreply), `false` if absent.
   *
   * Not retried after a timeout or an unexpected close, when the first attempt may have been applied: running
   * it again could apply it twice. Other failures are retried as the class says.
   */
  prepend(key: string, value: unknown, options: StoreOptions = {}): ReturnType<C["prepend"]> {
    return this.#retry("prepend", [key, value, options]) as ReturnType<C["prepend"]>;
  }

  /**
   * Check-and-set: `true` if stored, `false` if the item changed since
   * `cas` was read, `null` if it does not exist. Waits for the reply unless
   * `noreply: true` (then `true`).
   *
   * Retried as the class says.
   */
  cas(key: string, value: unknown, cas: string | number | bigint, options: StoreOptions = {}): ReturnType<C["cas"]> {
    return this.#retry("cas", [key, value, cas, options]) as ReturnType<C["cas"]>;
  }

  /**
   * Stores many values, pipelined. Resolves to the keys (as passed) that
   * were not stored; always empty with noreply.
   *
   * Retried as the class says.
   */
  setMany(values: Mapping, options: StoreOptions = {}): ReturnType<C["setMany"]> {
    return this.#retry("setMany", [values, options]) as ReturnType<C["setMany"]>;
  }

  /** Alias of {@linkcode RetryingClient.setMany}. */
  setMulti(values: Mapping, options: StoreOptions = {}): ReturnType<C["setMany"]> {
    return this.setMany(values, options);
  }

  /**
   * The value of `key`, or `defaultValue` on a miss. A byte value up to
   * 4 KiB may be a view of a shared `ArrayBuffer`; see {@linkcode RetryingClient.getMany}.
   *
   * Retried as the class says.
   */
  get(key: string, defaultValue: Value = null): ReturnType<C["get"]> {
    return this.#retry("get", [key, defaultValue]) as ReturnType<C["get"]>;
  }

  /**
   * The values of the keys found, keyed as passed (without the prefix).
   * Byte values up to 4 KiB may be views of a shared 8 KiB `ArrayBuffer`,
   * as Node's pooled Buffers are (see the README): `value.slice()` before
   * transferring a value's `.buffer` or keeping it for long.
   *
   * Retried as the class says.
   */
  getMany(keys: Iterable<string>): ReturnType<C["getMany"]> {
    return this.#retry("getMany", [keys]) as ReturnType<C["getMany"]>;
  }

  /** Alias of {@linkcode RetryingClient.getMany}. */
  getMulti(keys: Iterable<string>): ReturnType<C["getMany"]> {
    return this.getMany(keys);
  }

  /**
   * `[value, cas]` of `key`, or `[defaultValue, casDefault]` on a miss.
   *
   * Retried as the class says.
   */
  gets(key: string, defaultValue: Value = null, casDefault: string | null = null): ReturnType<C["gets"]> {
    return this.#retry("gets", [key, defaultValue, casDefault]) as ReturnType<C["gets"]>;
  }

  /**
   * `[value, cas]` of every key found, keyed as passed.
   *
   * Retried as the class says.
   */
  getsMany(keys: Iterable<string>): ReturnType<C["getsMany"]> {
    return this.#retry("getsMany", [keys]) as ReturnType<C["getsMany"]>;
  }

  /**
   * Like {@linkcode RetryingClient.get}, setting the item's expiry to `expire` seconds.
   *
   * Retried as the class says.
   */
  gat(key: string, expire = 0, defaultValue: Value = null): ReturnType<C["gat"]> {
    return this.#retry("gat", [key, expire, defaultValue]) as ReturnType<C["gat"]>;
  }

  /**
   * Like {@linkcode RetryingClient.gets}, setting the item's expiry to `expire` seconds.
   *
   * Retried as the class says.
   */
  gats(key: string, expire = 0, defaultValue: Value = null, casDefault: string | null = null): ReturnType<C["gats"]> {
    return this.#retry("gats", [key, expire, defaultValue, casDefault]) as ReturnType<C["gats"]>;
  }

  /**
   * Deletes `key`: `true` if deleted (or noreply), `false` if it was absent.
   *
   * Retried as the class says.
   */
  delete(key: string, options: NoreplyOptions = {}): ReturnType<C["delete"]> {
    return this.#retry("delete", [key, options]) as ReturnType<C["delete"]>;
  }

  /**
   * Deletes many keys, pipelined. Resolves `true`.
   *
   * Retried as the class says.
   */
  deleteMany(keys: Iterable<string>, options: NoreplyOptions = {}): ReturnType<C["deleteMany"]> {
    return this.#retry("deleteMany", [keys, options]) as ReturnType<C["deleteMany"]>;
  }

  /** Alias of {@linkcode RetryingClient.deleteMany}. */
  deleteMulti(keys: Iterable<string>, options: NoreplyOptions = {}): ReturnType<C["deleteMany"]> {
    return this.deleteMany(keys, options);
  }

  /**
   * Adds `value` to a decimal counter. Resolves to the new value (a
   * `bigint` above 2^53-1), or `null` if the key is absent or with
   * noreply. Waits for the reply unless `noreply: true`.
   *
   * Not retried after a timeout or an unexpected close, when the first attempt may have been applied: running
   * it again could apply it twice. Other failures are retried as the class says.
   */
  incr(key: string, value: number | bigint, options: NoreplyOptions = {}): ReturnType<C["incr"]> {
    return this.#retry("incr", [key, value, options]) as ReturnType<C["incr"]>;
  }

  /**
   * Subtracts from a counter; memcached stops at 0. Otherwise as {@linkcode RetryingClient.incr}.
   *
   * Not retried after a timeout or an unexpected close, when the first attempt may have been applied: running
   * it again could apply it twice. Other failures are retried as the class says.
   */
  decr(key: string, value: number | bigint, options: NoreplyOptions = {}): ReturnType<C["decr"]> {
    return this.#retry("decr", [key, value, options]) as ReturnType<C["decr"]>;
  }

  /**
   * Sets the expiry of `key`: `true` if touched (or noreply), `false` if absent.
   *
   * Retried as the class says.
   */
  touch(key: string, expire = 0, options: NoreplyOptions = {}): ReturnType<C["touch"]> {
    return this.#retry("touch", [key, expire, options]) as ReturnType<C["touch"]>;
  }

  /**
   * Server statistics, `stats` plus optional arguments (`"settings"`,
   * `"slabs"`, ...). Values are converted as pymemcache's STAT_TYPES:
   * integers where they parse, a few floats and booleans, else strings.
   *
   * Retried as the class says.
   */
  stats(...args: string[]): ReturnType<C["stats"]> {
    return this.#retry("stats", args) as ReturnType<C["stats"]>;
  }

  /**
   * Sets the server's memory limit in megabytes. Resolves `true`.
   *
   * Retried as the class says.
   */
  cacheMemlimit(megabytes: number): ReturnType<C["cacheMemlimit"]> {
    return this.#retry("cacheMemlimit", [megabytes]) as ReturnType<C["cacheMemlimit"]>;
  }

  /**
   * The server's version string, such as `"1.6.18"`.
   *
   * Retried as the class says.
   */
  version(): ReturnType<C["version"]> {
    return this.#retry("version", []) as ReturnType<C["version"]>;
  }

  /**
   * Sets the server's log verbosity. Resolves `true`.
   *
   * Retried as the class says.
   */
  verbosity(level: number, options: NoreplyOptions = {}): ReturnType<C["verbosity"]> {
    return this.#retry("verbosity", [level, options]) as ReturnType<C["verbosity"]>;
  }

  /**
   * Invalidates every item, after `delay` seconds. `true` once the server
   * confirms (or with noreply).
   *
   * Retried as the class says.
   */
  flushAll(delay = 0, options: NoreplyOptions = {}): ReturnType<C["flushAll"]> {
    return this.#retry("flushAll", [delay, options]) as ReturnType<C["flushAll"]>;
  }

  /**
   * Asks the server to shut down (memcached needs `-A`). Resolves once the
   * server closed the connection.
   *
   * Retried as the class says.
   *
   * @throws {MemcacheUnknownCommandError} when the server has shutdown disabled.
   */
  shutdown(graceful = false): ReturnType<C["shutdown"]> {
    return this.#retry("shutdown", [graceful]) as ReturnType<C["shutdown"]>;
  }

  /**
   * Sends one command line as is and returns the reply bytes before the
   * first `endTokens` (error lines throw). It runs on a connection of its
   * own, closed afterwards, so a reply longer than `endTokens` says can
   * never be read as another request's reply. A reply may hold at most
   * 64 MiB before `endTokens`; past that the call rejects with
   * `MemcacheUnknownError` and the connection closes.
   *
   * Not retried after a timeout or an unexpected close, when the first attempt may have been applied: running
   * it again could apply it twice. Other failures are retried as the class says.
   */
  rawCommand(command: string | Uint8Array, endTokens: string | Uint8Array = "\r\n"): ReturnType<C["rawCommand"]> {
    return this.#retry("rawCommand", [command, endTokens]) as ReturnType<C["rawCommand"]>;
  }

  /**
   * `mg`: reads `key` (a string, or any bytes as a `Uint8Array`, sent
   * base64) with what `options` asks for: by default its value (through
   * the serde), plus any of cas, TTL, size, last access, hit-before, and
   * touch, vivify-on-miss and early-recache leases. A miss resolves to
   * `{ hit: false, … }`. See {@linkcode MetaGetOptions}, {@linkcode MetaResult}.
   *
   * Not retried after a timeout or an unexpected close, when the first attempt may have been applied: running
   * it again could apply it twice. Other failures are retried as the class says.
   *
   * @throws {MemcacheIllegalInputError} for a bad key or option (nothing is sent).
   * @throws {MemcacheUnknownCommandError} when the server does not speak meta.
   */
  metaGet(key: MetaKey, options?: MetaGetOptions): ReturnType<C["metaGet"]> {
    return this.#retry("metaGet", [key, options]) as ReturnType<C["metaGet"]>;
  }

  /**
   * Reads many keys in one round trip: a quiet `mg … q` per key (misses
   * send nothing) closed by one `mn`. Resolves to the hits, keyed by the
   * keys as passed (a `Uint8Array` key: that very object).
   *
   * Not retried after a timeout or an unexpected close, when the first attempt may have been applied: running
   * it again could apply it twice. Other failures are retried as the class says.
   */
  metaGetMany(keys: Iterable<MetaKey>, options?: MetaGetManyOptions): ReturnType<C["metaGetMany"]> {
    return this.#retry("metaGetMany", [keys, options]) as ReturnType<C["metaGetMany"]>;
  }

  /**
   * `ms`: stores `value` (through the serde) under `key`, by `mode` (set,
   * add, replace, append, prepend), optionally against a `cas` (with
   * `invalidate`: an older cas stores a stale item). Resolves with
   * `stored`; `status` says why not (`NS` not stored, `EX` cas mismatch,
   * `NF` not found). With `noreply` the server answers only failures.
   *
   * Not retried after a timeout or an unexpected close, when the first attempt may have been applied: running
   * it again could apply it twice. Other failures are retried as the class says.
   */
  metaSet(key: MetaKey, value: unknown, options?: MetaSetOptions): ReturnType<C["metaSet"]> {
    return this.#retry("metaSet", [key, value, options]) as ReturnType<C["metaSet"]>;
  }

  /**
   * `md`: deletes `key` (`deleted`), optionally only at a `cas`; with
   * `invalidate` it marks the item stale instead, so the next reader gets
   * `win` and the others the old value with `stale`.
   *
   * Retried as the class says.
   */
  metaDelete(key: MetaKey, options?: MetaDeleteOptions): ReturnType<C["metaDelete"]> {
    return this.#retry("metaDelete", [key, options]) as ReturnType<C["metaDelete"]>;
  }

  /**
   * `ma`: adds `delta` (default 1) to a decimal counter, or subtracts it
   * with `mode: "decr"` (stopping at 0); with `vivify` a missing counter is
   * created at `initial` (the delta is not applied then). `value` is the
   * new counter, a `number` or, above 2^53-1, a `bigint`.
   *
   * Not retried after a timeout or an unexpected close, when the first attempt may have been applied: running
   * it again could apply it twice. Other failures are retried as the class says.
   */
  metaArithmetic(key: MetaKey, options?: MetaArithmeticOptions): ReturnType<C["metaArithmetic"]> {
    return this.#retry("metaArithmetic", [key, options]) as ReturnType<C["metaArithmetic"]>;
  }

  /**
   * `mn`: resolves `true` once the server has answered everything sent before it.
   *
   * Retried as the class says.
   */
  metaNoop(): ReturnType<C["metaNoop"]> {
    return this.#retry("metaNoop", []) as ReturnType<C["metaNoop"]>;
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
   * (see {@linkcode RetryingClient.invalidate}) is served the same way while one
   * caller recomputes it. A loader that throws rejects its callers with
   * that error and hands the lease back at once. A loader result of
   * `undefined` is returned and not stored. When memcached fails, the
   * loader's value is returned all the same and the error goes to
   * `options.onError`. No connection is held while the loader runs. See
   * {@linkcode GetOrSetOptions}.
   *
   * Each memcached request in it is retried as the class says; the loader runs once, outside them.
   *
   * @throws {MemcacheIllegalInputError} for a bad key, a loader that is not a function or bad options (nothing is sent).
   */
  getOrSet(key: string, loader: Loader, options: GetOrSetOptions): Promise<Value> {
    return runComposed("getOrSet", this, [key, loader, options]) as Promise<Value>;
  }

  /**
   * Marks `key` stale instead of deleting it (`md I`, for `staleFor`
   * seconds if given): every {@linkcode RetryingClient.getOrSet} of it then gets
   * the stale value at once while one of them, fleet-wide, recomputes it.
   * Resolves `true` if the item existed, `false` if not.
   *
   * Retried as the class says.
   *
   * @throws {MemcacheIllegalInputError} for a bad key or `staleFor` (nothing is sent).
   */
  invalidate(key: string, options?: InvalidateOptions): ReturnType<C["invalidate"]> {
    return this.#retry("invalidate", [key, options]) as ReturnType<C["invalidate"]>;
  }
  // ---- end of generated code

  /** `quit` of the wrapped client (not retried), once getOrSet's refreshes ended (as {@linkcode Client.close}). */
  quit(): Promise<void> {
    const ending = endBackground(this, this[requestTimeout]);
    return ending === undefined ? this.client.quit() : ending.then(() => this.client.quit());
  }

  /**
   * `close` of the wrapped client (not retried): closing this closes it.
   * The refreshes getOrSet started end first, as in {@linkcode Client.close}.
   */
  close(): Promise<void> {
    const ending = endBackground(this, this[requestTimeout]);
    return ending === undefined ? this.client.close() : ending.then(() => this.client.close());
  }

  /** Same as {@linkcode RetryingClient.close}, for `await using`. */
  [Symbol.asyncDispose](): Promise<void> {
    return this.close();
  }

  /** @internal The wrapped client's request limit (ms; `undefined`: none), which bounds close()'s wait. */
  get [requestTimeout](): number | undefined {
    return timeoutOf([this.client]);
  }
}
