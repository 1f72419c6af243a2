/**
 * The raw-socket baseline: what the runtime's own socket can do with the
 * same request pattern and no client at all. Commands are encoded once,
 * before the clock starts; `window` of them are kept in flight and, as
 * replies arrive, the next ones go out in one write. Replies are counted
 * by their (known, fixed) length, never copied or parsed.
 *
 * Node and Bun use `node:net` (what our transport uses there), Deno uses
 * `Deno.connect`.
 *
 * @module
 */

import { now, percentiles } from "./_common.ts";

/** A connected socket reduced to what the baseline needs. */
export interface RawSocket {
  write(bytes: Uint8Array): void;
  /** Called with every chunk received (read it during the call only). */
  onData: (chunk: Uint8Array) => void;
  close(): Promise<void>;
}

/** Opens a raw loopback socket with the running runtime's own API. */
export async function openRaw(port: number): Promise<RawSocket> {
  // deno-lint-ignore no-explicit-any
  const Deno = (globalThis as any).Deno;
  if (Deno?.connect) return await openDeno(Deno, port);
  return await openNode(port);
}

async function openNode(port: number): Promise<RawSocket> {
  const net = await import("node:net");
  // TCP_NODELAY, as our NodeTransport sets by default.
  // On Node, reads into one buffer (as our NodeTransport does): a new 64 KiB
  // Buffer per read would make the baseline slower than the clients in S5.
  // On Bun the default 'data' reads measured as fast or faster for a counter
  // that never looks inside a chunk, so the baseline keeps them there.
  const bun = typeof (globalThis as { Bun?: unknown }).Bun !== "undefined";
  const socket = net.connect({
    host: "127.0.0.1",
    port,
    noDelay: true,
    ...(bun ? {} : {
      onread: {
        buffer: new Uint8Array(65536),
        callback: (n: number, buf: Uint8Array) => {
          raw.onData(buf.subarray(0, n));
          return true;
        },
      },
    }),
  });
  await new Promise<void>((resolve, reject) => {
    socket.once("connect", resolve);
    socket.once("error", reject);
  });
  const raw: RawSocket = {
    write: (bytes) => void socket.write(bytes),
    onData: () => {},
    close: () =>
      new Promise<void>((resolve) => {
        socket.once("close", () => resolve());
        socket.end();
      }),
  };
  if (bun) socket.on("data", (chunk: Uint8Array) => raw.onData(chunk));
  return raw;
}

// deno-lint-ignore no-explicit-any
async function openDeno(Deno: any, port: number): Promise<RawSocket> {
  const conn = await Deno.connect({ hostname: "127.0.0.1", port });
  let queue: Uint8Array[] = [];
  let writing = false;
  let closed = false;
  const drain = async () => {
    writing = true;
    try {
      while (queue.length > 0) {
        const parts = queue;
        queue = [];
        for (const part of parts) {
          let off = 0;
          while (off < part.length) off += await conn.write(part.subarray(off));
        }
      }
    } finally {
      writing = false;
    }
  };
  const raw: RawSocket = {
    write(bytes) {
      queue.push(bytes);
      if (!writing) drain();
    },
    onData: () => {},
    async close() {
      closed = true;
      conn.close();
      await reading;
    },
  };
  const reading = (async () => {
    const buf = new Uint8Array(65536);
    try {
      for (;;) {
        const n = await conn.read(buf);
        if (n === null) break;
        raw.onData(buf.subarray(0, n));
      }
    } catch (error) {
      if (!closed) throw error;
    }
  })();
  return raw;
}

/** One request of a raw program and the exact length of its reply. */
export interface Step {
  command: Uint8Array;
  replyLength: number;
}

/** Sends one command and returns its whole reply (copied: used only to check the setup). */
export function exchange(socket: RawSocket, command: Uint8Array, replyLength: number): Promise<Uint8Array> {
  return new Promise((resolve, reject) => {
    const reply = new Uint8Array(replyLength);
    let got = 0;
    socket.onData = (chunk) => {
      if (got + chunk.length > replyLength) {
        reject(new Error(`raw: a reply was longer than the expected ${replyLength} bytes`));
        return;
      }
      reply.set(chunk, got);
      got += chunk.length;
      if (got === replyLength) resolve(reply);
    };
    socket.write(command);
  });
}

/**
 * Runs `steps` round-robin for `ms`, with up to `window` requests in flight.
 * With `window > 1` every step must have the same reply length and the same
 * command length; `block` then holds all commands back to back, so k new
 * requests are one `subarray` and one write.
 */
export function run(
  socket: RawSocket,
  steps: Step[],
  window: number,
  ms: number,
  latency = false,
): Promise<{ ops: number; seconds: number; p50?: number; p99?: number }> {
  if (window > 1) {
    for (const s of steps) {
      if (s.replyLength !== steps[0].replyLength || s.command.length !== steps[0].command.length) {
        throw new Error("raw: a pipelined program needs uniform steps");
      }
    }
  }
  const commandLength = steps[0].command.length;
  const block = window > 1 ? concatAll(steps.map((s) => s.command)) : new Uint8Array(0);
  return new Promise((resolve) => {
    const lat: number[] = [];
    const start = now();
    const deadline = start + ms;
    let sent = 0; // requests written
    let done = 0; // replies complete
    let pending = 0; // bytes of the reply being received
    let last = start;
    let at = 0; // next step (window 1) or command index in block
    const sendOne = () => {
      socket.write(steps[at].command);
      at = at + 1 === steps.length ? 0 : at + 1;
      sent++;
    };
    const sendMany = (k: number) => {
      if (at + k > steps.length) at = 0;
      socket.write(block.subarray(at * commandLength, (at + k) * commandLength));
      at += k;
      sent += k;
    };
    const finish = () => {
      const seconds = (now() - start) / 1000;
      resolve({ ops: done, seconds, ...(latency ? percentiles(lat) : {}) });
    };
    if (window === 1) {
      socket.onData = (chunk) => {
        pending += chunk.length;
        const expected = steps[(sent - 1) % steps.length].replyLength;
        if (pending < expected) return;
        if (pending > expected) throw new Error("raw: more bytes than the reply holds");
        pending = 0;
        done++;
        const t = now();
        if (latency) lat.push(t - last);
        last = t;
        if (t < deadline) sendOne();
        else finish();
      };
      sendOne();
    } else {
      const replyLength = steps[0].replyLength;
      socket.onData = (chunk) => {
        pending += chunk.length;
        const complete = Math.floor(pending / replyLength);
        if (complete === 0) return;
        pending -= complete * replyLength;
        done += complete;
        if (now() < deadline) sendMany(complete);
        else if (done === sent) finish();
      };
      sendMany(Math.min(window, steps.length));
    }
  });
}

function concatAll(parts: Uint8Array[]): Uint8Array {
  let length = 0;
  for (const p of parts) length += p.length;
  const out = new Uint8Array(length);
  let off = 0;
  for (const p of parts) {
    out.set(p, off);
    off += p.length;
  }
  return out;
}
