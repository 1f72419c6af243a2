/**
 * One connection to `MemoryServer`: fed the bytes a client writes, it
 * answers with the bytes memcached 1.6.18 would write. Framing and the
 * classic text commands live here (proto_text.c's process_command_ascii and
 * friends); the meta commands in _memory_meta.ts; `stats` in
 * _memory_stats.ts. Runtime-free: the transport or the TCP listener in
 * testing.ts moves the bytes.
 *
 * @module
 */
import { latin1, parseI32, parseU32, parseU64, parseValueU64 } from "./_memory_codec.ts";
import type { MemoryItem, MemoryStore } from "./_memory_store.ts";
import { metaArithmetic, metaDebug, metaDelete, metaGet, metaSet, type MetaSetState } from "./_memory_meta.ts";
import { stats } from "./_memory_stats.ts";

/** memcached's KEY_MAX_LENGTH. */
export const KEY_MAX = 250;
/** memcached's MAX_TOKENS: the tokenizer stops after MAX_TOKENS - 1 tokens. */
const MAX_TOKENS = 24;
/** A line this long without a newline closes the connection unless it is a get (memcached: 2048). */
const LINE_LIMIT = 2048;
/** Even a multi-key get line is refused beyond this (memcached grows its buffer without bound). */
const GET_LINE_LIMIT = 16 * 1024 * 1024;

/** Storage modes (memcached's NREAD_*). */
export const Comm = { Set: 0, Add: 1, Replace: 2, Append: 3, Prepend: 4, Cas: 5 } as const;
/** A storage mode. */
export type Comm = (typeof Comm)[keyof typeof Comm];

/** What store_item answered. */
export const Stored = { Stored: 0, NotStored: 1, Exists: 2, NotFound: 3 } as const;
/** A store_item result. */
export type Stored = (typeof Stored)[keyof typeof Stored];

/** The result of an incr/decr (memcached's do_add_delta). */
export type Delta =
  | { kind: "ok"; text: string; item: MemoryItem; cas: number }
  | { kind: "non-numeric" | "not-found" | "cas-mismatch" };

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

/**
 * What a session answers, as a list of byte arrays: lines are written into
 * a buffer, large values are referenced as they are stored (items' values
 * are never changed in place once stored, but by incr/decr, which only
 * rewrites values short enough to be copied here).
 */
export class Output {
  #parts: Uint8Array[] = [];
  #sealed = 0;
  #buf = new Uint8Array(16384);
  #start = 0;
  #pos = 0;

  /** Bytes written since the last `take`. */
  get length(): number {
    return this.#sealed + this.#pos - this.#start;
  }

  #seal(): void {
    if (this.#pos > this.#start) {
      this.#parts.push(this.#buf.subarray(this.#start, this.#pos));
      this.#sealed += this.#pos - this.#start;
      this.#start = this.#pos;
    }
  }

  #ensure(n: number): void {
    if (this.#pos + n <= this.#buf.length) return;
    this.#seal();
    this.#buf = new Uint8Array(Math.max(16384, n));
    this.#start = this.#pos = 0;
  }

  /** Appends a latin1 string. */
  text(s: string): void {
    this.#ensure(s.length);
    const buf = this.#buf;
    let at = this.#pos;
    for (let i = 0; i < s.length; i++) buf[at++] = s.charCodeAt(i);
    this.#pos = at;
  }

  /** Appends bytes; large ones by reference, so they must not change afterwards. */
  bytes(b: Uint8Array): void {
    if (b.length >= 4096) {
      this.#seal();
      this.#parts.push(b);
      this.#sealed += b.length;
      return;
    }
    this.#ensure(b.length);
    this.#buf.set(b, this.#pos);
    this.#pos += b.length;
  }

  /** Drops everything after the first `length` bytes. */
  truncate(length: number): void {
    if (length >= this.length) return;
    if (length >= this.#sealed) {
      this.#pos = this.#start + (length - this.#sealed);
      return;
    }
    this.#start = this.#pos; // the open region is dropped whole
    while (this.#sealed > length) {
      const last = this.#parts.pop()!;
      this.#sealed -= last.length;
      if (this.#sealed < length) {
        this.#parts.push(last.subarray(0, length - this.#sealed));
        this.#sealed = length;
      }
    }
  }

  /**
   * Hands out what was written and starts over. With `reuse`, the buffer is
   * written again afterwards: the caller must be done with the parts by then.
   */
  take(reuse: boolean): Uint8Array[] {
    this.#seal();
    const parts = this.#parts;
    this.#parts = [];
    this.#sealed = 0;
    if (!reuse) this.#buf = new Uint8Array(16384);
    this.#start = this.#pos = 0;
    return parts;
  }
}

