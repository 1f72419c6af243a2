/**
 * The seam between the runtime-free protocol core and a runtime's sockets.
 *
 * A {@linkcode Transport} opens byte streams; everything memcached-specific
 * (framing, pipelining, timeouts) lives above it. A transport for a new
 * runtime is a page of code: see `transports/deno.ts` and `transports/node.ts`.
 *
 * @module
 */

/** A TCP endpoint. */
export interface TcpAddress {
  /** Host name or IP address (IPv6 without brackets). */
  host: string;
  /** TCP port. */
  port: number;
}

/** A unix domain socket. */
export interface UnixAddress {
  /** Filesystem path of the socket. */
  path: string;
}

/** Where a server listens. */
export type ServerAddress = TcpAddress | UnixAddress;

/**
 * How a server is named: `"host:port"`, `"host"` (port 11211),
 * `"[::1]:11211"`, `"unix:/path"`, `"/path"`, or an address object.
 */
export type ServerSpec = string | { host: string; port?: number } | {
  path: string;
};

/** TLS settings; `true` means TLS with the runtime's default trust store. */
export interface TlsOptions {
  /** Extra PEM-encoded CA certificates to trust (e.g. a self-signed server certificate). */
  caCerts?: string[];
  /** The name to verify the certificate against (SNI); defaults to the host. */
  serverName?: string;
  /**
   * Verify the server certificate. Only Node and Bun can turn this off;
   * other transports throw if it is `false`.
   * @default {true}
   */
  rejectUnauthorized?: boolean;
  /**
   * A client certificate (PEM, its chain after it) to present, for servers
   * that require one (memcached `-o ssl_verify_mode=2` or `3`, with
   * `ssl_ca_cert` the CA that signed it). Needs `key`. Deno, Node and Bun
   * only: the Workers transport throws `TypeError` for it.
   */
  cert?: string;
  /** The private key of `cert` (PEM, unencrypted). Needs `cert`. */
  key?: string;
}

/** Options a transport receives for one connection. */
export interface TransportConnectOptions {
  /** Wrap the stream in TLS. */
  tls?: TlsOptions;
  /** Set TCP_NODELAY where the runtime can. */
  noDelay?: boolean;
  /** Enable TCP keep-alive where the runtime can; `idle` is the delay in ms. */
  keepAlive?: boolean | { idle?: number };
  /** Aborted when the caller gives up connecting (connect timeout). */
  signal?: AbortSignal;
}

/** What a transport reports back to the core for one connection. */
export interface TransportHandlers {
  /**
   * Bytes arrived. The chunk is only read during the call: the core copies
   * whatever it keeps, so a transport may reuse its buffer afterwards.
   */
  onData(chunk: Uint8Array): void;
  /**
   * Optional, for transports that read into a buffer of their choosing:
   * where the next read may put its bytes, or undefined for the
   * transport's own buffer. Asked before each read; while a large value
   * arrives it is the rest of that value's buffer, so its bytes land where
   * they belong instead of being copied there. The bytes read go to
   * `onData` as usual, as a view of the returned buffer.
   */
  readInto?(): Uint8Array | undefined;
  /** The stream ended, or failed with `error`. Called once, last. */
  onClose(error?: Error): void;
}

/** An open byte stream to one server. */
export interface TransportSocket {
  /**
   * Queues bytes for writing, in order. The core never touches `data`
   * again after handing it over, unless `done` is given: then the core
   * may write into `data`'s buffer again once `done` is called, so a
   * transport that calls it must call it only when it no longer holds
   * `data` (written to the OS, or dropped with a failed stream). A
   * transport that ignores `done` costs the core only that reuse. Write
   * failures surface via `onClose`.
   */
  write(data: Uint8Array, done?: () => void): void;
  /**
   * Closes the stream after the queued writes are flushed. Resolves when
   * it is closed; `onClose` has been called by then.
   */
  close(): Promise<void>;
  /**
   * Closes the stream at once, dropping queued writes: for a connection
   * that failed, whose pending bytes no longer matter (a server that stopped
   * reading would otherwise hold `close()` for its grace period). Resolves
   * when it is closed. Optional: without it the core calls `close()`.
   */
  destroy?(): Promise<void>;
  /**
   * Lets the process exit while this socket is open (Node and Bun
   * `socket.unref()`, Deno `conn.unref()`). The core calls it when no
   * request waits on the connection, and {@linkcode TransportSocket.ref}
   * when a request is queued on it again or it starts closing. Optional
   * (with `ref`): without them an open socket holds the process until it
   * is closed.
   */
  unref?(): void;
  /** Undoes {@linkcode TransportSocket.unref}: the open socket holds the process again. */
  ref?(): void;
}

