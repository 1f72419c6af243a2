/**
 * How `MemcachedCache` stores integers so that `inc`/`dec` stay one atomic
 * memcached `incr`, for negative results too.
 *
 * memcached's `incr`/`decr` work on unsigned 64-bit decimal values: `decr`
 * stops at 0 and `incr` on `-5` is a `CLIENT_ERROR`. But `incr` wraps
 * around at 2^64, so unsigned arithmetic modulo 2^64 is exactly signed
 * 64-bit (two's complement) arithmetic. The cache therefore stores every
 * integer it is given in the signed 64-bit range as its two's complement:
 * `5` as `5`, `-5` as `18446744073709551611` (2^64 - 5), both as decimal
 * with the serde's integer flag (2), and reads an integer from 2^63 to
 * 2^64 - 1 back as the negative it stands for. `inc(key, d)` is then
 * `incr key d` and `dec(key, d)` is `incr key 2^64 - d`: one request,
 * atomic on the server, never clamped at 0.
 *
 * @module
 */

import { MemcacheIllegalInputError } from "../errors.ts";

const TWO_63 = 1n << 63n;
const TWO_64 = 1n << 64n;

/** A `bigint` as a `number` when it is exactly representable, else itself. */
export function narrow(value: bigint): number | bigint {
  return value >= -BigInt(Number.MAX_SAFE_INTEGER) && value <= BigInt(Number.MAX_SAFE_INTEGER) ? Number(value) : value;
}

/** An unsigned 64-bit value read as signed (two's complement). */
export function signed(unsigned: bigint): number | bigint {
  return narrow(unsigned >= TWO_63 ? unsigned - TWO_64 : unsigned);
}

/** `delta` modulo 2^64, as memcached's `incr` takes it. */
export function wrapDelta(delta: bigint): bigint {
  return ((delta % TWO_64) + TWO_64) % TWO_64;
}

/** A `number` or `bigint` delta as a `bigint`; anything else is refused. */
export function checkCacheDelta(delta: unknown): bigint {
  if (typeof delta === "bigint") return delta;
  if (typeof delta === "number" && Number.isSafeInteger(delta)) return BigInt(delta);
  throw new MemcacheIllegalInputError(
    `delta must be an integer (a safe integer number or a bigint), got ${String(delta)}`,
  );
}

/**
 * A value as the cache stores it: integers in the signed 64-bit range in
 * two's complement (non-negative ones unchanged), everything else as is.
 *
 * @throws {MemcacheIllegalInputError} for an integer outside the signed
 * 64-bit range (from 2^63 to 2^64 - 1 it would read back negative).
 */
export function toStored(value: unknown): unknown {
  let n: bigint;
  if (typeof value === "bigint") n = value;
  else if (typeof value === "number" && Number.isInteger(value)) {
    if (Number.isSafeInteger(value)) return value < 0 ? BigInt(value) + TWO_64 : value;
    n = BigInt(value);
  } else return value;
  if (n < -TWO_63 || n >= TWO_63) {
    throw new MemcacheIllegalInputError(
      `MemcachedCache stores integers from -2^63 to 2^63-1 (memcached's counters are 64-bit), got ${n}`,
    );
  }
  return n < 0n ? n + TWO_64 : n;
}

/** A value as read back: an integer from 2^63 to 2^64 - 1 is the negative it encodes. */
export function fromStored(value: unknown): unknown {
  if (typeof value === "bigint" && value >= TWO_63 && value < TWO_64) return narrow(value - TWO_64);
  return value;
}

/**
 * The signed 64-bit integer a deserialized value holds, or `null` when it
 * holds none (used when a counter was written as `-5` by another client).
 */
export function int64Of(value: unknown): bigint | null {
  let n: bigint;
  if (typeof value === "bigint") n = value;
  else if (typeof value === "number" && Number.isSafeInteger(value)) n = BigInt(value);
  else return null;
  if (n >= -TWO_63 && n < TWO_63) return n;
  if (n >= TWO_63 && n < TWO_64) return n - TWO_64;
  return null;
}
