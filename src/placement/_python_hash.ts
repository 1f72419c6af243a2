/**
 * Key placement as Python's memcached clients do it by default, so a
 * {@linkcode HashClient} with the same server list finds their keys:
 *
 * - `"modula"`: libmemcached's default distribution (`MEMCACHED_DISTRIBUTION_MODULA`)
 *   and hash (`MEMCACHED_HASH_DEFAULT`, Bob Jenkins' one-at-a-time), which
 *   pylibmc uses unless given other behaviors: the server at
 *   `oneAtATime(key) % servers`. libmemcached hashes each byte of the UTF-8
 *   key as a C `char`, which is signed on x86-64 and most Linux platforms:
 *   bytes from 0x80 sign-extend, and so they do here (keys with only ASCII
 *   characters are the same on every platform).
 * - `"crc32"`: python-memcached's `cmemcache_hash`,
 *   `((crc32(key) >> 16) & 0x7fff) || 1`, over the UTF-8 key, modulo the
 *   number of servers (each of weight 1).
 *
 * With every server up both are plain modulo placement, so server names do
 * not matter, only their number and order. When a server is dead (out of
 * the ring): `"crc32"` re-hashes as python-memcached does (`str(hash) +
 * str(attempt)`, up to 10 attempts, then no server); `"modula"` places the
 * key modulo the live servers, in the order given.
 *
 * @module
 */

import type { Hasher } from "./_rendezvous.ts";

const encoder = new TextEncoder();

/** libmemcached's `hashkit_one_at_a_time` over `bytes`, each byte read as a signed char. */
export function oneAtATime(bytes: Uint8Array): number {
  let value = 0;
  for (let i = 0; i < bytes.length; i++) {
    const b = bytes[i];
    value = (value + (b < 0x80 ? b : b | 0xffffff00)) | 0;
    value = (value + (value << 10)) | 0;
    value ^= value >>> 6;
  }
  value = (value + (value << 3)) | 0;
  value ^= value >>> 11;
  value = (value + (value << 15)) | 0;
  return value >>> 0;
}

let crcTable: Int32Array | null = null;

/** CRC-32 (zlib's, as Python's `binascii.crc32`) of `bytes`, unsigned. */
export function crc32(bytes: Uint8Array): number {
  if (crcTable === null) {
    crcTable = new Int32Array(256);
    for (let n = 0; n < 256; n++) {
      let c = n;
      for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
      crcTable[n] = c;
    }
  }
  let crc = -1;
  for (let i = 0; i < bytes.length; i++) crc = crcTable[(crc ^ bytes[i]) & 0xff] ^ (crc >>> 8);
  return (crc ^ -1) >>> 0;
}

/** python-memcached's `cmemcache_hash`: 15 bits of the CRC-32, never 0. */
export function cmemcacheHash(bytes: Uint8Array): number {
  return ((crc32(bytes) >>> 16) & 0x7fff) || 1;
}

/** Nodes in a fixed order, some of them out of the ring. */
abstract class ModuloHash implements Hasher {
  protected readonly nodes: string[] = [];
  protected readonly dead = new Set<string>();

  constructor(nodes: Iterable<string>) {
    for (const node of nodes) if (!this.nodes.includes(node)) this.nodes.push(node);
  }

  addNode(node: string): void {
    if (!this.nodes.includes(node)) this.nodes.push(node);
    this.dead.delete(node);
  }

  removeNode(node: string): void {
    if (this.nodes.includes(node)) this.dead.add(node);
  }

  abstract getNode(key: string): string | null;
}

/** libmemcached's default (modula, one-at-a-time), as pylibmc places keys. */
export class ModulaHash extends ModuloHash {
  getNode(key: string): string | null {
    const live = this.dead.size === 0 ? this.nodes : this.nodes.filter((n) => !this.dead.has(n));
    if (live.length === 0) return null;
    if (live.length === 1) return live[0];
    return live[oneAtATime(encoder.encode(key)) % live.length];
  }
}

/** python-memcached's placement (crc32 modulo the servers, re-hashing past dead ones). */
export class Crc32Hash extends ModuloHash {
  getNode(key: string): string | null {
    const { nodes, dead } = this;
    if (nodes.length === 0) return null;
    let hash = cmemcacheHash(encoder.encode(key));
    for (let attempt = 0; attempt < 10; attempt++) {
      const node = nodes[hash % nodes.length];
      if (!dead.has(node)) return node;
      hash = cmemcacheHash(encoder.encode(`${hash}${attempt}`));
    }
    return null;
  }
}

/** The ring for a Python placement, or `null` for another hasher name. */
export function pythonRing(hasher: string, nodes: string[]): Hasher | null {
  if (hasher === "modula") return new ModulaHash(nodes);
  if (hasher === "crc32") return new Crc32Hash(nodes);
  return null;
}
