/**
 * Mutation of reply streams for the fuzzers (fuzz_replies_test.ts,
 * fuzz_meta_test.ts): one random change to a stream (a byte flipped,
 * inserted or deleted, a CRLF inserted, the stream cut with a close, a
 * reset or silence), random chunkings, where a stream's protocol lines
 * are, and a {@linkcode MutatingTransport} that puts a mutation into
 * what a real (in-process) server answers.
 */
import type {
  ServerAddress,
  Transport,
  TransportConnectOptions,
  TransportHandlers,
  TransportSocket,
} from "../../mod.ts";
import { fromLatin1, type Rng } from "./_hostile.ts";
import { type Expectation, type Reply, ReplyParser } from "../../src/protocol/_reply_parser.ts";

/** How a mutated stream ends. */
export type Ending = "none" | "close" | "reset" | "silence";

/** The one change made to a stream. */
export interface Mutation {
  kind: string;
  /** Offset of the first changed byte; Infinity for a clean stream. */
  at: number;
  ending: Ending;
}

/** `parts` end to end, in a new array. */
export function join(...parts: Uint8Array[]): Uint8Array {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let o = 0;
  for (const p of parts) (out.set(p, o), o += p.length);
  return out;
}

/** Applies one random mutation to `bytes`, mostly (80 %) at one of `lineBytes` (offsets of protocol lines). */
export function mutate(rng: Rng, bytes: Uint8Array, lineBytes: number[]): { bytes: Uint8Array; mutation: Mutation } {
  const kinds = ["clean", "flip", "insert", "delete", "crlf", "close", "reset", "silence"];
  const kind = rng.pick(kinds);
  if (kind === "clean" || bytes.length === 0) {
    return { bytes, mutation: { kind: "clean", at: Infinity, ending: "none" } };
  }
  // Mostly in the protocol lines: mutations of value data only corrupt that value.
  const at = lineBytes.length > 0 && rng.chance(0.8) ? rng.pick(lineBytes) : rng.int(bytes.length);
  const head = bytes.subarray(0, at);
  const tail = bytes.subarray(at);
  switch (kind) {
    case "flip": {
      const out = bytes.slice();
      out[at] = (out[at] + 1 + rng.int(255)) & 0xff;
      return { bytes: out, mutation: { kind: `flip@${at}`, at, ending: "none" } };
    }
    case "insert":
      return {
        bytes: join(head, Uint8Array.of(rng.int(256)), tail),
        mutation: { kind: `insert@${at}`, at, ending: "none" },
      };
    case "delete":
      return { bytes: join(head, tail.subarray(1)), mutation: { kind: `delete@${at}`, at, ending: "none" } };
    case "crlf":
      return { bytes: join(head, Uint8Array.of(13, 10), tail), mutation: { kind: `crlf@${at}`, at, ending: "none" } };
    default:
      return { bytes: head, mutation: { kind: `${kind}@${at}`, at, ending: kind as Ending } };
  }
}

/** Random chunk sizes for `length` bytes: single bytes, small pieces, or large runs. */
export function chunking(rng: Rng, length: number): number[] {
  const sizes: number[] = [];
  const style = rng.int(3);
  for (let left = length; left > 0;) {
    const n = Math.min(left, style === 0 ? 1 + rng.int(3) : style === 1 ? 1 + rng.int(64) : 1 + rng.int(4096));
    sizes.push(n);
    left -= n;
  }
  return sizes;
}

/**
 * Offsets of the protocol bytes of a stream of meta (and text) replies:
 * every line, not the data block a `VA <n>` (or `VALUE k f <n>`) line
 * announces.
 */
export function lineBytesOf(bytes: Uint8Array): number[] {
  const text = fromLatin1(bytes);
  const out: number[] = [];
  let at = 0;
  while (at < text.length) {
    let nl = text.indexOf("\n", at);
    if (nl === -1) nl = text.length - 1;
    for (let i = at; i <= nl; i++) out.push(i);
    const line = text.slice(at, nl + 1);
    at = nl + 1;
    const value = /^VA (\d+)/.exec(line) ?? /^VALUE \S+ \d+ (\d+)/.exec(line);
    if (value) at += Number(value[1]) + 2;
  }
  return out;
}

/** What a {@linkcode MutatingTransport} did to a connection's stream. */
export interface MutationRecord {
  mutation: Mutation;
  /** Bytes of the clean stream the mutation was made in. */
  length: number;
}

/** The most ms a mutated burst is dribbled over: replies that come whole must beat the timeout. */
const MAX_DRIBBLE_MS = 80;

