/**
 * The hand-written part of `RetryingClient` (retries failed calls of
 * another client, with pymemcache's `RetryingClient` semantics):
 * `RetryingCore` holds its state and logic. src/clients/retrying_client.ts,
 * written by scripts/gen_commands.ts, is the public class: every public
 * member here, with its doc comment, plus the commands, each delegating
 * to {@linkcode RetryingCore.retry}.
 *
 * @module
 */

import type { Client } from "./client.ts";
import { type CommandName, type Commands, rowOf } from "./commands.ts";
import { MemcacheAuthError, MemcacheTimeoutError, MemcacheUnexpectedCloseError } from "../errors.ts";
import { entriesOf, type Mapping } from "./_mapping.ts";
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
export class RetryingCore<C extends Commands = Client> {
  /** The wrapped client. */
  readonly client: C;
  /** Attempts per call. */
  readonly attempts: number;
  /** ms between attempts. */
  readonly retryDelay: number;
  readonly #retryFor: ErrorClass[];
  readonly #doNotRetryFor: ErrorClass[];
  /** The public RetryingClient: what observers wrap and getOrSet's refreshes belong to. */
  readonly #owner: { close(): Promise<void> };

  /**
   * Wraps `client`.
   *
   * @param client the client whose calls are retried; closing this closes it.
   * @throws {TypeError} if `attempts` is not an integer of at least 1,
   * `retryDelay` not a number of milliseconds, or `retryFor` /
   * `doNotRetryFor` hold anything but error classes, or share a class.
   */
  constructor(owner: { close(): Promise<void> }, client: C, options: RetryingClientOptions = {}) {
    this.#owner = owner;
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
    observeCommands(owner, name, options.observer, false);
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
  async retry(name: CommandName, args: unknown[]): Promise<unknown> {
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

  // ---- here the public class has the commands (written by scripts/gen_commands.ts)

  /** `quit` of the wrapped client (not retried), once getOrSet's refreshes ended (as {@linkcode Client.close}). */
  quit(): Promise<void> {
    const ending = endBackground(this.#owner, this[requestTimeout]);
    return ending === undefined ? this.client.quit() : ending.then(() => this.client.quit());
  }

  /**
   * `close` of the wrapped client (not retried): closing this closes it.
   * The refreshes getOrSet started end first, as in {@linkcode Client.close}.
   */
  close(): Promise<void> {
    const ending = endBackground(this.#owner, this[requestTimeout]);
    return ending === undefined ? this.client.close() : ending.then(() => this.client.close());
  }

  /** Same as {@linkcode RetryingClient.close}, for `await using`. */
  [Symbol.asyncDispose](): Promise<void> {
    return this.#owner.close(); // the public object's: a subclass's or a patched close() runs
  }

  /** @internal The wrapped client's request limit (ms; `undefined`: none), which bounds close()'s wait. */
  get [requestTimeout](): number | undefined {
    return timeoutOf([this.client]);
  }
}
