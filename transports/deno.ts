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
  CLOSE_GRACE_MS,
  raceAbort,
  type ServerAddress,
  settlesWithin,
  type TlsOptions,
  type Transport,
  type TransportConnectOptions,
  type TransportHandlers,
  type TransportSocket,
} from "../src/connection/transport.ts";

const READ_SIZE = 65536;

/**
 * Opens the stream and, for TLS, completes the handshake, all under
 * `signal`: the TCP connect takes it, and a handshake that stalls is cut by
 * closing the conn. A certificate that fails verification rejects here, as
 * a connect error saying why, instead of surfacing later as a lost stream.
 */
async function open(address: ServerAddress, options: TransportConnectOptions): Promise<Deno.Conn> {
  const tls = options.tls;
  const signal = options.signal;
  if (tls && tls.rejectUnauthorized === false) {
    throw new TypeError("DenoTransport cannot skip certificate checks; pass the server's CA in tls.caCerts");
  }
  if (tls && (tls.cert !== undefined || tls.key !== undefined)) return await withClientCert(address, tls, signal);
  if ("path" in address) {
    if (tls && !tls.serverName) throw new TypeError("TLS over a unix socket needs tls.serverName");
    const conn = await raceAbort(Deno.connect({ transport: "unix", path: address.path }), signal, closeQuietly);
    if (!tls) return conn;
    return await startTls(conn as unknown as Deno.TcpConn, tls.serverName!, tls.caCerts, signal);
  }
  const conn = await Deno.connect({ hostname: address.host, port: address.port, signal });
  // Deno leaves Nagle on; requests are already coalesced per tick, so it would only add latency.
  conn.setNoDelay(options.noDelay ?? true);
  if (options.keepAlive) conn.setKeepAlive(true); // Deno cannot set the idle time
  if (!tls) return conn;
  // TLS over the TcpConn set up above, not Deno.connectTls: a Deno.TlsConn has
  // no setNoDelay or setKeepAlive, but the options stay on the socket.
  return await startTls(conn, tls.serverName ?? address.host, tls.caCerts, signal);
}

/**
 * TLS presenting a client certificate: only `Deno.connectTls` takes one
 * (`Deno.startTls` ignores it), so over TCP, verified against the host
 * itself, and with Nagle left on (a `Deno.TlsConn` cannot turn it off).
 */
async function withClientCert(
  address: ServerAddress,
  tls: TlsOptions,
  signal: AbortSignal | undefined,
): Promise<Deno.TlsConn> {
  if ("path" in address) throw new TypeError("DenoTransport presents a client certificate over TCP only");
  if (tls.serverName !== undefined && tls.serverName !== address.host) {
    throw new TypeError("DenoTransport cannot set tls.serverName with a client certificate: the host is verified");
  }
  if (typeof tls.cert !== "string" || typeof tls.key !== "string") {
    throw new TypeError("A client certificate needs both tls.cert and tls.key (PEM)");
  }
  const { host: hostname, port } = address;
  const conn = await raceAbort(
    Deno.connectTls({ hostname, port, caCerts: tls.caCerts, cert: tls.cert, key: tls.key }),
    signal,
    closeQuietly,
  );
  const onAbort = () => closeQuietly(conn);
  signal?.addEventListener("abort", onAbort, { once: true });
  try {
    await raceAbort(conn.handshake(), signal, () => {});
    return conn;
  } catch (error) {
    closeQuietly(conn);
    throw error;
  } finally {
    signal?.removeEventListener("abort", onAbort);
  }
}

async function startTls(
  conn: Deno.TcpConn,
  hostname: string,
  caCerts: string[] | undefined,
  signal: AbortSignal | undefined,
): Promise<Deno.TlsConn> {
  let tlsConn: Deno.TlsConn | undefined;
  const onAbort = () => closeQuietly(tlsConn ?? conn);
  signal?.addEventListener("abort", onAbort, { once: true });
  try {
    signal?.throwIfAborted();
    tlsConn = await Deno.startTls(conn, { hostname, caCerts });
    // startTls resolves before the handshake; a server that accepts TCP and
    // stays silent would hold the first read for ever.
    await raceAbort(tlsConn.handshake(), signal, () => {});
    return tlsConn;
  } catch (error) {
    closeQuietly(tlsConn ?? conn);
    throw error;
  } finally {
    signal?.removeEventListener("abort", onAbort);
  }
}

function closeQuietly(conn: Deno.Conn): void {
  try {
    conn.close();
  } catch { /* already closed */ }
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
    const conn = await raceAbort(open(address, options), options.signal, closeQuietly);
    return new DenoSocket(conn, handlers);
  }

  /** `Deno.unrefTimer`; see {@linkcode Transport.unrefTimer}. */
  unrefTimer(timer: ReturnType<typeof setTimeout>): void {
    Deno.unrefTimer(timer);
  }
}

class DenoSocket implements TransportSocket {
  #conn: Deno.Conn;
  #queue: Uint8Array[] = [];
  /** Per queued write, what to call once it is written (or undefined). */
  #done: (undefined | (() => void))[] = [];
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
    const own = new Uint8Array(READ_SIZE);
    const readInto = this.#handlers.readInto;
    let error: Error | undefined;
    try {
      for (;;) {
        // While a large value arrives, read straight into its buffer (no copy through ours).
        const buf = readInto?.() ?? own;
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
    this.#queue = [];
    this.#done = [];
    try {
      this.#conn.close();
    } catch { /* already closed */ }
  }

  write(data: Uint8Array, done?: () => void): void {
    if (this.#closed) return;
    this.#queue.push(data);
    this.#done.push(done);
    this.#writing ??= this.#drain();
  }

  async #drain(): Promise<void> {
    try {
      while (this.#queue.length > 0 && !this.#closed) {
        const parts = this.#queue;
        const dones = this.#done;
        this.#queue = [];
        this.#done = [];
        for (let i = 0; i < parts.length; i++) {
          const part = parts[i];
          let off = 0;
          while (off < part.length) off += await this.#conn.write(part.subarray(off));
          dones[i]?.(); // written: Deno holds it no more
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
      // Flush what is queued, but not for ever: a server that stops reading
      // would hold the write, the conn and its buffers. Closing the conn
      // cancels a pending write, so #drain settles right after #shut.
      if (this.#writing) await settlesWithin(this.#writing, CLOSE_GRACE_MS);
      this.#shut();
      await this.#writing;
    }
    await this.#reading;
  }

  unref(): void {
    if (!this.#closed) this.#conn.unref();
  }

  ref(): void {
    if (!this.#closed) this.#conn.ref();
  }

  async destroy(): Promise<void> {
    if (!this.#closing) {
      this.#closing = true;
      this.#shut();
      await this.#writing;
    }
    await this.#reading;
  }
}
