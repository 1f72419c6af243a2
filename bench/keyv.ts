/**
 * Keyv over this package's adapter (`@memkit/memcache/keyv`) against Keyv
 * over `@keyv/memcache` (memjs), in the same run, against one memcached of
 * its own on a free loopback port, in the shapes of bench.ts:
 *
 * - S1: sequential `keyv.get`, 100-byte values (ops/s; p50/p99 µs per call)
 * - S2: 50 concurrent `keyv.get`s (ops/s)
 * - S4: `keyv.get([...100 keys])`, i.e. the store's `getMany` (keys/s)
 *
 * Stores, each under `new Keyv({ store, namespace: "bench" })`:
 * `memkit Client` (KeyvMemcache over a Client), `memkit own` (KeyvMemcache
 * built from the server spec: its own HashClient) and `@keyv/memcache`.
 * Rounds alternate the stores (round-robin, `--rounds` of `--duration` ms
 * each after a warm-up); the table gives medians over rounds.
 *
 * Run on Node (the runtime these Keyv users have):
 *   node_modules/.bin/esbuild bench/keyv.ts --bundle --platform=node --format=esm --target=node20 \
 *     --packages=external --external:./transports/cloudflare.ts --external:./transports/deno.ts \
 *     --outfile=bench/.out/keyv.mjs && node bench/.out/keyv.mjs
 * (the externals keep mod.ts's imports of the other runtimes' transports, never taken on Node, out of the bundle)
 * or on Deno: `node_modules/deno/deno run -A bench/keyv.ts`.
 * Options: --rounds N (5), --duration MS (1000), --warmup MS (500).
 *
 * @module
 */
import process from "node:process";
import Keyv from "keyv";
import KeyvMemjs from "@keyv/memcache";
import { Client } from "../mod.ts";
import { KeyvMemcache } from "../keyv.ts";
import { startMemcached } from "../tests/_support/_memcached.ts";

const arg = (name: string, fallback: number) => {
  const at = process.argv.indexOf(`--${name}`);
  return at === -1 ? fallback : Number(process.argv[at + 1]);
};
const ROUNDS = arg("rounds", 5);
const DURATION = arg("duration", 1000);
const WARMUP = arg("warmup", 500);
const KEYS = 1000;
const CONCURRENCY = 50;
const MANY = 100;
const VALUE = "v".repeat(100);

type Shape = "S1" | "S2" | "S4";
interface Sample {
  value: number;
  p50?: number;
  p99?: number;
}

const key = (i: number) => `k${String(i % KEYS).padStart(5, "0")}`;

async function s1(keyv: Keyv, ms: number): Promise<Sample> {
  const latencies: number[] = [];
  const end = performance.now() + ms;
  let i = 0;
  while (performance.now() < end) {
    const start = performance.now();
    const value = await keyv.get(key(i++));
    latencies.push(performance.now() - start);
    if (value !== VALUE) throw new Error(`S1: wrong value for ${key(i - 1)}`);
  }
  latencies.sort((a, b) => a - b);
  const at = (q: number) => Math.round(latencies[Math.floor(q * (latencies.length - 1))] * 1000);
  return { value: latencies.length / (ms / 1000), p50: at(0.5), p99: at(0.99) };
}

async function s2(keyv: Keyv, ms: number): Promise<Sample> {
  const end = performance.now() + ms;
  let done = 0;
  let i = 0;
  await Promise.all(Array.from({ length: CONCURRENCY }, async () => {
    while (performance.now() < end) {
      if ((await keyv.get(key(i++))) !== VALUE) throw new Error("S2: wrong value");
      done++;
    }
  }));
  return { value: done / (ms / 1000) };
}

async function s4(keyv: Keyv, ms: number): Promise<Sample> {
  const end = performance.now() + ms;
  let keys = 0;
  let batch = 0;
  while (performance.now() < end) {
    const names = Array.from({ length: MANY }, (_, j) => key(batch * MANY + j));
    batch++;
    const values = await keyv.get(names);
    if (values.length !== MANY || values.some((v) => v !== VALUE)) throw new Error("S4: wrong values");
    keys += MANY;
  }
  return { value: keys / (ms / 1000) };
}

const SHAPES: Record<Shape, (keyv: Keyv, ms: number) => Promise<Sample>> = { S1: s1, S2: s2, S4: s4 };

const median = (xs: number[]) => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
};

await using server = await startMemcached({ args: ["-m", "256"] });
await using client = new Client(server.spec);
const stores: Array<[string, Keyv]> = [
  ["memkit Client", new Keyv({ store: new KeyvMemcache(client), namespace: "bench" })],
  ["memkit own", new Keyv({ store: new KeyvMemcache(server.spec), namespace: "bench" })],
  ["@keyv/memcache", new Keyv({ store: new KeyvMemjs(server.spec), namespace: "bench" })],
];
// Each store writes its own copy (key layouts differ), then reads only what it wrote.
for (const [, keyv] of stores) {
  for (let i = 0; i < KEYS; i += 100) {
    await Promise.all(Array.from({ length: 100 }, (_, j) => keyv.set(key(i + j), VALUE)));
  }
}

const results = new Map<string, Sample[]>();
for (const shape of Object.keys(SHAPES) as Shape[]) {
  for (const [, keyv] of stores) await SHAPES[shape](keyv, WARMUP);
  for (let round = 0; round < ROUNDS; round++) {
    for (const [name, keyv] of stores) {
      const sample = await SHAPES[shape](keyv, DURATION);
      const id = `${shape}\t${name}`;
      results.set(id, [...(results.get(id) ?? []), sample]);
    }
  }
}

const runtime = typeof (globalThis as { Deno?: unknown }).Deno === "object" ? "deno" : `node ${process.version}`;
console.log(`# Keyv ${KEYS} keys × 100 B, ${ROUNDS} rounds × ${DURATION} ms, medians; ${runtime}`);
console.log("| shape | store | ops/s (S4: keys/s) | p50 µs | p99 µs |");
console.log("| --- | --- | ---: | ---: | ---: |");
for (const [id, samples] of results) {
  const [shape, name] = id.split("\t");
  const p = (f: "p50" | "p99") => samples[0][f] === undefined ? "" : String(median(samples.map((s) => s[f]!)));
  console.log(
    `| ${shape} | ${name} | ${Math.round(median(samples.map((s) => s.value))).toLocaleString("en")} | ${p("p50")} | ${
      p("p99")
    } |`,
  );
}
for (const [, keyv] of stores) await keyv.disconnect();
