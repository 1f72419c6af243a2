/**
 * One connection to `MemoryServer`: fed the bytes a client writes, it
 * answers with the bytes memcached 1.6.18 would write. Framing, data
 * blocks and the dispatch live here (memcached.c's drive_machine,
 * try_read_network, and proto_text.c's try_read_command_ascii and
 * process_command_ascii); the classic commands in _memory_text.ts, the
 * meta commands in _memory_meta.ts, `stats` in _memory_stats.ts, which see
 * a session through _memory_types.ts. Runtime-free: the transport or the
 * TCP listener in testing.ts moves the bytes.
 *
 * Input follows memcached's read buffer, not the transport's chunks:
 * commands are read from the socket 16 KiB at a time (READ_BUFFER_SIZE), a
 * data block is read to its exact end, and the answers pending are written
 * out whenever the buffer holds no complete command. Which answers are
 * "written" decides what a later error may drop, so a batch answers the
 * same however it was split on the way.
 *
 * @module
 */
import { itemValue, latin1, STRING_VALUE_MAX } from "./_codec.ts";
import type { MemoryItem, MemoryStore } from "./_store.ts";
import { metaArithmetic, metaDebug, metaDelete, metaGet, metaSet } from "./_meta.ts";
import { stats } from "./_stats.ts";
import { Output, tokenize } from "./_output.ts";
import {
  COMMS,
  KEY_MAX,
  storeItem,
  textArithmetic,
  textDelete,
  textFlushAll,
  textGet,
  textMemlimit,
  textTouch,
  textUpdate,
  textVerbosity,
} from "./_text.ts";
import { Comm, type NreadRequest, type Session, type SessionHooks, Stored } from "./_types.ts";

export type { SessionHooks } from "./_types.ts";

/** memcached's READ_BUFFER_SIZE: what one read takes from the socket. */
const READ_BUFFER = 16384;
/** A line this long without a newline closes the connection unless it is a get (memcached: 2048). */
const LINE_LIMIT = 2048;
/** Even a multi-key get line is refused beyond this (memcached grows its buffer without bound). */
const GET_LINE_LIMIT = 16 * 1024 * 1024;
const NO_BYTES = new Uint8Array(0);

const Mode = { Command: 0, Nread: 1, Swallow: 2 } as const;
type Mode = (typeof Mode)[keyof typeof Mode];

interface NreadState extends NreadRequest {
  /** The data block's length, CRLF included. */
  need: number;
  /** Bytes of the budget held for it (the item's size). */
  reserved: number;
  /** Where a block arriving in pieces is collected. */
  buffer?: Uint8Array;
  filled: number;
}

/**
 * The text of a line longer than the read buffer — a get or gets, the only
 * lines memcached lets grow — with every token longer than a key cut to
 * KEY_MAX + 1 chars: such a key is refused whatever it holds, and a 15 MB
 * one is not turned into a string first.
 */
function longLine(data: Uint8Array, pos: number, end: number): string {
  let text = "";
  let from = pos;
  let token = pos;
  for (let i = pos; i <= end; i++) {
    if (i < end && data[i] !== 32) continue;
    if (i - token > KEY_MAX + 1) {
      text += latin1(data, from, token + KEY_MAX + 1);
      from = i;
    }
    token = i + 1;
  }
  return text + latin1(data, from, end);
}

/** One client connection's protocol state. */
export class MemorySession implements Session {
  readonly store: MemoryStore;
  readonly hooks: SessionHooks;
  readonly out = new Output();
  noreply = false;
  /** Set once the connection is to be closed (after `out` is written, when `flushOutput`). */
  closed = false;
  /** Whether to write what is in `out` before closing (quit) or drop it (memcached's conn_closing). */
  flushOutput = true;
  flushMark = 0;
  lastCas = 0;
  readonly held = new Set<MemoryItem>();
  #mode: Mode = Mode.Command;
  /** Commands left before memcached would flush its answers (reqs_per_event 20, per read event). */
  #nreqs = 20;
  #nread: NreadState | undefined;
  #swallow = 0;
  /**
   * memcached's rbuf: bytes read from the socket and not yet used are
   * `#rbuf[#rpos, #rend)`. A view of the chunk being fed when it starts
   * empty; `#own` when a line has to outlive its chunk.
   */
  #rbuf: Uint8Array = NO_BYTES;
  #rpos = 0;
  #rend = 0;
  /** No newline in `#rbuf[#rpos, #scan)`: where the search for the end of the line goes on. */
  #scan = 0;
  #own: Uint8Array | undefined;
  /** How much one read may fill (memcached's rsize): grows, by doubling, for a long get line. */
  #rsize = READ_BUFFER;
  /** Budget bytes held for the grown line buffer. */
  #lineReserved = 0;

