/**
 * `@memkit/memcache/testing`: {@linkcode MemoryServer}, a memcached that
 * lives in your process — for testing code that caches, and for running
 * where no memcached is installed.
 *
 * It is a server, not a mock: it parses the bytes a client writes and
 * answers with the bytes memcached 1.6.18 would, for the text protocol
 * (storage commands, cas, get/gets/gat/gats, incr/decr, touch, delete,
 * flush_all, stats, version, verbosity, quit, noreply) and the meta protocol
 * (mg, ms, md, ma, mn, me with their flags, base64 keys, quiet mode,
 * vivify/recache/stale/win). A differential test sends the same 20,000+
 * generated commands to it and to memcached 1.6.18 and compares the replies
 * byte for byte, for the project's seed and two random ones per run
 * (tests/server/memory_server_diff_test.ts).
 *
 * ```ts
 * import { Client } from "@memkit/memcache";
 * import { MemoryServer } from "@memkit/memcache/testing";
 *
 * await using server = new MemoryServer();
 * await using client = new Client("memory", { transport: server.transport() });
 * await client.set("greeting", "hello", { expire: 60 });
 * server.advance(61); // seconds, without sleeping
 * console.log(await client.get("greeting")); // null
 * ```
 *
 * Differences from memcached, by design: one LRU instead of slab classes
 * (eviction order differs; `stats slabs` / `stats items` are summaries), no
 * authentication, TLS, UDP, binary protocol, `lru_crawler`, `watch`,
 * `slabs`, `lru` or `extstore` commands (they answer `ERROR`), `version`
 * says 1.6.18, and stats that measure memcached's own machinery (rusage,
 * hash table, LRU juggling) are constants.
 *
 * Input is read as memcached reads it, not as the transport happens to cut
 * it: 16 KiB at a time (its READ_BUFFER_SIZE), a data block to its exact
 * end, and the answers pending are written out whenever no whole command is
 * buffered. That decides what a later error drops (a `get` of a too-long
 * key drops only answers not yet written) and when a refused `set` is
 * answered (once its data block has been swallowed). A line with no newline
 * after 2,048 bytes closes the connection unless it is a `get`/`gets`, whose
 * buffer doubles as needed, up to 16 MiB (memcached's has no limit).
 *
 * Three memcached 1.6.18 bugs are not copied: after a `flush_all`, a
 * delayed `flush_all` makes memcached serve the items the first one removed
 * again, until its allocator reclaims them (here they stay removed); `incr`,
 * `decr` or `ma` on a value of whitespace only makes memcached's strtoull
 * read on past the item into its memory (here: `CLIENT_ERROR cannot
 * increment or decrement non-numeric value`); and on a value of 2^63 or
 * more, memcached looks for a `-` with strchr, which also reads on past the
 * item, and answers "non-numeric" when one lies there (here the number is
 * used, as memcached does when none does: 18446744073709551615 + 1 is 0).
 *
 * Memory: `maxBytes` bounds the items' sizes counted as memcached counts
 * them (48 + key + 1 + value + 2 + 8 bytes, plus 4 when flags are not 0);
 * the JavaScript objects holding an item cost at most about 320 bytes more
 * than that (bench/memory_server.ts --memory: on V8 140 for values up to
 * 512 bytes, which are kept as strings, 300 for larger ones; on Bun
 * 200–280), so the heap it uses stays below `maxBytes + 320 × items`.
 * Input not yet complete is bounded too: data blocks being received count
 * against a second `maxBytes` (memcached allocates the item, within `-m`,
 * as soon as the command line arrives), past which a storage command is
 * answered `SERVER_ERROR out of memory storing object` once its block has
 * been swallowed; `get` lines grown past 16 KiB count against a third, past
 * which the connection is answered `SERVER_ERROR out of memory reading
 * request` and closed; and `maxConnections` (memcached's `-c`, 1024) bounds
 * the connections, each of which otherwise buffers at most 16 KiB of input.
 *
 * @module
 */
