/**
 * `PickleSerde`: reads what Python's memcached clients store (pickles,
 * integers, text, bytes) and writes what they read, with their flags.
 *
 * @module
 */

import { unpickle } from "./_pickle_read.ts";
import { pickle } from "./_pickle_write.ts";
import {
  checkMaxValueSize,
  CompressedSerde,
  defaultSerde,
  FLAG_BYTES,
  FLAG_COMPRESSED,
  FLAG_INTEGER,
  FLAG_LONG,
  FLAG_PICKLE,
  FLAG_TEXT,
  type Serde,
} from "./serde.ts";

export { MemcachePickleError } from "./_pickle_read.ts";

/** The Python memcached clients whose flags {@linkcode PickleSerde} can write. */
export type PythonClientName = "pylibmc" | "python-memcached" | "pymemcache";

/** Options of {@linkcode PickleSerde}. */
export interface PickleSerdeOptions {
  /**
   * Whose flags to write. They differ only for integers and booleans:
   * `"pymemcache"` and `"python-memcached"` store an `int` as decimal with
   * flag 2 and pickle a `bool`; `"pylibmc"` stores an `int` with flag 4 and
   * a `bool` as `1` / `0` with flag 2 (so pylibmc, and this serde, read it
   * back as the integer 1 or 0). All three read everything this serde
   * writes. @default {"pymemcache"}
   */
  compatibleWith?: PythonClientName;
  /**
   * The pickle protocol written: 3 (Python 3.0+) by default; 4 and 5
   * (Python 3.4+ / 3.8+) are a little smaller; 2 is readable by Python 2
   * too. Reading takes every protocol, 0 to 5, whatever this says.
   * @default {3}
   */
  protocol?: 2 | 3 | 4 | 5;
  /**
   * The most bytes a compressed value (flag 8) read from the server may
   * inflate to: past it, inflating stops and the call rejects with
   * `MemcacheSerdeError` (the connection stays).
   * @default {67108864} (64 MiB)
   */
  maxValueSize?: number;
}

const encoder = new TextEncoder();
const decoder = new TextDecoder();

function integerText(value: number | bigint): string {
  return typeof value === "bigint" ? value.toString() : Object.is(value, -0) ? "0" : BigInt(value).toString();
}

/**
 * The serde of Python's memcached clients (pymemcache's `pickle_serde`,
 * pylibmc's and python-memcached's own), so a TypeScript service and a
 * Python app can share items, objects included.
 *
 * Writing: `Uint8Array` → flags 0, as is; `string` → 16, UTF-8; integer
 * `number` or `bigint` → 2 (4 for pylibmc), decimal; `boolean` → pickled
 * (pylibmc: `1`/`0` with flag 2); anything else → 1, pickled (see the
 * table on `pickle` in src/values/_pickle_write.ts: objects and `Map`s become
 * `dict`, arrays `list`, `Set`s `set`, `null` `None`).
 *
 * Reading, as the Python clients do: flags 0 → `Uint8Array`; 16 → string;
 * 2 or 4 → integer (`bigint` beyond 2^53−1); 1 → unpickled (`dict` →
 * object without prototype, or `Map` if a key is not a string; `tuple` →
 * array; `set`/`frozenset` → `Set`; `bytes`/`bytearray` → `Uint8Array`);
 * other flags as {@linkcode defaultSerde} reads them (32: JSON). Pickles
 * never run code: a class, any other global or an object-building opcode
 * fails with {@linkcode MemcachePickleError}, as does a malformed pickle.
 *
 * Compressed values (flag 8, zlib, as pylibmc and python-memcached write
 * them with `min_compress_len`) are inflated on reading (the result is then
 * a Promise), up to `maxValueSize` bytes (64 MiB by default; past it the
 * call rejects with `MemcacheSerdeError`). This serde never compresses: to write compressed values,
 * wrap it, `new CompressedSerde({ serde: new PickleSerde() })`: pylibmc,
 * python-memcached and pymemcache's `CompressedSerde` read those
 * (pymemcache's plain `pickle_serde` does not).
 *
 * @example
 * ```ts
 * import { PickleSerde } from "@memkit/memcache";
 * const serde = new PickleSerde();
 * const [bytes, flags] = serde.serialize("k", { a: [1, 2.5, null] }) as [Uint8Array, number];
 * console.assert(flags === 1);
 * console.assert((serde.deserialize("k", bytes, flags) as { a: unknown[] }).a[1] === 2.5);
 * ```
 */
export class PickleSerde implements Serde {
  /** Whose flags are written. */
  readonly compatibleWith: PythonClientName;
  /** The pickle protocol written. */
  readonly protocol: 2 | 3 | 4 | 5;
  /** The most bytes a compressed value read may inflate to. */
  readonly maxValueSize: number;
  #inflater: CompressedSerde | null = null;

  /**
   * Builds the serde.
   *
   * @throws {TypeError} for an unknown `compatibleWith` or `protocol`, or a `maxValueSize` that is not a positive integer.
   */
  constructor(options: PickleSerdeOptions = {}) {
    const { compatibleWith = "pymemcache", protocol = 3 } = options;
    if (compatibleWith !== "pylibmc" && compatibleWith !== "python-memcached" && compatibleWith !== "pymemcache") {
      throw new TypeError(
        `compatibleWith must be "pylibmc", "python-memcached" or "pymemcache", got ${String(compatibleWith)}`,
      );
    }
    if (![2, 3, 4, 5].includes(protocol)) {
      throw new TypeError(`protocol must be 2, 3, 4 or 5, got ${String(protocol)}`);
    }
    this.compatibleWith = compatibleWith;
    this.protocol = protocol;
    this.maxValueSize = checkMaxValueSize(options.maxValueSize);
  }

  /**
   * The bytes and flags for `value`.
   *
   * @throws {TypeError} for a value with no Python counterpart (a function, a class instance, ...).
   */
  serialize(_key: string, value: unknown): [Uint8Array, number] {
    if (value instanceof Uint8Array) return [value, FLAG_BYTES];
    if (typeof value === "string") return [encoder.encode(value), FLAG_TEXT];
    const pylibmc = this.compatibleWith === "pylibmc";
    if (typeof value === "bigint" || (typeof value === "number" && Number.isInteger(value))) {
      return [encoder.encode(integerText(value)), pylibmc ? FLAG_LONG : FLAG_INTEGER];
    }
    if (typeof value === "boolean" && pylibmc) return [encoder.encode(value ? "1" : "0"), FLAG_INTEGER];
    return [pickle(value, this.protocol), FLAG_PICKLE];
  }

  /**
   * The value stored as `value` with `flags` (a Promise of it for a compressed value).
   *
   * @throws {MemcachePickleError} for a pickle that cannot be read safely.
   */
  deserialize(key: string, value: Uint8Array, flags: number): unknown {
    if (flags & FLAG_COMPRESSED) {
      // zlib, as all three clients write it when asked to compress: CompressedSerde inflates, then calls back here.
      this.#inflater ??= new CompressedSerde({ serde: this, minCompressLen: 0, maxValueSize: this.maxValueSize });
      return this.#inflater.deserialize(key, value, flags);
    }
    if (flags === FLAG_BYTES) return value;
    if (flags & FLAG_TEXT) return decoder.decode(value);
    if (flags & (FLAG_INTEGER | FLAG_LONG)) return defaultSerde.deserialize(key, value, FLAG_INTEGER);
    if (flags & FLAG_PICKLE) return unpickle(value);
    return defaultSerde.deserialize(key, value, flags);
  }
}
