/**
 * Byte-level helpers of `MemoryServer`: latin1 text, the number parsing of
 * memcached's safe_strto* (C strtol family on 64-bit Linux, truncated where
 * memcached stores into 32 bits), and memcached's own base64 (base64.c),
 * whose decoder skips unknown characters and stops after the first padded
 * block. Runtime-free.
 *
 * @module
 */

/** One char per byte. */
export function latin1(bytes: Uint8Array, start = 0, end = bytes.length): string {
  if (end - start < 64) {
    let s = "";
    for (let i = start; i < end; i++) s += String.fromCharCode(bytes[i]);
    return s;
  }
  let s = "";
  for (let i = start; i < end; i += 8192) {
    s += String.fromCharCode.apply(null, bytes.subarray(i, Math.min(end, i + 8192)) as unknown as number[]);
  }
  return s;
}

/**
 * Values up to this many bytes are kept as latin1 strings: a short string
 * costs V8 about 190 bytes less than a `Uint8Array` with its own buffer.
 */
export const STRING_VALUE_MAX = 512;

/** A stored value: a latin1 string when short, else bytes. */
export type ItemValue = Uint8Array | string;

/** The value to store for these bytes (copied: the caller may reuse its buffer). */
export function itemValue(bytes: Uint8Array, start = 0, end = bytes.length): ItemValue {
  if (end - start > STRING_VALUE_MAX) return bytes.slice(start, end);
  // apply() makes one flat string; `+=` would build a rope that costs more until flattened.
  return String.fromCharCode.apply(null, bytes.subarray(start, end) as unknown as number[]);
}

/** A stored value's bytes. */
export function valueBytes(value: ItemValue): Uint8Array {
  return typeof value === "string" ? latin1Bytes(value) : value;
}

/** Bytes of a latin1 string (chars are < 256 by construction). */
export function latin1Bytes(s: string): Uint8Array {
  const out = new Uint8Array(s.length);
  for (let i = 0; i < s.length; i++) out[i] = s.charCodeAt(i);
  return out;
}

/** C isspace in the "C" locale. */
export function isSpace(c: number): boolean {
  return c === 32 || (c >= 9 && c <= 13);
}

const U64 = (1n << 64n) - 1n;
const I64_MAX = (1n << 63n) - 1n;

/** strtoull/strtoll's scan: sign, magnitude, and whether the text after the digits is acceptable. */
function scan(s: string): { negative: boolean; magnitude: bigint } | undefined {
  let i = 0;
  while (i < s.length && isSpace(s.charCodeAt(i))) i++;
  let negative = false;
  const sign = s.charCodeAt(i);
  if (sign === 45 || sign === 43) {
    negative = sign === 45;
    i++;
  }
  const first = i;
  while (i < s.length) {
    const c = s.charCodeAt(i);
    if (c < 48 || c > 57) break;
    i++;
  }
  if (i === first) return undefined; // no conversion: endptr == str
  // safe_strto*: the number must end at whitespace or the end of the token.
  if (i < s.length && !isSpace(s.charCodeAt(i))) return undefined;
  return { negative, magnitude: BigInt(s.slice(first, i)) };
}

/** A plain decimal of up to 15 digits: the common case, parsed without BigInt. */
function small(s: string): number {
  const n = s.length;
  if (n === 0 || n > 15) return -1;
  let v = 0;
  for (let i = 0; i < n; i++) {
    const c = s.charCodeAt(i) - 48;
    if (c < 0 || c > 9) return -1;
    v = v * 10 + c;
  }
  return v;
}

/** memcached's safe_strtoull: a 64-bit unsigned number, or undefined. */
export function parseU64(s: string): bigint | undefined {
  const quick = small(s);
  if (quick >= 0) return BigInt(quick);
  const r = scan(s);
  if (!r || r.magnitude > U64) return undefined; // ERANGE
  const value = r.negative ? (U64 + 1n - r.magnitude) & U64 : r.magnitude;
  // "negative as a signed number" and a '-' anywhere: refused.
  if (value > I64_MAX && s.includes("-")) return undefined;
  return value;
}

