/**
 * Herd: `deno task bench:herd`. A hot key expires and 1,000 callers ask for
 * it at once, spread over 4 clients (as 4 processes would be), each miss
 * answered by a 5 ms loader; repeated for ROUNDS rounds. Compares
 * `getOrSet` with the naive `get`, then on a miss load and `set`. Reports
 * loader runs per round and the callers' latency (p50, p99, max), for two
 * databases behind the loader: one that takes any number of queries at
 * once (each 5 ms), and one with 10 connections (queries beyond 10 queue,
 * as a real pool does). Starts its own memcached on a free port.
 *
 *   HERD_ROUNDS=20 HERD_CALLERS=1000 HERD_CLIENTS=4 HERD_LOAD_MS=5
 */
import process from "node:process";
import { Client } from "../mod.ts";
import { startMemcached } from "../tests/_support/_memcached.ts";

const env = (name: string, fallback: number) => Number(process.env[name] ?? fallback);
const ROUNDS = env("HERD_ROUNDS", 20);
const CALLERS = env("HERD_CALLERS", 1000);
const CLIENTS = env("HERD_CLIENTS", 4);
const LOAD_MS = env("HERD_LOAD_MS", 5);

const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

/** A database: each query takes LOAD_MS; at most `connections` run at once, the rest queue. */
function database(connections: number) {
  let busy = 0;
  const queue: (() => void)[] = [];
  const db = {
    queries: 0,
    async query(key: string): Promise<string> {
      db.queries++;
      if (busy >= connections) await new Promise<void>((resolve) => queue.push(resolve));
      busy++;
      try {
        await sleep(LOAD_MS);
        return `row of ${key} `.repeat(8);
      } finally {
        busy--;
        queue.shift()?.();
      }
    },
  };
  return db;
}

type Strategy = (client: Client, key: string, load: (key: string) => Promise<string>) => Promise<unknown>;

const naive: Strategy = async (client, key, load) => {
  const hit = await client.get(key);
  if (hit !== null) return hit;
  const value = await load(key);
  await client.set(key, value, { expire: 60, noreply: false });
  return value;
};

const getOrSet: Strategy = (client, key, load) => client.getOrSet(key, load, { ttl: 60 });

function percentile(sorted: number[], p: number): number {
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))];
}

async function run(spec: string, strategy: Strategy, connections: number) {
  const clients = Array.from({ length: CLIENTS }, () => new Client(spec));
  await Promise.all(clients.map((c) => c.version()));
  const latencies: number[] = [];
  const runs: number[] = [];
  try {
    for (let round = 0; round < ROUNDS; round++) {
      const key = `herd:${round}`;
      await clients[0].delete(key, { noreply: false }); // the hot key just expired
      const db = database(connections);
      const load = (k: string) => db.query(k);
      await Promise.all(Array.from({ length: CALLERS }, async (_, i) => {
        const start = performance.now();
        await strategy(clients[i % CLIENTS], key, load);
        latencies.push(performance.now() - start);
      }));
      runs.push(db.queries);
    }
  } finally {
    await Promise.all(clients.map((c) => c.close()));
  }
  latencies.sort((a, b) => a - b);
  return {
    runs: runs.reduce((a, b) => a + b, 0) / runs.length,
    p50: percentile(latencies, 50),
    p99: percentile(latencies, 99),
    max: latencies[latencies.length - 1],
  };
}

await using server = await startMemcached();
const ms = (n: number) => n.toFixed(1);
console.log(
  `Herd: ${CALLERS} callers over ${CLIENTS} clients on one just-expired key, ${LOAD_MS} ms loader, ${ROUNDS} rounds ` +
    `(${process.versions.deno ? "Deno " + process.versions.deno : "Node " + process.version})\n`,
);
console.log("| database | strategy | loader runs / round | p50 ms | p99 ms | max ms |");
console.log("| --- | --- | ---: | ---: | ---: | ---: |");
for (const [dbName, connections] of [["unlimited", Infinity], ["10 connections", 10]] as const) {
  for (const [name, strategy] of [["naive get, then set", naive], ["getOrSet", getOrSet]] as const) {
    await run(server.spec, strategy, connections); // warm-up round set
    const r = await run(server.spec, strategy, connections);
    console.log(`| ${dbName} | ${name} | ${r.runs} | ${ms(r.p50)} | ${ms(r.p99)} | ${ms(r.max)} |`);
  }
}
