/**
 * XXH3-64 (xxHash 0.8's 64-bit XXH3), as memcached's proxy places keys with
 * it: `xxh3_64(bytes, seed)` is `XXH3_64bits_withSeed`, and with seed 0 it
 * is `XXH3_64bits`. Every length class: 0–16 bytes, 17–128, 129–240, and
 * over 240 (stripes of 64 bytes accumulated in blocks of 1,024, with the
 * secret derived from the seed as XXH3's `initCustomSecret` does).
 *
 * 64-bit lanes are `bigint`s kept below 2^64; inputs are read through a
 * `DataView` (little-endian).
 *
 * @module
 */

const M64 = (1n << 64n) - 1n;

const PRIME32_1 = 0x9e3779b1n;
const PRIME32_2 = 0x85ebca77n;
const PRIME32_3 = 0xc2b2ae3dn;
const PRIME64_1 = 0x9e3779b185ebca87n;
const PRIME64_2 = 0xc2b2ae3d27d4eb4fn;
const PRIME64_3 = 0x165667b19e3779f9n;
const PRIME64_4 = 0x85ebca77c2b2ae63n;
const PRIME64_5 = 0x27d4eb2f165667c5n;
const PRIME_MX1 = 0x165667919e3779f9n;
const PRIME_MX2 = 0x9fb21c651e98df25n;

/** XXH3's default secret (192 bytes), `XXH3_kSecret`. */
const K_SECRET = new Uint8Array([
  0xb8,
  0xfe,
  0x6c,
  0x39,
  0x23,
  0xa4,
  0x4b,
  0xbe,
  0x7c,
  0x01,
  0x81,
  0x2c,
  0xf7,
  0x21,
  0xad,
  0x1c,
  0xde,
  0xd4,
  0x6d,
  0xe9,
  0x83,
  0x90,
  0x97,
  0xdb,
  0x72,
  0x40,
  0xa4,
  0xa4,
  0xb7,
  0xb3,
  0x67,
  0x1f,
  0xcb,
  0x79,
  0xe6,
  0x4e,
  0xcc,
  0xc0,
  0xe5,
  0x78,
  0x82,
  0x5a,
  0xd0,
  0x7d,
  0xcc,
  0xff,
  0x72,
  0x21,
  0xb8,
  0x08,
  0x46,
  0x74,
  0xf7,
  0x43,
  0x24,
  0x8e,
  0xe0,
  0x35,
  0x90,
  0xe6,
  0x81,
  0x3a,
  0x26,
  0x4c,
  0x3c,
  0x28,
  0x52,
  0xbb,
  0x91,
  0xc3,
  0x00,
  0xcb,
  0x88,
  0xd0,
  0x65,
  0x8b,
  0x1b,
  0x53,
  0x2e,
  0xa3,
  0x71,
  0x64,
  0x48,
  0x97,
  0xa2,
  0x0d,
  0xf9,
  0x4e,
  0x38,
  0x19,
  0xef,
  0x46,
  0xa9,
  0xde,
  0xac,
  0xd8,
  0xa8,
  0xfa,
  0x76,
  0x3f,
  0xe3,
  0x9c,
  0x34,
  0x3f,
  0xf9,
  0xdc,
  0xbb,
  0xc7,
  0xc7,
  0x0b,
  0x4f,
  0x1d,
  0x8a,
  0x51,
  0xe0,
  0x4b,
  0xcd,
  0xb4,
  0x59,
  0x31,
  0xc8,
  0x9f,
  0x7e,
  0xc9,
  0xd9,
  0x78,
  0x73,
  0x64,
  0xea,
  0xc5,
  0xac,
  0x83,
  0x34,
  0xd3,
  0xeb,
  0xc3,
  0xc5,
  0x81,
  0xa0,
  0xff,
  0xfa,
  0x13,
  0x63,
  0xeb,
  0x17,
  0x0d,
  0xdd,
  0x51,
  0xb7,
  0xf0,
  0xda,
  0x49,
  0xd3,
  0x16,
  0x55,
  0x26,
  0x29,
  0xd4,
  0x68,
  0x9e,
  0x2b,
  0x16,
  0xbe,
  0x58,
  0x7d,
  0x47,
  0xa1,
  0xfc,
  0x8f,
  0xf8,
  0xb8,
  0xd1,
  0x7a,
  0xd0,
  0x31,
  0xce,
  0x45,
  0xcb,
  0x3a,
  0x8f,
  0x95,
  0x16,
  0x04,
  0x28,
  0xaf,
  0xd7,
  0xfb,
  0xca,
  0xbb,
  0x4b,
  0x40,
  0x7e,
]);
const SECRET_SIZE = K_SECRET.length;
const K_VIEW = new DataView(K_SECRET.buffer);
const STRIPE = 64;
const STRIPES_PER_BLOCK = (SECRET_SIZE - STRIPE) / 8; // 16
const BLOCK = STRIPE * STRIPES_PER_BLOCK; // 1024

