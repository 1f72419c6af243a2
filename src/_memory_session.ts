/**
 * One connection to `MemoryServer`: fed the bytes a client writes, it
 * answers with the bytes memcached 1.6.18 would write. Framing, data
 * blocks and the dispatch live here (proto_text.c's try_read_command_ascii
 * and process_command_ascii); the classic commands in _memory_text.ts, the
 * meta commands in _memory_meta.ts, `stats` in _memory_stats.ts.
 * Runtime-free: the transport or the TCP listener in testing.ts moves the
 * bytes.
 *
 * @module
 */
import { itemValue, latin1, STRING_VALUE_MAX } from "./_memory_codec.ts";
import type { MemoryItem, MemoryStore } from "./_memory_store.ts";
import { metaArithmetic, metaDebug, metaDelete, metaGet, metaSet, type MetaSetState } from "./_memory_meta.ts";
import { stats } from "./_memory_stats.ts";
import { Output, tokenize } from "./_memory_output.ts";
import {
  Comm,
  COMMS,
  Stored,
  storeItem,
  textArithmetic,
  textDelete,
  textFlushAll,
  textGet,
  textMemlimit,
  textTouch,
  textUpdate,
  textVerbosity,
} from "./_memory_text.ts";

/** A line this long without a newline closes the connection unless it is a get (memcached: 2048). */
const LINE_LIMIT = 2048;
/** Even a multi-key get line is refused beyond this (memcached grows its buffer without bound). */
const GET_LINE_LIMIT = 16 * 1024 * 1024;

const Mode = { Command: 0, Nread: 1, Swallow: 2 } as const;
type Mode = (typeof Mode)[keyof typeof Mode];

interface NreadState {
  comm: Comm;
  item: MemoryItem;
  reqCas: bigint;
  setStale: boolean;
  meta?: MetaSetState;
  /** The data block's length, CRLF included. */
  need: number;
  /** Where a block arriving in pieces is collected. */
  buffer?: Uint8Array;
  filled: number;
}

/** Hooks a session reports to its owner. */
export interface SessionHooks {
  /** Unix time the server started, for `stats`. */
  readonly startedAt?: number;
  /** The TCP port it listens on, for `stats settings`. */
  readonly port?: number;
}

/** One client connection's protocol state. */
export class MemorySession {
  readonly store: MemoryStore;
  readonly hooks: SessionHooks;
  readonly out = new Output();
  /** The current command's noreply (memcached's c->noreply). */
  noreply = false;
  /** Set once the connection is to be closed (after `out` is written, when `flushOutput`). */
  closed = false;
  /** Whether to write what is in `out` before closing (quit) or drop it (memcached's conn_closing). */
  flushOutput = true;
  /** Where the responses not yet "sent" start (memcached drops them on some errors). */
  flushMark = 0;
  /** The cas of the last successful store (memcached's c->cas). */
  lastCas = 0;
  /** Items an mg answer still references until the next flush: incr/decr then replaces instead of rewriting. */
  readonly held = new Set<MemoryItem>();
  #mode: Mode = Mode.Command;
  /** Commands left before memcached would flush its answers (reqs_per_event 20, per read event). */
  #nreqs = 20;
  #rest: Uint8Array | undefined;
  #nread: NreadState | undefined;
  #swallow = 0;

  constructor(store: MemoryStore, hooks: SessionHooks = {}) {
    this.store = store;
    this.hooks = hooks;
  }

