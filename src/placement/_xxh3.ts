/**
 * XXH3-64 (xxHash 0.8's 64-bit XXH3), as memcached's proxy places keys with
 * it: `xxh3_64(bytes, seed)` is `XXH3_64bits_withSeed`, and with seed 0 it
 * is `XXH3_64bits`. Every length class: 0–16 bytes, 17–128, 129–240, and
 * over 240 (stripes of 64 bytes accumulated in blocks of 1,024, with the
 * secret derived from the seed as XXH3's `initCustomSecret` does).
 *
 * No `bigint` on the hashing path: a 64-bit lane is two unsigned 32-bit
 * halves, and the helpers below leave their 64-bit result in the module's
 * registers `H` (high half) and `L` (low half). Products are built from
 * 16-bit pieces, so every intermediate is exact in a double.
 *
 * @module
 */

/** The result registers of the 64-bit helpers. */
let H = 0;
let L = 0;

const TWO_32 = 4294967296;

/** H:L = a × b (32 × 32 → 64 bits). */
function mul32(a: number, b: number): void {
  const a0 = a & 0xffff, a1 = a >>> 16, b0 = b & 0xffff, b1 = b >>> 16;
  const p00 = a0 * b0, p01 = a0 * b1, p10 = a1 * b0, p11 = a1 * b1;
  const mid = (p00 >>> 16) + (p01 & 0xffff) + (p10 & 0xffff);
  L = ((mid << 16) | (p00 & 0xffff)) >>> 0;
  H = (p11 + (p01 >>> 16) + (p10 >>> 16) + Math.floor(mid / 65536)) >>> 0;
}

/** H:L = a × b mod 2^64. */
function mul64(ah: number, al: number, bh: number, bl: number): void {
  mul32(al, bl);
  H = (H + Math.imul(ah, bl) + Math.imul(al, bh)) >>> 0;
}

/** H:L = a + b mod 2^64. */
function add64(ah: number, al: number, bh: number, bl: number): void {
  const lo = al + bl;
  L = lo >>> 0;
  H = (ah + bh + (lo >= TWO_32 ? 1 : 0)) >>> 0;
}

/** H:L = a − b mod 2^64. */
function sub64(ah: number, al: number, bh: number, bl: number): void {
  const lo = al - bl;
  L = lo >>> 0;
  H = (ah - bh - (lo < 0 ? 1 : 0)) >>> 0;
}

/** H:L = the low 64 bits of the 128-bit a × b, xor its high 64 bits (`XXH3_mul128_fold64`). */
function fold(ah: number, al: number, bh: number, bl: number): void {
  mul32(al, bl);
  const w0 = L, llh = H;
  mul32(al, bh);
  const lhl = L, lhh = H;
  mul32(ah, bl);
  const hll = L, hlh = H;
  mul32(ah, bh);
  const cross = llh + lhl + hll;
  const w1 = cross >>> 0;
  const upper = L + lhh + hlh + Math.floor(cross / TWO_32);
  const w2 = upper >>> 0;
  const w3 = (H + Math.floor(upper / TWO_32)) >>> 0;
  H = (w1 ^ w3) >>> 0;
  L = (w0 ^ w2) >>> 0;
}

function swap32(x: number): number {
  return ((x << 24) | ((x & 0xff00) << 8) | ((x >>> 8) & 0xff00) | (x >>> 24)) >>> 0;
}

/** Little-endian u32 of `b` at `o`. */
function u32(b: Uint8Array, o: number): number {
  return (b[o] | (b[o + 1] << 8) | (b[o + 2] << 16) | (b[o + 3] << 24)) >>> 0;
}

