/**
 * Output and tokenizing for `MemoryServer` sessions (_memory_session.ts).
 *
 * @module
 */

/** memcached's MAX_TOKENS: the tokenizer stops after MAX_TOKENS - 1 tokens. */
const MAX_TOKENS = 24;

/**
 * What a session answers, as a list of byte arrays: lines are written into
 * a buffer, large values are referenced as they are stored (items' values
 * are never changed in place once stored, but by incr/decr, which only
 * rewrites values short enough to be copied here).
 */
export class Output {
  #parts: Uint8Array[] = [];
  #sealed = 0;
  #buf = new Uint8Array(16384);
  #start = 0;
  #pos = 0;

  /** Bytes written since the last `take`. */
  get length(): number {
    return this.#sealed + this.#pos - this.#start;
  }

  #seal(): void {
    if (this.#pos > this.#start) {
      this.#parts.push(this.#buf.subarray(this.#start, this.#pos));
      this.#sealed += this.#pos - this.#start;
      this.#start = this.#pos;
    }
  }

  #ensure(n: number): void {
    if (this.#pos + n <= this.#buf.length) return;
    this.#seal();
    this.#buf = new Uint8Array(Math.max(16384, n));
    this.#start = this.#pos = 0;
  }

  /** Appends a latin1 string. */
  text(s: string): void {
    this.#ensure(s.length);
    const buf = this.#buf;
    let at = this.#pos;
    for (let i = 0; i < s.length; i++) buf[at++] = s.charCodeAt(i);
    this.#pos = at;
  }

  /** Appends bytes; large ones by reference, so they must not change afterwards. */
  bytes(b: Uint8Array): void {
    if (b.length >= 4096) {
      this.#seal();
      this.#parts.push(b);
      this.#sealed += b.length;
      return;
    }
    this.#ensure(b.length);
    this.#buf.set(b, this.#pos);
    this.#pos += b.length;
  }

  /** Appends a stored value (a latin1 string or bytes). */
  value(v: Uint8Array | string): void {
    if (typeof v === "string") this.text(v);
    else this.bytes(v);
  }

  /** Drops everything after the first `length` bytes. */
  truncate(length: number): void {
    if (length >= this.length) return;
    if (length >= this.#sealed) {
      this.#pos = this.#start + (length - this.#sealed);
      return;
    }
    this.#start = this.#pos; // the open region is dropped whole
    while (this.#sealed > length) {
      const last = this.#parts.pop()!;
      this.#sealed -= last.length;
      if (this.#sealed < length) {
        this.#parts.push(last.subarray(0, length - this.#sealed));
        this.#sealed = length;
      }
    }
  }

  /**
   * Hands out the first `upTo` bytes written (all by default) and keeps the
   * rest. With `reuse`, the buffer is written again afterwards: the caller
   * must be done with the parts by then.
   */
  take(reuse: boolean, upTo = this.length): Uint8Array[] {
    this.#seal();
    let parts = this.#parts;
    let kept: Uint8Array[] = [];
    if (upTo < this.#sealed) {
      let at = 0;
      let i = 0;
      while (at + parts[i].length <= upTo) at += parts[i++].length;
      kept = parts.slice(i);
      parts = parts.slice(0, i);
      if (upTo > at) {
        parts.push(kept[0].subarray(0, upTo - at));
        kept[0] = kept[0].subarray(upTo - at);
      }
    }
    const keptBytes = this.#sealed - upTo;
    this.#parts = [];
    this.#sealed = 0;
    if (!reuse) this.#buf = new Uint8Array(16384);
    this.#start = this.#pos = 0;
    if (keptBytes > 0) {
      // What stays may live in the buffer, which is written again: keep a copy.
      const copy = new Uint8Array(keptBytes);
      let at = 0;
      for (const part of kept) copy.set(part, (at += part.length) - part.length);
      this.#parts.push(copy);
      this.#sealed = keptBytes;
    }
    return parts;
  }
}

/** Splits on spaces as memcached's tokenize_command: at most 23 tokens, then the index of the rest (or -1). */
export function tokenize(line: string, from: number): [string[], number] {
  const tokens: string[] = [];
  let start = from;
  for (let i = from; i < line.length; i++) {
    if (line.charCodeAt(i) !== 32) continue;
    if (start !== i) {
      tokens.push(line.slice(start, i));
      if (tokens.length === MAX_TOKENS - 1) return [tokens, i + 1 < line.length ? i + 1 : -1];
    }
    start = i + 1;
  }
  if (start < line.length) tokens.push(line.slice(start));
  return [tokens, -1];
}