  /** Feeds bytes the client wrote; the answer accumulates in `out`. Never throws for any input. */
  feed(chunk: Uint8Array): void {
    if (this.closed) return;
    this.store.counters.bytes_read += chunk.length;
    let data = chunk;
    if (this.#rest) {
      data = new Uint8Array(this.#rest.length + chunk.length);
      data.set(this.#rest);
      data.set(chunk, this.#rest.length);
      this.#rest = undefined;
    }
    this.flushMark = this.out.length;
    this.#nreqs = 20;
    let pos = 0;
    try {
      while (!this.closed && pos < data.length) {
        if (this.#mode === Mode.Nread) {
          pos = this.#readValue(data, pos);
          continue;
        }
        if (this.#mode === Mode.Swallow) {
          const n = Math.min(this.#swallow, data.length - pos);
          pos += n;
          this.#swallow -= n;
          if (this.#swallow === 0) {
            this.#mode = Mode.Command;
            this.#completed();
          }
          continue;
        }
        const nl = data.indexOf(10, pos);
        if (nl < 0) {
          this.#unterminated(data, pos);
          break;
        }
        let end = nl;
        if (nl - pos > 1 && data[nl - 1] === 13) end--;
        const zero = data.subarray(pos, end).indexOf(0);
        if (zero >= 0) end = pos + zero; // C string: a NUL ends the line
        const line = latin1(data, pos, end);
        pos = nl + 1;
        this.noreply = false;
        this.#command(line);
        if (this.#mode === Mode.Command) this.#completed();
        if ((this.#mode as Mode) === Mode.Nread && this.#nread && data.length - pos >= this.#nread.need) {
          // The whole value is here: read it without the intermediate copy.
          pos = this.#readValue(data, pos);
        }
      }
    } catch (error) {
      // A bug of ours must not take the host down: answer as memcached does to the unexpected, and hang up.
      this.out.truncate(this.flushMark);
      this.out.text(`SERVER_ERROR ${(error as Error)?.message ?? "internal error"}`.slice(0, 200) + "\r\n");
      this.closed = true;
    }
    if (!this.closed && pos < data.length) this.#rest = data.slice(pos);
    this.held.clear();
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
  #unterminated(data: Uint8Array, pos: number): void {
    const pending = data.length - pos;
    if (pending <= LINE_LIMIT) return;
    let p = pos;
    while (p < data.length && data[p] === 32) p++;
    const startsWith = (word: string) => {
      for (let i = 0; i < word.length; i++) if (data[p + i] !== word.charCodeAt(i)) return false;
      return true;
    };
    if (p - pos > 100 || !(startsWith("get ") || startsWith("gets ")) || pending > GET_LINE_LIMIT) {
      this.close(false);
    }
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

  /** Reads the data block that follows a storage command; then stores it. */
  startNread(state: Omit<NreadState, "need" | "buffer" | "filled">, length: number): void {
    this.#nread = { ...state, need: length + 2, filled: 0 };
    this.#mode = Mode.Nread;
  }

  /** Skips `n` bytes of input (a data block after an error). */
  swallow(n: number): void {
    if (n <= 0) return;
    this.#swallow = n;
    this.#mode = Mode.Swallow;
  }

  #readValue(data: Uint8Array, pos: number): number {
    const state = this.#nread!;
    const need = state.need - state.filled;
    const available = data.length - pos;
    if (state.filled === 0 && available >= need) {
      // Whole block at hand: the value is a copy of its bytes, the CRLF checked in place.
      const length = need - 2;
      state.item.value = itemValue(data, pos, pos + length);
      this.#completeNread(state, data[pos + length] === 13 && data[pos + length + 1] === 10);
      return pos + need;
    }
    const buffer = state.buffer ??= new Uint8Array(state.need);
    const n = Math.min(need, available);
    buffer.set(data.subarray(pos, pos + n), state.filled);
    state.filled += n;
    if (state.filled === state.need) {
      const length = state.need - 2;
      state.item.value = length > STRING_VALUE_MAX ? buffer.subarray(0, length) : itemValue(buffer, 0, length);
      this.#completeNread(state, buffer[length] === 13 && buffer[length + 1] === 10);
    }
    return pos + n;
  }

  #completeNread(state: NreadState, valid: boolean): void {
    this.#mode = Mode.Command;
    this.#nread = undefined;
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
