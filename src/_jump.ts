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
import { xxh3_64 } from "./_xxh3.ts";

const M64 = (1n << 64n) - 1n;
const LCG = 2862933555777941757n;
const encoder = new TextEncoder();

/** The bucket (0 ≤ bucket < `buckets`) jump consistent hashing gives `hash`; -1 for no buckets. */
export function jumpBucket(hash: bigint, buckets: number): number {
  let b = -1;
  let j = 0;
  while (j < buckets) {
    b = j;
    hash = (hash * LCG + 1n) & M64;
    j = Math.floor((b + 1) * (2147483648 / (Number(hash >> 33n) + 1)));
  }
  return b;
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

  constructor(nodes: Iterable<string> = [], seed = 0n) {
    this.seed = seed;
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
    return live[jumpBucket(xxh3_64(encoder.encode(key), this.seed), live.length)];
  }
}
