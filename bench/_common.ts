/**
 * What the orchestrator (bench.ts) and the per-runtime runner (runner.ts)
 * share: the configuration a child gets, the data set, the result shape,
 * and the timing loops every client is measured with.
 *
 * Runtime-neutral: no `Deno.*`, no `node:*`.
 *
 * @module
 */

/** The scenarios of issue 7. */
export type Scenario = "S1" | "S2" | "S3" | "S4" | "S5" | "S6" | "S7";

/** What one child process is asked to measure. */
export interface RunConfig {
  runtime: "node" | "deno" | "bun" | "python";
  client: string;
  scenarios: Scenario[];
  port: number;
  warmupMs: number;
  durationMs: number;
  /** S2/S3: requests in flight. */
  concurrency: number;
  /** S4: keys per getMany call. */
  manyKeys: number;
  /** S5: value size in bytes. */
  bigBytes: number;
  /** S6: operations in total. */
  s6Ops: number;
  /** S6: operations before the first heap sample. */
  s6WarmupOps: number;
}

/** One measurement, printed by a child as `RESULT <json>`. */
export interface Result {
  scenario: Scenario;
  /** ops/s (S1–S3; S7: the small gets), keys/s (S4), MB/s (S5). */
  value?: number;
  /** S5: CPU time of the client's process per set + get round, µs. */
  cpu?: number;
  /** S1, S7 (the small gets): latency percentiles in µs. */
  p50?: number;
  p99?: number;
  /** S6: heap/RSS samples in bytes, taken after a full GC. */
  heap?: number[];
  rss?: number[];
  ops?: number;
  seconds?: number;
}

/** Preloaded keys read by S1, S2 and S4: fixed width, so every raw reply has the same length. */
export const GET_KEYS = 1000;
/** Keys written by S3 (a separate namespace: writers never change what readers' replies look like). */
export const SET_KEYS = 1000;
/** S6 key space. */
export const MIX_KEYS = 10000;
/** Value size of S1–S4 and S6. */
export const VALUE_BYTES = 100;

const pad = (i: number, width: number) => String(i).padStart(width, "0");
/** `bench:k00042` */
export const getKey = (i: number): string => `bench:k${pad(i % GET_KEYS, 5)}`;
/** `bset:k00042` */
export const setKey = (i: number): string => `bset:k${pad(i % SET_KEYS, 5)}`;
/** `mix:k0042` */
export const mixKey = (i: number): string => `mix:k${pad(i % MIX_KEYS, 4)}`;
/** S5's key, one per client so no reader sees another's flags. */
export const bigKey = (client: string): string => `big:${client}`;

/** Deterministic filler bytes. */
export function filler(length: number, seed = 0): Uint8Array {
  const out = new Uint8Array(length);
  for (let i = 0; i < length; i++) out[i] = 97 + ((i + seed) % 26);
  return out;
}

/** The 100-byte value every preloaded and benchmark-written key holds. */
export const VALUE = filler(VALUE_BYTES);

/** `getMany` batches of S4: `manyKeys` consecutive preloaded keys. */
export function manyBatches(manyKeys: number): string[][] {
  const batches: string[][] = [];
  for (let start = 0; start < GET_KEYS; start += manyKeys) {
    const batch: string[] = [];
    for (let i = 0; i < manyKeys; i++) batch.push(getKey(start + i));
    batches.push(batch);
  }
  return batches;
}

export const now = (): number => performance.now();

/**
 * Runs `op` from `concurrency` workers until `ms` have passed, and returns
 * the operations completed and the seconds from start until the last
 * worker finished (in-flight operations complete and count).
 */
export async function timed(
  concurrency: number,
  ms: number,
  op: (i: number) => Promise<unknown>,
): Promise<{ ops: number; seconds: number }> {
  const start = now();
  const deadline = start + ms;
  let ops = 0;
  let stop = false;
  const worker = async (w: number) => {
    let i = w;
    while (!stop) {
      await op(i);
      i += concurrency;
      // The clock is read every 8th operation: cheap, and still bounded.
      if ((++ops & 7) === 0 && now() >= deadline) stop = true;
    }
  };
  const workers: Promise<void>[] = [];
  for (let w = 0; w < concurrency; w++) workers.push(worker(w));
  await Promise.all(workers);
  return { ops, seconds: (now() - start) / 1000 };
}

/** Sequential `op` with per-call latency; returns ops/s and p50/p99 in µs. */
export async function timedLatency(
  ms: number,
  op: (i: number) => Promise<unknown>,
): Promise<{ ops: number; seconds: number; p50: number; p99: number }> {
  const lat: number[] = [];
  const start = now();
  const deadline = start + ms;
  let t = start;
  let i = 0;
  while (t < deadline) {
    await op(i++);
    const t2 = now();
    lat.push(t2 - t);
    t = t2;
  }
  return { ops: i, seconds: (t - start) / 1000, ...percentiles(lat) };
}

/** p50 / p99 of latencies in ms, returned in µs. */
export function percentiles(lat: number[]): { p50: number; p99: number } {
  const sorted = Float64Array.from(lat).sort();
  const at = (q: number) =>
    sorted.length ? sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))] * 1000 : 0;
  return { p50: at(0.5), p99: at(0.99) };
}

/** Throws when a benchmark read did not return the bytes it should (a broken client must not look fast). */
export function checkValue(value: unknown, length: number, what: string): void {
  const got = (value as { length?: number } | null)?.length;
  if (got !== length) throw new Error(`${what}: expected a ${length}-byte value, got ${describe(value)}`);
}

function describe(value: unknown): string {
  if (value === null || value === undefined) return String(value);
  const length = (value as { length?: number }).length;
  return length === undefined ? typeof value : `${typeof value} of length ${length}`;
}
