/**
 * Hostile-environment helpers for the reliability harnesses
 * (hostile_test.ts, chaos_test.ts, fuzz_replies_test.ts, bench/soak.ts):
 *
 * - {@linkcode startScriptedServer}: a loopback server that speaks enough of
 *   the memcached text protocol (an in-memory {@linkcode ServerModel}) to be
 *   told to misbehave per request: wrong replies, garbage, byte-by-byte
 *   dribbling, huge announced lengths, hang-ups, resets, silence.
 * - {@linkcode startChaosProxy}: a TCP proxy in front of a real memcached
 *   that adds latency, stalls, cuts a connection mid-reply, truncates or
 *   resets it, per connection and per direction.
 * - {@linkcode Invariants}: the ledger every harness checks its calls
 *   against: no call settles later than its timeout + 100 ms, no call
 *   resolves with another key's or request's value, every acknowledged write
 *   is on the server (read back over an independent connection), and no
 *   error but a `MemcacheError` escapes.
 * - {@linkcode Rng} and {@linkcode harnessSeed}: seeded randomness, random
 *   under `MEMKIT_SEED=random`, the seed printed on failure.
 *
 * Everything here closes what it opens (sockets, timers), for Deno's
 * sanitizers.
 */
import { Buffer } from "node:buffer";
import { execFile } from "node:child_process";
import net from "node:net";
import process from "node:process";
import { MemcacheError } from "../../mod.ts";

// ---------------------------------------------------------------- settings

/** An integer from the environment, or `fallback`. */
export function envInt(name: string, fallback: number): number {
  const text = process.env[name];
  if (text === undefined || text === "") return fallback;
  const n = Number(text);
  if (!Number.isFinite(n)) throw new Error(`${name} must be a number, not ${JSON.stringify(text)}`);
  return n;
}

/**
 * The seed of a harness: `fallback` by default (deterministic runs), the
 * number in `MEMKIT_SEED`, or a random one with `MEMKIT_SEED=random`.
 */
export function harnessSeed(fallback: number): number {
  const text = process.env.MEMKIT_SEED;
  if (text === undefined || text === "") return fallback;
  if (text === "random") return Math.floor(Math.random() * 0x7fffffff);
  return envInt("MEMKIT_SEED", fallback) >>> 0;
}

/** Runs `body`; a failure is rethrown with the seed in its message, so the run can be repeated. */
export async function withSeed(seed: number, body: () => Promise<void>): Promise<void> {
  try {
    await body();
  } catch (error) {
    const message = error instanceof Error ? error.message : String(error);
    console.error(`# failed with seed ${seed} (repeat with MEMKIT_SEED=${seed})`);
    const wrapped = new Error(`[seed ${seed}, repeat with MEMKIT_SEED=${seed}] ${message}`, { cause: error });
    throw wrapped;
  }
}

/** A small seeded PRNG (mulberry32): the same seed gives the same sequence on every runtime. */
export class Rng {
  #state: number;
  constructor(readonly seed: number) {
    this.#state = seed >>> 0;
  }
  /** A float in [0, 1). */
  next(): number {
    let t = (this.#state = (this.#state + 0x6d2b79f5) >>> 0);
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  }
  /** An integer in [0, n). */
  int(n: number): number {
    return Math.floor(this.next() * n);
  }
  /** An integer in [lo, hi]. */
  range(lo: number, hi: number): number {
    return lo + this.int(hi - lo + 1);
  }
  /** True with probability `p`. */
  chance(p: number): boolean {
    return this.next() < p;
  }
  /** One element of `items`. */
  pick<T>(items: readonly T[]): T {
    return items[this.int(items.length)];
  }
}

/**
 * `promise`'s value, or `"hung"` once `ms` have passed without it settling
 * (its timer cleared either way): a harness must fail, not hang, on code
 * that never settles a call.
 */
export async function guard<T>(promise: Promise<T>, ms: number): Promise<T | "hung"> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const expired = new Promise<"hung">((resolve) => (timer = setTimeout(() => resolve("hung"), ms)));
  try {
    return await Promise.race([promise, expired]);
  } finally {
    clearTimeout(timer);
  }
}

/** Resolves after `ms`; the timer is the caller's to outlive (it always fires). */
export const delay = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/**
 * Text of one char per byte as bytes (node:buffer's latin1 is exact and
 * native), in a plain Uint8Array: a Buffer's slice() would share memory.
 */
const latin1 = (text: string): Uint8Array => {
  const buffer = Buffer.from(text, "latin1");
  return new Uint8Array(buffer.buffer, buffer.byteOffset, buffer.length).slice();
};
/** Bytes as text of one char per byte. */
const fromLatin1 = (bytes: Uint8Array): string =>
  Buffer.from(bytes.buffer, bytes.byteOffset, bytes.length).toString("latin1");
export { fromLatin1, latin1 };

// ---------------------------------------------------------------- self-describing values

/**
 * A value that names its key and the request that wrote it:
 * `v|<key>|<serial>|<filler>|<key>|<serial>` (the tag twice, so no single
 * corrupted byte turns one tag into another).
 */
export function taggedValue(key: string, serial: number, size = 0): string {
  const tag = `${key}|${serial}`;
  const head = `v|${tag}|`;
  const fill = Math.max(0, size - head.length - tag.length - 1);
  return `${head}${"x".repeat(fill)}|${tag}`;
}

/** The key and serial a {@linkcode taggedValue} names, or `undefined` if it is not one. */
export function readTag(value: unknown): { key: string; serial: number } | undefined {
  if (typeof value !== "string" || !value.startsWith("v|")) return undefined;
  const parts = value.split("|");
  if (parts.length < 6) return undefined;
  const [key, serial] = [parts[1], Number(parts[2])];
  if (parts[parts.length - 2] !== key || Number(parts[parts.length - 1]) !== serial) return undefined;
  return { key, serial };
}

// ---------------------------------------------------------------- an in-memory memcached

