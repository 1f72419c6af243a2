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
import { defaultPoolLimit, loadedDefaultTransport } from "../connection/_default_transport.ts";
import { checkMs } from "./_options.ts";
import { endBackground, requestTimeout } from "./_background.ts";
import { leavesConnectionUsable } from "../connection/_usable.ts";

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

/**
 * A pooled client and its bookkeeping: the calls running on it, how many
 * of them carry a large value, and the handlers that give it back after a
 * small call, made once per client rather than twice per call. The same
 * object follows the client between busy and idle, so a call allocates
 * nothing of the pool's.
 */
interface Slot {
  readonly client: Client;
  calls: number;
  large: number;
  /** In the pool (busy or idle); false once destroyed or dropped by close(). */
  pooled: boolean;
  /** When it went idle (ms; 0 without poolIdleTimeout). */
  since: number;
  /** Releases after a small call that succeeded. */
  readonly done: () => void;
  /** Releases after a small call that failed; the caller sees the error on the call's own promise. */
  readonly failed: (error: unknown) => void;
}

/**
 * Requests a pooled connection carries at once before a small call goes
 * to another connection. A pipeline is the cheapest way to carry small
 * requests (one write and one read for many, on one event loop); past
 * this depth another connection spreads the work over the server's
 * threads. Measured with 50 in flight (bench S2/S3), in one process
 * against a Client: at 32 the 50 split over two connections and the pool
 * ran S3 at about half a Client's rate, S2 at 0.7; at 64 they stay on one
 * connection. What a pooled call costs beyond a Client's is then mostly
 * the one promise reaction that tells the pool the call ended (in-process
 * CPU, 45-60 ns of 100-160 ns per pipelined call; 5-10% of S3's rate).
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

/** What the pool needs of a command, looked up once per name. */
interface Kind {
  /** Its second argument is the value written. */
  readonly store: boolean;
  /** Its failures become its miss under ignoreExc. */
  readonly read: boolean;
  readonly row: ReturnType<typeof rowOf>;
}

const KINDS = new Map<string, Kind>();

