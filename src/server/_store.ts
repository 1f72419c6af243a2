/**
 * The item store of `MemoryServer` (testing.ts): items by key, LRU order,
 * memory accounting, the clock, cas ids, flush state and the counters
 * `stats` reports — memcached 1.6.18's rules (items.c, memcached.c) without
 * its slabs. Runtime-free: no sockets, no timers.
 *
 * Sizes are counted as memcached counts them (`ITEM_ntotal`): a 48-byte
 * header, the key plus a NUL, 4 bytes of client flags unless they are 0, the
 * value plus CRLF, and an 8-byte cas. `maxBytes` bounds their sum.
 *
 * @module
 */

/** memcached's `sizeof(item)` on 64-bit builds, counted into every item. */
export const ITEM_HEADER = 48;
/** Relative expiry times above this many seconds are unix times (memcached's REALTIME_MAXDELTA). */
export const REALTIME_MAXDELTA = 60 * 60 * 24 * 30;

import type { ItemValue } from "./_codec.ts";

/** One stored item. Keys are latin1 strings: one char per key byte; so are short values. */
export interface MemoryItem {
  key: string;
  value: ItemValue;
  /** Client flags, 32-bit unsigned. */
  flags: number;
  /** Expiry in server-relative seconds, 0 for never. */
  exptime: number;
  /** Last access (link or bump), server-relative seconds. */
  time: number;
  cas: number;
  /** Size as memcached counts it (ITEM_ntotal). */
  size: number;
  /** Fetched at least once since stored (mg `h`). */
  fetched: boolean;
  /** Marked stale by `md I` or an `ms I` with an older cas. */
  stale: boolean;
  /** A recache win token (W) was handed out. */
  tokenSent: boolean;
  /** The key was sent base64-encoded (meta `b`): `k` returns it encoded. */
  keyBinary: boolean;
}

/** memcached's ITEM_ntotal for a key of `nkey` bytes and a value of `nbytes` bytes (without CRLF). */
export function itemSize(nkey: number, flags: number, nbytes: number): number {
  return ITEM_HEADER + nkey + 1 + (flags === 0 ? 0 : 4) + nbytes + 2 + 8;
}

/** Counters as `stats` names them. */
export class Counters {
  cmd_get = 0;
  cmd_set = 0;
  cmd_flush = 0;
  cmd_touch = 0;
  cmd_meta = 0;
  get_hits = 0;
  get_misses = 0;
  get_expired = 0;
  get_flushed = 0;
  delete_misses = 0;
  delete_hits = 0;
  incr_misses = 0;
  incr_hits = 0;
  decr_misses = 0;
  decr_hits = 0;
  cas_misses = 0;
  cas_hits = 0;
  cas_badval = 0;
  touch_hits = 0;
  touch_misses = 0;
  store_too_large = 0;
  store_no_memory = 0;
  auth_cmds = 0;
  auth_errors = 0;
  bytes_read = 0;
  bytes_written = 0;
  total_items = 0;
  evictions = 0;
  reclaimed = 0;
  expired_unfetched = 0;
  evicted_unfetched = 0;
  total_connections = 0;
  rejected_connections = 0;
}

/** Options of a store; see `MemoryServerOptions` in testing.ts. */
export interface StoreOptions {
  maxBytes?: number;
  itemSizeMax?: number;
  maxConnections?: number;
}