/** A request as the scripted server parsed it. */
export interface ScriptedRequest {
  /** The command line, without CRLF. */
  line: string;
  command: string;
  args: string[];
  /** The data block of a storage command (latin1: one char per byte). */
  data?: string;
  noreply: boolean;
  /** 0-based position of this request on its connection. */
  index: number;
  /** A storage command the server treats as unknown: it answers ERROR and reads the data block as commands. */
  unknown?: boolean;
}

interface ModelItem {
  flags: number;
  data: string;
  cas: bigint;
}

const STORAGE = new Set(["set", "add", "replace", "append", "prepend", "cas"]);
const U64 = (1n << 64n) - 1n;

/** Enough of memcached's text protocol, in memory, for scripted servers and fuzzers to answer correctly. */
export class ServerModel {
  readonly items = new Map<string, ModelItem>();
  #cas = 1n;

  /** The correct reply to `req` (latin1 text; "" for noreply, `null` for quit). */
  answer(req: ScriptedRequest): string | null {
    const { command, args } = req;
    if (req.unknown) return "ERROR\r\n";
    const reply = (text: string) => (req.noreply ? "" : text);
    switch (command) {
      case "get":
      case "gets":
      case "gat":
      case "gats": {
        const keys = command.startsWith("gat") ? args.slice(1) : args;
        let out = "";
        for (const key of keys) {
          const item = this.items.get(key);
          if (!item) continue;
          const cas = command.endsWith("s") ? ` ${item.cas}` : "";
          out += `VALUE ${key} ${item.flags} ${item.data.length}${cas}\r\n${item.data}\r\n`;
        }
        return out + "END\r\n";
      }
      case "set":
      case "add":
      case "replace":
      case "append":
      case "prepend":
      case "cas": {
        const [key, flags] = [args[0], Number(args[1])];
        const data = req.data ?? "";
        const old = this.items.get(key);
        const store = (d: string) => (this.items.set(key, { flags, data: d, cas: this.#cas++ }), reply("STORED\r\n"));
        if (command === "set") return store(data);
        if (command === "add") return old ? reply("NOT_STORED\r\n") : store(data);
        if (command === "replace") return old ? store(data) : reply("NOT_STORED\r\n");
        if (command === "cas") {
          if (!old) return reply("NOT_FOUND\r\n");
          return String(old.cas) === args[4] ? store(data) : reply("EXISTS\r\n");
        }
        if (!old) return reply("NOT_STORED\r\n");
        this.items.set(key, {
          flags: old.flags,
          data: command === "append" ? old.data + data : data + old.data,
          cas: this.#cas++,
        });
        return reply("STORED\r\n");
      }
      case "delete":
        return reply(this.items.delete(args[0]) ? "DELETED\r\n" : "NOT_FOUND\r\n");
      case "touch":
        return reply(this.items.has(args[0]) ? "TOUCHED\r\n" : "NOT_FOUND\r\n");
      case "incr":
      case "decr": {
        const item = this.items.get(args[0]);
        if (!item) return reply("NOT_FOUND\r\n");
        if (!/^\d+$/.test(item.data)) {
          return reply("CLIENT_ERROR cannot increment or decrement non-numeric value\r\n");
        }
        const now = BigInt(item.data);
        const delta = BigInt(args[1]);
        const next = command === "incr" ? (now + delta) & U64 : now > delta ? now - delta : 0n;
        item.data = String(next);
        item.cas = this.#cas++;
        return reply(`${next}\r\n`);
      }
      case "version":
        return "VERSION 1.6.18-scripted\r\n";
      case "stats":
        return "STAT pid 1\r\nSTAT version 1.6.18-scripted\r\nSTAT curr_items " + this.items.size + "\r\nEND\r\n";
      case "flush_all":
        this.items.clear();
        return reply("OK\r\n");
      case "verbosity":
      case "cache_memlimit":
        return reply("OK\r\n");
      case "quit":
        return null;
      default:
        return "ERROR\r\n";
    }
  }
}

/**
 * Splits request bytes into requests, as memcached reads them: a line, and
 * for storage commands a data block of the announced length. `unknown`
 * names commands to answer `ERROR` to at once, reading what follows as the
 * next command (what a server that lacks a command does with its data block).
 */
export class RequestReader {
  /** Unread bytes are `#buf[#start, #end)`; a LF was looked for up to `#scanned`. */
  #buf = new Uint8Array(65536);
  #start = 0;
  #end = 0;
  #scanned = 0;
  /** A storage request whose data block is still arriving. */
  #waiting: { req: ScriptedRequest; length: number } | null = null;
  #index = 0;
  constructor(
    private readonly emit: (req: ScriptedRequest) => void,
    private readonly unknown: (req: ScriptedRequest) => boolean = () => false,
  ) {}

  feed(chunk: Uint8Array): void {
    this.#append(chunk);
    for (;;) {
      if (this.#waiting !== null) {
        const { req, length } = this.#waiting;
        if (this.#end - this.#start < length + 2) return; // the data block is still coming
        req.data = fromLatin1(this.#buf.subarray(this.#start, this.#start + length));
        this.#start += length + 2;
        this.#scanned = this.#start;
        this.#waiting = null;
        this.emit(req);
        continue;
      }
      const nl = this.#buf.subarray(0, this.#end).indexOf(10, this.#scanned);
      if (nl === -1) {
        this.#scanned = this.#end;
        return;
      }
      const line = fromLatin1(this.#buf.subarray(this.#start, nl)).replace(/\r$/, "");
      this.#start = this.#scanned = nl + 1;
      const [command, ...args] = line.split(" ").filter(Boolean);
      const req: ScriptedRequest = {
        line,
        command: command ?? "",
        args,
        noreply: args[args.length - 1] === "noreply",
        index: this.#index++,
      };
      if (STORAGE.has(req.command)) {
        if (this.unknown(req)) {
          req.unknown = true;
        } else {
          this.#waiting = { req, length: Number(args[3]) || 0 };
          continue;
        }
      }
      this.emit(req);
    }
  }

  #append(chunk: Uint8Array): void {
    if (this.#start === this.#end) this.#start = this.#end = this.#scanned = 0;
    if (this.#end + chunk.length > this.#buf.length) {
      const live = this.#end - this.#start;
      const size = Math.max(this.#buf.length, (live + chunk.length) * 2);
      const next = size === this.#buf.length ? this.#buf : new Uint8Array(size);
      next.set(this.#buf.subarray(this.#start, this.#end), 0);
      this.#scanned -= this.#start;
      this.#buf = next;
      this.#start = 0;
      this.#end = live;
    }
    this.#buf.set(chunk, this.#end);
    this.#end += chunk.length;
  }
}

// ---------------------------------------------------------------- scripted server

/** What a script can do on one connection; output is sent in the order asked for. */
export interface ScriptedIo {
  /** 0-based number of this connection on the server. */
  readonly id: number;
  /** The shared in-memory store. */
  readonly model: ServerModel;
  /** Sends bytes (latin1 text or bytes). */
  send(data: string | Uint8Array): void;
  /** Sends the model's correct reply to `req` (or closes, for quit). */
  answer(req: ScriptedRequest): void;
  /** Sends `data` `chunk` bytes at a time, `gap` ms apart. */
  dribble(data: string | Uint8Array, options?: { chunk?: number; gap?: number }): void;
  /** Waits `ms` before later output. */
  pause(ms: number): void;
  /** Closes the connection (FIN) after the output queued so far. */
  hangUp(): void;
  /** Resets the connection (RST where the runtime can) after the output queued so far. */
  reset(): void;
  /** Stops reading from the socket: what the client writes piles up in the kernel's buffers. */
  stopReading(): void;
}

/** Options of {@linkcode startScriptedServer}. */
export interface ScriptedServerOptions {
  /** Decides each request's fate; by default the model answers it correctly. */
  onRequest?: (req: ScriptedRequest, io: ScriptedIo) => void;
  /** Called once per accepted connection, before any request. */
  onConnection?: (io: ScriptedIo) => void;
  /** Storage requests this server answers `ERROR` to without reading their data block. */
  unknown?: (req: ScriptedRequest) => boolean;
  /** Shared store; a fresh one by default. */
  model?: ServerModel;
}

/** A running scripted server. */
export interface ScriptedServer extends AsyncDisposable {
  readonly spec: string;
  readonly port: number;
  readonly model: ServerModel;
  /** Connections accepted so far. */
  connections(): number;
  /** Connections open now. */
  open(): number;
  /** Every request received, in order of arrival. */
  readonly requests: ScriptedRequest[];
  /** Bytes received so far (latin1). */
  received(): number;
}

/** A memcached-speaking loopback server whose every reply a test can script. */
export async function startScriptedServer(options: ScriptedServerOptions = {}): Promise<ScriptedServer> {
  const model = options.model ?? new ServerModel();
  const sockets = new Set<net.Socket>();
  const timers = new Set<ReturnType<typeof setTimeout>>();
  const requests: ScriptedRequest[] = [];
  let accepted = 0;
  let receivedBytes = 0;
  let disposed = false;
  const wait = (ms: number) =>
    new Promise<void>((resolve) => {
      if (disposed) return;
      const timer = setTimeout(() => (timers.delete(timer), resolve()), ms);
      timers.add(timer);
    });

  const server = net.createServer((socket) => {
    const id = accepted++;
    sockets.add(socket);
    socket.setNoDelay(true);
    socket.on("error", () => {});
    socket.on("close", () => sockets.delete(socket));
    let chain = Promise.resolve();
    let gone = false;
    const then = (step: () => void | Promise<void>) => {
      chain = chain.then(() => (gone || disposed ? undefined : step())).catch(() => {});
    };
    const write = (data: string | Uint8Array) => {
      if (!socket.destroyed && socket.writable) socket.write(typeof data === "string" ? latin1(data) : data);
    };
    const io: ScriptedIo = {
      id,
      model,
      send: (data) => then(() => write(data)),
      answer: (req) => {
        const reply = model.answer(req);
        if (reply === null) io.hangUp();
        else if (reply !== "") io.send(reply);
      },
      dribble: (data, { chunk = 1, gap = 1 } = {}) =>
        then(async () => {
          const bytes = typeof data === "string" ? latin1(data) : data;
          for (let i = 0; i < bytes.length && !gone && !disposed; i += chunk) {
            write(bytes.subarray(i, i + chunk));
            if (i + chunk < bytes.length) await wait(gap);
          }
        }),
      pause: (ms) => then(() => wait(ms)),
      hangUp: () =>
        then(() => {
          gone = true;
          socket.end();
        }),
      reset: () =>
        then(() => {
          gone = true;
          resetSocket(socket);
        }),
      stopReading: () => void socket.pause(),
    };
    const onRequest = options.onRequest ?? ((req, io) => io.answer(req));
    const reader = new RequestReader((req) => {
      requests.push(req);
      onRequest(req, io);
    }, options.unknown);
    socket.on("data", (chunk: Uint8Array) => {
      receivedBytes += chunk.length;
      if (!gone) reader.feed(chunk);
    });
    options.onConnection?.(io);
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const port = (server.address() as net.AddressInfo).port;
  return {
    spec: `127.0.0.1:${port}`,
    port,
    model,
    requests,
    connections: () => accepted,
    open: () => sockets.size,
    received: () => receivedBytes,
    async [Symbol.asyncDispose]() {
      disposed = true;
      for (const timer of timers) clearTimeout(timer);
      timers.clear();
      await closeServer(server, sockets);
    },
  };
}

function resetSocket(socket: net.Socket): void {
  const s = socket as net.Socket & { resetAndDestroy?: () => void };
  if (typeof s.resetAndDestroy === "function") {
    try {
      s.resetAndDestroy();
      return;
    } catch {
      // not connected any more: a plain destroy below
    }
  }
  socket.destroy();
}

async function closeServer(server: net.Server, sockets: Set<net.Socket>): Promise<void> {
  const closed = new Promise<void>((resolve) => server.close(() => resolve()));
  const gone = [...sockets].map((s) =>
    new Promise<void>((resolve) => {
      if (s.destroyed && s.listenerCount("close") === 0) return resolve();
      s.once("close", () => resolve());
      s.destroy();
    })
  );
  await Promise.all([closed, ...gone]);
}

// ---------------------------------------------------------------- chaos proxy

/** One direction of a proxied connection: client→server (`up`) or server→client (`down`). */
export class Direction {
  /** ms every chunk is held before it is forwarded. */
  latency = 0;
  /** Bytes forwarded so far. */
  forwarded = 0;
  #stalled = false;
  #truncateAt = Infinity;
  #cutAt = Infinity;
  #cutByReset = false;
  #queue: { data: Uint8Array; at: number }[] = [];
  #timer: ReturnType<typeof setTimeout> | undefined;
  #closed = false;

  constructor(
    private readonly write: (data: Uint8Array) => void,
    private readonly cut: (reset: boolean) => void,
  ) {}

  /** Holds everything from now on until {@linkcode Direction.resume}. */
  stall(): this {
    this.#stalled = true;
    this.#clearTimer();
    return this;
  }

  /** Forwards what a stall held, and everything after. */
  resume(): this {
    this.#stalled = false;
    this.#pump();
    return this;
  }

  /**
   * Forwards at most `n` more bytes, then drops the rest silently (the
   * sockets stay open). A stream once truncated stays so: TCP never skips
   * bytes and goes on, and neither does this proxy.
   */
  truncateAfter(n: number): this {
    this.#truncateAt = Math.min(this.#truncateAt, this.forwarded + n);
    return this;
  }

  /** Forwards at most `n` more bytes, then closes both sockets (with a reset if asked). */
  cutAfter(n: number, options: { reset?: boolean } = {}): this {
    if (this.forwarded + n < this.#cutAt) {
      this.#cutAt = this.forwarded + n;
      this.#cutByReset = options.reset ?? false;
    }
    if (n === 0) this.cut(this.#cutByReset);
    return this;
  }

  /** Bytes received and not yet forwarded. */
  get held(): number {
    return this.#queue.reduce((n, q) => n + q.data.length, 0);
  }

  push(data: Uint8Array): void {
    if (this.#closed) return;
    this.#queue.push({ data, at: Date.now() + this.latency });
    this.#pump();
  }

  close(): void {
    this.#closed = true;
    this.#queue = [];
    this.#clearTimer();
  }

  #clearTimer(): void {
    if (this.#timer !== undefined) clearTimeout(this.#timer);
    this.#timer = undefined;
  }

  #pump(): void {
    if (this.#stalled || this.#closed || this.#timer !== undefined) return;
    while (this.#queue.length > 0) {
      const head = this.#queue[0];
      const wait = head.at - Date.now();
      if (wait > 0) {
        this.#timer = setTimeout(() => {
          this.#timer = undefined;
          this.#pump();
        }, wait);
        return;
      }
      this.#queue.shift();
      let data = head.data;
      const limit = Math.min(this.#truncateAt, this.#cutAt);
      if (this.forwarded + data.length > limit) data = data.subarray(0, Math.max(0, limit - this.forwarded));
      if (data.length > 0) this.write(data);
      this.forwarded += data.length;
      if (this.forwarded >= this.#cutAt) {
        this.cut(this.#cutByReset);
        return;
      }
      if (this.forwarded >= this.#truncateAt) this.#queue = []; // and whatever comes later is dropped on arrival
    }
  }

  /** True once a truncation has dropped bytes. */
  get truncated(): boolean {
    return this.forwarded >= this.#truncateAt;
  }
}

/** One proxied connection. */
export interface ProxyLink {
  readonly id: number;
  /** client → memcached */
  readonly up: Direction;
  /** memcached → client */
  readonly down: Direction;
  /** Closes both sockets (FIN). */
  cut(): void;
  /** Resets both sockets (RST where the runtime can). */
  reset(): void;
  readonly closed: boolean;
}

/** A running chaos proxy. */
export interface ChaosProxy extends AsyncDisposable {
  readonly spec: string;
  readonly port: number;
  /** Links open now. */
  links(): ProxyLink[];
  /** Connections accepted so far. */
  connections(): number;
  /** Set faults on each new link here (it runs before any byte is forwarded). */
  onLink: ((link: ProxyLink) => void) | undefined;
  /** While true, new connections are reset at once. */
  refuse: boolean;
  /** Cuts every open link. */
  cutAll(): void;
  /** Resets every open link. */
  resetAll(): void;
}

/** A TCP proxy on a free loopback port in front of `target` (e.g. a memcached's port). */
export async function startChaosProxy(
  target: { host?: string; port: number | (() => number) },
): Promise<ChaosProxy> {
  const sockets = new Set<net.Socket>();
  const links = new Set<ProxyLink>();
  let accepted = 0;
  const proxy: ChaosProxy = {
    spec: "",
    port: 0,
    links: () => [...links],
    connections: () => accepted,
    onLink: undefined,
    refuse: false,
    cutAll: () => [...links].forEach((l) => l.cut()),
    resetAll: () => [...links].forEach((l) => l.reset()),
    [Symbol.asyncDispose]: async () => {
      for (const link of [...links]) link.cut();
      await closeServer(server, sockets);
    },
  };
  const server = net.createServer((client) => {
    const id = accepted++;
    sockets.add(client);
    client.setNoDelay(true);
    client.on("error", () => {});
    client.on("close", () => sockets.delete(client));
    if (proxy.refuse) {
      resetSocket(client);
      return;
    }
    const port = typeof target.port === "function" ? target.port() : target.port;
    const upstream = net.connect({ host: target.host ?? "127.0.0.1", port });
    sockets.add(upstream);
    upstream.setNoDelay(true);
    upstream.on("error", () => {});
    let closed = false;
    const end = (reset: boolean) => {
      if (closed) return;
      closed = true;
      links.delete(link);
      up.close();
      down.close();
      if (reset) {
        resetSocket(client);
        resetSocket(upstream);
      } else {
        client.destroy();
        upstream.destroy();
      }
    };
    const pending: Uint8Array[] = [];
    let connected = false;
    const up = new Direction((data) => {
      if (connected) upstream.write(data);
      else pending.push(data);
    }, end);
    const down = new Direction((data) => client.write(data), end);
    const link: ProxyLink = {
      id,
      up,
      down,
      cut: () => end(false),
      reset: () => end(true),
      get closed() {
        return closed;
      },
    };
    links.add(link);
    upstream.on("connect", () => {
      connected = true;
      for (const data of pending.splice(0)) upstream.write(data);
    });
    upstream.on("close", () => {
      sockets.delete(upstream);
      // Pass the server's close on once what it sent has been forwarded.
      const finish = () => (down.held === 0 ? end(false) : setTimeout(finish, 5));
      if (!closed) finish();
    });
    client.on("close", () => end(false));
    client.on("data", (chunk: Uint8Array) => up.push(new Uint8Array(chunk)));
    upstream.on("data", (chunk: Uint8Array) => down.push(new Uint8Array(chunk)));
    proxy.onLink?.(link);
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const port = (server.address() as net.AddressInfo).port;
  Object.assign(proxy, { spec: `127.0.0.1:${port}`, port });
  return proxy;
}

// ---------------------------------------------------------------- invariants

/** The bound of the issue: no call settles later than its timeout plus this. */
export const LATE_MS = 100;

/** Period of the starvation clock's probe timer, ms. */
const PROBE_MS = 10;
/** A probe later than this (ms) is a stall, not timer jitter. */
const STALL_MS = 20;

/**
 * How long this process was starved: it had work due (a timer) and the OS
 * ran something else instead (a loaded machine), which no client can help.
 * A probe timer runs every 10 ms while any call is being timed; a probe
 * that comes more than 20 ms late is a stall, and the part of the stall
 * this process did not spend on the CPU (`process.cpuUsage`) was
 * starvation. A stall the process spent on the CPU is its own doing (a
 * loop blocked by the code under test) and is not counted: a client that
 * blocks the loop, or ignores its timeout while the process idles, is
 * still late.
 */
class StarvationClock {
  #users = 0;
  #timer: ReturnType<typeof setInterval> | undefined;
  #total = 0;
  #lastProbe = 0;
  #cpuAtProbe = 0;

  /** A call starts being timed: the probe runs while any is. */
  acquire(): void {
    if (this.#users++ > 0) return;
    this.#lastProbe = performance.now();
    this.#cpuAtProbe = cpuMs();
    this.#timer = setInterval(() => this.#probe(), PROBE_MS);
  }

  release(): void {
    if (--this.#users > 0) return;
    this.#probe();
    clearInterval(this.#timer);
    this.#timer = undefined;
  }

  #probe(): void {
    const now = performance.now();
    const cpu = cpuMs();
    this.#total += this.#stalled(now, cpu);
    this.#lastProbe = now;
    this.#cpuAtProbe = cpu;
  }

  /** Starvation in the stall under way at `now`, if the probe is overdue. */
  #stalled(now: number, cpu: number): number {
    const stall = now - (this.#lastProbe + PROBE_MS);
    return stall > STALL_MS ? Math.max(0, stall - (cpu - this.#cpuAtProbe)) : 0;
  }

  /** ms this process has been starved while calls were timed, counting a stall under way. */
  now(): number {
    return this.#total + (this.#users > 0 ? this.#stalled(performance.now(), cpuMs()) : 0);
  }
}

/** One clock for every ledger: starvation is the process's, whichever ledger's call it hits. */
const starvation = new StarvationClock();

/**
 * The starvation clock for a harness that times calls itself (see
 * {@linkcode Invariants.call} for the rule): `now()` is the ms this process
 * has been starved so far; `release()` stops the probe once its calls are
 * done.
 */
export function watchStarvation(): { now(): number; release(): void } {
  starvation.acquire();
  let released = false;
  return {
    now: () => starvation.now(),
    release: () => {
      if (!released) starvation.release();
      released = true;
    },
  };
}

/** How one call ended, for the ledger's counts. */
export type Outcome =
  & ({ ok: true; value: unknown } | { ok: false; error: unknown })
  & {
    /** How long the call took, ms. */
    ms: number;
    /** ms of it this process was starved (see StarvationClock): not the client's time. */
    starved: number;
  };

/**
 * Runs `attempt` until it succeeds, at most `tries` times; a failed try is
 * retried only when it timed out while this process was starved for at
 * least {@linkcode LATE_MS} (a loaded machine, not the client). Resolves
 * with the last outcome. For checks that a client works again (recovery),
 * which a bug (a dead connection reused) still fails on an idle machine.
 */
export async function unlessStarved(
  attempt: () => Promise<Outcome>,
  isTimeout: (error: unknown) => boolean,
  tries = 5,
): Promise<Outcome> {
  for (let i = 1;; i++) {
    const outcome = await attempt();
    if (outcome.ok || i >= tries || !isTimeout(outcome.error) || outcome.starved < LATE_MS) return outcome;
  }
}

/** Counts and violations of a harness run. */
export interface Report {
  calls: number;
  ok: number;
  errors: Record<string, number>;
  late: number;
  /** Calls past timeout + the bound only for the time this process was starved (not late). */
  excused: number;
  /** Most ms this process was starved during one call. */
  maxStarvedMs: number;
  hung: number;
  wrong: number;
  lost: number;
  foreign: number;
  maxMs: number;
}

/** A write the ledger must find on the server. */
interface WriteRecord {
  /** The value last acknowledged (after the last outage), or undefined. */
  acked?: string;
  ackedSerial: number;
  /** Values of writes that failed after it: each may or may not be stored. */
  maybe: Set<string>;
  /** Whether a failed or unacknowledged delete may have removed it. */
  maybeGone: boolean;
}

/**
 * The ledger of a harness run: every call goes through {@linkcode Invariants.call},
 * which times it, classifies its outcome and checks its value; writes go
 * through {@linkcode Invariants.write} so {@linkcode Invariants.verify} can read
 * them back over an independent connection.
 */
export class Invariants {
  readonly report: Report = {
    calls: 0,
    ok: 0,
    errors: {},
    late: 0,
    excused: 0,
    maxStarvedMs: 0,
    hung: 0,
    wrong: 0,
    lost: 0,
    foreign: 0,
    maxMs: 0,
  };
  /** The first violations, described. */
  readonly violations: string[] = [];
  /** The first messages of each error class seen (three each), for reports. */
  readonly samples: Record<string, string[]> = {};
  #pending = new Map<number, { what: string; started: number; timeout: number; starved: number }>();
  #serial = 0;
  #writes = new Map<string, WriteRecord>();
  /** Serials issued per key, so a read can be checked against what was really written. */
  #issued = new Map<string, number>();
  /** Set while a server is down or restarting: acknowledgements then say nothing. */
  #outageSince: number | undefined;
  #outageEnded = 0;
  #late: number;
  /** TypeError is allowed where the caller passed bad arguments on purpose. */
  allowTypeError = false;

  constructor(readonly label: string, options: { lateMs?: number } = {}) {
    this.#late = options.lateMs ?? LATE_MS;
  }

  /** A fresh serial number for a request. */
  serial(): number {
    return ++this.#serial;
  }

  readonly #born = performance.now();

  /** Records a violation (the first 50 are kept verbatim, with when it happened). */
  violation(kind: "late" | "hung" | "wrong" | "lost" | "foreign", text: string): void {
    this.report[kind]++;
    const at = ((performance.now() - this.#born) / 1000).toFixed(1);
    if (this.violations.length < 50) this.violations.push(`${kind} (+${at} s): ${text}`);
  }

  /**
   * Runs one call with timeout `timeout` ms, times it and classifies it;
   * `check(value)` returns a description of what is wrong with a value, if
   * anything. Resolves with the outcome, never rejects.
   */
  async call<T>(
    what: string,
    timeout: number,
    run: () => Promise<T>,
    check?: (value: T) => string | undefined,
  ): Promise<Outcome> {
    const id = this.report.calls++;
    starvation.acquire();
    const starvedBefore = starvation.now();
    const started = performance.now();
    this.#pending.set(id, { what, started, timeout, starved: starvedBefore });
    let outcome: Outcome;
    try {
      const value = await run();
      outcome = { ok: true, value, ms: performance.now() - started, starved: 0 };
    } catch (error) {
      outcome = { ok: false, error, ms: performance.now() - started, starved: 0 };
    }
    const starved = outcome.starved = starvation.now() - starvedBefore;
    starvation.release();
    this.#pending.delete(id);
    this.report.maxMs = Math.max(this.report.maxMs, outcome.ms);
    this.report.maxStarvedMs = Math.max(this.report.maxStarvedMs, starved);
    // Late only for the time the process had the CPU: a call is not late
    // because the OS did not run this process (see StarvationClock).
    if (outcome.ms - starved > timeout + this.#late) {
      this.violation(
        "late",
        `${what} settled after ${outcome.ms.toFixed(0)} ms (timeout ${timeout}; process starved ${
          starved.toFixed(0)
        } ms of it)`,
      );
    } else if (outcome.ms > timeout + this.#late) {
      this.report.excused++;
    }
    if (outcome.ok) {
      this.report.ok++;
      const problem = check?.(outcome.value as T);
      if (problem !== undefined) this.violation("wrong", `${what}: ${problem}`);
    } else {
      const error = outcome.error;
      const name = error instanceof Error ? error.constructor.name : typeof error;
      this.report.errors[name] = (this.report.errors[name] ?? 0) + 1;
      const seen = (this.samples[name] ??= []);
      if (seen.length < 3) seen.push(`${what}: ${error instanceof Error ? error.message : String(error)}`);
      const allowed = error instanceof MemcacheError || (this.allowTypeError && error instanceof TypeError);
      if (!allowed) {
        const detail = error instanceof Error ? `${error.name}: ${error.message}` : String(error);
        this.violation("foreign", `${what} rejected with ${detail}`);
      }
    }
    return outcome;
  }

  /** Calls still running after their timeout + the bound: each is counted as hung. */
  hung(): string[] {
    const now = performance.now();
    const starved = starvation.now();
    const out: string[] = [];
    for (const p of this.#pending.values()) {
      if (now - p.started - (starved - p.starved) > p.timeout + this.#late) {
        out.push(
          `${p.what} (${(now - p.started).toFixed(0)} ms, process starved ${(starved - p.starved).toFixed(0)} ms)`,
        );
      }
    }
    return out;
  }

  /**
   * Waits up to `ms` for every call to settle; those still running are
   * counted as hung.
   */
  async drain(ms: number): Promise<void> {
    // The wait is extended by the time the process is starved meanwhile.
    const until = performance.now() + ms;
    const starved = starvation.now();
    while (this.#pending.size > 0 && performance.now() < until + starvation.now() - starved) await delay(10);
    for (const text of this.hung()) this.violation("hung", text);
  }

  // ---- reads

  /** Notes that `serial` was issued as a write of `key` (before it is sent). */
  issued(key: string, serial: number): void {
    this.#issued.set(key, Math.max(this.#issued.get(key) ?? 0, serial));
  }

  /**
   * What is wrong with `value` as the result of reading `key` (a tagged
   * value or a miss), or undefined if nothing is.
   */
  checkRead(key: string, value: unknown): string | undefined {
    if (value === null || value === undefined) return undefined;
    const tag = readTag(value);
    if (tag === undefined) return `read of ${key} gave ${preview(value)}`;
    if (tag.key !== key) return `read of ${key} gave ${tag.key}'s value (serial ${tag.serial})`;
    const max = this.#issued.get(key) ?? 0;
    if (tag.serial > max) return `read of ${key} gave serial ${tag.serial}, never written (max ${max})`;
    return undefined;
  }

  // ---- writes

  /**
   * Runs a write of tagged `value` to `key` through {@linkcode Invariants.call}
   * and records its outcome: an acknowledged write must be found by
   * {@linkcode Invariants.verify}; a failed one may or may not be there.
   * `run` must wait for the server's reply (noreply: false).
   */
  async write(
    what: string,
    key: string,
    value: string,
    timeout: number,
    run: () => Promise<unknown>,
  ): Promise<Outcome> {
    const tag = readTag(value);
    if (tag === undefined || tag.key !== key) throw new Error(`write of ${key}: value is not tagged with it`);
    this.issued(key, tag.serial);
    const started = performance.now();
    const outcome = await this.call(what, timeout, run, (result) => {
      return result === true ? undefined : `write of ${key} acknowledged with ${preview(result)}`;
    });
    const record = this.#writes.get(key) ?? { ackedSerial: 0, maybe: new Set<string>(), maybeGone: false };
    this.#writes.set(key, record);
    const trustworthy = this.#outageSince === undefined && started > this.#outageEnded;
    if (outcome.ok && outcome.value === true && trustworthy) {
      // Earlier failed writes stay possible: one sent on a connection that
      // then died may still be read and applied by memcached after this one.
      record.acked = value;
      record.ackedSerial = tag.serial;
      record.maybeGone = false;
    } else {
      record.maybe.add(value);
    }
    return outcome;
  }

  /** The server is about to go down (kill, restart): what it acknowledged so far is void. */
  outageBegins(): void {
    this.#outageSince = performance.now();
    this.#writes.clear();
  }

  /** The server is back: acknowledgements of writes issued from now on count again. */
  outageEnds(): void {
    this.#outageSince = undefined;
    this.#outageEnded = performance.now();
    this.#writes.clear();
  }

  /** Keys whose write was acknowledged and must be on the server. */
  ackedKeys(): string[] {
    return [...this.#writes].filter(([, r]) => r.acked !== undefined).map(([k]) => k);
  }

  /**
   * Reads every acknowledged key back with `read` (an independent
   * connection: a fresh Client straight to memcached) and counts what is
   * missing or different as lost.
   */
  async verify(read: (keys: string[]) => Promise<Map<string, unknown>>): Promise<number> {
    const keys = this.ackedKeys();
    let checked = 0;
    for (let i = 0; i < keys.length; i += 100) {
      const batch = keys.slice(i, i + 100);
      const found = await read(batch);
      for (const key of batch) {
        const record = this.#writes.get(key)!;
        const value = found.get(key);
        checked++;
        if (value === record.acked || (typeof value === "string" && record.maybe.has(value))) continue;
        if (value === undefined && record.maybeGone) continue;
        this.violation(
          "lost",
          `${key}: acknowledged ${preview(record.acked)}, server has ${preview(value)}`,
        );
      }
    }
    return checked;
  }

  /** Fails (throws) with every violation if there was any. */
  assertClean(): void {
    const r = this.report;
    if (r.late + r.hung + r.wrong + r.lost + r.foreign === 0) return;
    throw new Error(
      `${this.label}: ${r.late} late, ${r.hung} hung, ${r.wrong} wrong, ${r.lost} lost, ${r.foreign} foreign ` +
        `errors in ${r.calls} calls\n  ${this.violations.join("\n  ")}`,
    );
  }

  /** One line of counts. */
  summary(): string {
    const r = this.report;
    const errors = Object.entries(r.errors).map(([k, v]) => `${k} ${v}`).join(", ") || "none";
    return `${this.label}: ${r.calls} calls, ${r.ok} ok, errors: ${errors}; ` +
      `late ${r.late}, hung ${r.hung}, wrong ${r.wrong}, lost ${r.lost}, foreign ${r.foreign}; ` +
      `slowest ${r.maxMs.toFixed(0)} ms; starved up to ${r.maxStarvedMs.toFixed(0)} ms in a call, ` +
      `${r.excused} calls past the bound only for that`;
  }
}

function preview(value: unknown): string {
  if (value === undefined) return "nothing";
  if (value instanceof Uint8Array) return `bytes(${value.length})`;
  const text = typeof value === "string" ? JSON.stringify(value) : String(value);
  return text.length > 80 ? text.slice(0, 77) + "..." : text;
}

// ---------------------------------------------------------------- sockets

/** Runs `ss` (iproute2) and resolves with its output, or undefined if it cannot run. */
function ss(args: string[]): Promise<string | undefined> {
  return new Promise((resolve) => {
    execFile("ss", args, { timeout: 5000 }, (error, stdout) => resolve(error ? undefined : String(stdout)));
  });
}

/**
 * Watches how many connected TCP sockets on this host have `port` as their
 * peer (a client's sockets to a server, as the kernel sees them: open until
 * the client closes them, whatever the server reads), sampling with `ss`
 * in a child process so the event loop is not held. `stop()` resolves with
 * the most seen at once, or undefined where `ss` cannot run.
 */
export function watchSockets(port: number): { stop(): Promise<number | undefined> } {
  let most: number | undefined;
  let stopped = false;
  const sampling = (async () => {
    while (!stopped) {
      const out = await ss(["-Htn", "state", "established", `( dport = :${port} )`]);
      if (out === undefined) return;
      const count = out.split("\n").filter((line) => line.trim() !== "").length;
      most = Math.max(most ?? 0, count);
      await delay(20);
    }
  })();
  return {
    async stop() {
      stopped = true;
      await sampling;
      return most;
    },
  };
}

// ---------------------------------------------------------------- event loop

/**
 * Measures how long the event loop was blocked: the worst lateness of a
 * 10 ms timer; `stalls` lists when (ms since the start) it was late by
 * more than 100 ms, by how much, and how much CPU this process had in that
 * time (ms): far less than the stall means the OS ran other work (a
 * starved process), about as much means this process held its own loop.
 */
export function watchLoop(): { stop(): number; readonly stalls: [number, number, number][] } {
  let worst = 0;
  const began = performance.now();
  let expected = began + 10;
  let cpu = cpuMs();
  const stalls: [number, number, number][] = [];
  const timer = setInterval(() => {
    const now = performance.now();
    const late = now - expected;
    const used = cpuMs();
    worst = Math.max(worst, late);
    if (late > 100 && stalls.length < 1000) stalls.push([now - began, late, used - cpu]);
    expected = now + 10;
    cpu = used;
  }, 10);
  return {
    stalls,
    stop() {
      clearInterval(timer);
      return worst;
    },
  };
}

/** CPU time this process has used (user + system), in ms. */
function cpuMs(): number {
  const { user, system } = process.cpuUsage();
  return (user + system) / 1000;
}

// ---------------------------------------------------------------- mixed load

/** What the load needs of a client (Client, PooledClient and HashClient all have it). */
export interface LoadClient {
  get(key: string): Promise<unknown>;
  getMany(keys: Iterable<string>): Promise<Map<string, unknown>>;
  set(key: string, value: unknown, options?: { noreply?: boolean; expire?: number }): Promise<unknown>;
  incr(key: string, value: number): Promise<unknown>;
  delete(key: string, options?: { noreply?: boolean }): Promise<unknown>;
}

/** Options of {@linkcode MixedLoad}. */
export interface LoadOptions {
  clients: { name: string; client: LoadClient }[];
  inv: Invariants;
  rng: Rng;
  /** Concurrent lanes, each running one call at a time. @default {8} */
  lanes?: number;
  /** The `timeout` the clients were made with (ms). */
  timeout: number;
  /** Keys each lane writes (only that lane writes them). @default {40} */
  keysPerLane?: number;
  /** Prefix of every key, so runs never meet. @default {"load"} */
  prefix?: string;
}

/**
 * Mixed load on a set of clients: acknowledged sets (recorded in the
 * ledger), reads and multi-reads checked against what was written, incr on
 * per-lane counters whose ranges never overlap, noreply sets and deletes
 * of keys the ledger does not follow. `pause()` lets a harness verify the
 * server (or kill it) with nothing in flight.
 */
export class MixedLoad {
  readonly #o: Required<LoadOptions>;
  #running: Promise<void>[] = [];
  #stopped = false;
  #paused: Promise<void> | null = null;
  #unpause: () => void = () => {};
  #inFlight = 0;
  #idle: (() => void)[] = [];
  ops = 0;

  constructor(options: LoadOptions) {
    this.#o = { lanes: 8, keysPerLane: 40, prefix: "load", ...options };
  }

  start(): void {
    for (let lane = 0; lane < this.#o.lanes; lane++) this.#running.push(this.#lane(lane));
  }

  /** Stops issuing calls and waits for those in flight to settle. */
  async pause(): Promise<void> {
    if (this.#paused === null) this.#paused = new Promise((resolve) => (this.#unpause = resolve));
    if (this.#inFlight > 0) await new Promise<void>((resolve) => this.#idle.push(resolve));
  }

  resume(): void {
    this.#paused = null;
    this.#unpause();
  }

  /** Stops the lanes and waits for them. */
  async stop(): Promise<void> {
    this.#stopped = true;
    this.resume();
    await Promise.all(this.#running);
  }

  async #lane(lane: number): Promise<void> {
    const { rng, inv, timeout, prefix, keysPerLane, lanes } = this.#o;
    const key = (l: number, i: number) => `${prefix}:w${l}x${i}`;
    const counter = `${prefix}:ctr${lane}`;
    const base = (lane + 1) * 1e9;
    let counterSet = false;
    while (!this.#stopped) {
      if (this.#paused !== null) {
        await this.#paused;
        continue;
      }
      const { name, client } = rng.pick(this.#o.clients);
      this.#inFlight++;
      this.ops++;
      try {
        const roll = rng.int(100);
        if (roll < 30) {
          const k = key(lane, rng.int(keysPerLane));
          const size = rng.chance(0.02) ? 50_000 : 10 + rng.int(1500);
          const value = taggedValue(k, inv.serial(), size);
          await inv.write(`${name} set ${k}`, k, value, timeout, () => client.set(k, value, { noreply: false }));
        } else if (roll < 60) {
          const k = key(rng.int(lanes), rng.int(keysPerLane));
          await inv.call(`${name} get ${k}`, timeout, () => client.get(k), (v) => inv.checkRead(k, v));
        } else if (roll < 72) {
          const keys = Array.from({ length: 2 + rng.int(20) }, () => key(rng.int(lanes), rng.int(keysPerLane)));
          await inv.call(`${name} getMany`, timeout, () => client.getMany(keys), (found) => {
            for (const [k, v] of found) {
              if (!keys.includes(k)) return `getMany returned ${k}, which was not asked for`;
              const problem = inv.checkRead(k, v);
              if (problem) return problem;
            }
            return undefined;
          });
        } else if (roll < 85) {
          if (!counterSet) {
            const o = await inv.call(
              `${name} set ${counter}`,
              timeout,
              () => client.set(counter, base, { noreply: false }),
            );
            counterSet = o.ok;
            continue;
          }
          const o = await inv.call(
            `${name} incr ${counter}`,
            timeout,
            () => client.incr(counter, 1 + rng.int(9)),
            (n) => {
              if (n === null) return undefined;
              return typeof n === "number" && Math.floor(n / 1e9) === lane + 1
                ? undefined
                : `incr ${counter} gave ${String(n)}, outside ${base}..${base + 1e9}`;
            },
          );
          if (o.ok && o.value === null) counterSet = false; // the server lost it (restart)
        } else if (roll < 93) {
          const k = `${prefix}:nr${lane}x${rng.int(20)}`;
          await inv.call(`${name} set noreply`, timeout, () => client.set(k, "fire and forget", { noreply: true }));
        } else {
          const k = `${prefix}:nr${lane}x${rng.int(20)}`;
          await inv.call(`${name} delete`, timeout, () => client.delete(k, { noreply: rng.chance(0.5) }));
        }
      } finally {
        this.#inFlight--;
        if (this.#inFlight === 0) { for (const resolve of this.#idle.splice(0)) resolve(); }
      }
      if (rng.chance(0.3)) await delay(1);
    }
  }
}