/**
 * A transport in front of another (a `MemoryServer`'s): what the server
 * answers is held until it has been quiet for a moment, then the first
 * burst (of the whole transport, across connections) is mutated once and
 * everything is delivered in random chunks. After a cut (close, reset,
 * silence) nothing more of that connection's stream is delivered: TCP
 * never skips bytes and goes on. Timers are cleared on close.
 */
export class MutatingTransport implements Transport {
  readonly name = "mutating";
  /** The mutation made, once the first burst went out. */
  record: MutationRecord | undefined;
  #timers = new Set<ReturnType<typeof setTimeout>>();
  #mutate: boolean;

  constructor(private readonly inner: Transport, private readonly rng: Rng, options: { mutate?: boolean } = {}) {
    this.#mutate = options.mutate ?? true;
  }

  #later(fn: () => void, ms: number): void {
    const timer = setTimeout(() => (this.#timers.delete(timer), fn()), ms);
    this.#timers.add(timer);
  }

  /** Clears every timer (the transport is done with). */
  dispose(): void {
    for (const t of this.#timers) clearTimeout(t);
    this.#timers.clear();
  }

  async connect(
    address: ServerAddress,
    options: TransportConnectOptions,
    handlers: TransportHandlers,
  ): Promise<TransportSocket> {
    let closed = false;
    let cut = false;
    let held: Uint8Array[] = [];
    let flushing = false;
    /** Chunks waiting their turn: delivery stays in order across bursts. */
    const outbox: { data?: Uint8Array; gap: number; end?: Ending }[] = [];
    let pumping = false;
    const finish = (error?: Error) => {
      if (closed) return;
      closed = true;
      handlers.onClose(error);
      void inner.close().catch(() => {});
    };
    const pump = () => {
      pumping = true;
      while (outbox.length > 0 && !closed) {
        const next = outbox[0];
        if (next.gap > 0) {
          const gap = next.gap;
          next.gap = 0;
          this.#later(pump, gap);
          return;
        }
        outbox.shift();
        if (next.data) handlers.onData(next.data);
        if (next.end === "close") finish();
        if (next.end === "reset") finish(new Error("connection reset by peer"));
      }
      pumping = false;
    };
    const flush = () => {
      flushing = false;
      const bytes = join(...held);
      held = [];
      if (cut || closed) return;
      let out = bytes;
      let ending: Ending = "none";
      if (this.#mutate && this.record === undefined) {
        const m = mutate(this.rng, bytes, lineBytesOf(bytes));
        this.record = { mutation: m.mutation, length: bytes.length };
        out = m.bytes;
        ending = m.mutation.ending;
      }
      let at = 0;
      let spent = 0;
      for (const n of chunking(this.rng, out.length)) {
        const gap = this.rng.chance(0.2) ? this.rng.int(3) : 0;
        const g = spent + gap <= MAX_DRIBBLE_MS ? gap : 0;
        spent += g;
        outbox.push({ data: out.slice(at, at + n), gap: g });
        at += n;
      }
      if (ending !== "none") {
        cut = true;
        outbox.push({ gap: 0, end: ending });
      }
      if (!pumping) pump();
    };
    const inner = await this.inner.connect(address, options, {
      onData: (chunk) => {
        if (cut || closed) return;
        held.push(chunk.slice());
        if (!flushing) {
          flushing = true;
          this.#later(flush, 2);
        }
      },
      onClose: (error) => {
        // What the server said before it closed goes out first.
        if (held.length > 0) flush();
        outbox.push({ gap: 0, end: error ? "reset" : "close" });
        if (!pumping) pump();
      },
    });
    return {
      write: (data: Uint8Array) => {
        if (!closed) inner.write(data);
      },
      close: () => (finish(), Promise.resolve()),
    };
  }
}

/** Parses `stream` in `sizes` chunks: the replies, and the error that stopped it (if any). */
export function parseAll(
  expects: Expectation[],
  stream: Uint8Array,
  sizes: number[],
): { replies: Reply[]; error?: unknown } {
  const queue = [...expects];
  const replies: Reply[] = [];
  const parser = new ReplyParser(() => queue[0], (reply) => {
    queue.shift();
    // Copy values now: a parser may reuse nothing, but be safe against views.
    replies.push(structuredClone(reply));
  });
  let at = 0;
  try {
    for (const n of sizes) {
      // A fresh copy per chunk: the parser must not keep a chunk it was fed.
      const chunk = stream.slice(at, at + n);
      at += n;
      parser.feed(chunk);
      chunk.fill(0x21);
    }
  } catch (error) {
    return { replies, error };
  }
  return { replies };
}
