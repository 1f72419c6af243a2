/**
 * The reply side of the memcached protocols as pure code: a
 * {@linkcode ReplyParser} fed arbitrary byte chunks, framing text and meta
 * replies (meta lines are parsed by _meta.ts). No sockets, no timers, no
 * runtime APIs. Commands are encoded by _text_commands.ts and _meta.ts.
 *
 * Values are framed by the byte count on their `VALUE` line, never by
 * searching for `\r\n`, so any bytes round-trip.
 *
 * @module
 */

import type { MetaLine } from "./_meta.ts";
import { parseMetaLine } from "./_meta_reply.ts";
import { decodeText, type Item, ProtocolError } from "./_wire.ts";

const encoder = new TextEncoder();
/** For keys: a key that is not valid UTF-8 was never asked for, and must not pass as one after lossy decoding. */
const utf8Strict = new TextDecoder("utf-8", { fatal: true });

/** Reply shapes a request can expect. */
export const EXPECT_LINE = 0; // one line: STORED, NOT_FOUND, a number, VERSION x, OK ...
export const EXPECT_VALUES = 1; // VALUE ... blocks then END
export const EXPECT_STATS = 2; // STAT lines then END (or one RESET / OK line)
export const EXPECT_RAW = 3; // bytes up to a caller-given terminator
export const EXPECT_META = 4; // one meta line (HD, VA + data block, EN, NF, NS, EX, MN): see _meta.ts
/**
 * Quiet meta commands closed by one `mn`: every meta line up to `MN`, as
 * one reply. `keys` holds one entry per quiet command; a server without
 * meta answers each of those lines and the `mn` with ERROR, so that many
 * ERRORs end the reply too.
 */
export const EXPECT_META_QUIET = 5;
/**
 * Added to an expectation (`EXPECT_LINE | WITH_DATA`) when the command line
 * is followed by a data block. An error reply to such a request leaves the
 * stream in doubt: the server may have read the block as commands.
 */
export const WITH_DATA = 8;
/**
 * Added with `WITH_DATA` to a meta set carrying a flag an older memcached
 * may not know (`E`): memcached reads the whole data block before it
 * checks the flags, so `CLIENT_ERROR invalid flag` to it is well framed
 * and the connection stays in step (measured on 1.6.18).
 */
export const INVALID_FLAG_SWALLOWS_DATA = 16;

/** What the parser needs to know about the request at the head of the queue. */
export interface Expectation {
  expect: number;
  /** For EXPECT_RAW: the bytes that end the reply. */
  endTokens?: Uint8Array;
  /**
   * For EXPECT_VALUES: the keys asked for, in order. A returned key whose
   * bytes equal the next of these gets that very string, so hits cost no
   * decoding; any other key is decoded from its bytes.
   */
  keys?: readonly string[];
}

/** A parsed reply. Constant status replies are shared objects. */
export type Reply =
  | { type: "status"; status: Status }
  | { type: "line"; text: string }
  | { type: "values"; items: Item[] }
  | { type: "stats"; entries: [string, string][] }
  | { type: "raw"; bytes: Uint8Array }
  | { type: "error"; kind: "ERROR" | "CLIENT_ERROR" | "SERVER_ERROR"; message: string }
  | MetaLine
  | { type: "metaGroup"; lines: MetaLine[] };

/** The constant one-word replies, recognised byte for byte. */
export type Status =
  | "STORED"
  | "NOT_STORED"
  | "EXISTS"
  | "NOT_FOUND"
  | "DELETED"
  | "TOUCHED"
  | "OK"
  | "END"
  | "RESET";

const STATUSES: Status[] = [
  "STORED",
  "NOT_STORED",
  "EXISTS",
  "NOT_FOUND",
  "DELETED",
  "TOUCHED",
  "OK",
  "END",
  "RESET",
];
const STATUS_BYTES = STATUSES.map((s) => encoder.encode(s));
const STATUS_REPLIES = STATUSES.map((status) => ({ type: "status", status }) as const);

const ERROR = encoder.encode("ERROR");
const CLIENT_ERROR = encoder.encode("CLIENT_ERROR");
const SERVER_ERROR = encoder.encode("SERVER_ERROR");
const VALUE_ = encoder.encode("VALUE ");
const END = encoder.encode("END");
const CR = 13;
const LF = 10;
const SP = 32;

/** The longest line the parser buffers before calling the stream garbage. */
export const MAX_LINE = 65536;

