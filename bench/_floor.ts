/**
 * "floor": the least a promise-per-request client can do, as a reference
 * row next to the raw baseline. One promise per request, no validation, no
 * serde, no timeouts, no error handling; commands encoded into one buffer
 * and written once per tick, replies parsed just enough to find values and
 * copied out (as any client must hand values to its caller). Where our
 * client is close to this row, what is left to the raw baseline is the
 * price of the promise API itself, not of our code.
 *
 * @module
 */

import type { Adapter } from "./_clients.ts";
import { openRaw } from "./_raw.ts";

const CR = 13;
const LF = 10;

interface Waiter {
  resolve: (value: unknown) => void;
  /** getMany: resolve with the number of values, not the first value. */
  many: boolean;
}

/** A minimal pipelined client on the runtime's raw socket. */
export async function floor(port: number): Promise<Adapter> {
  const socket = await openRaw(port);
  let out = new Uint8Array(65536);
  let len = 0;
  let scheduled = false;
  const waiting: Waiter[] = [];
  let head = 0;

  const room = (n: number) => {
    if (len + n <= out.length) return;
    const bigger = new Uint8Array(Math.max(out.length * 2, len + n));
    bigger.set(out.subarray(0, len));
    out = bigger;
  };
  const ascii = (s: string) => {
    room(s.length);
    for (let i = 0; i < s.length; i++) out[len++] = s.charCodeAt(i);
  };
  const flush = () => {
    scheduled = false;
    let bytes: Uint8Array;
    if (len < 65536) bytes = out.slice(0, len);
    else {
      bytes = out.subarray(0, len);
      out = new Uint8Array(65536);
    }
    len = 0;
    socket.write(bytes);
  };
  const enqueue = (many: boolean) =>
    new Promise<unknown>((resolve) => {
      waiting.push({ resolve, many });
      if (!scheduled) {
        scheduled = true;
        queueMicrotask(flush);
      }
    });
  const settle = (items: Uint8Array[] | true) => {
    const w = waiting[head];
    waiting[head++] = undefined as unknown as Waiter;
    if (head === waiting.length) {
      waiting.length = 0;
      head = 0;
    }
    w.resolve(items === true ? true : w.many ? items.length : items[0] ?? null);
  };

  // Reply state: a partial line, a value being filled, the values of the reply so far.
  let partial: Uint8Array | null = null;
  let value: Uint8Array | null = null;
  let filled = 0;
  let skip = 0;
  let items: Uint8Array[] = [];
  const onLine = (buf: Uint8Array, start: number, end: number, chunk: Uint8Array, next: number): number => {
    const first = buf[start];
    if (first === 86) { // VALUE <key> <flags> <bytes>
      let n = 0;
      for (let i = buf.lastIndexOf(32, end) + 1; i < end; i++) n = n * 10 + buf[i] - 48;
      if (chunk.length - next >= n + 2) {
        items.push(chunk.slice(next, next + n));
        return next + n + 2;
      }
      value = new Uint8Array(n);
      filled = 0;
      return next;
    }
    if (first === 69) { // END
      const done = items;
      items = [];
      settle(done);
    } else if (first === 83 && buf[start + 1] === 84) settle(true); // STORED
    else throw new Error(`floor: unexpected reply ${new TextDecoder().decode(buf.subarray(start, end))}`);
    return next;
  };
  socket.onData = (input) => {
    // A plain Uint8Array view, so slice() copies (Node's Buffer#slice would not).
    const chunk = input.constructor === Uint8Array
      ? input
      : new Uint8Array(input.buffer, input.byteOffset, input.length);
    let pos = 0;
    while (pos < chunk.length) {
      if (value !== null) {
        const take = Math.min(value.length - filled, chunk.length - pos);
        value.set(chunk.subarray(pos, pos + take), filled);
        filled += take;
        pos += take;
        if (filled === value.length) {
          items.push(value);
          value = null;
          skip = 2;
        }
        continue;
      }
      if (skip > 0) {
        const n = Math.min(skip, chunk.length - pos);
        skip -= n;
        pos += n;
        continue;
      }
      const nl = chunk.indexOf(LF, pos);
      if (nl === -1) {
        const rest = chunk.slice(pos);
        partial = partial === null ? rest : join(partial, rest);
        return;
      }
      if (partial !== null) {
        const line = join(partial, chunk.subarray(pos, nl));
        partial = null;
        pos = onLine(line, 0, line[line.length - 1] === CR ? line.length - 1 : line.length, chunk, nl + 1);
      } else {
        pos = onLine(chunk, pos, nl - 1, chunk, nl + 1);
      }
    }
  };

  return {
    get(key) {
      ascii(`get ${key}\r\n`);
      return enqueue(false);
    },
    getMany(keys) {
      ascii(`get ${keys.join(" ")}\r\n`);
      return enqueue(true) as Promise<number>;
    },
    set(key, bytes) {
      ascii(`set ${key} 0 0 ${bytes.length}\r\n`);
      room(bytes.length + 2);
      out.set(bytes, len);
      len += bytes.length;
      ascii("\r\n");
      return enqueue(false);
    },
    delete() {
      throw new Error("floor: no delete");
    },
    close: () => socket.close(),
  };
}

function join(a: Uint8Array, b: Uint8Array): Uint8Array {
  const out = new Uint8Array(a.length + b.length);
  out.set(a);
  out.set(b, a.length);
  return out;
}
