/**
 * `NodeTransport`: memcached connections over `node:net` and `node:tls`.
 * Works unchanged in Node and Bun (and in Deno through its Node
 * compatibility, though {@linkcode https://jsr.io/@memkit/memcache/doc/deno | DenoTransport} is native there).
 *
 * @example
 * ```ts ignore
 * import { Client } from "@memkit/memcache";
 * import { NodeTransport } from "@memkit/memcache/node";
 * const client = new Client("127.0.0.1:11211", { transport: new NodeTransport() });
 * ```
 *
 * @module
 */

import type * as Net from "node:net";
import type * as Tls from "node:tls";
import {
  CLOSE_GRACE_MS,
  type ServerAddress,
  type Transport,
  type TransportConnectOptions,
  type TransportHandlers,
  type TransportSocket,
} from "../src/connection/transport.ts";

/** Size of the one read buffer of a plain (not TLS) connection. */
const READ_SIZE = 65536;

// Loaded on first connect, not at import: a bundle of the sources for another
// runtime (a Worker without nodejs_compat) may contain this module unused.
let modules: Promise<[typeof Net, typeof Tls]> | undefined;
const load = () => (modules ??= Promise.all([import("node:net"), import("node:tls")]));

/** Connects with `node:net` / `node:tls`; unix sockets by path. */
export class NodeTransport implements Transport {
  /** Always `"node"`. */
  readonly name = "node";
  /** True on Bun, whose small buffers are cheap; see {@linkcode Transport.cheapBuffers}. */
  readonly cheapBuffers: boolean =
    typeof (globalThis as { process?: { versions?: { bun?: string } } }).process?.versions?.bun === "string";

  // No allocUnsafe (Transport.allocUnsafe): large values get zeroed
  // `new Uint8Array` memory. Buffer.allocUnsafeSlow memory, tried for them,
  // cost Node more system time per 512 KiB get than the zeroing it saves
  // (S5 took 30% longer) now that values are read straight into their
  // buffers (readInto).

  /**
   * `timer.unref()` (Node, Bun); `Deno.unrefTimer` where timers are numbers
   * (Deno's Node compatibility). See {@linkcode Transport.unrefTimer}.
   */
  unrefTimer(timer: ReturnType<typeof setTimeout>): void {
    const t = timer as unknown as number | { unref?(): void };
    if (typeof t === "object") t.unref?.();
    else (globalThis as { Deno?: { unrefTimer(id: number): void } }).Deno?.unrefTimer(t);
  }

  /** Opens a connection; see {@linkcode Transport.connect}. */
  connect(
    address: ServerAddress,
    options: TransportConnectOptions,
    handlers: TransportHandlers,
  ): Promise<TransportSocket> {
    return load().then(([net, tls]) => this.#open(net, tls, address, options, handlers));
  }

  #open(
    net: typeof Net,
    tls: typeof Tls,
    address: ServerAddress,
    options: TransportConnectOptions,
    handlers: TransportHandlers,
  ): Promise<TransportSocket> {
    return new Promise<TransportSocket>((resolve, reject) => {
      const signal = options.signal;
      if (signal?.aborted) return reject(signal.reason);
      const tcp = "path" in address ? undefined : address;
      let socket: Net.Socket;
      const ready = options.tls ? "secureConnect" : "connect";
      if (options.tls) {
        socket = tls.connect({
          ...(tcp ? { host: tcp.host, port: tcp.port } : { path: (address as { path: string }).path }),
          ca: options.tls.caCerts,
          servername: options.tls.serverName ?? (tcp && net.isIP(tcp.host) === 0 ? tcp.host : undefined),
          rejectUnauthorized: options.tls.rejectUnauthorized ?? true,
          cert: options.tls.cert,
          key: options.tls.key,
        });
      } else {
        const where = tcp ? { host: tcp.host, port: tcp.port } : { path: (address as { path: string }).path };
        // Every read otherwise lands in a new Buffer: on Node an ArrayBuffer
        // per read, which is dear in V8 and left 512 KiB replies arriving at
        // a third of the speed; on Bun a Buffer the core must first view as
        // a plain Uint8Array. The core copies what it keeps (see
        // TransportHandlers.onData), so one buffer serves every read.
        // While a large value arrives, reads go straight into its buffer
        // (handlers.readInto): no copy of it through the read buffer.
        const own = new Uint8Array(READ_SIZE);
        const readInto = handlers.readInto;
        socket = net.connect({
          ...where,
          onread: {
            buffer: readInto === undefined ? own : () => readInto() ?? own,
            callback: (n: number, buf: Uint8Array) => {
              handlers.onData(buf.subarray(0, n));
              return true; // keep reading
            },
          },
        });
      }
      let opened = false;
      let closed = false;
      let failure: Error | undefined;
      const onAbort = () => socket.destroy(signal!.reason instanceof Error ? signal!.reason : new Error("aborted"));
      signal?.addEventListener("abort", onAbort, { once: true });
      const done = new Promise<void>((resolveDone) => {
        socket.once("close", () => {
          closed = true;
          signal?.removeEventListener("abort", onAbort);
          if (opened) handlers.onClose(failure);
          else reject(failure ?? new Error("connection closed while connecting"));
          resolveDone();
        });
      });
      socket.on("error", (error) => (failure = error));
      socket.once(ready, () => {
        opened = true;
        signal?.removeEventListener("abort", onAbort);
        if (tcp) {
          // Requests are already coalesced per tick; Nagle would only add latency.
          socket.setNoDelay(options.noDelay ?? true);
          if (options.keepAlive) {
            socket.setKeepAlive(
              true,
              typeof options.keepAlive === "object" ? options.keepAlive.idle ?? 0 : 0,
            );
          }
        }
        resolve({
          write(data, done) {
            if (closed) return;
            // Node calls back once the bytes are handed to the OS (or dropped with a failed socket).
            if (done === undefined) socket.write(data);
            else socket.write(data, () => done());
          },
          close() {
            if (!closed) socket.end();
            // A peer that never closes its side must not keep us waiting.
            const force = setTimeout(() => socket.destroy(), CLOSE_GRACE_MS);
            return done.then(() => clearTimeout(force));
          },
          destroy() {
            socket.destroy();
            return done;
          },
          unref() {
            if (!closed) socket.unref();
          },
          ref() {
            if (!closed) socket.ref();
          },
        });
      });
      if (options.tls) socket.on("data", (chunk: Uint8Array) => handlers.onData(chunk));
    });
  }
}