  constructor(store: MemoryStore, hooks: SessionHooks = {}) {
    this.store = store;
    this.hooks = hooks;
  }

  /**
   * Feeds bytes the client wrote (as they arrived: one read event); the
   * answer accumulates in `out`, and `take` hands out what memcached would
   * have written by now. Never throws for any input. Linear in the input:
   * an unfinished line is neither copied again nor scanned again.
   */
  feed(chunk: Uint8Array): void {
    if (this.closed) return;
    this.store.counters.bytes_read += chunk.length;
    this.#nreqs = 20;
    // `chunk[at..]` is still "in the socket": memcached has not read it yet.
    let at = 0;
    try {
      while (!this.closed) {
        if (this.#mode !== Mode.Command) {
          const before = at + this.#rpos;
          at = this.#block(chunk, at);
          if (at + this.#rpos === before) break; // the block goes on in a later chunk
          continue;
        }
        if (this.#rpos < this.#rend && this.#line()) continue;
        if (this.closed) break;
        // No complete command: memcached writes out what is pending (conn_parse_cmd / reset_cmd_handler
        // go to conn_mwrite), then waits for the socket and reads from it in a new event.
        this.flushMark = this.out.length;
        this.held.clear();
        if (at === chunk.length) break;
        at = this.#read(chunk, at);
        this.#nreqs = 20;
      }
    } catch (error) {
      // A bug of ours must not take the host down: answer as memcached does to the unexpected, and hang up.
      this.out.truncate(this.flushMark);
      this.out.text(`SERVER_ERROR ${(error as Error)?.message ?? "internal error"}`.slice(0, 200) + "\r\n");
      this.closed = true;
    }
    if (this.closed) this.dispose();
    else this.#keep();
  }

  /**
   * What memcached would have written out by now, handed over (and dropped
   * from `out`). While a data block is still arriving, the answers after
   * the last write stay: memcached answers a refused `set` once its block
   * has been swallowed. With `reuse`, see `Output.take`.
   */
  take(reuse: boolean): Uint8Array[] {
    const upTo = this.closed ? this.out.length : this.flushMark;
    this.flushMark -= upTo;
    return this.out.take(reuse, upTo);
  }

  /** Gives back the budget this connection holds (a block half received, a grown line buffer). Idempotent. */
  dispose(): void {
    if (this.#nread) {
      this.store.release(this.#nread.reserved);
      this.#nread = undefined;
    }
    this.#dropLineBuffer();
    this.#rbuf = NO_BYTES;
    this.#rpos = this.#rend = this.#scan = 0;
  }

  /** Memcached's try_read_network: up to `#rsize` bytes, the unused ones first. */
  #read(chunk: Uint8Array, at: number): number {
    let rbytes = this.#rend - this.#rpos;
    if (rbytes === 0 && this.#own === undefined) {
      // Nothing left over: the buffer is a view of the chunk, no copy.
      const n = Math.min(chunk.length - at, this.#rsize);
      this.#rbuf = chunk;
      this.#rpos = this.#scan = at;
      this.#rend = at + n;
      return at + n;
    }
    if (rbytes >= this.#rsize && !this.#grow()) return at;
    rbytes = this.#rend - this.#rpos;
    const n = Math.min(chunk.length - at, this.#rsize - rbytes);
    const own = this.#ownBuffer(rbytes + n);
    own.set(chunk.subarray(at, at + n), this.#rend);
    this.#rend += n;
    return at + n;
  }

  /**
   * Moves what is left of the buffer to the start of `#own` (memcached's
   * memmove to rbuf), with room for `size` bytes; it stays there while a
   * line grows, so each byte is copied once.
   */
  #ownBuffer(size: number): Uint8Array {
    let own = this.#own;
    const rbytes = this.#rend - this.#rpos;
    if (own === undefined || own.length < size || this.#rbuf !== own || this.#rpos !== 0) {
      if (own === undefined || own.length < size) {
        own = new Uint8Array(Math.min(this.#rsize, Math.max(1024, size * 2)));
      }
      own.set(this.#rbuf.subarray(this.#rpos, this.#rend), 0);
      this.#scan -= this.#rpos;
      this.#rbuf = this.#own = own;
      this.#rpos = 0;
      this.#rend = rbytes;
    }
    return own;
  }

  /** A get line filled the buffer: doubles it (memcached reallocs), within the budget and GET_LINE_LIMIT. */
  #grow(): boolean {
    const size = this.#rsize * 2;
    const more = size - READ_BUFFER - this.#lineReserved;
    if (size > GET_LINE_LIMIT) {
      this.close(false);
      return false;
    }
    if (!this.store.reserveLine(more)) {
      // memcached, when realloc fails: "out of memory reading request", and it hangs up.
      this.out.truncate(this.flushMark);
      this.out.text("SERVER_ERROR out of memory reading request\r\n");
      this.close(true);
      return false;
    }
    this.#lineReserved += more;
    this.#rsize = size;
    return true;
  }

  #dropLineBuffer(): void {
    if (this.#lineReserved > 0) this.store.releaseLine(this.#lineReserved);
    this.#lineReserved = 0;
    this.#rsize = READ_BUFFER;
    if (this.#own && this.#own.length > READ_BUFFER) {
      if (this.#rbuf === this.#own) this.#rbuf = NO_BYTES;
      this.#own = undefined;
    }
  }

  /** At the end of a feed: what is left of the buffer must not be a view of the caller's chunk. */
  #keep(): void {
    const rbytes = this.#rend - this.#rpos;
    if (rbytes === 0) {
      this.#rbuf = NO_BYTES;
      this.#rpos = this.#rend = this.#scan = 0;
      if (this.#rsize > READ_BUFFER || (this.#own && this.#own.length > READ_BUFFER)) this.#dropLineBuffer();
      return;
    }
    if (this.#rbuf !== this.#own) this.#ownBuffer(rbytes);
  }

  /** One command line from the buffer, if a whole one is there; false if not (after memcached's verdict). */
  #line(): boolean {
    const data = this.#rbuf;
    const pos = this.#rpos;
    if (this.#scan < pos) this.#scan = pos; // a data block was read past it
    const nl = data.subarray(this.#scan, this.#rend).indexOf(10);
    if (nl < 0) {
      this.#scan = this.#rend;
      this.#unterminated();
      return false;
    }
    const at = this.#scan + nl;
    let end = at;
    if (at - pos > 1 && data[at - 1] === 13) end--;
    const zero = data.subarray(pos, end).indexOf(0);
    if (zero >= 0) end = pos + zero; // C string: a NUL ends the line
    const line = end - pos > READ_BUFFER ? longLine(data, pos, end) : latin1(data, pos, end);
    this.#rpos = this.#scan = at + 1;
    if (this.#rpos === this.#rend && this.#rsize > READ_BUFFER) this.#dropLineBuffer();
    this.noreply = false;
    this.#command(line);
    if (this.#mode === Mode.Command) this.#completed();
    return true;
  }

  /** Reads (or swallows) data-block bytes: what the buffer holds first, then from the socket, to the exact end. */
  #block(chunk: Uint8Array, at: number): number {
    const rbytes = this.#rend - this.#rpos;
    if (this.#mode === Mode.Swallow) {
      const n = Math.min(this.#swallow, rbytes > 0 ? rbytes : chunk.length - at);
      if (rbytes > 0) this.#rpos += n;
      else at += n;
      this.#swallow -= n;
      if (this.#swallow === 0) {
        this.#mode = Mode.Command;
        this.#completed();
      }
      return at;
    }
    const state = this.#nread!;
    if (rbytes > 0 && this.#rbuf === chunk && this.#rend === at) {
      // The buffer is a view of this chunk and the socket's bytes follow it: read the block in place.
      const n = Math.min(state.need - state.filled, chunk.length - this.#rpos);
      const from = this.#rpos;
      const fromBuffer = Math.min(n, rbytes);
      this.#rpos += fromBuffer;
      this.#readValue(chunk, from, n);
      return at + (n - fromBuffer);
    }
    if (rbytes > 0) {
      const n = Math.min(state.need - state.filled, rbytes);
      this.#readValue(this.#rbuf, this.#rpos, n);
      this.#rpos += n;
      return at;
    }
    const n = Math.min(state.need - state.filled, chunk.length - at);
    if (n > 0) this.#readValue(chunk, at, n);
    return at + n;
  }

  /**
   * A command is done (memcached's conn_new_cmd): after reqs_per_event (20)
   * of them in one read event memcached writes out what it has, which
   * decides what a later error may drop and which items mg still holds.
   */
  #completed(): void {
    if (--this.#nreqs < 0) {
      this.flushMark = this.out.length;
      this.held.clear();
      this.#nreqs = 19; // the yield itself takes one turn of the next event
    }
  }

  /** Memcached's verdict on buffered bytes with no newline yet. */
  #unterminated(): void {
    const data = this.#rbuf;
    const pos = this.#rpos;
    const pending = this.#rend - pos;
    if (pending <= LINE_LIMIT || this.#rsize > READ_BUFFER) return;
    let p = pos;
    while (p < this.#rend && data[p] === 32) p++;
    const startsWith = (word: string) => {
      for (let i = 0; i < word.length; i++) if (data[p + i] !== word.charCodeAt(i)) return false;
      return true;
    };
    if (p - pos > 100 || !(startsWith("get ") || startsWith("gets "))) {
      this.close(false);
      return;
    }
    // memcached moves a long get line to a buffer of its own (rbuf_switch_to_malloc), twice the size.
    this.#grow();
  }

  /** Ends the connection: after writing what is pending (quit), or dropping it (memcached's conn_closing). */
  close(flush: boolean): void {
    if (!flush) this.out.truncate(this.flushMark);
    this.flushOutput = flush;
    this.closed = true;
  }

  /** memcached's out_string: a line, unless noreply. */
  reply(line: string): void {
    if (this.noreply) return;
    this.out.text(line);
    this.out.text("\r\n");
  }

  /** memcached's out_errstring: a line even under noreply. */
  error(line: string): void {
    this.noreply = false;
    this.reply(line);
  }

  /** Reads the data block that follows a storage command; then stores it (`request.item.size` is reserved). */
  startNread(request: NreadRequest, length: number): void {
    this.#nread = { ...request, need: length + 2, reserved: request.item.size, filled: 0 };
    this.#mode = Mode.Nread;
  }

  /** Skips `n` bytes of input (a data block after an error). */
  swallow(n: number): void {
    if (n <= 0) return;
    this.#swallow = n;
    this.#mode = Mode.Swallow;
  }

  /** Takes `n` more bytes of the block from `data[pos..]`. */
  #readValue(data: Uint8Array, pos: number, n: number): void {
    const state = this.#nread!;
    if (state.filled === 0 && n === state.need) {
      // Whole block at hand: the value is a copy of its bytes, the CRLF checked in place.
      const length = n - 2;
      state.item.value = itemValue(data, pos, pos + length);
      this.#completeNread(state, data[pos + length] === 13 && data[pos + length + 1] === 10);
      return;
    }
    const buffer = state.buffer ??= new Uint8Array(state.need);
    buffer.set(data.subarray(pos, pos + n), state.filled);
    state.filled += n;
    if (state.filled === state.need) {
      const length = state.need - 2;
      state.item.value = length > STRING_VALUE_MAX ? buffer.subarray(0, length) : itemValue(buffer, 0, length);
      this.#completeNread(state, buffer[length] === 13 && buffer[length + 1] === 10);
    }
  }

  #completeNread(state: NreadState, valid: boolean): void {
    this.#mode = Mode.Command;
    this.#nread = undefined;
    this.store.release(state.reserved);
    this.#finishNread(state, valid);
    this.#completed();
  }

  #finishNread(state: NreadState, valid: boolean): void {
    this.store.counters.cmd_set++;
    if (!valid) {
      if (state.meta) this.noreply = false;
      this.reply("CLIENT_ERROR bad data chunk");
      return;
    }
    const result = storeItem(this, state.item, state.comm, state.reqCas, state.setStale);
    if (state.meta) {
      state.meta.finish(this, state.item, result);
      return;
    }
    this.reply(
      result === Stored.Stored
        ? "STORED"
        : result === Stored.Exists
        ? "EXISTS"
        : result === Stored.NotFound
        ? "NOT_FOUND"
        : "NOT_STORED",
    );
  }

  #command(line: string): void {
    const [tokens, rest] = tokenize(line, 0);
    const ntokens = tokens.length + 1;
    if (ntokens < 2 || tokens[0].length < 2) return this.reply("ERROR");
    const name = tokens[0];
    if (name.length === 2 && name.charCodeAt(0) === 109 /* m */) {
      switch (name[1]) {
        case "g":
          if (ntokens < 3) return this.reply("ERROR");
          return metaGet(this, tokens);
        case "s":
          if (ntokens < 3) return this.reply("ERROR");
          return metaSet(this, tokens);
        case "d":
          if (ntokens < 3) return this.reply("ERROR");
          return metaDelete(this, tokens);
        case "n":
          this.reply("MN");
          this.flushMark = this.out.length;
          this.held.clear();
          return;
        case "a":
          if (ntokens < 3) return this.reply("ERROR");
          return metaArithmetic(this, tokens);
        case "e":
          return metaDebug(this, tokens);
        default:
          return this.reply("ERROR");
      }
    }
    switch (name) {
      case "get":
      case "gets":
      case "gat":
      case "gats":
      case "bget":
        if (ntokens < 3) return this.reply("ERROR");
        return textGet(this, line, tokens, rest, name === "gets" || name === "gats", name === "gat" || name === "gats");
      case "set":
      case "add":
      case "replace":
      case "append":
      case "prepend":
        if (ntokens !== 6 && ntokens !== 7) return this.reply("ERROR");
        return textUpdate(this, tokens, COMMS[name], false);
      case "cas":
        if (ntokens !== 7 && ntokens !== 8) return this.reply("ERROR");
        return textUpdate(this, tokens, Comm.Cas, true);
      case "incr":
      case "decr":
        if (ntokens !== 4 && ntokens !== 5) return this.reply("ERROR");
        return textArithmetic(this, tokens, name === "incr");
      case "delete":
        if (ntokens < 3 || ntokens > 5) return this.reply("ERROR");
        return textDelete(this, tokens);
      case "touch":
        if (ntokens !== 4 && ntokens !== 5) return this.reply("ERROR");
        return textTouch(this, tokens);
      case "stats":
        return stats(this, tokens);
      case "flush_all":
        if (ntokens < 2 || ntokens > 4) return this.reply("ERROR");
        return textFlushAll(this, tokens);
      case "version":
        return this.reply("VERSION 1.6.18");
      case "quit":
        return this.close(true);
      case "verbosity":
        if (ntokens !== 3 && ntokens !== 4) return this.reply("ERROR");
        return textVerbosity(this, tokens);
      case "cache_memlimit":
        if (ntokens !== 3 && ntokens !== 4) return this.reply("ERROR");
        return textMemlimit(this, tokens);
      case "shutdown":
        return this.reply("ERROR: shutdown not enabled");
      default:
        // memcached hangs up on what looks like HTTP.
        if (tokens[tokens.length - 1].startsWith("HTTP/")) return this.close(false);
        return this.reply("ERROR");
    }
  }
}
