/**
 * The pickle reader's argument decoders: the text in and after an opcode
 * (decimal and float lines, quoted and raw-unicode-escaped strings, UTF-8,
 * latin-1, little-endian integers), and the error they all fail with.
 *
 * Each decoder is one pass over its bytes, with no regular expression that
 * could backtrack and no string built a character at a time: a hostile
 * megabyte-long argument costs time in proportion to its length (see
 * bench/pickle.ts, which prints milliseconds per megabyte). Outputs are
 * collected in typed arrays no longer than the input, then turned into a
 * string in 4096-unit chunks.
 *
 * @module
 */

import { MemcacheSerdeError } from "../errors.ts";

/**
 * A pickle that cannot be read: malformed, truncated, or asking for code to
 * run. A {@linkcode MemcacheSerdeError}, so a client that meets one in a
 * reply rejects that call with it and keeps the connection.
 */
export class MemcachePickleError extends MemcacheSerdeError {
  /** Builds the error. */
  constructor(message: string) {
    super(message);
    this.name = "MemcachePickleError";
  }
}

/** Throws a {@linkcode MemcachePickleError} with `message`. */
export function fail(message: string): never {
  throw new MemcachePickleError(`Cannot unpickle: ${message}`);
}

/** `text` quoted for an error message, cut to its first 40 characters (arguments can be megabytes long). */
export function show(text: string): string {
  return JSON.stringify(text.length > 40 ? text.slice(0, 40) : text) + (text.length > 40 ? "…" : "");
}

/** Python's default limit on the digits `int()` converts (sys.get_int_max_str_digits()). */
const MAX_INT_DIGITS = 4300;
const MAX_SAFE = BigInt(Number.MAX_SAFE_INTEGER);
const CHUNK = 4096;

const utf8Strict = new TextDecoder("utf-8", { fatal: true });

/** A `bigint` as a `number` when exactly representable. */
export function narrow(n: bigint): number | bigint {
  return n >= -MAX_SAFE && n <= MAX_SAFE ? Number(n) : n;
}

/** A buffer for decoded code units, reused while small (most strings are): allocating one per string is slow. */
let scratch = new Uint16Array(256);
function unitsFor(n: number): Uint16Array {
  if (n <= scratch.length) return scratch;
  const units = new Uint16Array(n);
  if (n <= 65536) scratch = units;
  return units;
}

/** The first `n` code units of `units` as a string, converted in chunks (no per-character concatenation). */
function fromUnits(units: Uint16Array | Uint8Array, n: number): string {
  let s = "";
  if (n < 64) {
    // short: concatenation beats making a subarray to spread (most dict keys and values)
    for (let i = 0; i < n; i++) s += String.fromCharCode(units[i]);
    return s;
  }
  for (let i = 0; i < n; i += CHUNK) {
    s += String.fromCharCode.apply(null, units.subarray(i, Math.min(n, i + CHUNK)) as unknown as number[]);
  }
  return s;
}

/** UTF-8 with lone surrogates allowed (Python pickles str with "surrogatepass"). */
function utf8SurrogatePass(bytes: Uint8Array, start: number, end: number): string {
  const out = unitsFor(end - start); // a code point of k bytes is at most k code units
  let n = 0;
  let i = start;
  while (i < end) {
    const b = bytes[i];
    let cp: number;
    let need: number;
    if (b < 0x80) {
      cp = b;
      need = 0;
    } else if (b >= 0xc2 && b < 0xe0) {
      cp = b & 0x1f;
      need = 1;
    } else if (b >= 0xe0 && b < 0xf0) {
      cp = b & 0x0f;
      need = 2;
    } else if (b >= 0xf0 && b < 0xf5) {
      cp = b & 0x07;
      need = 3;
    } else return fail(`invalid UTF-8 byte 0x${b.toString(16)} in a string`);
    if (i + need >= end) return fail("truncated UTF-8 sequence in a string");
    for (let k = 1; k <= need; k++) {
      const c = bytes[i + k];
      if ((c & 0xc0) !== 0x80) return fail("invalid UTF-8 sequence in a string");
      cp = (cp << 6) | (c & 0x3f);
    }
    if ((need === 2 && cp < 0x800) || (need === 3 && (cp < 0x10000 || cp > 0x10ffff))) {
      return fail("overlong or out-of-range UTF-8 sequence in a string");
    }
    if (cp < 0x10000) out[n++] = cp;
    else {
      out[n++] = 0xd7c0 + (cp >> 10);
      out[n++] = 0xdc00 + (cp & 0x3ff);
    }
    i += need + 1;
  }
  return fromUnits(out, n);
}

