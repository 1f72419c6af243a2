/**
 * Argument checks shared by the clients: every number and token that goes
 * into a command line is checked here before anything is written.
 *
 * @module
 */

import { MemcacheIllegalInputError } from "../errors.ts";
import { ProtocolError } from "./_wire.ts";

/**
 * An input error thrown by a check, named with where it happened: the
 * command, and the server where there is one (HashClient checks before
 * choosing a server). Errors that already carry a place pass through.
 */
export function inContext(error: unknown, command: string, server?: string): unknown {
  if (error instanceof MemcacheIllegalInputError && error.server === undefined && error.command === undefined) {
    return new MemcacheIllegalInputError(error.message, { server, command, cause: error });
  }
  return error;
}

/** Longest retrieval line sent in one command; longer key lists are split. */
export const MAX_RETRIEVE_LINE = 2048;

export function checkInt(name: string, value: unknown, min: number, max: number): number {
  if (typeof value !== "number" || !Number.isInteger(value) || value < min || value > max) {
    throw new MemcacheIllegalInputError(`${name} must be an integer from ${min} to ${max}, got ${String(value)}`);
  }
  return value;
}

export const checkExpire = (v: unknown) => checkInt("expire", v, -2147483648, 2147483647);
export const checkFlags = (v: unknown) => checkInt("flags", v, 0, 0xffffffff);

export function checkDelta(value: unknown): string {
  if (typeof value === "bigint" && value >= 0n && value <= 0xffffffffffffffffn) return value.toString();
  if (typeof value === "number" && Number.isSafeInteger(value) && value >= 0) return value.toString();
  throw new MemcacheIllegalInputError(`value must be a non-negative integer below 2^64, got ${String(value)}`);
}

export function checkCas(value: unknown): string {
  const text = typeof value === "string"
    ? value
    : typeof value === "bigint" || typeof value === "number"
    ? String(value)
    : "";
  if (!/^\d{1,20}$/.test(text) || BigInt(text) > 0xffffffffffffffffn) {
    throw new MemcacheIllegalInputError(`cas must be a decimal token (digits only), got ${String(value)}`);
  }
  return text;
}

export function checkToken(name: string, value: string): string {
  // deno-lint-ignore no-control-regex
  if (typeof value !== "string" || value === "" || /[\x00-\x20\x7f]/.test(value)) {
    throw new MemcacheIllegalInputError(`${name} must be a non-empty token without spaces or control characters`);
  }
  return value;
}

/**
 * A counter reply of incr/decr: a decimal from 0 to 2^64-1 (a `bigint`
 * above 2^53-1). Anything else is a reply out of step with its request.
 *
 * @throws {ProtocolError} for any other text.
 */
export function parseCounter(text: string): number | bigint {
  if (!/^\d{1,20}$/.test(text)) throw new ProtocolError(`Unexpected reply ${JSON.stringify(text)}`);
  const n = Number(text);
  if (Number.isSafeInteger(n)) return n;
  const big = BigInt(text);
  if (big > 0xffffffffffffffffn) throw new ProtocolError(`A counter above 2^64-1: ${text}`);
  return big;
}

/** Splits keys into commands whose lines stay under {@linkcode MAX_RETRIEVE_LINE}. */
export function splitKeys(keys: string[], headLength: number): string[][] {
  let total = headLength;
  for (let i = 0; i < keys.length; i++) total += 1 + keys[i].length;
  if (total <= MAX_RETRIEVE_LINE) return [keys]; // the common case: one command, no copy
  const batches: string[][] = [];
  let batch: string[] = [];
  let length = headLength;
  for (const key of keys) {
    if (batch.length > 0 && length + 1 + key.length > MAX_RETRIEVE_LINE) {
      batches.push(batch);
      batch = [];
      length = headLength;
    }
    batch.push(key);
    length += 1 + key.length;
  }
  batches.push(batch);
  return batches;
}
