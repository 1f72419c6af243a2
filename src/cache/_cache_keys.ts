/**
 * cachelib's key test for `MemcachedCache`: a key (prefix included) is
 * usable when its UTF-8 bytes match `[^\x00-\x21\xff]{1,250}` — 1 to 250
 * bytes, none of them a control byte, a space, `!` or 0xff.
 *
 * cachelib applies the regex with `re.match(...$)`, which also lets a key
 * end in one `\n`; such a key fails here (memcached could never take it).
 *
 * @module
 */

/** The longest key cachelib lets through, in UTF-8 bytes. */
const MAX_BYTES = 250;

/** Whether `key` passes cachelib's `_test_memcached_key`, on its UTF-8 bytes. */
export function isCachelibKey(key: unknown): key is string {
  if (typeof key !== "string" || key.length === 0 || key.length > MAX_BYTES) return false;
  let bytes = 0;
  for (let i = 0; i < key.length; i++) {
    const c = key.charCodeAt(i);
    if (c <= 0x21) return false; // 0x00-0x21: controls, space and "!"
    if (c < 0x80) bytes += 1;
    else if (c < 0x800) bytes += 2;
    else if (c >= 0xd800 && c <= 0xdbff && i + 1 < key.length) {
      // a surrogate pair is one 4-byte character (a lone surrogate counts
      // as the 3 bytes of U+FFFD, as TextEncoder writes it)
      const next = key.charCodeAt(i + 1);
      if (next >= 0xdc00 && next <= 0xdfff) {
        bytes += 4;
        i++;
      } else bytes += 3;
    } else bytes += 3;
    // UTF-8 never contains the byte 0xff, so only the length is left to check.
    if (bytes > MAX_BYTES) return false;
  }
  return true;
}