/** The secret's 64-bit words at every byte offset a short or mid-size input reads (0–136), by seed. */
interface Keyed {
  seed: bigint;
  /** Little-endian u64 of the default secret at byte offset i. */
  at: bigint[];
  /** Derived secret for inputs over 240 bytes (the default one for seed 0). */
  long: DataView;
}

const defaultAt: bigint[] = [];
for (let i = 0; i + 8 <= SECRET_SIZE; i++) defaultAt.push(K_VIEW.getBigUint64(i, true));

let lastKeyed: Keyed | undefined;

function keyed(seed: bigint): Keyed {
  if (lastKeyed !== undefined && lastKeyed.seed === seed) return lastKeyed;
  let long = K_VIEW;
  if (seed !== 0n) {
    // XXH3_initCustomSecret: each 16 bytes' first word plus seed, second minus seed.
    const custom = new DataView(new ArrayBuffer(SECRET_SIZE));
    for (let i = 0; i < SECRET_SIZE; i += 16) {
      custom.setBigUint64(i, (K_VIEW.getBigUint64(i, true) + seed) & M64, true);
      custom.setBigUint64(i + 8, (K_VIEW.getBigUint64(i + 8, true) - seed) & M64, true);
    }
    long = custom;
  }
  return (lastKeyed = { seed, at: defaultAt, long });
}

function mul128Fold64(a: bigint, b: bigint): bigint {
  const product = a * b;
  return (product ^ (product >> 64n)) & M64;
}

function xxh64Avalanche(h: bigint): bigint {
  h ^= h >> 33n;
  h = (h * PRIME64_2) & M64;
  h ^= h >> 29n;
  h = (h * PRIME64_3) & M64;
  return h ^ (h >> 32n);
}

function avalanche(h: bigint): bigint {
  h ^= h >> 37n;
  h = (h * PRIME_MX1) & M64;
  return h ^ (h >> 32n);
}

function rotl64(h: bigint, r: bigint): bigint {
  return ((h << r) | (h >> (64n - r))) & M64;
}

function rrmxmx(h: bigint, length: number): bigint {
  h ^= rotl64(h, 49n) ^ rotl64(h, 24n);
  h = (h * PRIME_MX2) & M64;
  h ^= (h >> 35n) + BigInt(length);
  h = (h * PRIME_MX2) & M64;
  return h ^ (h >> 28n);
}

function swap64(h: bigint): bigint {
  let out = 0n;
  for (let i = 0; i < 8; i++) {
    out = (out << 8n) | (h & 0xffn);
    h >>= 8n;
  }
  return out;
}

function swap32(x: number): number {
  return ((x << 24) | ((x & 0xff00) << 8) | ((x >>> 8) & 0xff00) | (x >>> 24)) >>> 0;
}

function mix16B(data: DataView, offset: number, secret: bigint[], s: number, seed: bigint): bigint {
  const lo = data.getBigUint64(offset, true);
  const hi = data.getBigUint64(offset + 8, true);
  return mul128Fold64(lo ^ ((secret[s] + seed) & M64), hi ^ ((secret[s + 8] - seed) & M64));
}

function len0to16(data: DataView, length: number, k: Keyed): bigint {
  const { at, seed } = k;
  if (length > 8) {
    const flip1 = ((at[24] ^ at[32]) + seed) & M64;
    const flip2 = ((at[40] ^ at[48]) - seed) & M64;
    const lo = data.getBigUint64(0, true) ^ flip1;
    const hi = data.getBigUint64(length - 8, true) ^ flip2;
    return avalanche((BigInt(length) + swap64(lo) + hi + mul128Fold64(lo, hi)) & M64);
  }
  if (length >= 4) {
    const s = seed ^ (BigInt(swap32(Number(seed & 0xffffffffn))) << 32n);
    const in1 = BigInt(data.getUint32(0, true));
    const in2 = BigInt(data.getUint32(length - 4, true));
    const flip = ((at[8] ^ at[16]) - s) & M64;
    return rrmxmx((in2 + (in1 << 32n)) ^ flip, length);
  }
  if (length > 0) {
    const c1 = data.getUint8(0);
    const c2 = data.getUint8(length >> 1);
    const c3 = data.getUint8(length - 1);
    const combined = ((c1 << 16) | (c2 << 24) | c3 | (length << 8)) >>> 0;
    const flip = (BigInt((K_VIEW.getUint32(0, true) ^ K_VIEW.getUint32(4, true)) >>> 0) + seed) & M64;
    return xxh64Avalanche(BigInt(combined) ^ flip);
  }
  return xxh64Avalanche(seed ^ at[56] ^ at[64]);
}

