/**
 * Ketama consistent hashing, placing keys exactly as libmemcached's
 * weighted ketama (`MEMCACHED_BEHAVIOR_KETAMA_WEIGHTED`, equal weights):
 *
 * - each live server gets `floor(pct * 160 / 4 * live + 1e-10) * 4` points,
 *   computed in 32-bit floats as libmemcached does (`pct` = 1 / live);
 * - point labels are `"<host>-<i>"` on port 11211 and `"<host>:<port>-<i>"`
 *   otherwise (a unix socket is `"<path>:0-<i>"`), for i = 0, 1, ...;
 *   each label's MD5 gives four points, one per 4-byte little-endian word;
 * - points are sorted by value, then by the server's position in the list;
 * - a key goes to the first point at or after the first 4 bytes of its
 *   MD5 (little endian), wrapping to the first point.
 *
 * @module
 */

import { md5 } from "./_md5.ts";
import type { Hasher } from "./_rendezvous.ts";

/** libmemcached's MEMCACHED_POINTS_PER_SERVER_KETAMA. */
const POINTS_PER_SERVER = 160;
const DEFAULT_PORT = 11211;
const encoder = new TextEncoder();
const f32 = Math.fround;

/** A server on the ring: its node name, and the host and port libmemcached would label it with. */
export interface KetamaServer {
  /** The name {@linkcode Hasher.getNode} returns for it. */
  node: string;
  /** Host name or address as configured, or the unix socket path. */
  host: string;
  /** TCP port; 0 for a unix socket. */
  port: number;
}

/** How many points each of `live` equally weighted servers gets. */
export function ketamaPoints(live: number): number {
  const pct = f32(f32(1) / f32(live));
  // (float)(pct * 160 / 4 * (float)live + 0.0000000001F), every step in float
  const x = f32(f32(f32(f32(pct * POINTS_PER_SERVER) / 4) * f32(live)) + f32(0.0000000001));
  return Math.floor(x) * 4;
}

/** The first four bytes of `bytes`' MD5 at word `word`, little endian. */
function md5Word(digest: Uint8Array, word: number): number {
  const i = word * 4;
  return (digest[i] | (digest[i + 1] << 8) | (digest[i + 2] << 16) | (digest[i + 3] << 24)) >>> 0;
}

/** libmemcached's MD5 key hash: the digest's first word, little endian. */
export function ketamaKeyHash(key: string): number {
  return md5Word(md5(encoder.encode(key)), 0);
}

/** Weighted ketama over a fixed server list; removed servers leave the ring. */
export class KetamaHash implements Hasher {
  readonly #servers: KetamaServer[];
  readonly #live = new Set<string>();
  #values = new Uint32Array(0);
  #owners: string[] = [];
  #stale = true;

  constructor(servers: Iterable<KetamaServer>) {
    this.#servers = [];
    for (const server of servers) {
      if (this.#servers.some((s) => s.node === server.node)) continue;
      this.#servers.push(server);
      this.#live.add(server.node);
    }
  }

  addNode(node: string): void {
    if (!this.#servers.some((s) => s.node === node)) throw new Error(`Unknown ketama node ${node}`);
    if (!this.#live.has(node)) {
      this.#live.add(node);
      this.#stale = true;
    }
  }

  removeNode(node: string): void {
    if (this.#live.delete(node)) this.#stale = true;
  }

  getNode(key: string): string | null {
    if (this.#stale) this.#rebuild();
    const values = this.#values;
    if (values.length === 0) return null;
    const hash = ketamaKeyHash(key);
    let left = 0;
    let right = values.length;
    while (left < right) {
      const middle = (left + right) >>> 1;
      if (values[middle] < hash) left = middle + 1;
      else right = middle;
    }
    return this.#owners[right === values.length ? 0 : right];
  }

  #rebuild(): void {
    this.#stale = false;
    const live = this.#servers.filter((s) => this.#live.has(s.node));
    const points: { value: number; index: number }[] = [];
    if (live.length > 0) {
      const perServer = ketamaPoints(live.length);
      this.#servers.forEach((server, index) => {
        if (!this.#live.has(server.node)) return;
        const prefix = server.port === DEFAULT_PORT ? server.host : `${server.host}:${server.port}`;
        for (let i = 0; i < perServer / 4; i++) {
          const digest = md5(encoder.encode(`${prefix}-${i}`));
          for (let word = 0; word < 4; word++) points.push({ value: md5Word(digest, word), index });
        }
      });
    }
    points.sort((a, b) => a.value - b.value || a.index - b.index);
    this.#values = Uint32Array.from(points, (p) => p.value);
    this.#owners = points.map((p) => this.#servers[p.index].node);
  }
}