/** Opens connections for the core; one implementation per runtime. */
export interface Transport {
  /** A short name for messages, such as `"deno"` or `"node"`. */
  readonly name: string;
  /**
   * Opens a connection. Rejects if it cannot be opened (or `signal`
   * aborts); resolves once bytes can be written.
   */
  connect(
    address: ServerAddress,
    options: TransportConnectOptions,
    handlers: TransportHandlers,
  ): Promise<TransportSocket>;
  /**
   * Only for runtimes whose sockets belong to the request that opened them
   * (Cloudflare Workers). Called, in the caller's context, as a connection
   * starts opening; the function it returns answers, whenever called
   * later, whether the current caller runs in that same context. The core
   * then hands such a connection new requests only from its own context,
   * never closes or waits for it from another, and closes it once idle
   * (after the current macrotask), so no socket outlives the request work
   * that opened it.
   */
  contextCheck?(): () => boolean;
  /**
   * Most connections one caller may have open at once (Workers: 6 per
   * request); pooled clients keep their default pool size below it.
   */
  readonly maxConnections?: number;
  /**
   * True where a new small `Uint8Array` costs no more than a view of a
   * shared one (JavaScriptCore, so Bun). The core then gives every value a
   * buffer of its own; otherwise small values are carved out of shared
   * slabs, which pays off where allocating is dear (V8: Node, Deno,
   * Workers).
   */
  readonly cheapBuffers?: boolean;
  /**
   * A new buffer of `size` bytes that the core fills completely before
   * anything reads it, so it may hold old memory instead of zeros (such
   * as Node's `Buffer.allocUnsafeSlow`). It must own its `ArrayBuffer` (offset 0,
   * length `size`). Asked for large values and commands only, where
   * zeroing fresh pages costs as much as the copy that then fills them.
   */
  allocUnsafe?(size: number): Uint8Array;
  /**
   * Makes one of the core's timers (a connection's request and connect
   * timeouts) not hold the process by itself (Node and Bun
   * `timer.unref()`, Deno its global `unrefTimer`). Those timers only matter
   * while a connect is under way or a request waits; a transport that
   * offers this must hold the process then itself: a pending connect does,
   * and a socket does unless unref'd (the core refs it whenever a request
   * waits). Optional: without it the timers hold the process until they
   * fire (a connection's request timer stays armed up to `timeout` after
   * its last request).
   */
  unrefTimer?(timer: ReturnType<typeof setTimeout>): void;
}

/**
 * Waits for `opening` unless `signal` aborts first; then rejects with the
 * signal's reason and hands whatever `opening` still produces to `discard`,
 * so a connect that loses the race never leaks. For transports whose
 * runtime's connect takes no AbortSignal.
 */
export async function raceAbort<T>(
  opening: Promise<T>,
  signal: AbortSignal | undefined,
  discard: (late: T) => void,
): Promise<T> {
  if (!signal) return await opening;
  signal.throwIfAborted();
  let onAbort!: () => void;
  const aborted = new Promise<never>((_, reject) => {
    onAbort = () => reject(signal.reason);
    signal.addEventListener("abort", onAbort, { once: true });
  });
  try {
    return await Promise.race([opening, aborted]);
  } catch (error) {
    opening.then(discard, () => {});
    throw error;
  } finally {
    signal.removeEventListener("abort", onAbort);
  }
}

/**
 * Workers' request check (see {@linkcode Transport.contextCheck}): an
 * `AbortSignal` made during a request belongs to it, and reading it from
 * another request throws synchronously, whether that request is still
 * running or finished. The function returned answers, whenever called,
 * whether the caller runs in the request that called this.
 */