/** Whether `buf[start, end)` begins with `prefix`. */
function startsWith(buf: Uint8Array, start: number, end: number, prefix: Uint8Array): boolean {
  if (end - start < prefix.length) return false;
  for (let i = 0; i < prefix.length; i++) if (buf[start + i] !== prefix[i]) return false;
  return true;
}

/** Whether `buf[start, end)` is `word`. */
function equals(buf: Uint8Array, start: number, end: number, word: Uint8Array): boolean {
  return end - start === word.length && startsWith(buf, start, end, word);
}

/** Whether `buf[start, end)` holds `key`, ASCII only (anything else is decoded instead). */
function isAsciiKey(key: string, buf: Uint8Array, start: number, end: number): boolean {
  if (key.length !== end - start) return false;
  for (let i = 0; i < key.length; i++) {
    const c = key.charCodeAt(i);
    if (c > 127 || c !== buf[start + i]) return false;
  }
  return true;
}

/** Parses an unsigned decimal field; -1 if it is not one. */
function parseUint(bytes: Uint8Array, start: number, end: number): number {
  if (start >= end || end - start > 15) return -1;
  let n = 0;
  for (let i = start; i < end; i++) {
    const d = bytes[i] - 48;
    if (d < 0 || d > 9) return -1;
    n = n * 10 + d;
  }
  return n;
}

/** A returned key as text, exactly: bytes that are not UTF-8 are a reply out of step. */
function decodeKey(bytes: Uint8Array, start: number, end: number): string {
  for (let i = start; i < end; i++) {
    if (bytes[i] > 127) {
      try {
        return utf8Strict.decode(bytes.subarray(start, end));
      } catch {
        throw new ProtocolError(`a VALUE line named a key that is not UTF-8: ${quote(bytes.subarray(start, end))}`);
      }
    }
  }
  return decodeText(bytes, start, end);
}

function classifyError(buf: Uint8Array, start = 0, end = buf.length): Reply | undefined {
  // "ERROR", "ERROR <text>", and 1.6's "ERROR: shutdown not enabled"
  if (startsWith(buf, start, end, ERROR)) {
    return { type: "error", kind: "ERROR", message: decodeText(buf, start, end) };
  }
  if (startsWith(buf, start, end, CLIENT_ERROR)) {
    return { type: "error", kind: "CLIENT_ERROR", message: decodeText(buf, start, end) };
  }
  if (startsWith(buf, start, end, SERVER_ERROR)) {
    return { type: "error", kind: "SERVER_ERROR", message: decodeText(buf, start, end) };
  }
  return undefined;
}

/**
 * An incremental reply parser. `feed` takes chunks split anywhere; every
 * complete reply is passed to `emit`, in order. `head` names what the
 * oldest unanswered request expects (`undefined`: nothing is expected).
 * Throws {@linkcode ProtocolError} on bytes that fit no expected reply;
 * after that the parser (and its connection) must be discarded.
 */
export class ReplyParser {
  #head: () => Expectation | undefined;
  #emit: (reply: Reply) => void;
  /** An incomplete line carried over from the previous chunk. */
  #partial: Uint8Array | null = null;
  /** Value being filled, and how much of it has arrived. */
  #value: Uint8Array | null = null;
  #filled = 0;
  /** After a value: its closing CRLF is still owed (as an empty line). */
  #needEmptyLine = false;
  #items: Item[] = [];
  #entries: [string, string][] = [];
  #pendingItem: Item | null = null;
  /** Length of the pending item's value, before its buffer exists. */
  #want = 0;
  /** Where the next VALUE line's key is looked for in the expected keys. */
  #keyCursor = 0;
  /** Field bounds of the VALUE line being parsed (start, end pairs). */
  #fields = new Int32Array(8);
  /** EXPECT_RAW accumulation: the chunks so far, their length, and their last bytes (for a split terminator). */
  #rawParts: Uint8Array[] = [];
  #rawLength = 0;
  #rawTail: Uint8Array = EMPTY;
  /** The most a raw reply may buffer (see {@linkcode MAX_RAW}). */
  maxRaw: number = MAX_RAW;
  /**
   * Whether small values are carved out of shared slabs (see #alloc): set
   * it to false where a small new buffer is as cheap as a view.
   */
  slabs = true;
  /** Allocates large value buffers; see `Transport.allocUnsafe`. */
  allocate: (size: number) => Uint8Array = zeroed;
  #slab: Uint8Array = EMPTY;
  #slabUsed = 0;