/** memcached's safe_strtoul into a uint32_t: parsed as 64 bits, then truncated. */
export function parseU32(s: string): number | undefined {
  const quick = small(s);
  if (quick >= 0) return quick >>> 0 === quick ? quick : Number(BigInt(quick) & 0xffffffffn);
  const r = scan(s);
  if (!r || r.magnitude > U64) return undefined;
  const value = r.negative ? (U64 + 1n - r.magnitude) & U64 : r.magnitude;
  if (value > I64_MAX && s.includes("-")) return undefined;
  return Number(value & 0xffffffffn);
}

/** memcached's safe_strtol into an int32_t: parsed as a 64-bit long, then truncated. */
export function parseI32(s: string): number | undefined {
  const quick = small(s);
  if (quick >= 0) return quick | 0;
  const r = scan(s);
  if (!r) return undefined;
  if (r.negative ? r.magnitude > I64_MAX + 1n : r.magnitude > I64_MAX) return undefined; // ERANGE
  return Number(BigInt.asIntN(32, r.negative ? -r.magnitude : r.magnitude));
}

/**
 * The number at the start of an item's value, as do_add_delta reads it
 * (strtoull over the value, which is followed by CRLF; a NUL ends it).
 */
export function parseValueU64(value: ItemValue): bigint | undefined {
  let end = typeof value === "string" ? value.indexOf("\0") : value.indexOf(0);
  if (end < 0) end = value.length;
  let s = typeof value === "string" ? value.slice(0, end) : latin1(value, 0, end);
  if (end === value.length) s += "\r\n";
  return parseU64(s);
}

const ALPHABET = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
const DECODE = new Int16Array(256).fill(-1);
for (let i = 0; i < 64; i++) DECODE[ALPHABET.charCodeAt(i)] = i;
DECODE[61] = 0; // '=' decodes as 0 and counts as padding

/** memcached's base64_encode. */
export function base64Encode(s: string): string {
  let out = "";
  let i = 0;
  for (; i + 3 <= s.length; i += 3) {
    const a = s.charCodeAt(i), b = s.charCodeAt(i + 1), c = s.charCodeAt(i + 2);
    out += ALPHABET[a >> 2] + ALPHABET[((a & 3) << 4) | (b >> 4)] + ALPHABET[((b & 15) << 2) | (c >> 6)] +
      ALPHABET[c & 63];
  }
  if (i < s.length) {
    const a = s.charCodeAt(i);
    out += ALPHABET[a >> 2];
    if (s.length - i === 1) out += ALPHABET[(a & 3) << 4] + "=";
    else {
      const b = s.charCodeAt(i + 1);
      out += ALPHABET[((a & 3) << 4) | (b >> 4)] + ALPHABET[(b & 15) << 2];
    }
    out += "=";
  }
  return out;
}

/** memcached's base64_decode; undefined where it returns 0 (fails). */
export function base64Decode(s: string): string | undefined {
  let count = 0;
  for (let i = 0; i < s.length; i++) if (DECODE[s.charCodeAt(i)] >= 0) count++;
  if (count === 0 || count % 4 !== 0) return undefined;
  const out: number[] = [];
  const block = [0, 0, 0, 0];
  let n = 0;
  let pad = 0;
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    const v = DECODE[c];
    if (v < 0) continue;
    if (c === 61) pad++;
    block[n++] = v;
    if (n === 4) {
      out.push(
        (block[0] << 2 | block[1] >> 4) & 255,
        (block[1] << 4 | block[2] >> 2) & 255,
        (block[2] << 6 | block[3]) & 255,
      );
      n = 0;
      if (pad) {
        if (pad === 1) out.pop();
        else if (pad === 2) out.length -= 2;
        else return undefined;
        break;
      }
    }
  }
  if (out.length === 0) return undefined;
  return String.fromCharCode(...out);
}
