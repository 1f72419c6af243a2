/**
 * Placement as memcached's built-in proxy places keys in an `mcp.pool` by
 * default: XXH3-64 of the key's bytes (with the pool's seed: 0, or
 * `XXH3_64bits` of the pool's `seed` string), then jump consistent hashing
 * (Lamping & Veach) over the pool's backends in the order listed, computed
 * as the proxy's `proxy_jump_hash.c` does (a 64-bit LCG, the bucket
 * arithmetic in doubles).
 *
 * @module
 */

import type { Hasher } from "./_rendezvous.ts";
import { xxh3_64, xxh3_64Split } from "./_xxh3.ts";

const encoder = new TextEncoder();
const LCG_H = 0x27bb2ee6, LCG_L = 0x87b0b0fd; // 2862933555777941757

/**
 * The bucket (0 ≤ bucket < `buckets`) jump consistent hashing gives the
 * 64-bit hash `high:low` (unsigned 32-bit halves); -1 for no buckets.
 */
export function jumpBucketSplit(high: number, low: number, buckets: number): number {
  let b = -1;
  let j = 0;
  while (j < buckets) {
    b = j;
    // hash = hash * 2862933555777941757 + 1 (mod 2^64), in 16-bit pieces.
    const a0 = low & 0xffff, a1 = low >>> 16, b0 = LCG_L & 0xffff, b1 = LCG_L >>> 16;
    const p00 = a0 * b0, p01 = a0 * b1, p10 = a1 * b0;
    const mid = (p00 >>> 16) + (p01 & 0xffff) + (p10 & 0xffff);
    const lo = ((mid << 16) | (p00 & 0xffff)) >>> 0;
    const hi = a1 * b1 + (p01 >>> 16) + (p10 >>> 16) + Math.floor(mid / 65536) + Math.imul(high, LCG_L) +
      Math.imul(low, LCG_H);
    low = (lo + 1) >>> 0;
    high = (hi + (low === 0 ? 1 : 0)) >>> 0;
    j = Math.floor((b + 1) * (2147483648 / ((high >>> 1) + 1))); // (hash >> 33) + 1, in doubles as the proxy
  }
  return b;
}

/** {@linkcode jumpBucketSplit} of a `bigint` hash (modulo 2^64). */
export function jumpBucket(hash: bigint, buckets: number): number {
  const h = BigInt.asUintN(64, hash);
  return jumpBucketSplit(Number(h >> 32n), Number(h & 0xffffffffn), buckets);
}

/** The hash seed a proxy pool with `seed = "<text>"` uses: `XXH3_64bits` of the text; 0 without one. */
export function poolSeed(seed: string | undefined): bigint {
  return seed === undefined ? 0n : xxh3_64(encoder.encode(seed));
}

/**
 * Keys placed as by a proxy pool over `nodes` in that order. Keys are
 * hashed as the UTF-8 bytes of the string given (the wire key). A removed
 * node (failover) leaves the order and the others close up; added back,
 * it takes its old place again, so the ring is the pool's once more.
 */
export class JumpHash implements Hasher {
  /** Every node ever added, in order. */
  readonly #order: string[];
  readonly #out = new Set<string>();
  /** The nodes in the ring, in order. */
  #live: string[] = [];
  readonly seed: bigint;
  readonly #seedHigh: number;
  readonly #seedLow: number;
  readonly #hash = new Uint32Array(2);

  constructor(nodes: Iterable<string> = [], seed = 0n) {
    this.seed = BigInt.asUintN(64, seed);
    this.#seedHigh = Number(this.seed >> 32n);
    this.#seedLow = Number(this.seed & 0xffffffffn);
    this.#order = [...new Set(nodes)];
    this.#live = [...this.#order];
  }

  /** The nodes in the ring, in order. */
  get nodes(): readonly string[] {
    return this.#live;
  }

  addNode(node: string): void {
    if (!this.#order.includes(node)) this.#order.push(node);
    this.#out.delete(node);
    this.#live = this.#order.filter((n) => !this.#out.has(n));
  }

  removeNode(node: string): void {
    if (!this.#order.includes(node)) return;
    this.#out.add(node);
    this.#live = this.#order.filter((n) => !this.#out.has(n));
  }

  getNode(key: string): string | null {
    const live = this.#live;
    if (live.length === 0) return null;
    xxh3_64Split(encoder.encode(key), this.#seedHigh, this.#seedLow, this.#hash);
    return live[jumpBucketSplit(this.#hash[0], this.#hash[1], live.length)];
  }
}
