/**
 * The option types of {@linkcode Client} (re-exported by client.ts) and
 * the internal view of a client that the modules client.ts delegates to
 * (_client_auth.ts, _client_store.ts, _client_meta.ts, _client_server.ts)
 * work on.
 *
 * @module
 */

import type { Connection } from "../connection/_connection.ts";
import type { Item } from "../protocol/_wire.ts";
import type { Serde } from "../values/serde.ts";
import type { TlsOptions, Transport } from "../connection/transport.ts";
import type { Observer } from "./_observe.ts";

/** Options of {@linkcode Client}. Durations the client measures are in ms. */
export interface ClientOptions {
  /** Turns values into bytes and flags and back. @default {defaultSerde} */
  serde?: Serde;
  /**
   * ms to wait for a connection to open (TLS handshake included); on expiry
   * the waiting requests reject with `MemcacheTimeoutError`. `0` or
   * `Infinity`: wait as long as the OS does.
   * @default {5000}
   */
  connectTimeout?: number;
  /**
   * ms a request may take, from the call until its reply (connecting
   * included). On expiry the request rejects with `MemcacheTimeoutError`
   * and the connection is closed. `0` or `Infinity`: no limit.
   * @default {5000}
   */
  timeout?: number;
  /**
   * Most requests that may wait on one connection (sent and unanswered, or
   * not yet written). A call past it fails at once with `MemcacheError`
   * instead of queueing: memory stays bounded when a server stops
   * answering (each waiting request holds about 1 KB). A multi-key call
   * (getMany, setMany, deleteMany) is admitted whole while the queue is
   * below the limit. `Infinity`: no limit.
   * @default {10000}
   */
  maxQueue?: number;
  /** Set TCP_NODELAY where the transport can. @default {true} */
  noDelay?: boolean;
  /** TCP keep-alive where the transport can; `idle` in ms. */
  keepAlive?: boolean | { idle?: number };
  /** get, gets, getMany, getsMany, gat and gats return misses instead of throwing. @default {false} */
  ignoreExc?: boolean;
  /** Prepended to every key on the wire; results are keyed without it. @default {""} */
  keyPrefix?: string;
  /**
   * Storage, delete, touch and flushAll skip waiting for the reply unless
   * told otherwise (not cas, incr or decr). @default {true}
   */
  defaultNoreply?: boolean;
  /** Allow non-ASCII keys (sent UTF-8 encoded). @default {false} */
  allowUnicodeKeys?: boolean;
  /** TLS; `true` uses the runtime's trust store. @default {false} */
  tls?: boolean | TlsOptions;
  /**
   * Credentials for memcached's ASCII authentication (`memcached -Y
   * <authfile>`, whose lines are `username:password`; memcached 1.5.15+).
   * They are sent as the first request of every new connection, before
   * anything queued on it. A refused login rejects every call on that
   * connection with {@linkcode MemcacheAuthError}; calls in the second after
   * it fail at once with it too, without connecting, so a wrong password
   * never hammers the server. Neither may be empty or hold whitespace or
   * control characters. They appear in no error message. Unencrypted
   * unless `tls` is set.
   */
  auth?: AuthOptions;
  /** How to open sockets. @default the running runtime's transport */
  transport?: Transport;
  /**
   * Callbacks for each command (start and end: name, server, keys, hits,
   * misses, bytes, duration, error) and each connection (open, close,
   * failure); see {@linkcode Observer} and the README's "Observability".
   * PooledClient and HashClient pass it to the client of each connection
   * and server: a HashClient call split over servers is one event per
   * server; HashClient also reports servers leaving and rejoining the ring
   * (`onServer`). A throwing observer (or a getter of a callback that
   * throws) never breaks a call (its first error is logged with
   * `console.error`). Calls a callback makes before it returns (an
   * `onCommandStart` reading the cache) are not reported to that observer,
   * so a callback never starts itself again; calls a command makes inside
   * itself (`getOrSet`'s `mg`/`ms`, `deleteMany`'s deletes) are not
   * reported beside it. Without one, commands run with no
   * observation cost (on runtimes with `diagnostics_channel` the same
   * events are published there while someone subscribes).
   */
  observer?: Observer;
}

/** Credentials for memcached's ASCII authentication; see {@linkcode ClientOptions.auth}. */
export interface AuthOptions {
  /** A user of the server's authfile. */
  username: string;
  /** That user's password. */
  password: string;
}

/** Default {@linkcode ClientOptions.connectTimeout}, ms. */
export const DEFAULT_CONNECT_TIMEOUT = 5000;
/** Default {@linkcode ClientOptions.timeout}, ms. */
export const DEFAULT_TIMEOUT = 5000;
/** Default {@linkcode ClientOptions.maxQueue}. */
export const DEFAULT_MAX_QUEUE = 10_000;

/**
 * What the modules a {@linkcode Client} delegates to see of it: its
 * settings and its pipeline. The constructor builds it once; a call passes
 * it along, so delegating allocates nothing per call.
 */
export interface ClientCore {
  readonly server: string;
  readonly serde: Serde;
  readonly keyPrefix: string;
  readonly defaultNoreply: boolean;
  readonly ignoreExc: boolean;
  readonly allowUnicodeKeys: boolean;
  /** The pipeline's connection, opened if need be; a `get` sent after this command's will not join an earlier one. */
  connection(): Connection;
}

/**
 * What the storage internals read of a call's options: the fields of
 * client.ts's `StoreOptions` (which stays there, where scripts/gen_commands.ts
 * reads the types of Client's signatures).
 */
export interface StoreFields {
  expire?: number;
  noreply?: boolean;
  flags?: number;
}

/** What a serde's serialize returns. */
export type Serialized = [Uint8Array | string, number];

/** A storage call checked and ready to encode. */
export interface PreparedStore {
  wireKey: string;
  noreply: boolean;
  expire: number;
  /** Flags given by the caller, overriding the serde's. */
  flags: number | undefined;
  serialized: Serialized | Promise<Serialized>;
}

/** A `get` on the pipeline, for others of its key to join (see Client's #lastGet). */
export interface GetFlight {
  wire: string;
  conn: Connection;
  promise: Promise<unknown>;
  /** Set when the reply comes: its item, or `null` for a miss. */
  item: Item | null | undefined;
}