import type {
  ServerAddress,
  Transport,
  TransportConnectOptions,
  TransportHandlers,
  TransportSocket,
} from "./src/connection/transport.ts";
import { concatBytes } from "./src/protocol/_wire.ts";
import { MemorySession } from "./src/server/_session.ts";
import { MemoryStore } from "./src/server/_store.ts";

/** Options of a {@linkcode MemoryServer}. */
export interface MemoryServerOptions {
  /**
   * Memory for items, in bytes (memcached's `-m`, in bytes); least recently
   * used items are evicted beyond it.
   * @default {67108864} (64 MiB)
   */
  maxBytes?: number;
  /**
   * Largest item, in bytes, key and overhead included (memcached's `-I`);
   * larger values are refused with `SERVER_ERROR object too large for cache`.
   * @default {1048576} (1 MiB)
   */
  itemSizeMax?: number;
  /**
   * Connections served at once, over TCP and through `transport()` together
   * (memcached's `-c`). One more is answered `ERROR Too many open
   * connections` and closed. memcached counts its own listening sockets and
   * a few reserved descriptors against `-c` too; here only clients count.
   * @default {1024}
   */
  maxConnections?: number;
}

/** Where {@linkcode MemoryServer.listen} serves. */
export interface MemoryServerAddress {
  /** Always `"127.0.0.1"`. */
  host: string;
  /** The TCP port it listens on. */
  port: number;
}

/** The little of `node:net` that `listen` uses (loaded only when called, so Workers never see it). */
interface NetSocket {
  setNoDelay(noDelay: boolean): void;
  write(data: Uint8Array): boolean;
  end(): void;
  destroy(): void;
  pause(): void;
  resume(): void;
  on(event: "data", listener: (chunk: Uint8Array) => void): void;
  on(event: "close" | "drain", listener: () => void): void;
  on(event: "error", listener: (error: Error) => void): void;
  prependListener(event: "end", listener: () => void): void;
}
interface NetServer {
  listen(port: number, host: string, callback: () => void): void;
  address(): { port: number } | string | null;
  close(callback: (error?: Error) => void): void;
  on(event: "error", listener: (error: Error) => void): void;
  off(event: "error", listener: (error: Error) => void): void;
}
interface TimersModule {
  setImmediate(callback: () => void): unknown;
}

interface NetModule {
  createServer(listener: (socket: NetSocket) => void): NetServer;
}

/** What memcached answers a connection past its `-c`, before it closes it. */
const TOO_MANY = new TextEncoder().encode("ERROR Too many open connections\r\n");

function checkSize(name: string, value: number | undefined, min: number): void {
  if (value === undefined) return;
  if (typeof value !== "number" || !Number.isSafeInteger(value) || value < min) {
    throw new RangeError(`MemoryServer: ${name} must be an integer of at least ${min}, got ${String(value)}`);
  }
}

/**
 * A memcached 1.6.18 inside the process. Clients reach it through
 * {@linkcode MemoryServer.transport} (any runtime, Workers included) or, from
 * other processes, over TCP after {@linkcode MemoryServer.listen} (Deno,
 * Node, Bun). Its clock moves with {@linkcode MemoryServer.advance}.
 */
export class MemoryServer implements AsyncDisposable {
  readonly #store: MemoryStore;
  readonly #connections = new Set<{ end(): void }>();
  #listener: NetServer | undefined;
  #listening: Promise<MemoryServerAddress> | undefined;
  #port: number | undefined;
  /** Shared with every session: `stats settings` shows the TCP port once listening. */
  readonly #hooks: { port?: number } = {};
  #closed = false;

  /**
   * An empty server, not listening on any port.
   *
   * @throws {RangeError} if `maxBytes`, `itemSizeMax` or `maxConnections`
   * is not a positive integer (`itemSizeMax` at least 1024).
   */
  constructor(options: MemoryServerOptions = {}) {
    checkSize("maxBytes", options.maxBytes, 1);
    checkSize("itemSizeMax", options.itemSizeMax, 1024);
    checkSize("maxConnections", options.maxConnections, 1);
    this.#store = new MemoryStore(options);
  }

