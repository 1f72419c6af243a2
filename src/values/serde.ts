/**
 * Serializers: how values become bytes plus memcached flags, and back.
 *
 * {@linkcode defaultSerde} uses pymemcache's flag numbers, so Python and
 * TypeScript services can share items.
 *
 * @module
 */

import { MemcacheSerdeError } from "../errors.ts";
import { concatBytes } from "../protocol/_wire.ts";

/** Turns values into bytes and flags, and back. Either side may be async. */
export interface Serde {
  /** Returns the bytes (or a string, sent UTF-8 encoded) and the flags. */
  serialize(
    key: string,
    value: unknown,
  ): [Uint8Array | string, number] | Promise<[Uint8Array | string, number]>;
  /** Rebuilds a value from the stored bytes and flags. */
  deserialize(key: string, value: Uint8Array, flags: number): unknown;
}

/** Raw bytes (pymemcache: bytes). */
export const FLAG_BYTES = 0;
/** pymemcache's pickle flag; read back as raw bytes. */
export const FLAG_PICKLE = 1;
/** Decimal integer. */
export const FLAG_INTEGER = 2;
/** Python 2 long; read as an integer. */
export const FLAG_LONG = 4;
/** zlib-compressed (see {@linkcode CompressedSerde}). */
export const FLAG_COMPRESSED = 8;
/** UTF-8 text. */
export const FLAG_TEXT = 16;
/** UTF-8 JSON (this library's own flag for structured values). */
export const FLAG_JSON = 32;

const encoder = new TextEncoder();
const decoder = new TextDecoder();

function parseInteger(bytes: Uint8Array): number | bigint | Uint8Array {
  const text = decoder.decode(bytes).trim();
  if (!/^[+-]?\d+$/.test(text)) return bytes;
  const n = Number(text);
  return Number.isSafeInteger(n) ? n : BigInt(text);
}

/**
 * The default serializer, flag-compatible with pymemcache's:
 * `Uint8Array` → flags 0, `string` → 16 (UTF-8), integer `number` or
 * `bigint` → 2 (decimal), anything else JSON can hold → 32 (JSON).
 * Reading, flags 4 reads as 2, integers beyond 2^53-1 read as `bigint`,
 * unknown flags give the raw bytes.
 *
 * @example Round trip
 * ```ts
 * import { defaultSerde } from "@memkit/memcache";
 * const [bytes, flags] = defaultSerde.serialize("k", { a: 1 }) as [Uint8Array, number];
 * console.assert(flags === 32);
 * console.assert((defaultSerde.deserialize("k", bytes, flags) as { a: number }).a === 1);
 * ```
 */
export const defaultSerde: Serde = {
  serialize(_key: string, value: unknown): [Uint8Array | string, number] {
    if (value instanceof Uint8Array) return [value, FLAG_BYTES];
    if (typeof value === "string") return [value, FLAG_TEXT];
    if (typeof value === "bigint") return [value.toString(), FLAG_INTEGER];
    if (typeof value === "number" && Number.isInteger(value)) {
      return [(Object.is(value, -0) ? 0 : value).toString(), FLAG_INTEGER];
    }
    if (typeof value === "number" && !Number.isFinite(value)) {
      throw new TypeError(`Cannot serialize ${value}: JSON has no such number`);
    }
    const json = JSON.stringify(value);
    if (json === undefined) throw new TypeError(`Cannot serialize a value of type ${typeof value}`);
    return [json, FLAG_JSON];
  },
  deserialize(_key: string, value: Uint8Array, flags: number): unknown {
    switch (flags) {
      case FLAG_BYTES:
        return value;
      case FLAG_TEXT:
        return decoder.decode(value);
      case FLAG_INTEGER:
      case FLAG_LONG:
        return parseInteger(value);
      case FLAG_JSON:
        return JSON.parse(decoder.decode(value));
      default:
        return value;
    }
  },
};

async function pipeThrough(
  bytes: Uint8Array,
  stream: CompressionStream | DecompressionStream,
): Promise<Uint8Array> {
  // A Blob takes no view of a SharedArrayBuffer: copy those first.
  const own = bytes.buffer instanceof ArrayBuffer ? bytes as Uint8Array<ArrayBuffer> : new Uint8Array(bytes);
  const body = new Blob([own]).stream().pipeThrough(stream);
  return new Uint8Array(await new Response(body).arrayBuffer());
}

/** The default `maxValueSize` of {@linkcode CompressedSerde} and `PickleSerde`: 64 MiB. */
export const DEFAULT_MAX_VALUE_SIZE = 64 * 1024 * 1024;

/** `maxValueSize`, checked: a positive integer (bytes). */
export function checkMaxValueSize(value: unknown): number {
  if (value === undefined) return DEFAULT_MAX_VALUE_SIZE;
  if (typeof value !== "number" || !Number.isSafeInteger(value) || value < 1) {
    throw new TypeError(`maxValueSize must be a positive integer (bytes), got ${String(value)}`);
  }
  return value;
}

