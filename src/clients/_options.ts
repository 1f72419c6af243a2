/**
 * Checks of constructor options shared by the client classes, so the same
 * bad value fails the same way (`TypeError`) everywhere.
 *
 * @module
 */

/** The longest delay a timer takes (2^31-1 ms, about 24.8 days); longer ones fire at once. */
export const MAX_MS = 2147483647;

/**
 * `value` if it is a duration in milliseconds a timer can wait: a number
 * from 0 to {@linkcode MAX_MS}.
 *
 * @throws {TypeError} naming the option otherwise.
 */
export function checkMs(name: string, value: unknown): number {
  if (typeof value !== "number" || !(value >= 0 && value <= MAX_MS)) {
    throw new TypeError(`${name} must be a number of milliseconds from 0 to ${MAX_MS}, got ${String(value)}`);
  }
  return value;
}

/**
 * A time limit option (`timeout`, `connectTimeout`): `fallback` when not
 * given, `undefined` (no limit) for `0` or `Infinity`, else the milliseconds
 * as {@linkcode checkMs} takes them.
 *
 * @throws {TypeError} naming the option for anything else.
 */
export function checkLimitMs(name: string, value: unknown, fallback: number | undefined): number | undefined {
  if (value === undefined) return fallback;
  if (value === 0 || value === Infinity) return undefined;
  if (typeof value !== "number" || !(value > 0 && value <= MAX_MS)) {
    throw new TypeError(
      `${name} must be a number of milliseconds up to ${MAX_MS} (0 or Infinity: no limit), got ${String(value)}`,
    );
  }
  return value;
}