const P32_1 = 0x9e3779b1, P32_2 = 0x85ebca77, P32_3 = 0xc2b2ae3d;
const P64_1H = 0x9e3779b1, P64_1L = 0x85ebca87;
const P64_2H = 0xc2b2ae3d, P64_2L = 0x27d4eb4f;
const P64_3H = 0x165667b1, P64_3L = 0x9e3779f9;
const P64_4H = 0x85ebca77, P64_4L = 0xc2b2ae63;
const P64_5H = 0x27d4eb2f, P64_5L = 0x165667c5;
const MX1H = 0x16566791, MX1L = 0x9e3779f9;
const MX2H = 0x9fb21c65, MX2L = 0x1e98df25;

/** XXH3's default secret (192 bytes), `XXH3_kSecret`. */
// deno-fmt-ignore
const K_SECRET = new Uint8Array([
  0xb8, 0xfe, 0x6c, 0x39, 0x23, 0xa4, 0x4b, 0xbe, 0x7c, 0x01, 0x81, 0x2c, 0xf7, 0x21, 0xad, 0x1c,
  0xde, 0xd4, 0x6d, 0xe9, 0x83, 0x90, 0x97, 0xdb, 0x72, 0x40, 0xa4, 0xa4, 0xb7, 0xb3, 0x67, 0x1f,
  0xcb, 0x79, 0xe6, 0x4e, 0xcc, 0xc0, 0xe5, 0x78, 0x82, 0x5a, 0xd0, 0x7d, 0xcc, 0xff, 0x72, 0x21,
  0xb8, 0x08, 0x46, 0x74, 0xf7, 0x43, 0x24, 0x8e, 0xe0, 0x35, 0x90, 0xe6, 0x81, 0x3a, 0x26, 0x4c,
  0x3c, 0x28, 0x52, 0xbb, 0x91, 0xc3, 0x00, 0xcb, 0x88, 0xd0, 0x65, 0x8b, 0x1b, 0x53, 0x2e, 0xa3,
  0x71, 0x64, 0x48, 0x97, 0xa2, 0x0d, 0xf9, 0x4e, 0x38, 0x19, 0xef, 0x46, 0xa9, 0xde, 0xac, 0xd8,
  0xa8, 0xfa, 0x76, 0x3f, 0xe3, 0x9c, 0x34, 0x3f, 0xf9, 0xdc, 0xbb, 0xc7, 0xc7, 0x0b, 0x4f, 0x1d,
  0x8a, 0x51, 0xe0, 0x4b, 0xcd, 0xb4, 0x59, 0x31, 0xc8, 0x9f, 0x7e, 0xc9, 0xd9, 0x78, 0x73, 0x64,
  0xea, 0xc5, 0xac, 0x83, 0x34, 0xd3, 0xeb, 0xc3, 0xc5, 0x81, 0xa0, 0xff, 0xfa, 0x13, 0x63, 0xeb,
  0x17, 0x0d, 0xdd, 0x51, 0xb7, 0xf0, 0xda, 0x49, 0xd3, 0x16, 0x55, 0x26, 0x29, 0xd4, 0x68, 0x9e,
  0x2b, 0x16, 0xbe, 0x58, 0x7d, 0x47, 0xa1, 0xfc, 0x8f, 0xf8, 0xb8, 0xd1, 0x7a, 0xd0, 0x31, 0xce,
  0x45, 0xcb, 0x3a, 0x8f, 0x95, 0x16, 0x04, 0x28, 0xaf, 0xd7, 0xfb, 0xca, 0xbb, 0x4b, 0x40, 0x7e,
]);
const SECRET_SIZE = 192;
const STRIPE = 64;
const STRIPES_PER_BLOCK = (SECRET_SIZE - STRIPE) / 8; // 16
const BLOCK = STRIPE * STRIPES_PER_BLOCK; // 1024
const OFFSETS = SECRET_SIZE - 7; // u64 reads at byte offsets 0..184

/** A secret's u64 at every byte offset, as high and low halves. */
function words(secret: Uint8Array): [Uint32Array, Uint32Array] {
  const hi = new Uint32Array(OFFSETS), lo = new Uint32Array(OFFSETS);
  for (let i = 0; i < OFFSETS; i++) {
    lo[i] = u32(secret, i);
    hi[i] = u32(secret, i + 4);
  }
  return [hi, lo];
}