/** Splits on spaces as memcached's tokenize_command: at most 23 tokens, then the index of the rest (or -1). */
export function tokenize(line: string, from: number): [string[], number] {
  const tokens: string[] = [];
  let start = from;
  for (let i = from; i < line.length; i++) {
    if (line.charCodeAt(i) !== 32) continue;
    if (start !== i) {
      tokens.push(line.slice(start, i));
      if (tokens.length === MAX_TOKENS - 1) return [tokens, i + 1 < line.length ? i + 1 : -1];
    }
    start = i + 1;
  }
  if (start < line.length) tokens.push(line.slice(start));
  return [tokens, -1];
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
      state.item.value = data.slice(pos, pos + length);
      this.#completeNread(state, data[pos + length] === 13 && data[pos + length + 1] === 10);
      return pos + need;
    }
    const buffer = state.buffer ??= new Uint8Array(state.need);
    const n = Math.min(need, available);
    buffer.set(data.subarray(pos, pos + n), state.filled);
    state.filled += n;
    if (state.filled === state.need) {
      const length = state.need - 2;
      state.item.value = buffer.subarray(0, length);
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
    const result = this.storeItem(state.item, state.comm, state.reqCas, state.setStale);
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

  /** memcached's do_store_item. `reqCas` is the cas the command carried (0: none). */
  storeItem(item: MemoryItem, comm: Comm, reqCas: bigint, setStale: boolean): Stored {
    const store = this.store;
    const counters = store.counters;
    const old = store.get(item.key, false);
    let result: Stored = Stored.NotStored;
    this.lastCas = 0;
    if (old) {
      const oldCas = BigInt(old.cas);
      const cas = reqCas === 0n ? "none" : reqCas === oldCas ? "match" : setStale && reqCas < oldCas ? "stale" : "bad";
      let stored: MemoryItem | undefined;
      switch (comm) {
        case Comm.Add:
          store.touchLru(old);
          break;
        case Comm.Cas:
          if (cas === "match") {
            counters.cas_hits++;
            stored = item;
          } else if (cas === "stale") {
            item.exptime = old.exptime;
            item.stale = true;
            item.tokenSent = old.tokenSent;
            counters.cas_hits++;
            stored = item;
          } else {
            counters.cas_badval++;
            result = Stored.Exists;
          }
          break;
        case Comm.Append:
        case Comm.Prepend: {
          if (cas !== "none" && cas !== "match") {
            result = Stored.Exists;
            break;
          }
          const value = new Uint8Array(old.value.length + item.value.length);
          value.set(comm === Comm.Append ? old.value : item.value);
          value.set(
            comm === Comm.Append ? item.value : old.value,
            comm === Comm.Append ? old.value.length : item.value.length,
          );
          const joined = store.make(item.key, value, old.flags, old.exptime); // a new item: not marked binary
          // Too large for an item, or for the memory: memcached's alloc fails and it is NOT_STORED.
          if (store.sizeOk(joined.size) && joined.size <= store.maxBytes) stored = joined;
          break;
        }
        default:
          stored = item;
      }
      if (stored && store.link(stored, old)) {
        result = Stored.Stored;
        this.lastCas = stored.cas;
        if (stored !== item) item.cas = stored.cas;
      }
    } else {
      if (comm === Comm.Add || comm === Comm.Set) {
        if (store.link(item)) {
          result = Stored.Stored;
          this.lastCas = item.cas;
        }
      } else if (comm === Comm.Cas) {
        result = Stored.NotFound;
        counters.cas_misses++;
      }
    }
    return result;
  }

  /** memcached's do_add_delta: incr/decr of the number an item holds, 64-bit wrapping, decr floored at 0. */
  addDelta(key: string, incr: boolean, delta: bigint, reqCas: bigint): Delta {
    const store = this.store;
    const item = store.get(key, false);
    if (!item) return { kind: "not-found" };
    if (item.value.length === 0) return { kind: "non-numeric" };
    if (reqCas !== 0n && BigInt(item.cas) !== reqCas) return { kind: "cas-mismatch" };
    let value = parseValueU64(item.value);
    if (value === undefined) return { kind: "non-numeric" };
    if (incr) {
      value = (value + delta) & 0xffffffffffffffffn;
      store.counters.incr_hits++;
    } else {
      value = delta > value ? 0n : value - delta;
      store.counters.decr_hits++;
    }
    const text = value.toString();
    if (text.length <= item.value.length && !this.held.has(item)) {
      // In place, padded with spaces to the old length, as memcached does.
      const bytes = new Uint8Array(item.value.length).fill(32);
      for (let i = 0; i < text.length; i++) bytes[i] = text.charCodeAt(i);
      store.rewrite(item, bytes);
      return { kind: "ok", text, item, cas: item.cas };
    }
    const fresh = store.make(key, new Uint8Array(text.length), item.flags, item.exptime);
    for (let i = 0; i < text.length; i++) fresh.value[i] = text.charCodeAt(i);
    if (!store.link(fresh, item)) return { kind: "not-found" };
    // memcached hands back the old, now unlinked item with the new cas: a later T changes nothing.
    item.cas = fresh.cas;
    return { kind: "ok", text, item, cas: fresh.cas };
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
        return this.#get(line, tokens, rest, name === "gets" || name === "gats", name === "gat" || name === "gats");
      case "set":
      case "add":
      case "replace":
      case "append":
      case "prepend":
        if (ntokens !== 6 && ntokens !== 7) return this.reply("ERROR");
        return this.#update(tokens, COMMS[name], false);
      case "cas":
        if (ntokens !== 7 && ntokens !== 8) return this.reply("ERROR");
        return this.#update(tokens, Comm.Cas, true);
      case "incr":
      case "decr":
        if (ntokens !== 4 && ntokens !== 5) return this.reply("ERROR");
        return this.#arithmetic(tokens, name === "incr");
      case "delete":
        if (ntokens < 3 || ntokens > 5) return this.reply("ERROR");
        return this.#delete(tokens);
      case "touch":
        if (ntokens !== 4 && ntokens !== 5) return this.reply("ERROR");
        return this.#touch(tokens);
      case "stats":
        return stats(this, tokens);
      case "flush_all":
        if (ntokens < 2 || ntokens > 4) return this.reply("ERROR");
        return this.#flushAll(tokens);
      case "version":
        return this.reply("VERSION 1.6.18");
      case "quit":
        return this.close(true);
      case "verbosity":
        if (ntokens !== 3 && ntokens !== 4) return this.reply("ERROR");
        return this.#verbosity(tokens);
      case "cache_memlimit":
        if (ntokens !== 3 && ntokens !== 4) return this.reply("ERROR");
        return this.#memlimit(tokens);
      case "shutdown":
        return this.reply("ERROR: shutdown not enabled");
      default:
        // memcached hangs up on what looks like HTTP.
        if (tokens[tokens.length - 1].startsWith("HTTP/")) return this.close(false);
        return this.reply("ERROR");
    }
  }

  #setNoreplyMaybe(tokens: string[]): boolean {
    if (tokens[tokens.length - 1] === "noreply") this.noreply = true;
    return this.noreply;
  }

  #get(line: string, tokens: string[], rest: number, withCas: boolean, touch: boolean): void {
    const store = this.store;
    const counters = store.counters;
    const out = this.out;
    let keyAt = 1;
    let exptime = 0;
    if (touch) {
      const t = parseI32(tokens[1]);
      if (t === undefined) return this.reply("CLIENT_ERROR invalid exptime argument");
      exptime = store.realtime(t);
      keyAt = 2;
    }
    for (;;) {
      for (let k = keyAt; k < tokens.length; k++) {
        const key = tokens[k];
        if (key.length > KEY_MAX) {
          // memcached drops every response not yet sent, then reports the error.
          out.truncate(this.flushMark);
          return this.reply("CLIENT_ERROR bad command line format");
        }
        const item = store.get(key, true);
        if (item) {
          if (touch) {
            item.exptime = exptime;
            counters.cmd_touch++;
            counters.touch_hits++;
          } else {
            counters.get_hits++;
            counters.cmd_get++;
          }
          out.text(`VALUE ${key} ${item.flags} ${item.value.length}${withCas ? ` ${item.cas}` : ""}\r\n`);
          out.bytes(item.value);
          out.text("\r\n");
        } else if (touch) {
          counters.cmd_touch++;
          counters.touch_misses++;
        } else {
          counters.get_misses++;
          counters.cmd_get++;
        }
      }
      if (rest < 0) break;
      [tokens, rest] = tokenize(line, rest);
      keyAt = 0;
    }
    out.text("END\r\n");
    // memcached writes out everything pending after a get (conn_mwrite), as after mn.
    this.flushMark = out.length;
    this.held.clear();
  }

  #update(tokens: string[], comm: Comm, handleCas: boolean): void {
    const store = this.store;
    this.#setNoreplyMaybe(tokens);
    const key = tokens[1];
    if (key.length > KEY_MAX) return this.reply("CLIENT_ERROR bad command line format");
    const flags = parseU32(tokens[2]);
    const exptime = flags === undefined ? undefined : parseI32(tokens[3]);
    let length = exptime === undefined ? undefined : parseI32(tokens[4]);
    if (length === undefined) return this.reply("CLIENT_ERROR bad command line format");
    let reqCas = 0n;
    if (handleCas) {
      const cas = parseU64(tokens[5]);
      if (cas === undefined) return this.reply("CLIENT_ERROR bad command line format");
      reqCas = cas;
    }
    if (length < 0 || length > 0x7fffffff - 2) return this.reply("CLIENT_ERROR bad command line format");
    const item = store.make(key, EMPTY, flags!, store.realtime(exptime!));
    item.size += length;
    if (!store.sizeOk(item.size) || item.size > store.maxBytes) {
      if (!store.sizeOk(item.size)) {
        this.reply("SERVER_ERROR object too large for cache");
        store.counters.store_too_large++;
      } else {
        this.reply("SERVER_ERROR out of memory storing object");
        store.counters.store_no_memory++;
      }
      this.swallow(length + 2);
      if (comm === Comm.Set) {
        const old = store.get(key, false);
        if (old) store.unlink(old);
      }
      return;
    }
    length = length | 0;
    this.startNread({ comm, item, reqCas, setStale: false }, length);
  }

  #arithmetic(tokens: string[], incr: boolean): void {
    this.#setNoreplyMaybe(tokens);
    const key = tokens[1];
    if (key.length > KEY_MAX) return this.reply("CLIENT_ERROR bad command line format");
    const delta = parseU64(tokens[2]);
    if (delta === undefined) return this.reply("CLIENT_ERROR invalid numeric delta argument");
    const result = this.addDelta(key, incr, delta, 0n);
    switch (result.kind) {
      case "ok":
        return this.reply(result.text);
      case "non-numeric":
        return this.reply("CLIENT_ERROR cannot increment or decrement non-numeric value");
      case "not-found":
        if (incr) this.store.counters.incr_misses++;
        else this.store.counters.decr_misses++;
        return this.reply("NOT_FOUND");
    }
  }

  #delete(tokens: string[]): void {
    const ntokens = tokens.length + 1;
    if (ntokens > 3) {
      const holdIsZero = tokens[2] === "0";
      const setsNoreply = this.#setNoreplyMaybe(tokens);
      const valid = (ntokens === 4 && (holdIsZero || setsNoreply)) || (ntokens === 5 && holdIsZero && setsNoreply);
      if (!valid) return this.reply("CLIENT_ERROR bad command line format.  Usage: delete <key> [noreply]");
    }
    const key = tokens[1];
    if (key.length > KEY_MAX) return this.reply("CLIENT_ERROR bad command line format");
    const item = this.store.get(key, false);
    if (item) {
      this.store.counters.delete_hits++;
      this.store.unlink(item);
      this.reply("DELETED");
    } else {
      this.store.counters.delete_misses++;
      this.reply("NOT_FOUND");
    }
  }

  #touch(tokens: string[]): void {
    this.#setNoreplyMaybe(tokens);
    const key = tokens[1];
    if (key.length > KEY_MAX) return this.reply("CLIENT_ERROR bad command line format");
    const t = parseI32(tokens[2]);
    if (t === undefined) return this.reply("CLIENT_ERROR invalid exptime argument");
    const exptime = this.store.realtime(t);
    const item = this.store.get(key, true);
    this.store.counters.cmd_touch++;
    if (item) {
      item.exptime = exptime;
      this.store.counters.touch_hits++;
      this.reply("TOUCHED");
    } else {
      this.store.counters.touch_misses++;
      this.reply("NOT_FOUND");
    }
  }

  #flushAll(tokens: string[]): void {
    this.#setNoreplyMaybe(tokens);
    this.store.counters.cmd_flush++;
    let delay = 0;
    if (tokens.length + 1 !== (this.noreply ? 3 : 2)) {
      const t = parseI32(tokens[1]);
      if (t === undefined) return this.reply("CLIENT_ERROR invalid exptime argument");
      delay = t;
    }
    this.store.flush(delay);
    this.reply("OK");
  }

  #verbosity(tokens: string[]): void {
    this.#setNoreplyMaybe(tokens);
    const level = parseU32(tokens[1]);
    if (level === undefined) return this.reply("CLIENT_ERROR bad command line format");
    this.store.verbosity = Math.min(level, 2);
    this.reply("OK");
  }

  #memlimit(tokens: string[]): void {
    this.#setNoreplyMaybe(tokens);
    const mb = parseU32(tokens[1]);
    if (mb === undefined) return this.reply("ERROR");
    if (mb < 8) return this.reply("MEMLIMIT_TOO_SMALL cannot set maxbytes to less than 8m");
    if (mb > 1000000000) return this.reply("MEMLIMIT_ADJUST_FAILED input value is megabytes not bytes");
    this.store.setMaxBytes(mb * 1024 * 1024);
    this.reply("OK");
  }
}

const EMPTY = new Uint8Array(0);
const COMMS: Record<string, Comm> = {
  set: Comm.Set,
  add: Comm.Add,
  replace: Comm.Replace,
  append: Comm.Append,
  prepend: Comm.Prepend,
};