  constructor(head: () => Expectation | undefined, emit: (reply: Reply) => void) {
    this.#head = head;
    this.#emit = emit;
  }

  /** True when the parser is between replies (nothing half-read). */
  get idle(): boolean {
    return this.#partial === null && this.#value === null && !this.#needEmptyLine &&
      this.#items.length === 0 && this.#entries.length === 0 && this.#rawLength === 0 &&
      this.#metaLines.length === 0 && this.#metaReply === null;
  }

  /**
   * Where the next read may put its bytes: the unfilled rest of a value
   * being received, when at least `min` bytes of it are still owed;
   * otherwise undefined. A chunk later fed that is a view of this very
   * place (as a transport that read into it passes) is taken without a
   * copy. Only value bytes go there: a read never gets more room than the
   * value still needs, so nothing after the value lands in it.
   */
  readTarget(min: number): Uint8Array | undefined {
    const value = this.#value;
    if (value === null || value.length - this.#filled < min) return undefined;
    return value.subarray(this.#filled);
  }

  /** Feeds bytes; the chunk is not kept after the call returns. */
  feed(input: Uint8Array): void {
    // Work on a plain Uint8Array: on a Node Buffer every subarray goes
    // through Buffer's species constructor, and Buffer#slice does not copy.
    const chunk = input.constructor === Uint8Array
      ? input
      : new Uint8Array(input.buffer, input.byteOffset, input.length);
    let pos = 0;
    const end = chunk.length;
    while (pos < end) {
      if (this.#value !== null) {
        // Length-framed value bytes: copied as they come, never scanned.
        const want = this.#value.length - this.#filled;
        const take = Math.min(want, end - pos);
        // Bytes a transport read straight into the value (see readTarget) are in place already.
        if (chunk.buffer !== this.#value.buffer || chunk.byteOffset + pos !== this.#value.byteOffset + this.#filled) {
          this.#value.set(chunk.subarray(pos, pos + take), this.#filled);
        }
        this.#filled += take;
        pos += take;
        if (this.#filled === this.#value.length) {
          this.#pendingItem!.value = this.#value;
          this.#items.push(this.#pendingItem!);
          this.#pendingItem = null;
          this.#value = null;
          this.#needEmptyLine = true;
        }
        continue;
      }
      const expectation = this.#head();
      if (expectation === undefined) {
        throw new ProtocolError("the server sent bytes no request was waiting for");
      }
      if (expectation.expect === EXPECT_RAW) {
        pos = this.#feedRaw(chunk, pos, expectation.endTokens!);
        continue;
      }
      const nl = chunk.indexOf(LF, pos);
      if (nl === -1) {
        this.#keepPartial(chunk.subarray(pos));
        return;
      }
      // Lines are read in place, as [start, end) of a buffer without the CRLF.
      if (this.#partial !== null) {
        const line = concat(this.#partial, chunk.subarray(pos, nl));
        this.#partial = null;
        pos = nl + 1;
        if (line.length === 0 || line[line.length - 1] !== CR) {
          throw new ProtocolError("a reply line did not end with \\r\\n");
        }
        this.#line(line, 0, line.length - 1, expectation);
      } else {
        if (nl === pos || chunk[nl - 1] !== CR) {
          throw new ProtocolError("a reply line did not end with \\r\\n");
        }
        const start = pos;
        pos = nl + 1;
        this.#line(chunk, start, nl - 1, expectation);
      }
      if (this.#pendingItem !== null) pos = this.#startValue(chunk, pos);
    }
  }

  /**
   * A VALUE line was read: a value that is all in this chunk is taken in one
   * copy (with its CRLF, if that is here too); a longer one gets its buffer,
   * filled as chunks come. Returns the new position in `chunk`.
   */
  #startValue(chunk: Uint8Array, pos: number): number {
    const want = this.#want;
    if (chunk.length - pos < want) {
      this.#value = this.#alloc(want);
      this.#filled = 0;
      return pos;
    }
    const item = this.#pendingItem!;
    this.#pendingItem = null;
    if (this.slabs && want <= SLAB_VALUE_MAX) {
      item.value = this.#alloc(want);
      item.value.set(chunk.subarray(pos, pos + want));
    } else {
      item.value = chunk.slice(pos, pos + want); // one call: cheaper in V8 than a new array plus set()
    }
    this.#items.push(item);
    pos += want;
    if (pos + 1 < chunk.length && chunk[pos] === CR && chunk[pos + 1] === LF) {
      if (this.#metaReply !== null) this.#emitMeta();
      return pos + 2;
    }
    this.#needEmptyLine = true;
    return pos;
  }

  /**
   * A buffer for a value of `n` bytes. Small values are carved out of
   * shared 8 KiB slabs, as Node's `Buffer.allocUnsafe` carves its pool: in
   * V8 every new ArrayBuffer costs about a microsecond, more than parsing
   * the whole reply, so one per 100-byte value would cap a busy client
   * well below the socket. A slab is handed out in disjoint pieces and
   * never written again, so values never see each other's bytes change.
   */
  #alloc(n: number): Uint8Array {
    if (n >= UNSAFE_MIN) return this.allocate(n);
    if (!this.slabs || n > SLAB_VALUE_MAX) return new Uint8Array(n);
    let at = this.#slabUsed;
    if (at + n > this.#slab.length) {
      this.#slab = new Uint8Array(SLAB_SIZE);
      at = 0;
    }
    this.#slabUsed = (at + n + 7) & ~7; // 8-byte aligned, for typed-array views of values
    return new Uint8Array(this.#slab.buffer, at, n); // cheaper than subarray() in V8
  }

  /** A retrieval reply is complete (or failed). */
  #endReply(): void {
    this.#items = [];
    this.#keyCursor = 0;
  }

  // ---- meta replies (parsed by _meta.ts; framed here)

  /** EXPECT_META: a `VA` line whose data block is still being read; emitted after its CRLF. */
  #metaReply: MetaLine | null = null;
  /** EXPECT_META_QUIET: the lines so far, the first error among them, and how many ERRORs. */
  #metaLines: MetaLine[] = [];
  #metaError: Reply | null = null;
  #metaUnknown = 0;

  /** One line of a meta reply. */
  #metaLine(buf: Uint8Array, start: number, end: number, expectation: Expectation): void {
    const quiet = expectation.expect === EXPECT_META_QUIET;
    const error = classifyError(buf, start, end);
    if (error !== undefined) {
      if (!quiet) return this.#emit(error);
      // Quiet: the error belongs to this group; the lines after it still do.
      this.#metaError ??= error;
      if ((error as { kind: string }).kind === "ERROR" && ++this.#metaUnknown > (expectation.keys?.length ?? 0)) {
        this.#endMetaGroup(); // no meta here: every command line, mn included, was answered ERROR
      }
      return;
    }
    const line = parseMetaLine(buf, start, end);
    if (line === null) throw new ProtocolError(`unexpected line in a meta reply: ${quote(buf.subarray(start, end))}`);
    if (line.dataLength >= 0) {
      const item: Item = { key: "", flags: 0, value: EMPTY };
      line.item = item;
      this.#expectValue(item, line.dataLength);
      if (quiet) this.#metaLines.push(line);
      else this.#metaReply = line;
      return;
    }
    if (!quiet) return this.#emit(line);
    if (line.status === "MN") return this.#endMetaGroup();
    this.#metaLines.push(line);
  }

  /** A loud meta reply's data block and its CRLF are in. */
  #emitMeta(): void {
    const line = this.#metaReply!;
    this.#metaReply = null;
    this.#items.length = 0; // meta items are never handed out through #items
    this.#emit(line);
  }

  #endMetaGroup(): void {
    const lines = this.#metaLines;
    const error = this.#metaError;
    this.#metaLines = [];
    this.#metaError = null;
    this.#metaUnknown = 0;
    this.#items.length = 0;
    this.#emit(error ?? { type: "metaGroup", lines });
  }