/** The items and the server-wide state every connection shares. */
export class MemoryStore {
  /** Insertion order is LRU order: the first entry is the least recently used. */
  readonly items = new Map<string, MemoryItem>();
  readonly counters = new Counters();
  maxBytes: number;
  readonly itemSizeMax: number;
  /** Sum of the items' sizes. */
  bytes = 0;
  /**
   * Bytes held for data blocks being received (their items' sizes), across
   * connections. Bounded by `maxBytes`, apart from the items.
   */
  pendingBytes = 0;
  /** Bytes of command-line buffers grown past 16 KiB for long get lines. Bounded by `maxBytes` as well. */
  lineBytes = 0;
  currConnections = 0;
  /** Connections served at once (memcached's -c); more are refused. */
  readonly maxConnections: number;
  verbosity = 0;
  /** Seconds the clock was moved by `advance`. */
  #offset = 0;
  /** Unix second memcached calls process_started: 62 s before the start, as memcached does. */
  readonly processStarted: number;
  #casId = 0;
  /** flush_all state (memcached's settings.oldest_live / oldest_cas). */
  #oldestLive = 0;
  #oldestCas = 0;
  /**
   * The last flush that took effect, once a later flush_all replaced it:
   * what it removed stays removed. memcached keeps only the newest setting,
   * so a delayed flush_all brings back the items an earlier flush covered
   * until its allocator reclaims them — a bug not copied.
   */
  #pastLive = 0;
  #pastCas = 0;

  constructor(options: StoreOptions = {}) {
    this.maxBytes = options.maxBytes ?? 64 * 1024 * 1024;
    this.itemSizeMax = options.itemSizeMax ?? 1024 * 1024;
    this.maxConnections = options.maxConnections ?? 1024;
    this.processStarted = Math.floor(Date.now() / 1000) - 62;
  }

