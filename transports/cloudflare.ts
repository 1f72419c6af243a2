/**
 * `CloudflareTransport`: memcached connections from Cloudflare Workers, over
 * `connect()` from `cloudflare:sockets`.
 *
 * `import { Client } from "@memkit/memcache"` picks this transport by itself
 * inside a Worker; import it directly to pass it explicitly.
 *
 * Workers bind a socket to the request that opened it. This transport tells
 * the core so ({@linkcode CloudflareTransport.contextCheck}): a client made at
 * module scope opens a connection per request that uses it, never writes to
 * another request's socket, and closes each connection once its work is done.
 *
 * Limits of the platform: TCP only (no unix sockets); TLS trusts the
 * platform's certificate store only (no `caCerts`, no `serverName`, no
 * skipping verification) and presents no client certificate (`cert`,
 * `key`); `noDelay` and `keepAlive` are not settable; at most
 * six connections may be open at once per request
 * ({@linkcode WORKERS_MAX_CONNECTIONS}).
 *
 * @example
 * ```ts ignore
 * import { Client } from "@memkit/memcache";
 * import { CloudflareTransport } from "@memkit/memcache/cloudflare";
 *
 * export default {
 *   async fetch(request: Request, env: { MEMCACHED: string }, ctx: ExecutionContext) {
 *     const client = new Client(env.MEMCACHED, { transport: new CloudflareTransport(), connectTimeout: 2000 });
 *     const hits = await client.incr("hits", 1);
 *     ctx.waitUntil(client.close());
 *     return new Response(`hits: ${hits}`);
 *   },
 * };
 * ```
 *
 * @module
 */

// @ts-ignore: the Workers runtime's own module has no types here (typed below)
import { connect as cloudflareConnect } from "cloudflare:sockets";
import {
  CLOSE_GRACE_MS,
  raceAbort,
  requestMarker,
  type ServerAddress,
  settlesWithin,
  type Transport,
  type TransportConnectOptions,
  type TransportHandlers,
  type TransportSocket,
  WORKERS_MAX_CONNECTIONS,
} from "../src/connection/transport.ts";

export { WORKERS_MAX_CONNECTIONS };

/** The part of `cloudflare:sockets` used here (typed locally: Deno cannot resolve that module). */
interface WorkersSocket {
  readonly readable: ReadableStream<Uint8Array>;
  readonly writable: WritableStream<Uint8Array>;
  readonly opened: Promise<unknown>;
  readonly closed: Promise<void>;
  close(): Promise<void>;
}
type Connect = (
  address: { hostname: string; port: number },
  options: { secureTransport: "on" | "off"; allowHalfOpen: boolean },
) => WorkersSocket;

const connect = cloudflareConnect as Connect;

/** Connects with `connect()` from `cloudflare:sockets`; TCP only. */
export class CloudflareTransport implements Transport {
  /** Always `"cloudflare"`. */
  readonly name = "cloudflare";
  /** {@linkcode WORKERS_MAX_CONNECTIONS}: pooled clients default below it. */
  readonly maxConnections: number = WORKERS_MAX_CONNECTIONS;

  /**
   * Opens a connection; see {@linkcode Transport.connect}. Resolves once the
   * socket is open (`socket.opened`), or rejects when it fails or `signal`
   * aborts (Workers has no connect timeout of its own).
   *
   * @throws {TypeError} for a unix socket path, or TLS options Workers cannot honour.
   */
  async connect(
    address: ServerAddress,
    options: TransportConnectOptions,
    handlers: TransportHandlers,
  ): Promise<TransportSocket> {
    if ("path" in address) throw new TypeError(`CloudflareTransport connects over TCP only, not to ${address.path}`);
    const tls = options.tls;
    if (tls) {
      if (tls.caCerts?.length) {
        throw new TypeError("CloudflareTransport cannot add CA certificates: Workers trusts the platform's store only");
      }
      if (tls.rejectUnauthorized === false) {
        throw new TypeError("CloudflareTransport cannot skip certificate checks");
      }
      if (tls.cert !== undefined || tls.key !== undefined) {
        throw new TypeError("CloudflareTransport cannot present a client certificate (tls.cert, tls.key)");
      }
      if (tls.serverName !== undefined && tls.serverName !== address.host) {
        throw new TypeError("CloudflareTransport cannot set a TLS server name other than the host");
      }
    }
    const signal = options.signal;
    signal?.throwIfAborted();
    const socket = connect(
      // connect() wants IPv6 literals in brackets (parseServerSpec strips them).
      { hostname: address.host.includes(":") ? `[${address.host}]` : address.host, port: address.port },
      { secureTransport: tls ? "on" : "off", allowHalfOpen: false },
    );
    try {
      // Workers' connect() has no timeout: the connect timeout aborts `signal`.
      await raceAbort(socket.opened, signal, () => {});
    } catch (error) {
      socket.close().catch(() => {});
      throw error;
    }
    return new CloudflareSocket(socket, handlers);
  }