  #keepPartial(rest: Uint8Array): void {
    const joined = this.#partial === null ? rest.slice() : concat(this.#partial, rest);
    if (joined.length > MAX_LINE) {
      throw new ProtocolError(`a reply line exceeded ${MAX_LINE} bytes`);
    }
    this.#partial = joined;
  }

  /** One reply line, `buf[start, end)` without its CRLF. */
  #line(buf: Uint8Array, start: number, end: number, expectation: Expectation): void {
    if (this.#needEmptyLine) {
      if (end !== start) {
        throw new ProtocolError("value bytes were not followed by \\r\\n");
      }
      this.#needEmptyLine = false;
      if (this.#metaReply !== null) this.#emitMeta();
      return;
    }
    const expect = expectation.expect;
    if (expect === EXPECT_META || expect === EXPECT_META_QUIET) return this.#metaLine(buf, start, end, expectation);
    // The hot lines first: they can never be mistaken for an error line.
    if (expect === EXPECT_VALUES && startsWith(buf, start, end, VALUE_)) {
      return this.#valueLine(buf, start, end, expectation.keys);
    }
    const error = classifyError(buf, start, end);
    if (error !== undefined) {
      this.#endReply();
      this.#entries = [];
      this.#emit(error);
      return;
    }
    if (expect === EXPECT_LINE) {
      for (let i = 0; i < STATUS_BYTES.length; i++) {
        if (equals(buf, start, end, STATUS_BYTES[i])) return this.#emit(STATUS_REPLIES[i]);
      }
      return this.#emit({ type: "line", text: decodeText(buf, start, end) });
    }
    if (equals(buf, start, end, END)) {
      if (expect === EXPECT_VALUES) {
        const items = this.#items;
        this.#endReply();
        return this.#emit({ type: "values", items });
      }
      const entries = this.#entries;
      this.#entries = [];
      return this.#emit({ type: "stats", entries });
    }
    if (expect === EXPECT_VALUES) {
      throw new ProtocolError(`unexpected line in a retrieval reply: ${quote(buf.subarray(start, end))}`);
    }
    // EXPECT_STATS: "STAT name value", "ITEM name [..]", or a one-line answer
    // such as RESET (stats reset) or OK (stats detail on).
    if (
      this.#entries.length === 0 &&
      (equals(buf, start, end, STATUS_BYTES[8]) || equals(buf, start, end, STATUS_BYTES[6]))
    ) {
      return this.#emit({ type: "stats", entries: [] });
    }
    const line = buf.subarray(start, end);
    const text = decodeText(line);
    const first = text.indexOf(" ");
    const second = first === -1 ? -1 : text.indexOf(" ", first + 1);
    if (first === -1) throw new ProtocolError(`unexpected line in a stats reply: ${quote(line)}`);
    this.#entries.push(
      second === -1 ? [text.slice(first + 1), ""] : [text.slice(first + 1, second), text.slice(second + 1)],
    );
  }

  /** `VALUE <key> <flags> <bytes> [<cas>]`, in `buf[start, end)`. */
  #valueLine(buf: Uint8Array, start: number, end: number, keys: readonly string[] | undefined): void {
    if (keys !== undefined && this.#keyCursor < keys.length && this.#plainValueLine(buf, start, end, keys)) return;
    const fields = this.#fields;
    const malformed = () => new ProtocolError(`malformed VALUE line: ${quote(buf.subarray(start, end))}`);
    let count = 0;
    let from = start + VALUE_.length;
    for (let i = from; i <= end; i++) {
      if (i === end || buf[i] === SP) {
        if (i === from || count === 4) throw malformed();
        fields[2 * count] = from;
        fields[2 * count + 1] = i;
        count++;
        from = i + 1;
      }
    }
    if (count !== 3 && count !== 4) throw malformed();
    const flags = parseUint(buf, fields[2], fields[3]);
    const length = parseUint(buf, fields[4], fields[5]);
    if (flags < 0 || flags > 0xffffffff || length < 0) throw malformed();
    let key: string | undefined;
    if (keys !== undefined) {
      // Hits come back in request order: look from after the previous one.
      for (let j = this.#keyCursor; j < keys.length; j++) {
        if (isAsciiKey(keys[j], buf, fields[0], fields[1])) {
          key = keys[j];
          this.#keyCursor = j + 1;
          break;
        }
      }
    }
    const item: Item = { key: key ?? decodeKey(buf, fields[0], fields[1]), flags, value: EMPTY };
    if (count === 4) {
      const cas = decodeText(buf, fields[6], fields[7]);
      if (!/^\d+$/.test(cas)) throw malformed();
      item.cas = cas;
    }
    this.#expectValue(item, length);
  }

  /** After a VALUE line: `length` bytes of `item`'s value come next. */
  #expectValue(item: Item, length: number): void {
    if (length === 0) {
      this.#items.push(item);
      this.#needEmptyLine = true;
    } else {
      this.#pendingItem = item;
      this.#want = length;
    }
  }

  /**
   * The common line, read in one pass: the next key asked for, then
   * `<flags> <bytes>` and no cas. False (nothing consumed) for anything
   * else, which the general path then reads or rejects.
   */
  #plainValueLine(buf: Uint8Array, start: number, end: number, keys: readonly string[]): boolean {
    const key = keys[this.#keyCursor];
    const from = start + VALUE_.length;
    let i = from + key.length;
    if (i >= end || buf[i] !== SP || !isAsciiKey(key, buf, from, i)) return false;
    let flags = 0;
    const flagsAt = ++i;
    for (; i < end && buf[i] !== SP; i++) {
      const d = buf[i] - 48;
      if (d < 0 || d > 9) return false;
      flags = flags * 10 + d;
    }
    if (i === flagsAt || i - flagsAt > 10 || flags > 0xffffffff || i === end) return false;
    let length = 0;
    const lengthAt = ++i;
    for (; i < end; i++) {
      const d = buf[i] - 48;
      if (d < 0 || d > 9) return false; // a space: a cas follows
      length = length * 10 + d;
    }
    if (i === lengthAt || i - lengthAt > 15) return false;
    this.#keyCursor++;
    this.#expectValue({ key, flags, value: EMPTY }, length);
    return true;
  }

  /**
   * Raw replies (rawCommand) end where `endTokens` first appears; the reply
   * is the bytes before it, as pymemcache's `_readsegment`. Linear in the
   * reply's length: each chunk is searched once, plus the few bytes around
   * its seam with the previous one. Returns the new position in `chunk`.
   */
  #feedRaw(chunk: Uint8Array, pos: number, endTokens: Uint8Array): number {
    const piece = chunk.subarray(pos);
    const before = this.#rawLength;
    const k = endTokens.length;
    // A terminator that starts in the previous chunks' tail and ends here.
    let start = -1;
    const tail = this.#rawTail;
    if (tail.length > 0) {
      const seam = concat(tail, piece.subarray(0, k - 1));
      const s = indexOfBytes(seam, endTokens, 0);
      if (s !== -1 && s < tail.length) start = before - tail.length + s;
    }
    if (start === -1) {
      const i = indexOfBytes(piece, endTokens, 0);
      if (i !== -1) start = before + i;
    }
    if (start === -1) {
      if (before + piece.length > this.maxRaw) {
        throw new ProtocolError(`a raw reply exceeded ${this.maxRaw} bytes without its end tokens`);
      }
      this.#rawParts.push(piece.slice());
      this.#rawLength = before + piece.length;
      const joined = piece.length >= k - 1 ? piece : concat(tail, piece);
      this.#rawTail = joined.slice(Math.max(0, joined.length - (k - 1)));
      return chunk.length;
    }
    const bytes = new Uint8Array(start);
    let at = 0;
    for (const part of this.#rawParts) {
      if (at >= start) break;
      const take = Math.min(part.length, start - at);
      bytes.set(take === part.length ? part : part.subarray(0, take), at);
      at += take;
    }
    if (at < start) bytes.set(piece.subarray(0, start - at), at);
    this.#rawParts = [];
    this.#rawLength = 0;
    this.#rawTail = EMPTY;
    const nl = bytes.indexOf(LF);
    const firstLine = bytes.subarray(0, nl === -1 ? bytes.length : nl);
    const error = classifyError(
      firstLine,
      0,
      firstLine[firstLine.length - 1] === CR ? firstLine.length - 1 : firstLine.length,
    );
    this.#emit(error ?? { type: "raw", bytes });
    return pos + (start + k - before);
  }
}

