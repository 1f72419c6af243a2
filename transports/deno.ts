/**
 * `DenoTransport`: memcached connections over `Deno.connect`,
 * `Deno.connectTls` and unix sockets.
 *
 * @example
 * ```ts ignore
 * import { Client } from "@memkit/memcache";
 * import { DenoTransport } from "@memkit/memcache/deno";
 * const client = new Client("127.0.0.1:11211", { transport: new DenoTransport() });
 * ```
 *
 * @module
 */

import {
  raceAbort,
  type ServerAddress,
  type Transport,
  type TransportConnectOptions,
  type TransportHandlers,
  type TransportSocket,
} from "../src/transport.ts";

const READ_SIZE = 65536;

async function open(address: ServerAddress, options: TransportConnectOptions): Promise<Deno.Conn> {
  const tls = options.tls;
  if (tls && tls.rejectUnauthorized === false) {
    throw new TypeError("DenoTransport cannot skip certificate checks; pass the server's CA in tls.caCerts");
  }
  if ("path" in address) {
    const conn = await Deno.connect({ transport: "unix", path: address.path });
    if (!tls) return conn;
    if (!tls.serverName) {
      conn.close();
      throw new TypeError("TLS over a unix socket needs tls.serverName");
    }
    return await Deno.startTls(conn as unknown as Deno.TcpConn, { hostname: tls.serverName, caCerts: tls.caCerts });
  }
  if (tls && !tls.serverName) {
    return await Deno.connectTls({ hostname: address.host, port: address.port, caCerts: tls.caCerts });
  }
  const conn = await Deno.connect({ hostname: address.host, port: address.port });
  if (options.noDelay !== undefined) conn.setNoDelay(options.noDelay);
  if (options.keepAlive) conn.setKeepAlive(true);
  if (!tls) return conn;
  // A certificate name other than the host: connect, then start TLS with it.
  return await Deno.startTls(conn, { hostname: tls.serverName, caCerts: tls.caCerts });
}

/** Connects with Deno's own socket APIs. */
export class DenoTransport implements Transport {
  /** Always `"deno"`. */
  readonly name = "deno";

  /** Opens a connection; see {@linkcode Transport.connect}. */
  async connect(
    address: ServerAddress,
    options: TransportConnectOptions,
    handlers: TransportHandlers,
  ): Promise<TransportSocket> {
    options.signal?.throwIfAborted();
    const conn = await raceAbort(open(address, options), options.signal, (late) => late.close());
    return new DenoSocket(conn, handlers);
  }
}

class DenoSocket implements TransportSocket {
  #conn: Deno.Conn;
  #queue: Uint8Array[] = [];
  #writing: Promise<void> | null = null;
  #closing = false;
  #closed = false;
  #reading: Promise<void>;
  #handlers: TransportHandlers;

  constructor(conn: Deno.Conn, handlers: TransportHandlers) {
    this.#conn = conn;
    this.#handlers = handlers;
    this.#reading = this.#readLoop();
  }

  async #readLoop(): Promise<void> {
    const buf = new Uint8Array(READ_SIZE);
    let error: Error | undefined;
    try {
      for (;;) {
        const n = await this.#conn.read(buf);
        if (n === null) break;
        this.#handlers.onData(buf.subarray(0, n));
      }
    } catch (e) {
      if (!this.#closing) error = e instanceof Error ? e : new Error(String(e));
    }
    this.#shut();
    this.#handlers.onClose(error);
  }

  #shut(): void {
    if (this.#closed) return;
    this.#closed = true;
    try {
      this.#conn.close();
    } catch { /* already closed */ }
  }

  write(data: Uint8Array): void {
    if (this.#closed) return;
    this.#queue.push(data);
    this.#writing ??= this.#drain();
  }

  async #drain(): Promise<void> {
    try {
      while (this.#queue.length > 0 && !this.#closed) {
        const parts = this.#queue;
        this.#queue = [];
        for (const part of parts) {
          let off = 0;
          while (off < part.length) off += await this.#conn.write(part.subarray(off));
        }
      }
    } catch {
      // The read loop sees the broken stream and reports it via onClose.
      this.#shut();
    } finally {
      this.#writing = null;
    }
  }

  async close(): Promise<void> {
    if (!this.#closing) {
      this.#closing = true;
      if (this.#writing) await this.#writing;
      this.#shut();
    }
    await this.#reading;
  }
}
