/**
 * One memcached connection: requests are encoded into a shared outbox,
 * flushed in one transport write per tick, and matched to replies in order.
 *
 * A connection is single-use: once anything leaves its stream in an unknown
 * state (timeout, unexpected close, a reply it cannot place, CLIENT_ERROR to
 * a command with a data block)
 * it closes, rejects every request still waiting, and its owner opens a
 * new one for the next call.
 *
 * @module
 */

import {
  MemcacheAuthError,
  MemcacheClientError,
  MemcacheConnectionError,
  MemcacheError,
  MemcacheServerError,
  MemcacheTimeoutError,
  MemcacheUnexpectedCloseError,
  MemcacheUnknownCommandError,
  MemcacheUnknownError,
  QueueFullError,
} from "../errors.ts";
import { connectionLost } from "./_usable.ts";
import { Outbox } from "../protocol/_outbox.ts";
import {
  type Expectation,
  INVALID_FLAG_SWALLOWS_DATA,
  type Reply,
  ReplyParser,
  WITH_DATA,
} from "../protocol/_reply_parser.ts";
import { ProtocolError } from "../protocol/_wire.ts";
import { Queue, rejectAll } from "./_queue.ts";
import type { ConnectionObserver, ConnectionOptions, FirstRequest, Tally } from "./_connection_options.ts";
import {
  CLOSE_GRACE_MS,
  type ServerAddress,
  settlesWithin,
  type Transport,
  type TransportConnectOptions,
  type TransportSocket,
} from "./transport.ts";

/** A request waiting for its reply. */
interface Waiting extends Expectation {
  command: string;
  deadline: number;
  resolve: (value: unknown) => void;
  reject: (error: Error) => void;
  /** Turns the reply into the request's result; what it throws rejects. */
  map?: (reply: Reply) => unknown;
  /** For retrievals: the wire keys asked for, in order. */
  keys?: readonly string[];
  /** The command line was followed by a data block (or its framing is the caller's: raw). */
  block: boolean;
  /** `CLIENT_ERROR invalid flag` comes after the server read the block (see INVALID_FLAG_SWALLOWS_DATA). */
  swallows?: boolean;
  /** The observed call that issued it: its reply's bytes count there. */
  tally?: Tally;
}

/** memcached's CLIENT_ERROR texts for a login it refused or a request before any login (`-Y`). */
const AUTH_REFUSALS = new Set([
  "CLIENT_ERROR authentication failure",
  "CLIENT_ERROR bad authentication token format",
  "CLIENT_ERROR unauthenticated",
]);

/** The meta commands (see #noMeta). */
const META_COMMANDS = new Set(["mg", "ms", "md", "ma", "mn"]);

/**
 * Servers (by name) that have answered a meta command in this process: a
 * connection to one of them that closes on a meta command was lost (a
 * restart, an outage behind a proxy), not refused by a server without
 * meta. Bounded: past MAX_META_SERVERS names it starts again.
 */
const metaServers = new Set<string>();
const MAX_META_SERVERS = 10_000;

/** A noreply request waiting to be flushed. */
interface Unflushed {
  command: string;
  deadline: number;
  resolve: () => void;
  reject: (error: Error) => void;
}

const CONNECTING = 0;
const OPEN = 1;
const CLOSED = 2;

/**
 * A value still owed at least this many bytes is read straight into its
 * buffer by transports that can (see `TransportHandlers.readInto`); a
 * shorter rest comes through the transport's buffer, in reads that may
 * carry the replies after it too.
 */
const READ_INTO_MIN = 16384;

