/**
 * The write side of the protocol: an {@linkcode Outbox} commands are
 * encoded into, handed to a transport in one piece per tick. Pure.
 *
 * @module
 */

const encoder = new TextEncoder();
/** Size of the outbox's buffer, which commands of many ticks share. */
const OUTBOX_SLAB = 65536;
/** The largest send buffer an outbox keeps for reuse (see Outbox.giveBack). */
const SPARE_MAX = 4 * 1024 * 1024;
const zeroed = (size: number): Uint8Array => new Uint8Array(size);

/**
 * A growable write buffer that commands are encoded into; `take` hands the
 * bytes to a transport in one piece, so commands issued together go out in
 * one write.
 */
export class Outbox {
  /** Pending bytes are `#buf[#start, #len)`; what lies before was taken. */
  #buf: Uint8Array;
  #start = 0;
  #len = 0;
  /** Allocates buffers for large values; see `Transport.allocUnsafe`. */
  allocate: (size: number) => Uint8Array = zeroed;
  /**
   * A buffer grown for a large value, given back by {@linkcode giveBack}
   * once the transport wrote it: the next large value is copied into it
   * instead of into new memory (fresh pages cost far more than the copy).
   */
  #spare: Uint8Array | null = null;
  /**
   * The slab set aside while a grown buffer takes a large value, and where
   * its free part starts: `take` returns to it instead of zeroing a new one
   * per large value. Nothing from there on was handed out (the bytes
   * pending there were copied into the grown buffer).
   */
  #slab: Uint8Array | null = null;
  #slabFree = 0;

  /** `initial`: bytes to start with; by default the first write allocates. */
  constructor(initial = 0) {
    this.#buf = new Uint8Array(initial);
  }

  /** Bytes waiting. */
  get length(): number {
    return this.#len - this.#start;
  }

  #ensure(extra: number): void {
    if (this.#len + extra <= this.#buf.length) return;
    // A new buffer: bytes already taken may still be in a transport's hands.
    const pending = this.#len - this.#start;
    const need = pending + extra;
    // A slab, or for a large value a buffer sized to it (room for the
    // commands after it; doubling if one tick brings several).
    let fresh: Uint8Array;
    if (need <= OUTBOX_SLAB) fresh = new Uint8Array(OUTBOX_SLAB);
    else if (this.#spare !== null && this.#spare.length >= need) {
      fresh = this.#spare;
      this.#spare = null;
    } else fresh = this.allocate(Math.max(need + OUTBOX_SLAB, 2 * this.#buf.length)); // only [#start, #len) is ever sent
    if (fresh.length > OUTBOX_SLAB && this.#buf.length === OUTBOX_SLAB) {
      this.#slab = this.#buf;
      this.#slabFree = this.#start;
    }
    fresh.set(this.#buf.subarray(this.#start, this.#len));
    this.#buf = fresh;
    this.#start = 0;
    this.#len = pending;
  }

  /** Appends text as UTF-8. */
  text(s: string): void {
    const n = s.length;
    this.#ensure(n * 3);
    const buf = this.#buf;
    let len = this.#len;
    if (n <= 256) {
      // Command lines are short ASCII: a loop beats a call into encodeInto.
      for (let i = 0; i < n; i++) {
        const c = s.charCodeAt(i);
        if (c > 127) {
          this.#len = len + encoder.encodeInto(s.slice(i), buf.subarray(len)).written;
          return;
        }
        buf[len++] = c;
      }
      this.#len = len;
      return;
    }
    this.#len = len + encoder.encodeInto(s, buf.subarray(len)).written;
  }

  /** Appends an integer in decimal, written digit by digit (no string). */
  int(n: number): void {
    this.#ensure(24);
    const buf = this.#buf;
    let len = this.#len;
    if (n < 0) {
      buf[len++] = 45; // "-"
      n = -n;
    }
    let digits = 1;
    for (let m = n; m >= 10; m = Math.floor(m / 10)) digits++;
    for (let i = len + digits - 1; i >= len; i--) {
      buf[i] = 48 + (n % 10);
      n = Math.floor(n / 10);
    }
    this.#len = len + digits;
  }

  /** Appends one byte. */
  byte(b: number): void {
    this.#ensure(1);
    this.#buf[this.#len++] = b;
  }

  /** Appends bytes (copied). */
  bytes(b: Uint8Array): void {
    this.#ensure(b.length);
    this.#buf.set(b, this.#len);
    this.#len += b.length;
  }

  /**
   * True when the bytes waiting sit in a buffer grown for a large value:
   * `take` then lets go of that buffer, which {@linkcode giveBack} can
   * return for reuse once the transport has written it.
   */
  get grown(): boolean {
    return this.#buf.length > OUTBOX_SLAB;
  }

  /**
   * Returns a view `take` handed out from a grown buffer, once nothing
   * holds it any more (the transport wrote it): the next large value
   * reuses its memory. One spare is kept, up to {@linkcode SPARE_MAX}.
   */
  giveBack(taken: Uint8Array): void {
    const size = taken.buffer.byteLength;
    if (size <= OUTBOX_SLAB || size > SPARE_MAX || this.#buf.buffer === taken.buffer) return;
    if (this.#spare === null || this.#spare.length < size) this.#spare = new Uint8Array(taken.buffer, 0, size);
  }

  /**
   * Removes and returns everything written so far: a view that is never
   * written to again (later commands go after it, or into a new buffer), so
   * a transport may hold it until its write completes (a grown
   * buffer: until it is given back). A view instead of a
   * copy, since a new ArrayBuffer per tick costs more than encoding a get.
   */
  take(): Uint8Array {
    const out = this.#buf.subarray(this.#start, this.#len);
    if (this.#buf.length > OUTBOX_SLAB) {
      // Grown for a large value: do not keep it (giveBack may return it);
      // back to the slab set aside, after what it handed out.
      if (this.#slab !== null) {
        this.#buf = this.#slab;
        this.#start = this.#len = this.#slabFree;
        this.#slab = null;
      } else {
        this.#buf = new Uint8Array(OUTBOX_SLAB);
        this.#start = this.#len = 0;
      }
    } else {
      this.#start = this.#len;
    }
    return out;
  }
}

/**
 * Bytes of `s` as UTF-8, as TextEncoder writes it: a surrogate pair is 4
 * bytes, a lone surrogate becomes U+FFFD (3 bytes).
 */
export function utf8Length(s: string): number {
  let n = s.length;
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c < 0x80) continue;
    if (c < 0x800) n += 1;
    else if (c >= 0xd800 && c <= 0xdbff && i + 1 < s.length && (s.charCodeAt(i + 1) & 0xfc00) === 0xdc00) {
      n += 2; // two code units, four bytes
      i++;
    } else n += 2;
  }
  return n;
}