  /**
   * A {@linkcode Transport} whose connections all reach this server,
   * whatever address the client names: `new Client("memory", { transport:
   * server.transport() })`. Replies arrive asynchronously (in a microtask),
   * as from a socket. TLS options are ignored. Connecting after
   * {@linkcode MemoryServer.close} is refused.
   */
  transport(): Transport {
    return {
      name: "memory",
      connect: (_address: ServerAddress, options: TransportConnectOptions, handlers: TransportHandlers) => {
        options.signal?.throwIfAborted();
        if (this.#closed) {
          return Promise.reject(
            Object.assign(new Error("MemoryServer is closed: connection refused"), { code: "ECONNREFUSED" }),
          );
        }
        return Promise.resolve(this.#open(handlers));
      },
    };
  }

  #open(handlers: TransportHandlers): TransportSocket {
    const store = this.#store;
    if (store.currConnections >= store.maxConnections) return this.#refuse(handlers);
    const session = new MemorySession(store, this.#hooks);
    let queue: Uint8Array[] = [];
    let scheduled = false;
    let ended = false;
    let closing: (() => void) | undefined;
    const connections = this.#connections;
    store.currConnections++;
    store.counters.total_connections++;
    const end = () => {
      if (ended) return;
      ended = true;
      connections.delete(connection);
      store.currConnections--;
      session.dispose();
      handlers.onClose();
      closing?.();
    };
    const run = () => {
      scheduled = false;
      if (ended) return;
      if (queue.length > 0) {
        let data = queue[0];
        if (queue.length > 1) {
          data = new Uint8Array(queue.reduce((n, chunk) => n + chunk.length, 0));
          let at = 0;
          for (const chunk of queue) data.set(chunk, (at += chunk.length) - chunk.length);
        }
        queue = [];
        session.feed(data);
        // onData reads each chunk during the call only, so the buffer is written again next time.
        for (const part of session.take(true)) {
          store.counters.bytes_written += part.length;
          handlers.onData(part);
        }
      }
      if (session.closed || (closing && queue.length === 0)) end();
    };
    const schedule = () => {
      if (!scheduled) {
        scheduled = true;
        queueMicrotask(run);
      }
    };
    const connection = { end };
    connections.add(connection);
    return {
      write(data: Uint8Array): void {
        if (ended || closing) return;
        queue.push(data);
        schedule();
      },
      close(): Promise<void> {
        if (ended) return Promise.resolve();
        const closed = new Promise<void>((resolve) => {
          const before = closing;
          closing = () => (before?.(), resolve());
        });
        schedule();
        return closed;
      },
    };
  }

  /** A connection past `maxConnections`: memcached's answer, then it hangs up. */
  #refuse(handlers: TransportHandlers): TransportSocket {
    this.#store.counters.rejected_connections++;
    let closed = false;
    queueMicrotask(() => {
      if (!closed) handlers.onData(TOO_MANY.slice());
      handlers.onClose();
    });
    return {
      write(): void {},
      close(): Promise<void> {
        closed = true;
        return Promise.resolve();
      },
    };
  }

