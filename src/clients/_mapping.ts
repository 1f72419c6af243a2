/**
 * The pairs of a {@linkcode Mapping}: one reading of `setMany`'s argument
 * for every class that takes one.
 *
 * @module
 */

/** Key/value pairs for {@linkcode Client.setMany}. */
export type Mapping = Map<string, unknown> | Record<string, unknown> | Iterable<readonly [string, unknown]>;

/** The key/value pairs of `values`: a `Map` or an iterable of pairs as it is, a plain object's own entries. */
export function entriesOf(values: Mapping): Iterable<readonly [string, unknown]> {
  if (values instanceof Map) return values;
  if (Symbol.iterator in values) return values as Iterable<readonly [string, unknown]>;
  return Object.entries(values);
}
