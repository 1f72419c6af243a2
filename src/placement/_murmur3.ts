/**
 * MurmurHash3 (x86, 32-bit), as pymemcache's `murmur3_32`: the input is a
 * string and each code point contributes its low byte only. For ASCII that
 * is the plain algorithm over the bytes; for other keys it is what
 * pymemcache computes, which is what rendezvous placement must agree with.
 *
 * @module
 */

const C1 = 0xcc9e2d51;
const C2 = 0x1b873593;

/** The low byte of every code point of `text` (surrogate pairs count once). */
export function codePointLowBytes(text: string): Uint8Array {
  const out = new Uint8Array(text.length);
  let n = 0;
  for (let i = 0; i < text.length; i++) {
    const c = text.codePointAt(i)!;
    if (c > 0xffff) i++; // a surrogate pair is one code point, as in Python
    out[n++] = c & 0xff;
  }
  return out.subarray(0, n);
}

/** MurmurHash3 x86_32 of `data` with `seed`, as an unsigned 32-bit number. */
export function murmur3_32Bytes(data: Uint8Array, seed = 0): number {
  const length = data.length;
  const rounded = length & ~3;
  let h1 = seed | 0;
  for (let i = 0; i < rounded; i += 4) {
    let k1 = data[i] | (data[i + 1] << 8) | (data[i + 2] << 16) | (data[i + 3] << 24);
    k1 = Math.imul(k1, C1);
    k1 = (k1 << 15) | (k1 >>> 17);
    k1 = Math.imul(k1, C2);
    h1 ^= k1;
    h1 = (h1 << 13) | (h1 >>> 19);
    h1 = (Math.imul(h1, 5) + 0xe6546b64) | 0;
  }
  let k1 = 0;
  switch (length & 3) {
    case 3:
      k1 = data[rounded + 2] << 16;
    // falls through
    case 2:
      k1 |= data[rounded + 1] << 8;
    // falls through
    case 1:
      k1 |= data[rounded];
      k1 = Math.imul(k1, C1);
      k1 = (k1 << 15) | (k1 >>> 17);
      k1 = Math.imul(k1, C2);
      h1 ^= k1;
  }
  h1 ^= length;
  h1 ^= h1 >>> 16;
  h1 = Math.imul(h1, 0x85ebca6b);
  h1 ^= h1 >>> 13;
  h1 = Math.imul(h1, 0xc2b2ae35);
  h1 ^= h1 >>> 16;
  return h1 >>> 0;
}

/**
 * pymemcache's `murmur3_32(data, seed)`: MurmurHash3 x86_32 over the low
 * byte of each code point of `text`.
 */
export function murmur3_32(text: string, seed = 0): number {
  return murmur3_32Bytes(codePointLowBytes(text), seed);
}