/** Decodes UTF-8 bytes [start, end) (lone surrogates allowed, as Python writes them); anything else invalid fails. */
export function utf8(bytes: Uint8Array, start: number, end: number): string {
  if (end - start < 64) {
    // short strings: decoding here beats a call into the platform's decoder (slow on Node 20)
    let i = start;
    while (i < end && bytes[i] < 0x80) i++;
    return i === end ? latin1(bytes, start, end) : utf8SurrogatePass(bytes, start, end);
  }
  try {
    return utf8Strict.decode(bytes.subarray(start, end));
  } catch {
    return utf8SurrogatePass(bytes, start, end);
  }
}

/** Bytes [start, end) as latin-1: one character per byte. */
export function latin1(bytes: Uint8Array, start: number, end: number): string {
  if (end - start < 64) {
    // short: concatenation beats making a subarray to spread (most dict keys and values)
    let s = "";
    for (let i = start; i < end; i++) s += String.fromCharCode(bytes[i]);
    return s;
  }
  return fromUnits(start === 0 ? bytes : bytes.subarray(start, end), end - start);
}

/** Bytes [start, end) that must be ASCII, as Python 3 reads protocol-0/1 str (encoding "ASCII"). */
export function ascii(bytes: Uint8Array, start: number, end: number, what: string): string {
  for (let i = start; i < end; i++) {
    const b = bytes[i];
    if (b >= 0x80) fail(`${what} holds the non-ASCII byte 0x${b.toString(16)} (Python 3 reads it as ASCII)`);
  }
  return latin1(bytes, start, end);
}

/** The index of the next newline from `from`, or -1 (a loop: lines are short, and a call to indexOf is not). */
export function eol(bytes: Uint8Array, from: number): number {
  const end = bytes.length;
  for (let i = from; i < end; i++) if (bytes[i] === 0x0a) return i;
  return -1;
}

/** A decimal integer of 1 to 15 digits (optional sign) in bytes [start, end), or -1 for anything else. */
export function smallDecimal(bytes: Uint8Array, start: number, end: number): number {
  let i = start;
  const negative = bytes[i] === 0x2d;
  if (negative || bytes[i] === 0x2b) i++;
  if (i === end || end - i > 15) return -1;
  let v = 0;
  for (; i < end; i++) {
    const d = bytes[i] - 0x30;
    if (d < 0 || d > 9) return -1;
    v = v * 10 + d;
  }
  return negative ? -v : v;
}

const isDigit = (b: number): boolean => b >= 0x30 && b <= 0x39;
/** The whitespace String.prototype.trim removes, within ASCII: tab, LF, VT, FF, CR, space. */
const isSpace = (b: number): boolean => b === 0x20 || (b >= 0x09 && b <= 0x0d);
const isHex = (b: number): boolean => isDigit(b) || ((b | 0x20) >= 0x61 && (b | 0x20) <= 0x66);

