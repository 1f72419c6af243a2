/**
 * Key placement cost per hasher: `HashClient.serverFor` over 10 servers for
 * 20,000 keys of typical lengths (10–40 bytes), for every `hasher`
 * (rendezvous hashes the key once per server; ketama, modula and crc32
 * once; jump is XXH3-64 plus jump hashing), and XXH3-64 alone by length
 * class (16, 100, 200, 1,000 bytes). Prints each one's best time per key
 * over 7 rounds (the machine's load shows: compare lines of one run).
 *
 *   node_modules/deno/deno run -A bench/hashers.ts
 *   node_modules/.bin/bun bench/hashers.ts
 *
 * @module
 */

import { HashClient } from "../mod.ts";
import { xxh3_64Split } from "../src/placement/_xxh3.ts";
import { murmur3_32Bytes } from "../src/placement/_murmur3.ts";

const ROUNDS = 7;
const servers = Array.from({ length: 10 }, (_, i) => `10.0.0.${i + 1}:11211`);
const keys = Array.from({ length: 20_000 }, (_, i) => `user:${i}:profile${"x".repeat(i % 30)}`);

function best(run: () => void, count: number): number {
  let min = Infinity;
  for (let r = 0; r < ROUNDS; r++) {
    const start = performance.now();
    run();
    min = Math.min(min, performance.now() - start);
  }
  return (min * 1e6) / count; // ns per item
}

let sink = 0;
for (const hasher of ["rendezvous", "ketama", "modula", "crc32", "jump"] as const) {
  const client = new HashClient(servers, { hasher });
  const ns = best(() => {
    for (const key of keys) sink += client.serverFor(key)!.length;
  }, keys.length);
  console.log(`serverFor, hasher ${hasher.padEnd(10)} ${ns.toFixed(0).padStart(6)} ns/key`);
}
for (const length of [16, 100, 200, 1000]) {
  const inputs = Array.from({ length: 2000 }, (_, i) => new TextEncoder().encode(`${i}:`.padEnd(length, "k")));
  const out = new Uint32Array(2);
  const xxh = best(() => {
    for (const input of inputs) {
      xxh3_64Split(input, 0, 7, out);
      sink += out[1] & 1;
    }
  }, inputs.length);
  const murmur = best(() => {
    for (const input of inputs) sink += murmur3_32Bytes(input, 0) & 1;
  }, inputs.length);
  console.log(
    `${String(length).padStart(4)} bytes: xxh3_64 ${xxh.toFixed(0).padStart(6)} ns, murmur3_32 ${
      murmur.toFixed(0).padStart(6)
    } ns`,
  );
}
if (sink === -1) console.log(sink);
