/**
 * The classic text commands of `MemoryServer` (get/gets/gat/gats, the
 * storage commands, incr/decr, delete, touch, flush_all, verbosity,
 * cache_memlimit) and the store rules they share with the meta commands
 * (memcached's do_store_item and do_add_delta), as memcached 1.6.18's
 * proto_text.c and memcached.c answer them. `noreply` silences every
 * answer of a classic command, errors included, as in memcached.
 *
 * @module
 */
import {
  itemValue,
  latin1Bytes,
  parseI32,
  parseU32,
  parseU64,
  parseValueU64,
  STRING_VALUE_MAX,
  valueBytes,
} from "./_codec.ts";
import type { MemoryItem } from "./_store.ts";
import { Comm, type Session, Stored } from "./_types.ts";
import { tokenize } from "./_output.ts";

/** memcached's KEY_MAX_LENGTH. */
export const KEY_MAX = 250;

/** The result of an incr/decr (memcached's do_add_delta). */
export type Delta =
  | { kind: "ok"; text: string; item: MemoryItem; cas: number }
  | { kind: "non-numeric" | "not-found" | "cas-mismatch" };

/** memcached's do_store_item. `reqCas` is the cas the command carried (0: none). */
export function storeItem(s: Session, item: MemoryItem, comm: Comm, reqCas: bigint, setStale: boolean): Stored {
  const store = s.store;
  const counters = store.counters;
  const old = store.get(item.key, false);
  let result: Stored = Stored.NotStored;
  s.lastCas = 0;
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
        const [first, second] = comm === Comm.Append ? [old.value, item.value] : [item.value, old.value];
        const value = new Uint8Array(first.length + second.length);
        value.set(valueBytes(first));
        value.set(valueBytes(second), first.length);
        const joined = store.make(item.key, itemValue(value), old.flags, old.exptime); // a new item: not marked binary
        // Too large for an item, or for the memory: memcached's alloc fails and it is NOT_STORED.
        if (store.sizeOk(joined.size) && joined.size <= store.maxBytes) stored = joined;
        break;
      }
      default:
        stored = item;
    }
    if (stored && store.link(stored, old)) {
      result = Stored.Stored;
      s.lastCas = stored.cas;
      if (stored !== item) item.cas = stored.cas;
    }
  } else {
    if (comm === Comm.Add || comm === Comm.Set) {
      if (store.link(item)) {
        result = Stored.Stored;
        s.lastCas = item.cas;
      }
    } else if (comm === Comm.Cas) {
      result = Stored.NotFound;
      counters.cas_misses++;
    }
  }
  return result;
}

/** memcached's do_add_delta: incr/decr of the number an item holds, 64-bit wrapping, decr floored at 0. */
export function addDelta(s: Session, key: string, incr: boolean, delta: bigint, reqCas: bigint): Delta {
  const store = s.store;
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
  if (text.length <= item.value.length && !s.held.has(item)) {
    // In place, padded with spaces to the old length, as memcached does.
    store.rewrite(
      item,
      item.value.length > STRING_VALUE_MAX
        ? latin1Bytes(text.padEnd(item.value.length))
        : text.padEnd(item.value.length),
    );
    return { kind: "ok", text, item, cas: item.cas };
  }
  const fresh = store.make(key, text, item.flags, item.exptime);
  if (!store.link(fresh, item)) return { kind: "not-found" };
  // memcached hands back the old, now unlinked item with the new cas: a later T changes nothing.
  item.cas = fresh.cas;
  return { kind: "ok", text, item, cas: fresh.cas };
}

function setNoreplyMaybe(s: Session, tokens: string[]): boolean {
  if (tokens[tokens.length - 1] === "noreply") s.noreply = true;
  return s.noreply;
}