/** One pipelined memcached connection. See the module doc. */
export class Connection {
  readonly name: string;
  #transport: Transport | Promise<Transport>;
  #address: ServerAddress;
  #options: ConnectionOptions;
  #maxQueue: number;
  #onClosed: (connection: Connection) => void;
  #state = CONNECTING;
  #socket: TransportSocket | null = null;
  #outbox = new Outbox();
  #waiting = new Queue<Waiting>();
  #unflushed = new Queue<Unflushed>();
  #flushScheduled = false;
  #timer: ReturnType<typeof setTimeout> | undefined;
  #timerAt = 0;
  #parser: ReplyParser;
  #closing: Promise<void> | null = null;
  #quitting = false;
  /** Set for context-bound transports (Workers): is the caller in the opening request? */
  #inContext: (() => boolean) | undefined;
  #idleTimer: ReturnType<typeof setTimeout> | undefined;
  /** Context-bound transports: when a byte last arrived, or the connection last went busy. */
  #lastProgress = 0;
  /** Whether the socket holds the process: not while nothing waits on it (see {@linkcode TransportSocket.unref}). */
  #held = true;
  /** The transport's {@linkcode Transport.unrefTimer}, once the transport is known. */
  #unrefTimer: ((timer: ReturnType<typeof setTimeout>) => void) | undefined;
  /** Resolves once the connection is closed, whatever the reason. */
  readonly closed: Promise<void>;
  #markClosed!: () => void;