/**
 * Inflates a zlib stream, stopping once the output passes `max` bytes. The
 * input goes in in pieces of at most max/4096 bytes (64 B to 16 KiB), and a
 * piece is only decompressed when the previous output was read (a
 * TransformStream does not run ahead of its reader); deflate expands a byte
 * to at most 1032, so the inflated bytes held never exceed `max` plus one
 * piece's worth (at most about `max` / 4), however large the stream would
 * grow. A value within the limit is then joined into one array (one copy).
 *
 * @throws {MemcacheSerdeError} past `max`, or for a stream that is not zlib.
 */
async function inflate(bytes: Uint8Array, max: number): Promise<Uint8Array> {
  const stream = new DecompressionStream("deflate");
  const writer = stream.writable.getWriter();
  const reader = stream.readable.getReader();
  const piece = Math.min(16384, Math.max(64, Math.floor(max / 4096)));
  const feeding = (async () => {
    for (let at = 0; at < bytes.length; at += piece) {
      await writer.write(bytes.slice(at, at + piece)); // a copy: the stream may take (detach) its buffer
    }
    await writer.close();
  })().catch(() => {}); // a failure of the stream reaches the reader too
  const chunks: Uint8Array[] = [];
  let total = 0;
  try {
    for (;;) {
      const { done, value } = await reader.read();
      if (done) break;
      total += value.length;
      if (total > max) {
        throw new MemcacheSerdeError(`Cannot inflate the value: it inflates to more than maxValueSize (${max} bytes)`);
      }
      chunks.push(value);
    }
  } catch (error) {
    chunks.length = 0;
    await reader.cancel().catch(() => {}); // stops the stream: the pending write rejects, nothing more is inflated
    await feeding;
    if (error instanceof MemcacheSerdeError) throw error;
    throw new MemcacheSerdeError(`Cannot inflate the value: ${(error as Error)?.message ?? error}`, { cause: error });
  }
  await feeding;
  return concatBytes(chunks);
}

/** Options of {@linkcode CompressedSerde}. */
export interface CompressedSerdeOptions {
  /** The serializer whose output is compressed. @default {defaultSerde} */
  serde?: Serde;
  /** Values this many bytes or shorter are stored uncompressed. @default {400} */
  minCompressLen?: number;
  /**
   * The most bytes a compressed value read from the server may inflate to:
   * past it, inflating stops and the call rejects with
   * {@linkcode MemcacheSerdeError} (the connection stays), so a zlib bomb
   * (half a megabyte inflating to half a gigabyte) costs no more than this.
   * @default {67108864} (64 MiB)
   */
  maxValueSize?: number;
}

/**
 * Wraps a serde with zlib compression (flag 8), as pymemcache's
 * `CompressedSerde`: values longer than `minCompressLen` bytes are
 * compressed unless that makes them larger. The bytes are zlib streams
 * (RFC 1950), which Python's `zlib.decompress` reads. Reading inflates
 * at most `maxValueSize` bytes (64 MiB by default).
 */
export class CompressedSerde implements Serde {
  /** The most bytes a value read may inflate to. */
  readonly maxValueSize: number;
  #serde: Serde;
  #min: number;

  /**
   * Builds the serde.
   *
   * @throws {TypeError} for a `maxValueSize` that is not a positive integer.
   */
  constructor(options: CompressedSerdeOptions = {}) {
    this.#serde = options.serde ?? defaultSerde;
    this.#min = options.minCompressLen ?? 400;
    this.maxValueSize = checkMaxValueSize(options.maxValueSize);
  }

  /** Serializes with the inner serde, then compresses when it pays. */
  async serialize(key: string, value: unknown): Promise<[Uint8Array | string, number]> {
    const [data, flags] = await this.#serde.serialize(key, value);
    const bytes = typeof data === "string" ? encoder.encode(data) : data;
    if (this.#min > 0 && bytes.length > this.#min) {
      const packed = await pipeThrough(bytes, new CompressionStream("deflate"));
      if (packed.length <= bytes.length) return [packed, flags | FLAG_COMPRESSED];
    }
    return [bytes, flags];
  }

  /**
   * Decompresses flagged values, then deserializes with the inner serde.
   *
   * @throws {MemcacheSerdeError} for a value that inflates past `maxValueSize` or is not a zlib stream.
   */
  async deserialize(key: string, value: Uint8Array, flags: number): Promise<unknown> {
    if (flags & FLAG_COMPRESSED) {
      value = await inflate(value, this.maxValueSize);
      flags &= ~FLAG_COMPRESSED;
    }
    return await this.#serde.deserialize(key, value, flags);
  }
}