  /**
   * Serves this server over TCP on 127.0.0.1 (Deno, Node, Bun), for other
   * processes. `port` 0 or none picks a free one. Calling it again returns
   * the same address.
   *
   * @throws if the port is taken, or the runtime has no `node:net`
   * (Workers: use {@linkcode MemoryServer.transport}).
   */
  listen(port = 0): Promise<MemoryServerAddress> {
    if (this.#closed) return Promise.reject(new Error("MemoryServer is closed"));
    this.#listening ??= this.#listen(port);
    return this.#listening;
  }

  async #listen(port: number): Promise<MemoryServerAddress> {
    // No import of node:net, not even a dynamic one: bundlers and Workers' module loader (miniflare) never see
    // it. Deno, Node (>= 20.16) and Bun all hand out their built-in modules through process.getBuiltinModule.
    const runtime = globalThis as { process?: { getBuiltinModule?: (id: string) => unknown } };
    const net = runtime.process?.getBuiltinModule?.("node:net") as NetModule | undefined;
    const timers = runtime.process?.getBuiltinModule?.("node:timers") as TimersModule | undefined;
    if (!net || !timers) {
      throw new Error("MemoryServer.listen needs node:net (Deno, Node >= 20.16 or Bun); use transport() here");
    }
    const store = this.#store;
    const hooks = this.#hooks;
    const server = net.createServer((socket) => {
      if (this.#closed) return socket.destroy();
      if (store.currConnections >= store.maxConnections) {
        store.counters.rejected_connections++;
        const refused = { end: () => socket.destroy() };
        this.#connections.add(refused);
        socket.on("error", () => {});
        socket.on("close", () => this.#connections.delete(refused));
        socket.write(TOO_MANY.slice());
        socket.end();
        return;
      }
      const session = new MemorySession(store, hooks);
      store.currConnections++;
      store.counters.total_connections++;
      let done = false;
      const connection = {
        end: () => {
          if (!done) socket.destroy();
        },
      };
      this.#connections.add(connection);
      socket.setNoDelay(true);
      socket.on("error", () => {});
      socket.on("close", () => {
        done = true;
        this.#connections.delete(connection);
        store.currConnections--;
        session.dispose();
      });
      socket.on("drain", () => socket.resume());
      // memcached reads what the socket holds when it reads (16 KiB at a time;
      // a data block to its exact end), while the runtime hands over its own
      // reads (64 KiB on Node): a command line split between two of those,
      // right after a large block, would be a line memcached never saw split
      // (and the answers before it "written" between the halves). So the
      // chunks that arrive in one turn of the event loop are fed as one.
      let arrived: Uint8Array[] = [];
      const serve = () => {
        const chunks = arrived;
        arrived = [];
        // Nothing arrived since: the "end" listener already served it before this turn's call.
        if (chunks.length === 0 || done || session.closed) return;
        session.feed(concatBytes(chunks));
        let flushed = true;
        for (const part of session.take(false)) {
          store.counters.bytes_written += part.length;
          flushed = socket.write(part);
        }
        if (!flushed) socket.pause(); // a client that does not read stops being read
        if (session.closed) {
          if (session.flushOutput) socket.end();
          else socket.destroy();
        }
      };
      socket.on("data", (chunk) => {
        arrived.push(chunk);
        if (arrived.length === 1) timers.setImmediate(serve);
      });
      // The client's EOF: what it sent is served first (Node ends our side right after "end").
      socket.prependListener("end", serve);
    });
    await new Promise<void>((resolve, reject) => {
      server.on("error", reject);
      server.listen(port, "127.0.0.1", () => {
        server.off("error", reject);
        resolve();
      });
    });
    server.on("error", () => {});
    const address = server.address();
    this.#port = typeof address === "object" && address ? address.port : port;
    this.#hooks.port = this.#port;
    this.#listener = server;
    if (this.#closed) await this.#stopListening();
    return { host: "127.0.0.1", port: this.#port };
  }

  async #stopListening(): Promise<void> {
    const server = this.#listener;
    this.#listener = undefined;
    if (server) await new Promise<void>((resolve) => server.close(() => resolve()));
  }

  /**
   * Moves the server's clock forward by `seconds` at once: TTLs, flush_all
   * delays, `R` recache windows and `T`/`N` lease times see the new time;
   * nothing sleeps. Also reaches absolute (unix time) expiries.
   *
   * @throws {RangeError} unless `seconds` is a finite number ≥ 0 (fractions
   * accumulate; memcached's clock has whole seconds).
   */
  advance(seconds: number): void {
    if (typeof seconds !== "number" || !Number.isFinite(seconds) || seconds < 0) {
      throw new RangeError(`MemoryServer.advance: seconds must be a finite number >= 0, got ${String(seconds)}`);
    }
    this.#store.advance(seconds);
  }

  /**
   * Stops the server: closes every connection (clients see the server hang
   * up) and the TCP listener. Items are dropped. Idempotent.
   */
  async close(): Promise<void> {
    this.#closed = true;
    for (const connection of [...this.#connections]) connection.end();
    await this.#listening?.catch(() => {});
    await this.#stopListening();
  }

  /** Same as {@linkcode MemoryServer.close}, for `await using`. */
  async [Symbol.asyncDispose](): Promise<void> {
    await this.close();
  }
}
