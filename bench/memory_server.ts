/**
 * MemoryServer against memcached, in one run (the machine is shared and
 * noisy: compare the ratio, not the numbers across runs):
 *
 * - S1: sequential `get` of 100-byte values (1,000 keys), ops/s;
 * - S2: 50 concurrent callers doing sequential `get`s, ops/s;
 *
 * each through `server.transport()` (no socket) and over loopback TCP to a
 * memcached 1.6.18 this script starts, with the runtime's transport.
 * Rounds alternate between the two; medians are reported.
 *
 * `--memory` instead measures what an item costs beyond what `maxBytes`
 * counts (memcached's item size): run with a GC exposed, e.g.
 * `deno run -A --v8-flags=--expose-gc bench/memory_server.ts --memory`
 * or `bun bench/memory_server.ts --memory`.
 *
 *   deno run -A bench/memory_server.ts [--seconds 2] [--rounds 3]
 */
import process from "node:process";
import { Client } from "../mod.ts";
import { MemoryServer } from "../testing.ts";
import { itemSize } from "../src/_memory_store.ts";
import { startMemcached } from "../tests/_memcached.ts";

const arg = (name: string, fallback: number) => {
  const at = process.argv.indexOf(`--${name}`);
  return at >= 0 ? Number(process.argv[at + 1]) : fallback;
};
const SECONDS = arg("seconds", 2);
const ROUNDS = arg("rounds", 3);
const KEYS = Array.from({ length: 1000 }, (_, i) => `bench:${i}`);
const VALUE = new Uint8Array(100).fill(120);

async function fill(client: Client): Promise<void> {
  await client.setMany(Object.fromEntries(KEYS.map((k) => [k, VALUE])), { noreply: false });
}

async function s1(client: Client): Promise<number> {
  const end = performance.now() + SECONDS * 1000;
  let ops = 0;
  const start = performance.now();
  while (performance.now() < end) {
    for (let i = 0; i < 100; i++) await client.get(KEYS[(ops + i) % KEYS.length]);
    ops += 100;
  }
  return ops / ((performance.now() - start) / 1000);
}

async function s2(client: Client): Promise<number> {
  const end = performance.now() + SECONDS * 1000;
  let ops = 0;
  const start = performance.now();
  await Promise.all(Array.from({ length: 50 }, async (_, w) => {
    let i = w * 20;
    while (performance.now() < end) {
      await client.get(KEYS[i++ % KEYS.length]);
      ops++;
    }
  }));
  return ops / ((performance.now() - start) / 1000);
}

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
const fmt = (n: number) => Math.round(n).toLocaleString("en-US");

async function speed(): Promise<void> {
  await using memcached = await startMemcached();
  await using server = new MemoryServer();
  await using real = new Client(memcached.spec);
  await using memory = new Client("memory", { transport: server.transport() });
  await fill(real);
  await fill(memory);
  const results: Record<string, number[]> = {
    "S1 memcached": [],
    "S1 memory": [],
    "S2 memcached": [],
    "S2 memory": [],
  };
  for (let round = 0; round < ROUNDS; round++) {
    results["S1 memcached"].push(await s1(real));
    results["S1 memory"].push(await s1(memory));
    results["S2 memcached"].push(await s2(real));
    results["S2 memory"].push(await s2(memory));
  }
  const runtime = "Deno" in globalThis ? "deno" : "Bun" in globalThis ? "bun" : "node";
  console.log(`runtime ${runtime}, ${ROUNDS} rounds of ${SECONDS} s, medians (ops/s):`);
  for (const s of ["S1", "S2"]) {
    const a = median(results[`${s} memcached`]);
    const b = median(results[`${s} memory`]);
    console.log(
      `  ${s}: memcached over loopback ${fmt(a)}, MemoryServer.transport() ${fmt(b)}: ×${(b / a).toFixed(2)}`,
    );
  }
}

async function memory(): Promise<void> {
  const gc = (globalThis as { gc?: () => void }).gc;
  if (!gc) throw new Error("run with a GC exposed (--v8-flags=--expose-gc, or node --expose-gc)");
  const used = () => {
    gc();
    gc();
    const m = process.memoryUsage();
    return m.heapUsed + m.external;
  };
  const N = 100_000;
  for (const size of [10, 100, 1000]) {
    await using server = new MemoryServer({ maxBytes: 1 << 30 });
    await using client = new Client("memory", { transport: server.transport() });
    const value = new Uint8Array(size).fill(97);
    await client.set("warm", value, { noreply: false });
    const before = used();
    for (let i = 0; i < N; i += 1000) {
      const batch: Record<string, Uint8Array> = {};
      for (let j = i; j < i + 1000; j++) batch[`key:${String(j).padStart(6, "0")}`] = value;
      await client.setMany(batch, { noreply: false });
    }
    const after = used();
    const counted = itemSize(10, 0, size);
    const perItem = (after - before) / N;
    console.log(
      `${size}-byte values: ${perItem.toFixed(0)} bytes of heap per item, ${counted} counted toward maxBytes: ` +
        `${(perItem - counted).toFixed(0)} bytes of overhead`,
    );
  }
}

if (process.argv.includes("--memory")) await memory();
else await speed();