  /**
   * Workers binds a socket to the request that opened it: from another
   * request, a write rejects once and then hangs. This returns a check made
   * in the opening request, answering later whether the caller still runs in
   * it, so the core never hands a connection another request's work.
   *
   * It rests on the same rule: an `AbortSignal` made during a request
   * belongs to that request, and reading it from another one throws
   * synchronously, whether that request is still running or finished.
   */
  contextCheck(): () => boolean {
    return requestMarker();
  }
}

class CloudflareSocket implements TransportSocket {
  #socket: WorkersSocket;
  #writer: WritableStreamDefaultWriter<Uint8Array>;
  #handlers: TransportHandlers;
  #lastWrite: Promise<void> = Promise.resolve();
  #closing = false;
  #closed = false;
  #reader: ReadableStreamDefaultReader<Uint8Array>;
  #reading: Promise<void>;
  #failure: Error | undefined;

  constructor(socket: WorkersSocket, handlers: TransportHandlers) {
    this.#socket = socket;
    this.#handlers = handlers;
    this.#writer = socket.writable.getWriter();
    this.#reader = socket.readable.getReader();
    this.#reading = this.#readLoop();
  }

  async #readLoop(): Promise<void> {
    let error: Error | undefined;
    try {
      for (;;) {
        const { done, value } = await this.#reader.read();
        if (done) break;
        if (value.length > 0) this.#handlers.onData(value);
      }
    } catch (e) {
      if (!this.#closing) error = e instanceof Error ? e : new Error(String(e));
    }
    this.#shut();
    this.#handlers.onClose(this.#failure ?? error);
  }

  #shut(): void {
    if (this.#closed) return;
    this.#closed = true;
    this.#socket.close().catch(() => {});
  }

  write(data: Uint8Array, done?: () => void): void {
    if (this.#closed || this.#closing) return;
    // WritableStream queues writes in order; its promise resolves once the
    // sink took the bytes (then `done`: the core may reuse the buffer).
    const written = this.#writer.write(data);
    this.#lastWrite = (done === undefined ? written : written.then(done)).catch((e) => {
      // e.g. "Cannot perform I/O on behalf of a different request": never
      // write to this socket again; the read loop ends and reports it.
      this.#failure ??= e instanceof Error ? e : new Error(String(e));
      this.#shut();
    });
  }

  async close(): Promise<void> {
    if (!this.#closing) {
      this.#closing = true;
      // Flush what is queued, but not for ever: a server that stops reading
      // would hold the write, and close() with it.
      if (!(await settlesWithin(this.#lastWrite, CLOSE_GRACE_MS))) this.#abort();
      this.#shut();
    }
    await this.#reading;
  }

  async destroy(): Promise<void> {
    if (!this.#closing) {
      this.#closing = true;
      this.#abort();
      this.#shut();
    }
    await this.#reading;
  }

  /**
   * With a write stuck, workerd's socket.close() waits for it and leaves our
   * read pending. Aborting through our writer rejects the write (caught in
   * write()); cancelling through our reader ends the read loop. workerd
   * still holds the TCP connection until the request ends.
   */
  #abort(): void {
    const reason = new Error("closed before the queued writes were flushed");
    this.#writer.abort(reason).catch(() => {});
    this.#reader.cancel(reason).catch(() => {});
  }
}