const [KH, KL] = words(K_SECRET);

/** What a seed makes of the secret: its words plus and minus the seed (mid sizes), and the long-input secret. */
interface Seeded {
  sh: number;
  sl: number;
  plusH: Uint32Array;
  plusL: Uint32Array;
  minusH: Uint32Array;
  minusL: Uint32Array;
  longH: Uint32Array;
  longL: Uint32Array;
}

function seeded(sh: number, sl: number): Seeded {
  const plusH = new Uint32Array(OFFSETS), plusL = new Uint32Array(OFFSETS);
  const minusH = new Uint32Array(OFFSETS), minusL = new Uint32Array(OFFSETS);
  for (let i = 0; i < OFFSETS; i++) {
    add64(KH[i], KL[i], sh, sl);
    plusH[i] = H;
    plusL[i] = L;
    sub64(KH[i], KL[i], sh, sl);
    minusH[i] = H;
    minusL[i] = L;
  }
  let longH = KH, longL = KL;
  if (sh !== 0 || sl !== 0) {
    // XXH3_initCustomSecret: of each 16 bytes, the first word plus the seed, the second minus it.
    const custom = new Uint8Array(SECRET_SIZE);
    const view = new DataView(custom.buffer);
    for (let i = 0; i < SECRET_SIZE; i += 16) {
      view.setUint32(i, plusL[i], true);
      view.setUint32(i + 4, plusH[i], true);
      view.setUint32(i + 8, minusL[i + 8], true);
      view.setUint32(i + 12, minusH[i + 8], true);
    }
    [longH, longL] = words(custom);
  }
  return { sh, sl, plusH, plusL, minusH, minusL, longH, longL };
}

let last: Seeded = seeded(0, 0);

/** H:L = XXH3's final mix (`XXH3_avalanche`) of h:l. */
function avalanche(h: number, l: number): void {
  mul64(h, (l ^ (h >>> 5)) >>> 0, MX1H, MX1L);
  L = (L ^ H) >>> 0;
}

/** H:L = XXH64's final mix of h:l. */
function avalanche64(h: number, l: number): void {
  mul64(h, (l ^ (h >>> 1)) >>> 0, P64_2H, P64_2L);
  mul64((H ^ (H >>> 29)) >>> 0, (L ^ ((L >>> 29) | (H << 3))) >>> 0, P64_3H, P64_3L);
  L = (L ^ H) >>> 0;
}

/** H:L = XXH3's rrmxmx mix of h:l for an input of `length` bytes. */
function rrmxmx(h: number, l: number, length: number): void {
  const h2 = (h ^ ((l << 17) | (h >>> 15)) ^ ((h << 24) | (l >>> 8))) >>> 0; // rotl 49, rotl 24
  const l2 = (l ^ ((h << 17) | (l >>> 15)) ^ ((l << 24) | (h >>> 8))) >>> 0;
  mul64(h2, l2, MX2H, MX2L);
  const mh = H, ml = L;
  add64(0, mh >>> 3, 0, length); // (h >> 35) + len
  mul64((mh ^ H) >>> 0, (ml ^ L) >>> 0, MX2H, MX2L);
  L = (L ^ ((L >>> 28) | (H << 4))) >>> 0;
  H = (H ^ (H >>> 28)) >>> 0;
}