/** A decimal integer as Python's `int()` reads the text opcodes' arguments. */
export function decimal(text: string, what: string): number | bigint {
  const t = text.trim();
  let i = t[0] === "+" || t[0] === "-" ? 1 : 0;
  const digits = t.length - i;
  for (; i < t.length; i++) {
    const c = t.charCodeAt(i);
    if (c < 0x30 || c > 0x39) break;
  }
  if (digits === 0 || i < t.length) fail(`${what} argument ${show(t)} is not an integer`);
  if (digits > MAX_INT_DIGITS) fail(`${what} argument has more than ${MAX_INT_DIGITS} digits`);
  if (t.length < 16) return Number(t);
  return narrow(BigInt(t));
}

/**
 * The FLOAT opcode's argument in bytes [start, end), as Python's `float()`
 * reads it: surrounding whitespace, a sign, then digits with at most one
 * point and an optional exponent, or `inf`, `infinity`, `nan` in any case.
 * Validated in one pass, then converted by `Number` (which agrees with
 * `float()` on this grammar).
 */
export function floatArg(bytes: Uint8Array, start: number, end: number): number {
  while (start < end && isSpace(bytes[start])) start++;
  while (end > start && isSpace(bytes[end - 1])) end--;
  let i = start;
  const negative = bytes[i] === 0x2d;
  if (negative || bytes[i] === 0x2b) i++;
  if (end - i <= 8 && i < end && !isDigit(bytes[i]) && bytes[i] !== 0x2e) {
    const word = latin1(bytes, i, end).toLowerCase();
    if (word === "nan") return NaN;
    if (word === "inf" || word === "infinity") return negative ? -Infinity : Infinity;
  }
  let digits = 0;
  for (; i < end && isDigit(bytes[i]); i++) digits++;
  if (i < end && bytes[i] === 0x2e) {
    for (i++; i < end && isDigit(bytes[i]); i++) digits++;
  }
  let ok = digits > 0;
  if (ok && i < end && (bytes[i] | 0x20) === 0x65) {
    i++;
    if (i < end && (bytes[i] === 0x2b || bytes[i] === 0x2d)) i++;
    const from = i;
    for (; i < end && isDigit(bytes[i]); i++);
    ok = i > from;
  }
  if (!ok || i !== end) fail(`FLOAT argument ${show(latin1(bytes, start, Math.min(end, start + 41)))} is not a number`);
  return Number(latin1(bytes, start, end));
}

/** Python's "raw-unicode-escape" (the UNICODE opcode): latin-1 with \uXXXX and \UXXXXXXXX escapes. */
export function rawUnicodeEscape(bytes: Uint8Array, start: number, end: number): string {
  let first = start;
  while (first < end && bytes[first] !== 0x5c) first++;
  if (first === end) return latin1(bytes, start, end); // pickles escape every backslash: usually none
  const out = unitsFor(end - start); // an escape of k bytes gives at most 2 <= k code units
  let n = 0;
  let i = start;
  while (i < end) {
    const b = bytes[i];
    if (b !== 0x5c) {
      out[n++] = b;
      i++;
      continue;
    }
    let run = 0;
    while (i + run < end && bytes[i + run] === 0x5c) run++;
    const next = bytes[i + run];
    const escape = run % 2 === 1 && i + run < end && (next === 0x75 || next === 0x55);
    const literal = escape ? run - 1 : run; // backslashes kept as they are
    out.fill(0x5c, n, n + literal);
    n += literal;
    i += run;
    if (!escape) continue;
    const digits = next === 0x75 ? 4 : 8;
    const from = i + 1;
    if (from + digits > end) fail("truncated \\u escape in a UNICODE string");
    let cp = 0;
    for (let k = from; k < from + digits; k++) {
      const h = bytes[k];
      if (!isHex(h)) fail(`bad \\u escape ${show(latin1(bytes, from, from + digits))} in a UNICODE string`);
      cp = cp * 16 + (isDigit(h) ? h - 0x30 : (h | 0x20) - 0x57);
    }
    if (cp > 0x10ffff) fail(`\\U escape beyond U+10FFFF in a UNICODE string`);
    if (cp < 0x10000) out[n++] = cp;
    else {
      out[n++] = 0xd7c0 + (cp >> 10);
      out[n++] = 0xdc00 + (cp & 0x3ff);
    }
    i = from + digits;
  }
  return fromUnits(out, n);
}

