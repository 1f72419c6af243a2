/**
 * `RetryingClient`: retries failed calls of another client, with
 * pymemcache's `RetryingClient` semantics.
 *
 * @module
 */

import type { Client, Mapping, NoreplyOptions, StoreOptions, Value } from "./client.ts";

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
}

/**
 * What a {@linkcode RetryingClient} can wrap: {@linkcode Client},
 * `PooledClient`, `HashClient`, or anything with their methods.
 */
export type RetryableClient = {
  // deno-lint-ignore no-explicit-any
  [K in keyof Client as Client[K] extends (...args: any[]) => unknown ? K : never]: (...args: any[]) => any;
};

// deno-lint-ignore no-explicit-any
type AnyMethod = (...args: any[]) => any;

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
 * Note that a retried call runs again in full: a retried `incr` may count
 * twice if the first attempt reached the server before its connection
 * failed.
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
export class RetryingClient<C extends RetryableClient = Client> {
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
   * @throws {RangeError} if `attempts` is below 1 or `retryDelay` is negative.
   * @throws {TypeError} if `retryFor` / `doNotRetryFor` hold anything but
   * error classes, or share a class.
   */
  constructor(client: C, options: RetryingClientOptions = {}) {
    const attempts = options.attempts ?? 2;
    if (!Number.isInteger(attempts) || attempts < 1) {
      throw new RangeError("attempts must be an integer of at least 1; otherwise no attempt is made");
    }
    const retryDelay = options.retryDelay ?? 0;
    if (!(typeof retryDelay === "number" && retryDelay >= 0 && Number.isFinite(retryDelay))) {
      throw new RangeError("retryDelay must be a non-negative number of milliseconds");
    }
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
  }

  #retryable(error: unknown): boolean {
    if (this.#retryFor.length > 0 && !this.#retryFor.some((cls) => error instanceof cls)) return false;
    return !this.#doNotRetryFor.some((cls) => error instanceof cls);
  }

  /** Calls `client[name](...args)` until it succeeds or may not be retried. */
  async #retry(name: keyof RetryableClient, args: unknown[]): Promise<unknown> {
    for (let attempt = 1;; attempt++) {
      try {
        const method = this.client[name] as AnyMethod;
        return await method.apply(this.client, args);
      } catch (error) {
        if (attempt >= this.attempts || !this.#retryable(error)) throw error;
        if (this.retryDelay > 0) await sleep(this.retryDelay);
      }
    }
  }

  /** The wrapped client's `checkKey` (synchronous; nothing to retry). */
  checkKey(key: string): Uint8Array {
    return this.client.checkKey(key);
  }

  /** `set`, retried. */
  set(...args: Parameters<C["set"]>): ReturnType<C["set"]> {
    return this.#retry("set", args) as ReturnType<C["set"]>;
  }

  /** `add`, retried. */
  add(...args: Parameters<C["add"]>): ReturnType<C["add"]> {
    return this.#retry("add", args) as ReturnType<C["add"]>;
  }

  /** `replace`, retried. */
  replace(...args: Parameters<C["replace"]>): ReturnType<C["replace"]> {
    return this.#retry("replace", args) as ReturnType<C["replace"]>;
  }

  /** `append`, retried. */
  append(...args: Parameters<C["append"]>): ReturnType<C["append"]> {
    return this.#retry("append", args) as ReturnType<C["append"]>;
  }

  /** `prepend`, retried. */
  prepend(...args: Parameters<C["prepend"]>): ReturnType<C["prepend"]> {
    return this.#retry("prepend", args) as ReturnType<C["prepend"]>;
  }

  /** `cas`, retried. */
  cas(...args: Parameters<C["cas"]>): ReturnType<C["cas"]> {
    return this.#retry("cas", args) as ReturnType<C["cas"]>;
  }

  /** `setMany`, retried (all of it). */
  setMany(values: Mapping, options?: StoreOptions): ReturnType<C["setMany"]> {
    // An iterator could only be read once: keep its pairs for the retries.
    const pairs = values instanceof Map || !(Symbol.iterator in values) ? values : [...values];
    return this.#retry("setMany", [pairs, options]) as ReturnType<C["setMany"]>;
  }

  /** Alias of {@linkcode RetryingClient.setMany}. */
  setMulti(values: Mapping, options?: StoreOptions): ReturnType<C["setMany"]> {
    return this.setMany(values, options);
  }

  /** `get`, retried. */
  get(key: string, defaultValue: Value = null): ReturnType<C["get"]> {
    return this.#retry("get", [key, defaultValue]) as ReturnType<C["get"]>;
  }

