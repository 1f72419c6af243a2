/**
 * What `compatibleWith` chooses on {@linkcode HashClient} and
 * {@linkcode MemcachedCache}, and how `MemcachedCache` counts under it.
 *
 * - `"pylibmc"`: {@linkcode PickleSerde} with pylibmc's flags, `"modula"` placement;
 * - `"python-memcached"`: its flags, `"crc32"` placement;
 * - `"pymemcache"`: pymemcache's `pickle_serde` flags, `"rendezvous"` placement.
 *
 * @module
 */

import { MemcacheClientError, MemcacheIllegalInputError, MemcacheUnknownCommandError } from "../errors.ts";
import { PickleSerde, type PythonClientName } from "../values/pickle_serde.ts";
import type { Serde } from "../values/serde.ts";

export type { PythonClientName };

/** The placements Python's clients use (besides rendezvous, which pymemcache uses). */
export type PythonHasherName = "modula" | "crc32";

/** `compatibleWith`, checked. */
export function checkCompatibleWith(value: unknown): PythonClientName | undefined {
  if (value === undefined || value === "pylibmc" || value === "python-memcached" || value === "pymemcache") {
    return value;
  }
  throw new TypeError(
    `compatibleWith must be "pylibmc", "python-memcached" or "pymemcache", got ${String(value)}`,
  );
}

/** The serde `compatibleWith` picks. */
export function pythonSerde(name: PythonClientName): Serde {
  return new PickleSerde({ compatibleWith: name });
}

/** The placement `compatibleWith` picks. */
export function pythonHasher(name: PythonClientName): "modula" | "crc32" | "rendezvous" {
  return name === "pylibmc" ? "modula" : name === "python-memcached" ? "crc32" : "rendezvous";
}

const TWO_64 = 1n << 64n;
const MAX_SAFE = BigInt(Number.MAX_SAFE_INTEGER);
const REPLY = { noreply: false } as const;
const ATTEMPTS = 10;

function narrow(n: bigint): number | bigint {
  return n >= -MAX_SAFE && n <= MAX_SAFE ? Number(n) : n;
}

/** The integer a value read back stands for in Python arithmetic (`bool` is an `int` there), or `null`. */
function integerOf(value: unknown): bigint | null {
  if (typeof value === "bigint") return value;
  if (typeof value === "number" && Number.isInteger(value)) return BigInt(value);
  if (typeof value === "boolean") return value ? 1n : 0n;
  return null;
}

/** The client calls a counter needs (a subset of `CacheClientLike`). */
export interface CounterClient {
  gets(key: string): Promise<[unknown, string | null]>;
  add(key: string, value: unknown, options?: { expire?: number; noreply?: boolean }): Promise<boolean>;
  cas(
    key: string,
    value: unknown,
    cas: string,
    options?: { expire?: number; noreply?: boolean },
  ): Promise<boolean | null>;
  incr(key: string, value: number | bigint, options?: { noreply?: boolean }): Promise<number | bigint | null>;
}

/**
 * `MemcachedCache.inc`/`dec` under `compatibleWith`: integers are stored as
 * Python writes them (decimal, any size, negative ones with a minus sign).
 * While the value stays within 0..2^64−1 this is one atomic `incr` (a
 * decrement is `incr` by 2^64 − d, which memcached wraps). A result outside
 * that range, or a stored value memcached cannot `incr` (negative, or
 * pickled), is counted as cachelib does, read then write (with cas, so a
 * concurrent write is not lost, but not atomic as a whole).
 *
 * @returns the new value; `null` if other clients kept changing the key.
 */
export async function countPython(
  client: CounterClient,
  key: string,
  delta: bigint,
  expire: number,
): Promise<number | bigint | null> {
  const options = { expire, noreply: false };
  for (let attempt = 0; attempt < ATTEMPTS; attempt++) {
    const magnitude = delta < 0n ? -delta : delta;
    if (magnitude < TWO_64) {
      const step = delta < 0n ? TWO_64 - magnitude : delta; // 2^64 − d: memcached's incr wraps modulo 2^64
      let result: number | bigint | null;
      try {
        result = await client.incr(key, step, REPLY);
      } catch (error) {
        // memcached refuses a value that is not unsigned decimal: count it by reading.
        if (
          !(error instanceof MemcacheClientError) || error instanceof MemcacheIllegalInputError ||
          error instanceof MemcacheUnknownCommandError
        ) throw error;
        const counted = await readThenWrite(client, key, delta, options, error);
        if (counted !== undefined) return counted;
        continue;
      }
      if (result === null) {
        if (await client.add(key, narrow(delta), options)) return narrow(delta);
        continue; // created meanwhile: incr again
      }
      const r = BigInt(result);
      // Wrapped past 2^64 − 1 (an increment) or below 0 (a decrement): the
      // exact value is r ± 2^64; write it as Python would.
      const wrapped = delta >= 0n ? (r < delta ? r + TWO_64 : null) : (r >= TWO_64 - magnitude ? r - TWO_64 : null);
      if (wrapped === null) return narrow(r);
      await fixWrapped(client, key, r, wrapped, options);
      return narrow(wrapped);
    }
    const counted = await readThenWrite(client, key, delta, options, null);
    if (counted !== undefined) return counted;
  }
  return null;
}

/** One gets/cas round: the stored integer plus `delta`; `undefined`: try again. */
async function readThenWrite(
  client: CounterClient,
  key: string,
  delta: bigint,
  options: { expire: number; noreply: boolean },
  refused: Error | null,
): Promise<number | bigint | undefined> {
  const [value, cas] = await client.gets(key);
  if (cas === null) {
    if (await client.add(key, narrow(delta), options)) return narrow(delta);
    return undefined;
  }
  const current = integerOf(value);
  if (current === null) {
    throw refused ?? new MemcacheClientError(`Cannot count ${key}: its value is not an integer`);
  }
  const next = narrow(current + delta);
  return (await client.cas(key, next, cas, options)) === true ? next : undefined;
}

/** Replaces the wrapped value `raw` memcached now holds with the exact one, unless another client changed it. */
async function fixWrapped(
  client: CounterClient,
  key: string,
  raw: bigint,
  exact: bigint,
  options: { expire: number; noreply: boolean },
): Promise<void> {
  const [value, cas] = await client.gets(key);
  if (cas === null || integerOf(value) !== raw) return;
  await client.cas(key, narrow(exact), cas, options);
}
