/**
 * Basics of the reliability harnesses (hostile_test.ts, chaos_test.ts,
 * fuzz_replies_test.ts, the fuzz_*_test.ts files, bench/soak.ts): settings
 * from the environment, seeded randomness ({@linkcode Rng} and
 * {@linkcode harnessSeed}: random under `MEMKIT_SEED=random`, the seed
 * printed on failure), {@linkcode guard}, latin1 bytes and self-describing
 * values. The rest of the harness is split by seam, each module importing
 * only from the ones before it:
 *
 * - `_hostile_server.ts`: {@linkcode ServerModel} (memcached in memory),
 *   the request reader and the scripted misbehaving server.
 * - `_hostile_proxy.ts`: the chaos proxy in front of a real memcached.
 * - `_hostile_ledger.ts`: the starvation clock and the {@linkcode Invariants}
 *   ledger every harness checks its calls against (late, hung, wrong, lost,
 *   foreign errors).
 * - `_hostile_load.ts`: the mixed load and the socket and event-loop watchers.
 *
 * Everything here closes what it opens (sockets, timers), for Deno's
 * sanitizers.
 */
import { Buffer } from "node:buffer";
import process from "node:process";

// ---------------------------------------------------------------- settings

/** An integer from the environment, or `fallback`. */
export function envInt(name: string, fallback: number): number {
  const text = process.env[name];
  if (text === undefined || text === "") return fallback;
  const n = Number(text);
  if (!Number.isFinite(n)) throw new Error(`${name} must be a number, not ${JSON.stringify(text)}`);
  return n;
}

/**
 * The seed of a harness: `fallback` by default (deterministic runs), the
 * number in `MEMKIT_SEED`, or a random one with `MEMKIT_SEED=random`.
 */
export function harnessSeed(fallback: number): number {
  const text = process.env.MEMKIT_SEED;
  if (text === undefined || text === "") return fallback;
  if (text === "random") return Math.floor(Math.random() * 0x7fffffff);
  return envInt("MEMKIT_SEED", fallback) >>> 0;
}

/** Runs `body`; a failure is rethrown with the seed in its message, so the run can be repeated. */
export async function withSeed(seed: number, body: () => Promise<void>): Promise<void> {
  try {
    await body();
  } catch (error) {
    const message = error instanceof Error ? error.message : String(error);
    console.error(`# failed with seed ${seed} (repeat with MEMKIT_SEED=${seed})`);
    const wrapped = new Error(`[seed ${seed}, repeat with MEMKIT_SEED=${seed}] ${message}`, { cause: error });
    throw wrapped;
  }
}

/** A small seeded PRNG (mulberry32): the same seed gives the same sequence on every runtime. */
export class Rng {
  #state: number;
  constructor(readonly seed: number) {
    this.#state = seed >>> 0;
  }
  /** A float in [0, 1). */
  next(): number {
    let t = (this.#state = (this.#state + 0x6d2b79f5) >>> 0);
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  }
  /** An integer in [0, n). */
  int(n: number): number {
    return Math.floor(this.next() * n);
  }
  /** An integer in [lo, hi]. */
  range(lo: number, hi: number): number {
    return lo + this.int(hi - lo + 1);
  }
  /** True with probability `p`. */
  chance(p: number): boolean {
    return this.next() < p;
  }
  /** One element of `items`. */
  pick<T>(items: readonly T[]): T {
    return items[this.int(items.length)];
  }
}

/**
 * `promise`'s value, or `"hung"` once `ms` have passed without it settling
 * (its timer cleared either way): a harness must fail, not hang, on code
 * that never settles a call.
 */
export async function guard<T>(promise: Promise<T>, ms: number): Promise<T | "hung"> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const expired = new Promise<"hung">((resolve) => (timer = setTimeout(() => resolve("hung"), ms)));
  try {
    return await Promise.race([promise, expired]);
  } finally {
    clearTimeout(timer);
  }
}

/** Resolves after `ms`; the timer is the caller's to outlive (it always fires). */
export const delay = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/**
 * Text of one char per byte as bytes (node:buffer's latin1 is exact and
 * native), in a plain Uint8Array: a Buffer's slice() would share memory.
 */
const latin1 = (text: string): Uint8Array => {
  const buffer = Buffer.from(text, "latin1");
  return new Uint8Array(buffer.buffer, buffer.byteOffset, buffer.length).slice();
};
/** Bytes as text of one char per byte. */
const fromLatin1 = (bytes: Uint8Array): string =>
  Buffer.from(bytes.buffer, bytes.byteOffset, bytes.length).toString("latin1");
export { fromLatin1, latin1 };

// ---------------------------------------------------------------- self-describing values

/**
 * A value that names its key and the request that wrote it:
 * `v|<key>|<serial>|<filler>|<key>|<serial>` (the tag twice, so no single
 * corrupted byte turns one tag into another).
 */
export function taggedValue(key: string, serial: number, size = 0): string {
  const tag = `${key}|${serial}`;
  const head = `v|${tag}|`;
  const fill = Math.max(0, size - head.length - tag.length - 1);
  return `${head}${"x".repeat(fill)}|${tag}`;
}

/** The key and serial a {@linkcode taggedValue} names, or `undefined` if it is not one. */
export function readTag(value: unknown): { key: string; serial: number } | undefined {
  if (typeof value !== "string" || !value.startsWith("v|")) return undefined;
  const parts = value.split("|");
  if (parts.length < 6) return undefined;
  const [key, serial] = [parts[1], Number(parts[2])];
  if (parts[parts.length - 2] !== key || Number(parts[parts.length - 1]) !== serial) return undefined;
  return { key, serial };
}

/** CPU time this process has used (user + system), in ms. */
export function cpuMs(): number {
  const { user, system } = process.cpuUsage();
  return (user + system) / 1000;
}