function len0to16(b: Uint8Array, length: number, s: Seeded): void {
  const { sh, sl } = s;
  if (length > 8) {
    // lo = input[0..8) ^ ((secret[24] ^ secret[32]) + seed); hi = input[len-8..) ^ ((secret[40] ^ secret[48]) - seed)
    add64((KH[24] ^ KH[32]) >>> 0, (KL[24] ^ KL[32]) >>> 0, sh, sl);
    const loH = (u32(b, 4) ^ H) >>> 0, loL = (u32(b, 0) ^ L) >>> 0;
    sub64((KH[40] ^ KH[48]) >>> 0, (KL[40] ^ KL[48]) >>> 0, sh, sl);
    const hiH = (u32(b, length - 4) ^ H) >>> 0, hiL = (u32(b, length - 8) ^ L) >>> 0;
    fold(loH, loL, hiH, hiL);
    const fh = H, fl = L;
    add64(0, length, swap32(loL), swap32(loH));
    add64(H, L, hiH, hiL);
    add64(H, L, fh, fl);
    return avalanche(H, L);
  }
  if (length >= 4) {
    const seedH = (sh ^ swap32(sl)) >>> 0;
    sub64((KH[8] ^ KH[16]) >>> 0, (KL[8] ^ KL[16]) >>> 0, seedH, sl);
    return rrmxmx((u32(b, 0) ^ H) >>> 0, (u32(b, length - 4) ^ L) >>> 0, length);
  }
  if (length > 0) {
    const combined = ((b[0] << 16) | (b[length >> 1] << 24) | b[length - 1] | (length << 8)) >>> 0;
    add64(0, (KL[0] ^ KH[0]) >>> 0, sh, sl); // u32 at 0 xor u32 at 4, plus the seed
    return avalanche64(H, (combined ^ L) >>> 0);
  }
  avalanche64((sh ^ KH[56] ^ KH[64]) >>> 0, (sl ^ KL[56] ^ KL[64]) >>> 0);
}

/** Adds `XXH3_mix16B(input + at, secret + s, seed)` to accH:accL; leaves the sum in H:L. */
function mix16(b: Uint8Array, at: number, s: number, k: Seeded, accH: number, accL: number): void {
  fold(
    (u32(b, at + 4) ^ k.plusH[s]) >>> 0,
    (u32(b, at) ^ k.plusL[s]) >>> 0,
    (u32(b, at + 12) ^ k.minusH[s + 8]) >>> 0,
    (u32(b, at + 8) ^ k.minusL[s + 8]) >>> 0,
  );
  add64(accH, accL, H, L);
}

function len17to128(b: Uint8Array, length: number, k: Seeded): void {
  mul64(0, length, P64_1H, P64_1L);
  if (length > 32) {
    if (length > 64) {
      if (length > 96) {
        mix16(b, 48, 96, k, H, L);
        mix16(b, length - 64, 112, k, H, L);
      }
      mix16(b, 32, 64, k, H, L);
      mix16(b, length - 48, 80, k, H, L);
    }
    mix16(b, 16, 32, k, H, L);
    mix16(b, length - 32, 48, k, H, L);
  }
  mix16(b, 0, 0, k, H, L);
  mix16(b, length - 16, 16, k, H, L);
  avalanche(H, L);
}

function len129to240(b: Uint8Array, length: number, k: Seeded): void {
  mul64(0, length, P64_1H, P64_1L);
  for (let i = 0; i < 8; i++) mix16(b, 16 * i, 16 * i, k, H, L);
  avalanche(H, L);
  const rounds = length >> 4;
  for (let i = 8; i < rounds; i++) mix16(b, 16 * i, 16 * (i - 8) + 3, k, H, L);
  mix16(b, length - 16, 136 - 17, k, H, L);
  avalanche(H, L);
}

/** `XXH3_accumulate_512`: one 64-byte stripe at `at` into the 8 lanes (hi at 2i, lo at 2i + 1). */
function stripe(acc: Uint32Array, b: Uint8Array, at: number, sh: Uint32Array, sl: Uint32Array, s: number): void {
  for (let i = 0; i < 8; i++) {
    const dl = u32(b, at + 8 * i), dh = u32(b, at + 8 * i + 4);
    const j = 2 * (i ^ 1);
    add64(acc[j], acc[j + 1], dh, dl);
    acc[j] = H;
    acc[j + 1] = L;
    mul32((dl ^ sl[s + 8 * i]) >>> 0, (dh ^ sh[s + 8 * i]) >>> 0);
    add64(acc[2 * i], acc[2 * i + 1], H, L);
    acc[2 * i] = H;
    acc[2 * i + 1] = L;
  }
}