export function requestMarker(): () => boolean {
  const marker = new AbortController();
  return () => {
    try {
      void marker.signal.aborted;
      return true;
    } catch {
      return false;
    }
  };
}

/** ms a transport's close() waits for queued writes before it closes anyway. */
export const CLOSE_GRACE_MS = 1000;

/**
 * Waits for `work` to settle, at most `ms`: true if it did. The timer is
 * cleared either way, so nothing outlives the wait.
 */
export async function settlesWithin(work: Promise<unknown>, ms: number): Promise<boolean> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const late = new Promise<false>((resolve) => (timer = setTimeout(() => resolve(false), ms)));
  try {
    return await Promise.race([work.then(() => true, () => true), late]);
  } finally {
    clearTimeout(timer);
  }
}

/**
 * Outgoing connections a Cloudflare Worker may have open at once per
 * request; more wait until one closes. Pooled clients on Workers stay below
 * it by default. (Here, not in transports/cloudflare.ts, so mod.ts can size
 * pools without loading the Workers socket module.)
 */
export const WORKERS_MAX_CONNECTIONS = 6;

/** The display name of an address: `"host:port"` (IPv6 in brackets) or the socket path. */
export function addressName(address: ServerAddress): string {
  if ("path" in address) return address.path;
  const host = address.host.includes(":") ? `[${address.host}]` : address.host;
  return `${host}:${address.port}`;
}

const DEFAULT_PORT = 11211;

function checkPort(port: unknown, spec: unknown): number {
  if (
    typeof port !== "number" || !Number.isInteger(port) || port < 1 ||
    port > 65535
  ) {
    throw new TypeError(
      `Invalid memcached server ${JSON.stringify(spec)}: port must be 1-65535`,
    );
  }
  return port;
}

function checkHost(host: unknown, spec: unknown): string {
  if (typeof host !== "string" || host === "" || /[\s/@]/.test(host)) {
    throw new TypeError(
      `Invalid memcached server ${JSON.stringify(spec)}: bad host`,
    );
  }
  return host;
}

/**
 * Parses a {@linkcode ServerSpec}.
 *
 * @throws {TypeError} with the spec in the message, if it is not valid.
 */
export function parseServerSpec(spec: ServerSpec): ServerAddress {
  if (typeof spec === "object" && spec !== null) {
    if ("path" in spec) {
      if (typeof spec.path !== "string" || spec.path === "") {
        throw new TypeError(
          `Invalid memcached server ${JSON.stringify(spec)}: empty path`,
        );
      }
      return { path: spec.path };
    }
    return {
      host: checkHost(spec.host, spec),
      port: spec.port === undefined ? DEFAULT_PORT : checkPort(spec.port, spec),
    };
  }
  if (typeof spec !== "string" || spec.trim() !== spec || spec === "") {
    throw new TypeError(`Invalid memcached server ${JSON.stringify(spec)}`);
  }
  if (spec.startsWith("unix:")) {
    if (spec.length === 5) throw new TypeError(`Invalid memcached server ${JSON.stringify(spec)}: empty path`);
    return { path: spec.slice(5) };
  }
  if (spec.startsWith("/")) return { path: spec };
  let host = spec;
  let port: number | undefined;
  const bracket = /^\[([^\]]+)\](?::(.*))?$/.exec(spec);
  if (bracket) {
    host = bracket[1];
    if (bracket[2] !== undefined) port = parsePortText(bracket[2], spec);
  } else if (spec.indexOf(":") !== -1 && spec.indexOf(":") === spec.lastIndexOf(":")) {
    const at = spec.indexOf(":");
    host = spec.slice(0, at);
    port = parsePortText(spec.slice(at + 1), spec);
  } // several colons, no brackets: a bare IPv6 address on the default port
  return { host: checkHost(host, spec), port: port ?? DEFAULT_PORT };
}

function parsePortText(text: string, spec: string): number {
  if (!/^\d{1,5}$/.test(text)) {
    throw new TypeError(
      `Invalid memcached server ${JSON.stringify(spec)}: port must be 1-65535`,
    );
  }
  return checkPort(Number(text), spec);
}
