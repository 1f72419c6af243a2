/**
 * The scripted hostile server of the reliability harnesses: a loopback
 * server that speaks enough of the memcached text protocol (an in-memory
 * {@linkcode ServerModel}) to be told to misbehave per request: wrong
 * replies, garbage, byte-by-byte dribbling, huge announced lengths,
 * hang-ups, resets, silence. Closes what it opens, for Deno's sanitizers.
 */
import net from "node:net";
import { Client, type ClientOptions, HashClient, PooledClient } from "../../mod.ts";
import { fromLatin1, latin1 } from "./_hostile.ts";

/** A client of any of the classes the hostile tests run against a scripted server. */
export type AnyClient = Client | PooledClient | HashClient;

/** The client classes every hostile case runs on; each pipelines on one connection here. */
export const CLASSES: { name: string; make: (spec: string, options: ClientOptions) => AnyClient }[] = [
  { name: "Client", make: (spec, o) => new Client(spec, o) },
  { name: "PooledClient", make: (spec, o) => new PooledClient(spec, { ...o, maxPoolSize: 1 }) },
  // retryTimeout 0 and many attempts: the server is never taken out of the ring, so recovery shows.
  { name: "HashClient", make: (spec, o) => new HashClient([spec], { ...o, retryAttempts: 1e6, retryTimeout: 0 }) },
];

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
      if (STORAGE.has(req.command) || req.command === "ms") {
        if (this.unknown(req)) {
          req.unknown = true;
        } else {
          // `ms <key> <datalen> <flags>*`; the text commands announce it fourth.
          this.#waiting = { req, length: Number(req.command === "ms" ? args[1] : args[3]) || 0 };
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

/** Resets `socket` (RST where the runtime can), else destroys it. */
export function resetSocket(socket: net.Socket): void {
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

/** Closes `server` and destroys every socket in `sockets`; resolves once all are closed. */
export async function closeServer(server: net.Server, sockets: Set<net.Socket>): Promise<void> {
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