/** The bytes of Python's simple escapes (`\n`, `\t`, ...), by the escape letter's byte; 0 for none. */
const SIMPLE_ESCAPES = new Uint8Array(128);
for (
  const [c, v] of Object.entries({ "\\": 0x5c, "'": 0x27, '"': 0x22, a: 7, b: 8, f: 12, n: 10, r: 13, t: 9, v: 11 })
) {
  SIMPLE_ESCAPES[c.charCodeAt(0)] = v;
}

/**
 * The STRING opcode's argument, bytes [start, end): a quoted Python 2 str
 * repr, escape-decoded (Python's `codecs.escape_decode`), which Python 3
 * then reads as ASCII.
 */
export function quotedString(bytes: Uint8Array, start: number, end: number): string {
  const q = bytes[start];
  if (end - start < 2 || (q !== 0x27 && q !== 0x22) || bytes[end - 1] !== q) {
    fail("the STRING opcode's argument is not quoted");
  }
  const out = new Uint8Array(end - start); // an escape never gives more bytes than it takes
  let n = 0;
  const last = end - 1;
  for (let i = start + 1; i < last; i++) {
    const c = bytes[i];
    if (c !== 0x5c) {
      out[n++] = c;
      continue;
    }
    if (++i === last) fail("a STRING ends in a lone backslash");
    const e = bytes[i];
    const simple = e < 0x80 ? SIMPLE_ESCAPES[e] : 0;
    if (simple !== 0) out[n++] = simple;
    else if (e === 0x0a) continue;
    else if (e === 0x78) { // \xHH
      if (i + 2 >= last || !isHex(bytes[i + 1]) || !isHex(bytes[i + 2])) fail("bad \\x escape in a STRING");
      const hi = bytes[i + 1], lo = bytes[i + 2];
      out[n++] = (isDigit(hi) ? hi - 0x30 : (hi | 0x20) - 0x57) * 16 + (isDigit(lo) ? lo - 0x30 : (lo | 0x20) - 0x57);
      i += 2;
    } else if (e >= 0x30 && e <= 0x37) { // \o, \oo, \ooo
      let v = e - 0x30;
      for (let k = 0; k < 2 && i + 1 < last && bytes[i + 1] >= 0x30 && bytes[i + 1] <= 0x37; k++) {
        v = v * 8 + bytes[++i] - 0x30;
      }
      out[n++] = v & 0xff;
    } else {
      out[n++] = 0x5c;
      out[n++] = e;
    }
  }
  for (let i = 0; i < n; i++) {
    if (out[i] >= 0x80) fail("a STRING holds a non-ASCII byte (Python 3 reads it as ASCII)");
  }
  return latin1(out, 0, n);
}

const HEX_DIGITS = new TextEncoder().encode("0123456789abcdef");

/** A little-endian two's complement integer of `n` bytes (LONG1, LONG4). */
export function longBytes(bytes: Uint8Array, start: number, n: number): number | bigint {
  if (n === 0) return 0;
  const negative = bytes[start + n - 1] >= 0x80;
  if (n <= 6) {
    let v = 0;
    for (let i = n - 1; i >= 0; i--) v = v * 256 + bytes[start + i];
    return negative ? v - 2 ** (8 * n) : v;
  }
  // hexadecimal digits, most significant first, converted in chunks: BigInt reads base 16 in linear time
  const hex = new Uint8Array(2 * n);
  for (let i = n - 1, k = 0; i >= 0; i--, k += 2) {
    const b = bytes[start + i];
    hex[k] = HEX_DIGITS[b >> 4];
    hex[k + 1] = HEX_DIGITS[b & 15];
  }
  let v = BigInt("0x" + latin1(hex, 0, hex.length));
  if (negative) v -= 1n << BigInt(8 * n);
  return narrow(v);
}