/**
 * The most a raw reply (rawCommand) may hold before its end tokens: past
 * it the reply is refused, as a reply out of step, instead of buffering on.
 */
export const MAX_RAW = 64 * 1024 * 1024;

const EMPTY = new Uint8Array(0);
/** Slab size for small values, and the largest value carved from one. */
const SLAB_SIZE = 8192;
const SLAB_VALUE_MAX = 4096;
/** Buffers from this size on come from `allocate` (uninitialized memory where the transport has it). */
const UNSAFE_MIN = 65536;
const zeroed = (size: number): Uint8Array => new Uint8Array(size);

function concat(a: Uint8Array, b: Uint8Array): Uint8Array {
  const out = new Uint8Array(a.length + b.length);
  out.set(a, 0);
  out.set(b, a.length);
  return out;
}

function indexOfBytes(hay: Uint8Array, needle: Uint8Array, from: number): number {
  const first = needle[0];
  for (let i = hay.indexOf(first, from); i !== -1 && i + needle.length <= hay.length; i = hay.indexOf(first, i + 1)) {
    let j = 1;
    while (j < needle.length && hay[i + j] === needle[j]) j++;
    if (j === needle.length) return i;
  }
  return -1;
}

function quote(line: Uint8Array): string {
  return JSON.stringify(decodeText(line.subarray(0, 80)));
}