  /** `getMany`, retried. */
  getMany(keys: Iterable<string>): ReturnType<C["getMany"]> {
    const list = [...keys]; // an iterator could only be read once
    return this.#retry("getMany", [list]) as ReturnType<C["getMany"]>;
  }

  /** Alias of {@linkcode RetryingClient.getMany}. */
  getMulti(keys: Iterable<string>): ReturnType<C["getMany"]> {
    return this.getMany(keys);
  }

  /** `gets`, retried. */
  gets(...args: Parameters<C["gets"]>): ReturnType<C["gets"]> {
    return this.#retry("gets", args) as ReturnType<C["gets"]>;
  }

  /** `getsMany`, retried. */
  getsMany(keys: Iterable<string>): ReturnType<C["getsMany"]> {
    return this.#retry("getsMany", [[...keys]]) as ReturnType<C["getsMany"]>;
  }

  /** `gat`, retried. */
  gat(...args: Parameters<C["gat"]>): ReturnType<C["gat"]> {
    return this.#retry("gat", args) as ReturnType<C["gat"]>;
  }

  /** `gats`, retried. */
  gats(...args: Parameters<C["gats"]>): ReturnType<C["gats"]> {
    return this.#retry("gats", args) as ReturnType<C["gats"]>;
  }

  /** `delete`, retried. */
  delete(key: string, options?: NoreplyOptions): ReturnType<C["delete"]> {
    return this.#retry("delete", [key, options]) as ReturnType<C["delete"]>;
  }

  /** `deleteMany`, retried. */
  deleteMany(keys: Iterable<string>, options?: NoreplyOptions): ReturnType<C["deleteMany"]> {
    return this.#retry("deleteMany", [[...keys], options]) as ReturnType<C["deleteMany"]>;
  }

  /** Alias of {@linkcode RetryingClient.deleteMany}. */
  deleteMulti(keys: Iterable<string>, options?: NoreplyOptions): ReturnType<C["deleteMany"]> {
    return this.deleteMany(keys, options);
  }

  /** `incr`, retried. */
  incr(...args: Parameters<C["incr"]>): ReturnType<C["incr"]> {
    return this.#retry("incr", args) as ReturnType<C["incr"]>;
  }

  /** `decr`, retried. */
  decr(...args: Parameters<C["decr"]>): ReturnType<C["decr"]> {
    return this.#retry("decr", args) as ReturnType<C["decr"]>;
  }

  /** `touch`, retried. */
  touch(...args: Parameters<C["touch"]>): ReturnType<C["touch"]> {
    return this.#retry("touch", args) as ReturnType<C["touch"]>;
  }

  /** `stats`, retried. */
  stats(...args: string[]): ReturnType<C["stats"]> {
    return this.#retry("stats", args) as ReturnType<C["stats"]>;
  }

  /** `cacheMemlimit`, retried. */
  cacheMemlimit(megabytes: number): ReturnType<C["cacheMemlimit"]> {
    return this.#retry("cacheMemlimit", [megabytes]) as ReturnType<C["cacheMemlimit"]>;
  }

  /** `version`, retried. */
  version(): ReturnType<C["version"]> {
    return this.#retry("version", []) as ReturnType<C["version"]>;
  }

  /** `verbosity`, retried. */
  verbosity(level: number, options?: NoreplyOptions): ReturnType<C["verbosity"]> {
    return this.#retry("verbosity", [level, options]) as ReturnType<C["verbosity"]>;
  }

  /** `flushAll`, retried. */
  flushAll(delay = 0, options?: NoreplyOptions): ReturnType<C["flushAll"]> {
    return this.#retry("flushAll", [delay, options]) as ReturnType<C["flushAll"]>;
  }

  /** `shutdown`, retried. */
  shutdown(graceful = false): ReturnType<C["shutdown"]> {
    return this.#retry("shutdown", [graceful]) as ReturnType<C["shutdown"]>;
  }

  /** `rawCommand`, retried. */
  rawCommand(command: string | Uint8Array, endTokens: string | Uint8Array = "\r\n"): ReturnType<C["rawCommand"]> {
    return this.#retry("rawCommand", [command, endTokens]) as ReturnType<C["rawCommand"]>;
  }

  /** `quit` of the wrapped client (not retried). */
  quit(): Promise<void> {
    return this.client.quit();
  }

  /** `close` of the wrapped client (not retried): closing this closes it. */
  close(): Promise<void> {
    return this.client.close();
  }

  /** Same as {@linkcode RetryingClient.close}, for `await using`. */
  [Symbol.asyncDispose](): Promise<void> {
    return this.close();
  }
}
