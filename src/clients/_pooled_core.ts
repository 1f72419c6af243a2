/**
 * The hand-written part of `PooledClient` (one memcached server over a
 * pool of connections, with pymemcache's `PooledClient` API and
 * semantics): `PooledCore` holds its state and logic.
 * src/clients/pooled_client.ts, written by scripts/gen_commands.ts, is the
 * public class: every public member here, with its doc comment, plus the
 * commands, each delegating to {@linkcode PooledCore.run}.
 *
 * @module
 */

import { Client, type ClientOptions } from "./client.ts";
import { type CommandName, missOf, rowOf } from "./commands.ts";
import { MemcacheError, MemcacheIllegalInputError } from "../errors.ts";
import type { Serde } from "../values/serde.ts";
import type { ServerAddress, ServerSpec } from "../connection/transport.ts";
import { defaultPoolLimit } from "../connection/_default_transport.ts";
import { checkMs } from "./_options.ts";
import { endBackground, requestTimeout } from "./_background.ts";
import { leavesConnectionUsable } from "../connection/_usable.ts";

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
 * (`poolBlocking: false`). The pool never has more than `maxPoolSize`
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
export class PooledCore {
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
  /** The public PooledClient: getOrSet's refreshes belong to it. */
  readonly #owner: { close(): Promise<void> };

  /**
   * Creates the pool; no connection opens until the first call.
   *
   * @param server where the server listens; see {@linkcode ServerSpec}.
   * @throws {TypeError} for an invalid server spec, timeout or pool option.
   * @throws {MemcacheIllegalInputError} for an invalid key prefix.
   */
  constructor(owner: { close(): Promise<void> }, server: ServerSpec, options: PooledClientOptions = {}) {
    this.#owner = owner;
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
   * A client for one call: an idle one, else a new one while fewer than
   * maxPoolSize exist (clients still closing count: their sockets are still
   * open), else (blocking) the busy one with the fewest requests in flight,
   * where the call queues behind them in the pipeline, or, with none busy,
   * the first one free once a closing one is gone.
   */
  #acquire(): Client | Promise<Client> {
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
    if (this.#busy.size + this.#closing.size < this.maxPoolSize) {
      const client = new Client(this.#spec, this.#options);
      this.#busy.set(client, 1);
      return client;
    }
    if (!this.poolBlocking) {
      throw new MemcacheError(`All ${this.maxPoolSize} pooled connections are busy (poolBlocking is false)`, {
        server: this.server,
      });
    }
    if (this.#busy.size === 0) return Promise.race(this.#closing).then(() => this.#acquire());
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
    if (failed && n === 1) {
      this.#busy.delete(client);
      this.#destroy(client);
    } else if (n > 1) {
      // Other calls still run on this client. The failed connection closed
      // itself (at once) and failed what was queued on it; calls made since
      // are on the client's next connection, which closing the client would
      // fail for nothing. The last call out destroys it, if that one fails.
      this.#busy.set(client, n - 1);
    } else {
      this.#busy.delete(client);
      this.#idle.push({ client, since: Date.now() });
      this.#arm();
    }
  }

  /** Closes a client; until it is closed it counts toward maxPoolSize. */
  #destroy(client: Client): void {
    const closing = client.close();
    this.#closing.add(closing);
    closing.finally(() => this.#closing.delete(closing));
  }

  /** Runs `call` on a pooled client, giving it back (or destroying it) afterwards. */
  async #use<T>(call: (client: Client) => Promise<T>): Promise<T> {
    const acquired = this.#acquire();
    const client = acquired instanceof Client ? acquired : await acquired;
    let result: T;
    try {
      result = await call(client);
    } catch (error) {
      this.#release(client, !leavesConnectionUsable(error));
      throw error;
    }
    this.#release(client, false);
    return result;
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
  run(name: CommandName, args: unknown[]): Promise<unknown> {
    // deno-lint-ignore no-explicit-any
    const call = (client: Client) => (client[name] as (...args: any[]) => Promise<unknown>)(...args);
    const row = rowOf(name);
    if (!row.read || !this.ignoreExc) return this.#use(call);
    return this.#use(call).catch((error) => {
      if (error instanceof MemcacheIllegalInputError) throw error;
      return missOf(row, args);
    });
  }

  // ---- here the public class has the commands (written by scripts/gen_commands.ts)

  // ---- lifecycle

  /**
   * Sends `quit` on every connection (after the requests already on it)
   * and waits for them to close. The client stays usable.
   */
  quit(): Promise<void> {
    return this.#end((client) => client.quit());
  }

  /**
   * Closes every connection: requests waiting for replies reject, as in
   * {@linkcode Client.close}. The client stays usable: the next call opens
   * a new connection.
   */
  close(): Promise<void> {
    return this.#end((client) => client.close());
  }

  /** Ends the background refreshes of getOrSet (see src/clients/_background.ts), then the connections. */
  #end(end: (client: Client) => Promise<void>): Promise<void> {
    const ending = endBackground(this.#owner, this[requestTimeout]);
    return ending === undefined ? this.#clear(end) : ending.then(() => this.#clear(end));
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
    return this.#owner.close(); // the public object's: a subclass's or a patched close() runs
  }

  /** @internal The request limit (ms; `undefined`: none) close() bounds background work with. */
  get [requestTimeout](): number | undefined {
    return this.#template[requestTimeout];
  }
}