/** `XXH3_scrambleAcc` with the secret's last 64 bytes. */
function scramble(acc: Uint32Array, sh: Uint32Array, sl: Uint32Array): void {
  const s = SECRET_SIZE - STRIPE;
  for (let i = 0; i < 8; i++) {
    const ah = acc[2 * i], al = acc[2 * i + 1];
    mul64((ah ^ sh[s + 8 * i]) >>> 0, (al ^ (ah >>> 15) ^ sl[s + 8 * i]) >>> 0, 0, P32_1); // (acc ^ acc >> 47 ^ key) * P32_1
    acc[2 * i] = H;
    acc[2 * i + 1] = L;
  }
}

const lanes = new Uint32Array(16);
/** The lanes' starting values (`XXH3_INIT_ACC`), each as high, low. */
// deno-fmt-ignore
const INITIAL_LANES = Uint32Array.of(
  0, P32_3, P64_1H, P64_1L, P64_2H, P64_2L, P64_3H, P64_3L, P64_4H, P64_4L, 0, P32_2, P64_5H, P64_5L, 0, P32_1,
);

function hashLong(b: Uint8Array, length: number, k: Seeded): void {
  const acc = lanes;
  acc.set(INITIAL_LANES);
  const sh = k.longH, sl = k.longL;
  const blocks = Math.floor((length - 1) / BLOCK);
  for (let n = 0; n < blocks; n++) {
    for (let i = 0; i < STRIPES_PER_BLOCK; i++) stripe(acc, b, n * BLOCK + i * STRIPE, sh, sl, i * 8);
    scramble(acc, sh, sl);
  }
  const stripes = Math.floor((length - 1 - BLOCK * blocks) / STRIPE);
  for (let i = 0; i < stripes; i++) stripe(acc, b, blocks * BLOCK + i * STRIPE, sh, sl, i * 8);
  stripe(acc, b, length - STRIPE, sh, sl, SECRET_SIZE - STRIPE - 7); // the last stripe
  mul64(0, length, P64_1H, P64_1L);
  for (let i = 0; i < 4; i++) {
    const rh = H, rl = L, s = 11 + 16 * i;
    fold(
      (acc[4 * i] ^ sh[s]) >>> 0,
      (acc[4 * i + 1] ^ sl[s]) >>> 0,
      (acc[4 * i + 2] ^ sh[s + 8]) >>> 0,
      (acc[4 * i + 3] ^ sl[s + 8]) >>> 0,
    );
    add64(rh, rl, H, L);
  }
  avalanche(H, L);
}

/**
 * XXH3-64 of `input` with the seed `seedHigh:seedLow` (unsigned 32-bit
 * halves), written to `out` as `[high, low]`.
 */
export function xxh3_64Split(input: Uint8Array, seedHigh: number, seedLow: number, out: Uint32Array): void {
  const k = last.sh === seedHigh && last.sl === seedLow ? last : (last = seeded(seedHigh >>> 0, seedLow >>> 0));
  const length = input.length;
  if (length <= 16) len0to16(input, length, k);
  else if (length <= 128) len17to128(input, length, k);
  else if (length <= 240) len129to240(input, length, k);
  else hashLong(input, length, k);
  out[0] = H;
  out[1] = L;
}

const result = new Uint32Array(2);
const M64 = (1n << 64n) - 1n;

/**
 * XXH3-64 of `input` with `seed` (`XXH3_64bits_withSeed`; seed 0 is
 * `XXH3_64bits`; read modulo 2^64), as an unsigned 64-bit `bigint`.
 */
export function xxh3_64(input: Uint8Array, seed: bigint = 0n): bigint {
  const s = seed & M64;
  xxh3_64Split(input, Number(s >> 32n), Number(s & 0xffffffffn), result);
  return (BigInt(result[0]) << 32n) | BigInt(result[1]);
}