function len17to128(data: DataView, length: number, k: Keyed): bigint {
  const { at, seed } = k;
  let acc = (BigInt(length) * PRIME64_1) & M64;
  if (length > 32) {
    if (length > 64) {
      if (length > 96) {
        acc += mix16B(data, 48, at, 96, seed);
        acc += mix16B(data, length - 64, at, 112, seed);
      }
      acc += mix16B(data, 32, at, 64, seed);
      acc += mix16B(data, length - 48, at, 80, seed);
    }
    acc += mix16B(data, 16, at, 32, seed);
    acc += mix16B(data, length - 32, at, 48, seed);
  }
  acc += mix16B(data, 0, at, 0, seed);
  acc += mix16B(data, length - 16, at, 16, seed);
  return avalanche(acc & M64);
}

function len129to240(data: DataView, length: number, k: Keyed): bigint {
  const { at, seed } = k;
  let acc = (BigInt(length) * PRIME64_1) & M64;
  const rounds = length >> 4;
  for (let i = 0; i < 8; i++) acc += mix16B(data, 16 * i, at, 16 * i, seed);
  acc = avalanche(acc & M64);
  for (let i = 8; i < rounds; i++) acc += mix16B(data, 16 * i, at, 16 * (i - 8) + 3, seed);
  acc += mix16B(data, length - 16, at, 136 - 17, seed);
  return avalanche(acc & M64);
}

function accumulate512(acc: bigint[], data: DataView, offset: number, secret: DataView, s: number): void {
  for (let i = 0; i < 8; i++) {
    const value = data.getBigUint64(offset + 8 * i, true);
    const key = value ^ secret.getBigUint64(s + 8 * i, true);
    acc[i ^ 1] = (acc[i ^ 1] + value) & M64;
    acc[i] = (acc[i] + (key & 0xffffffffn) * (key >> 32n)) & M64;
  }
}

function scramble(acc: bigint[], secret: DataView): void {
  const s = SECRET_SIZE - STRIPE;
  for (let i = 0; i < 8; i++) {
    let a = acc[i];
    a ^= a >> 47n;
    a ^= secret.getBigUint64(s + 8 * i, true);
    acc[i] = (a * PRIME32_1) & M64;
  }
}

function hashLong(data: DataView, length: number, secret: DataView): bigint {
  const acc = [PRIME32_3, PRIME64_1, PRIME64_2, PRIME64_3, PRIME64_4, PRIME32_2, PRIME64_5, PRIME32_1];
  const blocks = Math.floor((length - 1) / BLOCK);
  for (let n = 0; n < blocks; n++) {
    for (let i = 0; i < STRIPES_PER_BLOCK; i++) accumulate512(acc, data, n * BLOCK + i * STRIPE, secret, i * 8);
    scramble(acc, secret);
  }
  const stripes = Math.floor((length - 1 - BLOCK * blocks) / STRIPE);
  for (let i = 0; i < stripes; i++) accumulate512(acc, data, blocks * BLOCK + i * STRIPE, secret, i * 8);
  accumulate512(acc, data, length - STRIPE, secret, SECRET_SIZE - STRIPE - 7); // the last stripe
  let result = (BigInt(length) * PRIME64_1) & M64;
  for (let i = 0; i < 4; i++) {
    const s = 11 + 16 * i;
    result += mul128Fold64(
      acc[2 * i] ^ secret.getBigUint64(s, true),
      acc[2 * i + 1] ^ secret.getBigUint64(s + 8, true),
    );
  }
  return avalanche(result & M64);
}

/**
 * XXH3-64 of `input` with `seed` (`XXH3_64bits_withSeed`; seed 0 is
 * `XXH3_64bits`), as an unsigned 64-bit `bigint`.
 */
export function xxh3_64(input: Uint8Array, seed: bigint = 0n): bigint {
  const k = keyed(seed & M64);
  const length = input.length;
  const data = new DataView(input.buffer, input.byteOffset, length);
  if (length <= 16) return len0to16(data, length, k);
  if (length <= 128) return len17to128(data, length, k);
  if (length <= 240) return len129to240(data, length, k);
  return hashLong(data, length, k.long);
}
