/**
 * Key validation, as pymemcache's `check_key_helper` plus control
 * characters: every key is checked before a byte is written, so a key can
 * never smuggle a second command onto the wire.
 *
 * @module
 */

import { MemcacheIllegalInputError } from "../errors.ts";
import { utf8Length } from "./_outbox.ts";

/** memcached's longest key, in bytes, prefix included. */
export const MAX_KEY_LENGTH = 250;

const encoder = new TextEncoder();

/**
 * Checks `prefix + key` and returns it as the wire key. With
 * `allowUnicode` the key goes out UTF-8 encoded; without it, non-ASCII keys
 * are refused.
 *
 * @throws {MemcacheIllegalInputError} "Non-ASCII key", "Key is too long",
 * "Key contains whitespace", "Key contains null", "Key contains a control
 * character" or "Key is empty".
 */
export function checkKey(key: string, prefix: string, allowUnicode: boolean): string {
  if (typeof key !== "string") {
    throw new MemcacheIllegalInputError(`Key must be a string, got ${typeof key}`);
  }
  const full = prefix + key;
  let ascii = true;
  let problem: string | undefined;
  for (let i = 0; i < full.length; i++) {
    const c = full.charCodeAt(i);
    if (c > 0x20 && c < 0x7f) continue;
    if (c >= 0x80) {
      ascii = false;
      if (!allowUnicode) {
        throw new MemcacheIllegalInputError(`Non-ASCII key: ${JSON.stringify(full)}`);
      }
      continue;
    }
    // pymemcache's order: whitespace, then null; other control bytes after.
    if (c === 0x20 || (c >= 0x09 && c <= 0x0d)) problem ??= "Key contains whitespace";
    else if (c === 0) problem = problem === "Key contains whitespace" ? problem : "Key contains null";
    else problem ??= "Key contains a control character";
  }
  if (!ascii && !full.isWellFormed()) {
    // TextEncoder would turn a lone surrogate into U+FFFD: another key.
    throw new MemcacheIllegalInputError(`Key is not well-formed Unicode: ${JSON.stringify(full)}`);
  }
  const length = ascii ? full.length : utf8Length(full);
  if (length > MAX_KEY_LENGTH) {
    throw new MemcacheIllegalInputError(`Key is too long: ${JSON.stringify(full.slice(0, 40))}... (${length} bytes)`);
  }
  if (problem !== undefined) throw new MemcacheIllegalInputError(`${problem}: ${JSON.stringify(full)}`);
  if (length === 0) throw new MemcacheIllegalInputError("Key is empty");
  return full;
}

/** The wire bytes of a checked key. */
export function keyBytes(wireKey: string): Uint8Array {
  return encoder.encode(wireKey);
}