function kindOf(name: CommandName): Kind {
  let kind = KINDS.get(name);
  if (kind === undefined) {
    const row = rowOf(name);
    kind = { store: STORES.has(name), read: row.read === true, row };
    KINDS.set(name, kind);
  }
  return kind;
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
  #idle: Slot[] = [];
  /** Clients in use, each with how many calls it is running. */
  #busy = new Set<Slot>();
  /**
   * The busy client small calls join first (the one the last small call
   * took), so a call that finds room there costs no search.
   */
  #current: Slot | undefined;
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
  #acquire(large: boolean): Slot | Promise<Slot> {
    if (!large) {
      for (const slot of this.#busy) {
        if (slot.large === 0 && slot.calls < PIPELINE_DEPTH) {
          slot.calls++;
          return this.#current = slot;
        }
      }
    }
    const top = this.#idle[this.#idle.length - 1];
    if (top !== undefined && this.poolIdleTimeout > 0 && top.since <= Date.now() - this.poolIdleTimeout) {
      this.#disarm(); // the timer is late: expire now (if the newest expired, all have)
      this.#expire();
    }
    let slot = this.#idle.pop();
    if (slot !== undefined) {
      if (this.#idle.length === 0) this.#disarm();
      slot.calls = 1;
      slot.large = large ? 1 : 0;
    } else if (this.#busy.size + this.#closing.size < this.maxPoolSize) {
      slot = this.#slot(new Client(this.#spec, this.#options), large);
    } else if (!this.poolBlocking) {
      throw new MemcacheError(`All ${this.maxPoolSize} pooled connections are busy (poolBlocking is false)`, {
        server: this.server,
      });
    } else if (this.#busy.size === 0) {
      return Promise.race(this.#closing).then(() => this.#acquire(large));
    } else {
      // The least busy, a connection without a large value first.
      let best!: Slot;
      for (const busy of this.#busy) {
        if (
          best === undefined || (busy.large === 0) > (best.large === 0) ||
          ((busy.large === 0) === (best.large === 0) && busy.calls < best.calls)
        ) {
          best = busy;
        }
      }
      best.calls++;
      if (large) best.large++;
      return best;
    }
    this.#busy.add(slot);
    if (!large) this.#current = slot;
    return slot;
  }

  /** The slot of a new client, with its release handlers. */
  #slot(client: Client, large: boolean): Slot {
    const slot: Slot = {
      client,
      calls: 1,
      large: large ? 1 : 0,
      pooled: true,
      since: 0,
      done: () => this.#release(slot, false, false),
      failed: (error) => this.#release(slot, false, !leavesConnectionUsable(error)),
    };
    return slot;
  }

  /** Gives a client back after a call; `failed` destroys it instead. */
  #release(slot: Slot, large: boolean, failed: boolean): void {
    if (!slot.pooled) return; // destroyed by another call, or the pool was closed
    if (large) slot.large--;
    if (slot.calls > 1) {
      // Other calls still run on this client. A failed connection closed
      // itself (at once) and failed what was queued on it; calls made since
      // are on the client's next connection, which closing the client would
      // fail for nothing. The last call out destroys it, if that one fails.
      slot.calls--;
      return;
    }
    slot.calls = 0;
    this.#busy.delete(slot);
    if (this.#current === slot) this.#current = undefined;
    if (failed) {
      slot.pooled = false;
      this.#destroy(slot.client);
    } else {
      slot.since = this.poolIdleTimeout > 0 ? Date.now() : 0;
      this.#idle.push(slot);
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
   * Runs command `name` on a client the pool hands out, then gives it back
   * (or destroys it). Not an async function, and a small call returns the
   * client's own promise: the release is one more reaction on it, so the
   * caller waits no extra turn.
   */
  #runOn(slot: Slot, name: CommandName, args: unknown[], large: boolean): Promise<unknown> {
    const client = slot.client;
    let running: Promise<unknown>;
    try {
      // deno-lint-ignore no-explicit-any
      running = (client[name] as (...args: any[]) => Promise<unknown>).apply(client, args);
    } catch (error) {
      this.#release(slot, large, !leavesConnectionUsable(error));
      return Promise.reject(error);
    }
    if (!large) {
      running.then(slot.done, slot.failed);
      return running;
    }
    running.then(() => this.#release(slot, true, false), (error) => {
      this.#release(slot, true, !leavesConnectionUsable(error));
    });
    return running;
  }

  /** {@linkcode PooledCore.#runOn} once a client is at hand. */
  #use(name: CommandName, args: unknown[], large: boolean): Promise<unknown> {
    let acquired: Slot | Promise<Slot>;
    try {
      acquired = this.#acquire(large);
    } catch (error) {
      return Promise.reject(error);
    }
    if (!(acquired instanceof Promise)) return this.#runOn(acquired, name, args, large);
    return acquired.then((slot) => this.#runOn(slot, name, args, large));
  }

  // ---- idle timeout: one timer, armed for the oldest idle client

  #arm(): void {
    if (this.poolIdleTimeout === 0 || this.#timer !== undefined || this.#idle.length === 0) return;
    const due = this.#idle[0].since + this.poolIdleTimeout;
    this.#timer = setTimeout(() => this.#expire(), Math.max(0, due - Date.now()));
    // Closing idle connections is the pool's own background work: it must not keep a script that forgot close() alive.
    (this.#options.transport ?? loadedDefaultTransport())?.unrefTimer?.(this.#timer);
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
    for (const slot of this.#idle.splice(0, n)) {
      slot.pooled = false;
      this.#destroy(slot.client);
    }
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
    const kind = kindOf(name);
    const large = kind.store && isLarge(args[1]);
    const slot = this.#current;
    let running: Promise<unknown>;
    if (!large && slot !== undefined && slot.large === 0 && slot.calls < PIPELINE_DEPTH) {
      // The common case, inline: room in the pipeline the last small call joined.
      slot.calls++;
      const client = slot.client;
      try {
        // deno-lint-ignore no-explicit-any
        running = (client[name] as (...args: any[]) => Promise<unknown>).apply(client, args);
        running.then(slot.done, slot.failed);
      } catch (error) {
        this.#release(slot, false, !leavesConnectionUsable(error));
        running = Promise.reject(error);
      }
    } else running = this.#use(name, args, large);
    if (!kind.read || !this.ignoreExc) return running;
    return running.catch((error) => {
      if (error instanceof MemcacheIllegalInputError) throw error;
      return missOf(kind.row, args);
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
    const slots = [...this.#idle, ...this.#busy];
    this.#idle = [];
    this.#busy.clear();
    this.#current = undefined;
    for (const slot of slots) slot.pooled = false;
    const clients = slots.map((slot) => slot.client);
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