  constructor(
    transport: Transport | Promise<Transport>,
    address: ServerAddress,
    name: string,
    options: ConnectionOptions,
    onClosed: (connection: Connection) => void,
  ) {
    this.#transport = transport;
    this.#address = address;
    this.name = name;
    this.#options = options;
    this.#observer = options.observer;
    this.#maxQueue = options.maxQueue ?? Infinity;
    this.#onClosed = onClosed;
    this.closed = new Promise((resolve) => (this.#markClosed = resolve));
    this.#parser = new ReplyParser(() => this.#waiting.peek(), (reply) => this.#onReply(reply));
    if (options.first !== undefined) this.#first(options.first);
    this.#connect();
  }

  /** Bytes of the first request still in the outbox, before the connection opens. */
  #firstBytes = 0;
  /**
   * The first request awaits its reply: noreply requests sent behind it are
   * not resolved yet, since a refused login means the server ignored them.
   */
  #firstPending = false;

  /** Queues the {@linkcode FirstRequest} ahead of everything else. */
  #first(first: FirstRequest): void {
    first.encode(this.#outbox);
    this.#firstBytes = this.#outbox.length;
    this.#firstPending = true;
    this.#waiting.push({
      command: first.command,
      expect: first.expect & ~WITH_DATA,
      block: (first.expect & WITH_DATA) !== 0,
      deadline: this.#deadline(),
      resolve: () => {
        this.#firstPending = false;
        if (this.#state === OPEN && this.#unflushed.size > 0) this.#flush();
      },
      // Also called as #fail drains the queue: the connection is closed by then, and that does nothing.
      reject: (error) => this.#fail((command) => first.failure(error, command)),
      map: first.check,
    });
  }

  /**
   * True until the connection starts closing; only then may it take
   * requests. Always false from another request's context (Workers).
   */
  get usable(): boolean {
    return this.#state !== CLOSED && !this.#quitting && this.#closing === null && !this.foreign;
  }

  /**
   * True when the transport binds sockets to the request that opened them
   * (Workers) and the caller runs in another request: such a connection is
   * not the caller's to use, close or wait for.
   */
  get foreign(): boolean {
    return this.#inContext !== undefined && !this.#inContext();
  }

  /** The most a raw reply (rawCommand) may hold on this connection before its end tokens (default 64 MiB). */
  set maxRawReply(bytes: number) {
    this.#parser.maxRaw = bytes;
  }

  /** Requests sent and not yet answered, plus noreply ones not yet flushed. */
  get pending(): number {
    return this.#waiting.size + this.#unflushed.size;
  }

  /**
   * Context-bound transports (Workers): ms this connection has had requests
   * in flight with no byte arriving; 0 when nothing is pending. The
   * connection of a request whose invocation was cancelled mid-call stays
   * like this for good: the runtime never runs its callbacks again.
   */
  get stalledFor(): number {
    return this.pending === 0 || this.#inContext === undefined ? 0 : Date.now() - this.#lastProgress;
  }

  /**
   * Encodes a request with `encode` and resolves with its reply, or with
   * `map(reply)` when given. What `map` throws rejects the request; a
   * {@linkcode ProtocolError} from it means the reply does not fit the
   * request, so the stream is out of step: the connection closes and every
   * request on it rejects with `MemcacheUnknownError`. Error replies reject:
   * ERROR → MemcacheUnknownCommandError, CLIENT_ERROR → MemcacheClientError,
   * SERVER_ERROR → MemcacheServerError. After ERROR or CLIENT_ERROR to a
   * request with a data block (`expect | WITH_DATA`) the connection closes
   * too: where the server stopped reading is unknown.
   */
  request<T = Reply>(
    command: string,
    expect: number,
    encode: (out: Outbox) => void,
    keys?: readonly string[],
    endTokens?: Uint8Array,
    map?: (reply: Reply) => T,
  ): Promise<T> {
    return new Promise<T>((resolve, reject) => {
      if (!this.usable) return reject(this.#closedError(command));
      const full = this.#full(command);
      if (full !== null) return reject(full);
      const tally = this.#observer === undefined ? undefined : this.#encodeObserved(encode);
      if (tally === undefined) encode(this.#outbox);
      this.#busy();
      this.#waiting.push({
        tally,
        command,
        expect: expect & ~(WITH_DATA | INVALID_FLAG_SWALLOWS_DATA),
        block: (expect & WITH_DATA) !== 0,
        swallows: (expect & INVALID_FLAG_SWALLOWS_DATA) !== 0,
        endTokens,
        keys,
        deadline: this.#deadline(),
        resolve: resolve as (value: unknown) => void,
        reject,
        map,
      });
      this.#scheduled();
    });
  }

  /**
   * Runs `issue`, whose requests are one call of the caller's (setMany's
   * sets, getMany's batches): admitted whole while fewer than `maxQueue`
   * requests wait, or rejected at once (every request `issue` makes
   * rejects, with one error) when the queue is full.
   */
  batch<T>(command: string, issue: () => T): T {
    if (this.pending < this.#maxQueue || this.#admitting) return this.#admit(issue);
    const error = this.#fullError(command);
    this.#refusing = error;
    try {
      return issue();
    } finally {
      this.#refusing = null;
    }
  }

  #admit<T>(issue: () => T): T {
    const outer = this.#admitting;
    this.#admitting = true;
    try {
      return issue();
    } finally {
      this.#admitting = outer;
    }
  }

  /** True while a batch admitted whole issues its requests. */
  #admitting = false;
  /** Set while a batch refused as a whole issues its requests: the error they reject with. */
  #refusing: MemcacheError | null = null;

  /** Whether a new request must be refused for the queue's bound; the error, if so. */
  #full(command: string): MemcacheError | null {
    if (this.#refusing !== null) return this.#refusing;
    if (this.#admitting || this.pending < this.#maxQueue) return null;
    return this.#fullError(command);
  }

  /** Encodes a noreply request; resolves once its bytes are handed to the transport. */
  send(command: string, encode: (out: Outbox) => void): Promise<void> {
    return new Promise<void>((resolve, reject) => {
      if (!this.usable) return reject(this.#closedError(command));
      const full = this.#full(command);
      if (full !== null) return reject(full);
      if (this.#observer === undefined || this.#encodeObserved(encode) === undefined) encode(this.#outbox);
      this.#busy();
      this.#unflushed.push({ command, deadline: this.#deadline(), resolve, reject });
      this.#scheduled();
    });
  }

  /**
   * Sends `quit` after everything queued; the server answers by closing.
   * Resolves when the connection is closed. No request is taken after it.
   */
  quit(encode: (out: Outbox) => void): Promise<void> {
    if (this.foreign) return Promise.resolve(); // its own request closes it once idle
    if (!this.usable) return this.closed;
    encode(this.#outbox);
    this.#quitting = true;
    if (!this.#held) this.#hold(); // until the server has closed it
    this.#scheduled();
    return this.closed;
  }

  /**
   * Closes now: queued noreply requests are flushed first; requests still
   * waiting for replies are rejected with MemcacheConnectionError.
   */
  close(): Promise<void> {
    if (this.foreign) return Promise.resolve(); // its own request closes it once idle
    if (this.#closing !== null) return this.#closing;
    if (this.#state === CLOSED) return this.closed; // failed: resolves once its socket is closed too
    if (this.#state === CONNECTING && this.#outbox.length === this.#firstBytes) {
      this.#byCaller = true; // not a failure
      this.#fail((command) =>
        new MemcacheConnectionError("Connection closed by the client", { server: this.name, command })
      );
      return this.closed;
    }
    this.#closing = (async () => {
      // A connect that hangs (no connectTimeout) must not hold close() for
      // ever: queued writes wait for it a grace period, then it is dropped.
      if (this.#state === CONNECTING) await settlesWithin(this.#opened, CLOSE_GRACE_MS);
      if (this.#state === OPEN) this.#flush();
      this.#fail(
        (command) =>
          new MemcacheConnectionError("Connection closed by the client before the reply", {
            server: this.name,
            command,
          }),
        true,
      );
      await this.closed;
    })();
    return this.#closing;
  }

  // ---- internals

  #observer: ConnectionObserver | undefined;
  /** Bytes received, and those already counted to a reply (observed connections only). */
  #bytesIn = 0;
  #bytesCounted = 0;
  #wasOpen = false;
  /** Observed connections: the error a failed connection closed with. */
  #failure: Error | undefined;
  /** Closed by close() before it opened. */
  #byCaller = false;

  /** Encodes a request of an observed call, counting its bytes to it; undefined (nothing encoded) for others. */
  #encodeObserved(encode: (out: Outbox) => void): Tally | undefined {
    const tally = this.#observer!.tally();
    if (tally === undefined) return undefined;
    const before = this.#outbox.length;
    encode(this.#outbox);
    tally.bytesWritten += this.#outbox.length - before;
    return tally;
  }

  #opened!: Promise<void>;
  #connecting!: Promise<TransportSocket>;
  #abort = new AbortController();

  #connect(): void {
    const controller = this.#abort;
    const connectOptions: TransportConnectOptions = {
      tls: this.#options.tls,
      noDelay: this.#options.noDelay,
      keepAlive: this.#options.keepAlive,
      signal: controller.signal,
    };
    let connectTimer: ReturnType<typeof setTimeout> | undefined;
    const timeout = this.#options.connectTimeout;
    const timedOut = timeout === undefined ? null : new Promise<never>((_, reject) => {
      connectTimer = setTimeout(() => {
        const error = new MemcacheTimeoutError(`Connect timed out after ${timeout} ms`, { server: this.name });
        controller.abort(error);
        reject(error);
      }, timeout);
    });
    const handlers = {
      onData: (chunk: Uint8Array) => this.#onData(chunk),
      readInto: () => this.#parser.readTarget(READ_INTO_MIN),
      onClose: (error?: Error) => this.#onTransportClose(error),
    };
    const transport = this.#transport;
    const start = (t: Transport) => {
      this.#inContext = t.contextCheck?.(); // in the opening caller's context (a microtask of it)
      if (t.unrefTimer) {
        // The connect and a waiting request hold the process themselves: the timers need not.
        const unrefTimer = this.#unrefTimer = (timer: ReturnType<typeof setTimeout>) => t.unrefTimer!(timer);
        if (connectTimer !== undefined) unrefTimer(connectTimer);
        if (this.#timer !== undefined) unrefTimer(this.#timer);
      }
      this.#parser.slabs = !t.cheapBuffers;
      if (t.allocUnsafe) this.#parser.allocate = this.#outbox.allocate = (size) => t.allocUnsafe!(size);
      return t.connect(this.#address, connectOptions, handlers);
    };
    const connecting = this.#connecting = "connect" in transport ? start(transport) : transport.then(start);
    this.#opened = (timedOut ? Promise.race([connecting, timedOut]) : connecting).then(
      (socket) => {
        clearTimeout(connectTimer);
        if (this.#state === CLOSED) return; // #finish closes it
        this.#socket = socket;
        this.#state = OPEN;
        this.#wasOpen = true;
        this.#observer?.event("open", this.name);
        if (this.#outbox.length > 0) this.#flush();
        if (this.pending === 0) this.#idle();
      },
      (error: unknown) => {
        clearTimeout(connectTimer);
        if (error instanceof MemcacheError) return this.#fail(() => error);
        const reason = error instanceof Error ? error.message : String(error);
        // An error per command, naming it.
        this.#fail((command) =>
          new MemcacheConnectionError(`Could not connect: ${reason}`, { server: this.name, command, cause: error })
        );
      },
    );
  }

  #deadline(): number {
    const timeout = this.#options.timeout;
    if (timeout === undefined || timeout === 0 || timeout === Infinity) return 0;
    const deadline = Date.now() + timeout;
    if (this.#timer === undefined) this.#arm(deadline);
    return deadline;
  }

  #arm(at: number): void {
    this.#timerAt = at;
    this.#timer = setTimeout(() => this.#onTimer(), Math.max(0, at - Date.now()));
    this.#unrefTimer?.(this.#timer);
  }

  /**
   * One timer serves every request: it is armed for the oldest deadline and,
   * when it fires, either fails the connection, re-arms for the next one, or
   * (nothing waiting) stops. It is not cleared when the connection goes idle:
   * a request issued after that re-arms nothing while it runs, so sequential
   * calls cost one timer per `timeout`, not a setTimeout and clearTimeout
   * each (which made a sequential get several times dearer in CPU).
   */
  #onTimer(): void {
    this.#timer = undefined;
    const now = Date.now();
    const head = this.#waiting.peek();
    const unflushed = this.#unflushed.peek();
    const next = Math.min(head?.deadline ?? Infinity, unflushed?.deadline ?? Infinity);
    if (next === Infinity) return;
    if (next <= now) {
      // The late request gets its own error; the others theirs, one per
      // command: with 100,000 waiting, an error each would block the loop
      // past their own deadlines.
      const late = head && head.deadline === next ? head : this.#unflushed.shift()!;
      if (late === head) this.#waiting.shift();
      const error = new MemcacheTimeoutError(`Timed out after ${this.#options.timeout} ms`, {
        server: this.name,
        command: late.command,
      });
      late.reject(connectionLost(error));
      this.#fail((command) =>
        new MemcacheTimeoutError(`Timed out: the connection was closed after an earlier request timed out`, {
          server: this.name,
          command,
          cause: error,
        })
      );
      return;
    }
    this.#arm(next);
  }

  #scheduled(): void {
    if (this.#flushScheduled || this.#state !== OPEN) return;
    this.#flushScheduled = true;
    queueMicrotask(() => {
      this.#flushScheduled = false;
      if (this.#state === OPEN) this.#flush();
    });
  }

  #flush(): void {
    const out = this.#outbox;
    if (out.length > 0) {
      if (!out.grown) this.#socket!.write(out.take());
      else {
        // A large value's buffer: reused for the next one once written.
        const data = out.take();
        this.#socket!.write(data, () => out.giveBack(data));
      }
    }
    if (this.#quitting) this.#closeAfterQuit();
    if (this.#unflushed.size > 0 && !this.#firstPending) {
      for (const u of this.#unflushed.drain()) u.resolve();
      if (this.#waiting.size === 0) this.#idle();
    }
  }

  /**
   * Nothing waits on the connection any more: its socket stops holding the
   * process (a script that forgets close() still exits), and a context-bound
   * one closes.
   */
  #idle(): void {
    if (this.#state !== OPEN || this.#quitting || this.#closing !== null) return;
    if (this.#held) {
      this.#held = false;
      this.#socket!.unref?.();
    }
    this.#closeWhenIdle();
  }

  /** The socket holds the process again: a request waits, or the connection closes. */
  #hold(): void {
    this.#held = true;
    this.#socket?.ref?.();
  }

  /**
   * Context-bound transports (Workers): once nothing is in flight, close
   * after the current macrotask. Calls made together, or awaited one after
   * another, share the connection; no socket outlives its request's work.
   */
  #closeWhenIdle(): void {
    if (this.#inContext === undefined || this.#idleTimer !== undefined || this.#state !== OPEN) return;
    this.#idleTimer = setTimeout(() => {
      this.#idleTimer = undefined;
      if (this.#state === OPEN && this.usable && this.pending === 0 && this.#outbox.length === 0) void this.close();
    }, 0);
  }

  #closeAfterQuit(): void {
    // memcached closes on quit; if requests are still in flight their
    // replies come first, and a server that lingers is closed by timeout.
    if (this.#waiting.size === 0) {
      this.#state = CLOSED;
      this.#finish();
    }
  }

  /** A request is about to be queued: it holds the process; see also {@linkcode Connection.stalledFor}. */
  #busy(): void {
    if (!this.#held) this.#hold();
    if (this.#inContext !== undefined && this.pending === 0) this.#lastProgress = Date.now();
  }

  #onData(chunk: Uint8Array): void {
    if (this.#state === CLOSED) return;
    if (this.#inContext !== undefined) this.#lastProgress = Date.now();
    if (this.#observer !== undefined) this.#bytesIn += chunk.length;
    try {
      this.#parser.feed(chunk);
    } catch (error) {
      if (this.#state === CLOSED) return; // a resolve handler closed us mid-chunk
      const message = error instanceof ProtocolError ? error.message : String(error);
      this.#fail((command) =>
        new MemcacheUnknownError(`Unparseable reply: ${message}`, { server: this.name, command, cause: error })
      );
    }
  }

  #onReply(reply: Reply): void {
    if (reply.type === "values") {
      const keys = this.#waiting.peek()!.keys;
      // Never hand out a value for a key that was not asked for: a reply
      // naming other keys means the stream is out of step.
      if (keys !== undefined && !matchesKeys(reply.items, keys)) {
        throw new ProtocolError("a retrieval reply named keys that were not requested");
      }
    }
    if ((reply.type === "meta" || reply.type === "metaGroup") && !this.#speaksMeta) {
      this.#speaksMeta = true;
      if (metaServers.size >= MAX_META_SERVERS) metaServers.clear();
      metaServers.add(this.name);
    }
    const w = this.#waiting.shift()!;
    if (this.#observer !== undefined) {
      // A read carrying several replies counts to the first of them.
      if (w.tally !== undefined) w.tally.bytesRead += this.#bytesIn - this.#bytesCounted;
      this.#bytesCounted = this.#bytesIn;
    }
    if (reply.type !== "error") {
      if (w.map === undefined) w.resolve(reply);
      else {
        // `map` instead of a `.then` on the caller's side: one promise per request, not two.
        try {
          w.resolve(w.map(reply));
        } catch (error) {
          if (!(error instanceof ProtocolError)) {
            w.reject(error as Error);
          } else {
            // A reply that does not fit its request (STORED to incr, ...): the
            // replies are out of step, and the next request would take another's.
            const options = { server: this.name, command: w.command };
            w.reject(connectionLost(new MemcacheUnknownError(error.message, options)));
            this.#fail((command) =>
              new MemcacheUnknownError(`Connection closed after a reply out of step to ${w.command}`, {
                server: this.name,
                command,
                cause: error,
              })
            );
            throw error; // stops the parser: nothing after it can be placed
          }
        }
      }
    } else {
      const options = { server: this.name, command: w.command };
      // See below: after a data block, only SERVER_ERROR keeps the connection
      // (and an invalid flag where the server is known to have read the block).
      const closing = w.block && reply.kind !== "SERVER_ERROR" &&
        !(w.swallows === true && reply.message === "CLIENT_ERROR invalid flag");
      const reject = (error: Error) => w.reject(closing ? connectionLost(error) : error);
      if (reply.kind === "SERVER_ERROR") {
        reject(new MemcacheServerError(reply.message, options));
      } else if (reply.kind === "ERROR") {
        reject(new MemcacheUnknownCommandError(reply.message, options));
      } else if (AUTH_REFUSALS.has(reply.message)) {
        const message = reply.message === "CLIENT_ERROR unauthenticated"
          ? `Not logged in: the server requires a login (memcached -Y; the auth option): ${reply.message}`
          : `The server refused the login: ${reply.message}`;
        reject(new MemcacheAuthError(message, options));
      } else {
        reject(new MemcacheClientError(reply.message, options));
      }
      // A one-line command's error (incr of a non-number, an unknown command)
      // is well framed: the server read exactly that line. After ERROR or
      // CLIENT_ERROR to a command with a data block ("bad data chunk", or a
      // command it did not know, whose block it then reads as commands) or a
      // raw one, where the server stopped reading is unknown: the stream
      // cannot be trusted. A SERVER_ERROR (too large, out of memory) comes
      // after memcached has swallowed the block.
      if (closing) {
        this.#fail((command) =>
          new MemcacheConnectionError(`Connection closed after ${reply.kind} to ${w.command}`, {
            server: this.name,
            command,
          })
        );
        return;
      }
    }
    if (this.#quitting && this.#waiting.size === 0) this.#closeAfterQuit();
    else if (this.#waiting.size === 0 && this.#unflushed.size === 0) this.#idle();
  }

  #onTransportClose(error?: Error): void {
    if (this.#state === CLOSED) return;
    if (this.#quitting && this.#waiting.size === 0) {
      this.#state = CLOSED;
      this.#finish();
      return;
    }
    this.#fail((command) =>
      this.#noMeta(command, error) ?? new MemcacheUnexpectedCloseError(
        error ? `Connection lost: ${error.message}` : "Connection closed by the server",
        { server: this.name, command, cause: error },
      )
    );
  }

  /** A meta reply came on this connection: the server speaks meta. */
  #speaksMeta = false;

  /**
   * twemproxy closes the connection on a meta command instead of answering
   * ERROR: for a meta command, a close before any meta reply came from the
   * server (on this connection or, in this process, any other to it) is
   * the server not knowing the command.
   */
  #noMeta(command: string, cause?: Error): MemcacheUnknownCommandError | undefined {
    if (this.#speaksMeta || !META_COMMANDS.has(command) || metaServers.has(this.name)) return undefined;
    return new MemcacheUnknownCommandError(
      "The server closed the connection on a meta command: it does not speak the meta protocol (twemproxy does this)",
      { server: this.name, command, cause },
    );
  }

  #closedError(command: string): MemcacheConnectionError {
    return connectionLost(new MemcacheConnectionError("Connection is closed", { server: this.name, command }));
  }

  #fullError(command: string): MemcacheError {
    return new QueueFullError(
      `Too many requests waiting on the connection (maxQueue ${this.#maxQueue}); the server is slow or unreachable`,
      { server: this.name, command },
    );
  }

  /**
   * Closes the connection and rejects everything still waiting, with one
   * error per command (`errorFor` is asked once for each): rejecting
   * 100,000 requests must not take longer than their timeout. `graceful`:
   * queued writes may still go out (close()); otherwise the socket is
   * dropped at once, so a failed connection never lingers.
   */
  #fail(errorFor: (command: string) => Error, graceful = false): void {
    if (this.#state === CLOSED) return;
    this.#state = CLOSED;
    let lastCommand = "";
    let lastError!: Error;
    const errors = new Map<string, Error>();
    const errorOf = (command: string): Error => {
      if (command === lastCommand) return lastError;
      let error = errors.get(command);
      if (error === undefined) errors.set(command, error = connectionLost(errorFor(command)));
      lastCommand = command;
      return lastError = error;
    };
    this.#rejecting = rejectAll([...this.#waiting.drain(), ...this.#unflushed.drain()], errorOf);
    if (this.#observer !== undefined && !graceful && !this.#byCaller) {
      this.#failure = errors.values().next().value ?? errorFor("");
    }
    if (this.#failure !== undefined) this.#observer!.event("error", this.name, this.#failure);
    this.#finish(graceful);
  }

  /** Settles once every request waiting when the connection failed has been rejected. */
  #rejecting: Promise<void> | undefined;

  #finish(graceful = true): void {
    // Closing may wait for the peer (Node's end()): the process waits for it too.
    if (!this.#held) this.#hold();
    if (this.#timer !== undefined) {
      clearTimeout(this.#timer);
      this.#timer = undefined;
    }
    if (this.#idleTimer !== undefined) {
      clearTimeout(this.#idleTimer);
      this.#idleTimer = undefined;
    }
    this.#socket = null;
    this.#abort.abort(new MemcacheConnectionError("Connection closed while connecting", { server: this.name }));
    if (this.#wasOpen) this.#observer?.event("close", this.name, this.#failure);
    this.#onClosed(this);
    // Whatever the connect attempt produced is closed before `closed` resolves,
    // so no socket outlives the connection.
    this.#connecting.then((socket) => graceful || !socket.destroy ? socket.close() : socket.destroy(), () => {})
      .then(() => this.#rejecting).then(this.#markClosed, this.#markClosed);
  }
}

/** Every returned key must be among the requested ones, in request order. */
function matchesKeys(items: readonly { key: string }[], keys: readonly string[]): boolean {
  let j = 0;
  for (const item of items) {
    while (j < keys.length && keys[j] !== item.key) j++;
    if (j === keys.length) return false;
    j++;
  }
  return true;
}
