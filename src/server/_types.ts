/**
 * What the command files of `MemoryServer` (_memory_text.ts, _memory_meta.ts,
 * _memory_stats.ts) need of a connection, as an interface: they depend on
 * this module, _memory_session.ts depends on them and implements
 * {@linkcode Session}, and nothing depends back on the session.
 *
 * @module
 */
import type { MemoryItem, MemoryStore } from "./_store.ts";
import type { Output } from "./_output.ts";

/** Storage modes (memcached's NREAD_*). */
export const Comm = { Set: 0, Add: 1, Replace: 2, Append: 3, Prepend: 4, Cas: 5 } as const;
/** A storage mode. */
export type Comm = (typeof Comm)[keyof typeof Comm];

/** What store_item answered. */
export const Stored = { Stored: 0, NotStored: 1, Exists: 2, NotFound: 3 } as const;
/** A store_item result. */
export type Stored = (typeof Stored)[keyof typeof Stored];

/** What a session's owner tells it. */
export interface SessionHooks {
  /** Unix time the server started, for `stats`. */
  readonly startedAt?: number;
  /** The TCP port it listens on, for `stats settings`. */
  readonly port?: number;
}

/** What ms remembers until its data block has arrived. */
export interface MetaSetState {
  finish(s: Session, item: MemoryItem, result: Stored): void;
}

/** A storage command waiting for its data block. */
export interface NreadRequest {
  comm: Comm;
  item: MemoryItem;
  reqCas: bigint;
  setStale: boolean;
  meta?: MetaSetState;
}

/** One client connection, as the commands see it. */
export interface Session {
  readonly store: MemoryStore;
  readonly hooks: SessionHooks;
  /** The answers; what is before `flushMark` memcached has already written out. */
  readonly out: Output;
  /** The current command's noreply (memcached's c->noreply). */
  noreply: boolean;
  /** Where the responses not yet "sent" start (memcached drops them on some errors). */
  flushMark: number;
  /** The cas of the last successful store (memcached's c->cas). */
  lastCas: number;
  /** Items an mg answer still references until the next flush: incr/decr then replaces instead of rewriting. */
  readonly held: Set<MemoryItem>;
  /** memcached's out_string: a line, unless noreply. */
  reply(line: string): void;
  /** memcached's out_errstring: a line even under noreply. */
  error(line: string): void;
  /** Ends the connection: after writing what is pending (quit), or dropping it (memcached's conn_closing). */
  close(flush: boolean): void;
  /**
   * Reads the `length`-byte data block that follows a storage command, then
   * stores it. The caller has reserved `request.item.size` bytes with
   * `store.reserve`; the session gives them back once the block is read or
   * the connection ends.
   */
  startNread(request: NreadRequest, length: number): void;
  /** Skips `n` bytes of input (a data block after an error). */
  swallow(n: number): void;
}