  /** The unix time in seconds, clock moves included. */
  unixNow(): number {
    return Math.floor(Date.now() / 1000 + this.#offset);
  }

  /** Server-relative seconds (memcached's current_time). */
  now(): number {
    return this.unixNow() - this.processStarted;
  }

  /** Moves the clock forward by `seconds`. */
  advance(seconds: number): void {
    this.#offset += seconds;
  }

  /**
   * memcached's realtime(EXPTIME_TO_POSITIVE_TIME(t)): 0 stays 0 (never),
   * up to 30 days is relative, larger is a unix time; negative means expired.
   */
  realtime(exptime: number): number {
    if (exptime < 0) exptime = REALTIME_MAXDELTA + 1;
    if (exptime === 0) return 0;
    if (exptime > REALTIME_MAXDELTA) {
      if (exptime <= this.processStarted) return 1;
      return exptime - this.processStarted;
    }
    return exptime + this.now();
  }

  nextCas(): number {
    return ++this.#casId;
  }

  #flushed(item: MemoryItem, now: number): boolean {
    if (
      this.#pastLive !== 0 &&
      (item.time <= this.#pastLive || (this.#pastCas !== 0 && item.cas !== 0 && item.cas < this.#pastCas))
    ) return true;
    const oldest = this.#oldestLive;
    if (oldest === 0 || oldest > now) return false;
    return item.time <= oldest || (this.#oldestCas !== 0 && item.cas !== 0 && item.cas < this.#oldestCas);
  }

  /**
   * The live item under `key`, or undefined; an expired or flushed one is
   * unlinked on the way (memcached's do_item_get). `bump` marks it fetched
   * and most recently used.
   */
  get(key: string, bump: boolean): MemoryItem | undefined {
    const item = this.items.get(key);
    if (item === undefined) return undefined;
    const now = this.now();
    if (this.#flushed(item, now)) {
      this.unlink(item);
      this.counters.get_flushed++;
      return undefined;
    }
    if (item.exptime !== 0 && item.exptime <= now) {
      this.unlink(item);
      this.counters.get_expired++;
      return undefined;
    }
    if (bump) this.bump(item, now);
    return item;
  }

  /** Marks `item` fetched and most recently used. */
  bump(item: MemoryItem, now = this.now()): void {
    item.fetched = true;
    item.time = now;
    this.items.delete(item.key);
    this.items.set(item.key, item);
  }

  /** Most recently used, without marking it fetched (memcached's do_item_update). */
  touchLru(item: MemoryItem): void {
    item.time = this.now();
    this.items.delete(item.key);
    this.items.set(item.key, item);
  }

  unlink(item: MemoryItem): void {
    if (this.items.get(item.key) !== item) return;
    this.items.delete(item.key);
    this.bytes -= item.size;
  }

  /** A new, unlinked item. */
  make(key: string, value: ItemValue, flags: number, exptime: number): MemoryItem {
    return {
      key,
      value,
      flags,
      exptime,
      time: 0,
      cas: 0,
      size: itemSize(key.length, flags, value.length),
      fetched: false,
      stale: false,
      tokenSent: false,
      keyBinary: false,
    };
  }

  /** True when an item of this size may be stored at all (memcached's item_size_ok). */
  sizeOk(size: number): boolean {
    return size <= this.itemSizeMax;
  }

  /**
   * Holds `size` bytes of the budget for blocks being received (`pendingBytes`);
   * false, holding nothing, when that would pass `maxBytes`.
   */
  reserve(size: number): boolean {
    if (this.pendingBytes + size > this.maxBytes) return false;
    this.pendingBytes += size;
    return true;
  }

  /** Gives back what `reserve` held. */
  release(size: number): void {
    this.pendingBytes -= size;
  }

  /** As `reserve`, for a grown line buffer (`lineBytes`). */
  reserveLine(size: number): boolean {
    if (this.lineBytes + size > this.maxBytes) return false;
    this.lineBytes += size;
    return true;
  }

  /** Gives back what `reserveLine` held. */
  releaseLine(size: number): void {
    this.lineBytes -= size;
  }

  /**
   * Makes room for `size` more bytes by evicting least recently used items
   * (expired ones count as reclaimed). False if it cannot fit even in an
   * empty store.
   */
  makeRoom(size: number, keep?: MemoryItem): boolean {
    if (size > this.maxBytes) return false;
    if (this.bytes + size <= this.maxBytes) return true;
    const now = this.now();
    for (const item of this.items.values()) {
      if (this.bytes + size <= this.maxBytes) break;
      if (item === keep) continue;
      this.unlink(item);
      if ((item.exptime !== 0 && item.exptime <= now) || this.#flushed(item, now)) {
        this.counters.reclaimed++;
        if (!item.fetched) this.counters.expired_unfetched++;
      } else {
        this.counters.evictions++;
        if (!item.fetched) this.counters.evicted_unfetched++;
      }
    }
    return this.bytes + size <= this.maxBytes;
  }

  /**
   * Links `item` under its key, replacing any item there, with a new cas
   * (memcached's do_item_link / item_replace). False when there is no room.
   */
  link(item: MemoryItem, old?: MemoryItem): boolean {
    if (old) this.unlink(old);
    else {
      const there = this.items.get(item.key);
      if (there) this.unlink(there);
    }
    if (!this.makeRoom(item.size)) return false;
    item.time = this.now();
    item.cas = this.nextCas();
    this.items.set(item.key, item);
    this.bytes += item.size;
    this.counters.total_items++;
    return true;
  }

  /** Replaces the value of a linked item in place (incr/decr that fits), with a new cas. */
  rewrite(item: MemoryItem, value: ItemValue): void {
    item.value = value;
    item.cas = this.nextCas();
    this.touchLru(item);
  }

  /** flush_all with `delay` seconds (0 or less: now), as memcached 1.6.18 does it. */
  flush(delay: number): void {
    const now = this.now();
    const newOldest = delay > 0 ? this.realtime(delay) : now;
    if (this.#oldestLive !== 0 && this.#oldestLive <= now) {
      this.#pastLive = this.#oldestLive;
      this.#pastCas = this.#oldestCas;
    }
    this.#oldestLive = newOldest - 1;
    if (this.#oldestLive <= now) this.#oldestCas = this.nextCas();
  }

  /** Sets the memory limit (cache_memlimit), evicting down to it. */
  setMaxBytes(bytes: number): void {
    this.maxBytes = bytes;
    this.makeRoom(0);
  }

  /** `stats reset`: zeroes the counters that memcached's stats_reset zeroes. */
  resetCounters(): void {
    const fresh = new Counters();
    const keep = this.counters.total_connections;
    Object.assign(this.counters, fresh);
    this.counters.total_connections = keep;
  }
}