export function textGet(
  s: Session,
  line: string,
  tokens: string[],
  rest: number,
  withCas: boolean,
  touch: boolean,
): void {
  const store = s.store;
  const counters = store.counters;
  const out = s.out;
  let keyAt = 1;
  let exptime = 0;
  if (touch) {
    const t = parseI32(tokens[1]);
    if (t === undefined) return s.reply("CLIENT_ERROR invalid exptime argument");
    exptime = store.realtime(t);
    keyAt = 2;
  }
  for (;;) {
    for (let k = keyAt; k < tokens.length; k++) {
      const key = tokens[k];
      if (key.length > KEY_MAX) {
        // memcached drops every response not yet sent, then reports the error.
        out.truncate(s.flushMark);
        return s.reply("CLIENT_ERROR bad command line format");
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
        out.value(item.value);
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
  s.flushMark = out.length;
  s.held.clear();
}

export function textUpdate(s: Session, tokens: string[], comm: Comm, handleCas: boolean): void {
  const store = s.store;
  setNoreplyMaybe(s, tokens);
  const key = tokens[1];
  if (key.length > KEY_MAX) return s.reply("CLIENT_ERROR bad command line format");
  const flags = parseU32(tokens[2]);
  const exptime = flags === undefined ? undefined : parseI32(tokens[3]);
  let length = exptime === undefined ? undefined : parseI32(tokens[4]);
  if (length === undefined) return s.reply("CLIENT_ERROR bad command line format");
  let reqCas = 0n;
  if (handleCas) {
    const cas = parseU64(tokens[5]);
    if (cas === undefined) return s.reply("CLIENT_ERROR bad command line format");
    reqCas = cas;
  }
  if (length < 0 || length > 0x7fffffff - 2) return s.reply("CLIENT_ERROR bad command line format");
  const item = store.make(key, EMPTY, flags!, store.realtime(exptime!));
  item.size += length;
  // The item is allocated now (memcached's item_alloc): the block it waits for counts against the budget.
  if (!store.sizeOk(item.size) || !store.reserve(item.size)) {
    if (!store.sizeOk(item.size)) {
      s.reply("SERVER_ERROR object too large for cache");
      store.counters.store_too_large++;
    } else {
      s.reply("SERVER_ERROR out of memory storing object");
      store.counters.store_no_memory++;
    }
    s.swallow(length + 2);
    if (comm === Comm.Set) {
      const old = store.get(key, false);
      if (old) store.unlink(old);
    }
    return;
  }
  length = length | 0;
  s.startNread({ comm, item, reqCas, setStale: false }, length);
}

export function textArithmetic(s: Session, tokens: string[], incr: boolean): void {
  setNoreplyMaybe(s, tokens);
  const key = tokens[1];
  if (key.length > KEY_MAX) return s.reply("CLIENT_ERROR bad command line format");
  const delta = parseU64(tokens[2]);
  if (delta === undefined) return s.reply("CLIENT_ERROR invalid numeric delta argument");
  const result = addDelta(s, key, incr, delta, 0n);
  switch (result.kind) {
    case "ok":
      return s.reply(result.text);
    case "non-numeric":
      return s.reply("CLIENT_ERROR cannot increment or decrement non-numeric value");
    case "not-found":
      if (incr) s.store.counters.incr_misses++;
      else s.store.counters.decr_misses++;
      return s.reply("NOT_FOUND");
  }
}

export function textDelete(s: Session, tokens: string[]): void {
  const ntokens = tokens.length + 1;
  if (ntokens > 3) {
    const holdIsZero = tokens[2] === "0";
    const setsNoreply = setNoreplyMaybe(s, tokens);
    const valid = (ntokens === 4 && (holdIsZero || setsNoreply)) || (ntokens === 5 && holdIsZero && setsNoreply);
    if (!valid) return s.reply("CLIENT_ERROR bad command line format.  Usage: delete <key> [noreply]");
  }
  const key = tokens[1];
  if (key.length > KEY_MAX) return s.reply("CLIENT_ERROR bad command line format");
  const item = s.store.get(key, false);
  if (item) {
    s.store.counters.delete_hits++;
    s.store.unlink(item);
    s.reply("DELETED");
  } else {
    s.store.counters.delete_misses++;
    s.reply("NOT_FOUND");
  }
}

export function textTouch(s: Session, tokens: string[]): void {
  setNoreplyMaybe(s, tokens);
  const key = tokens[1];
  if (key.length > KEY_MAX) return s.reply("CLIENT_ERROR bad command line format");
  const t = parseI32(tokens[2]);
  if (t === undefined) return s.reply("CLIENT_ERROR invalid exptime argument");
  const exptime = s.store.realtime(t);
  const item = s.store.get(key, true);
  s.store.counters.cmd_touch++;
  if (item) {
    item.exptime = exptime;
    s.store.counters.touch_hits++;
    s.reply("TOUCHED");
  } else {
    s.store.counters.touch_misses++;
    s.reply("NOT_FOUND");
  }
}

export function textFlushAll(s: Session, tokens: string[]): void {
  setNoreplyMaybe(s, tokens);
  s.store.counters.cmd_flush++;
  let delay = 0;
  if (tokens.length + 1 !== (s.noreply ? 3 : 2)) {
    const t = parseI32(tokens[1]);
    if (t === undefined) return s.reply("CLIENT_ERROR invalid exptime argument");
    delay = t;
  }
  s.store.flush(delay);
  s.reply("OK");
}

export function textVerbosity(s: Session, tokens: string[]): void {
  setNoreplyMaybe(s, tokens);
  const level = parseU32(tokens[1]);
  if (level === undefined) return s.reply("CLIENT_ERROR bad command line format");
  s.store.verbosity = Math.min(level, 2);
  s.reply("OK");
}

export function textMemlimit(s: Session, tokens: string[]): void {
  setNoreplyMaybe(s, tokens);
  const mb = parseU32(tokens[1]);
  if (mb === undefined) return s.reply("ERROR");
  if (mb < 8) return s.reply("MEMLIMIT_TOO_SMALL cannot set maxbytes to less than 8m");
  if (mb > 1000000000) return s.reply("MEMLIMIT_ADJUST_FAILED input value is megabytes not bytes");
  s.store.setMaxBytes(mb * 1024 * 1024);
  s.reply("OK");
}

const EMPTY = "";
export const COMMS: Record<string, Comm> = {
  set: Comm.Set,
  add: Comm.Add,
  replace: Comm.Replace,
  append: Comm.Append,
  prepend: Comm.Prepend,
};
