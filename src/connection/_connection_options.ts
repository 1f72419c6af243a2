/**
 * The settings a connection is opened with, and the hooks it reports
 * through (the observer's byte counts and connection events).
 *
 * @module
 */

import type { Outbox } from "../protocol/_outbox.ts";
import type { Reply } from "../protocol/_reply_parser.ts";
import type { TransportConnectOptions } from "./transport.ts";

/** Where the connection counts a request's bytes: the event of the call that issued it. */
export interface Tally {
  bytesWritten: number;
  bytesRead: number;
}

/** What a Connection reports to (see `ConnectionOptions.observer`). */
export interface ConnectionObserver {
  /** The call issuing a request right now, if it is observed. */
  tally(): Tally | undefined;
  /** A connection to `server` opened, closed or failed. */
  event(type: "open" | "close" | "error", server: string, error?: Error): void;
}

/** Settings of a connection. */
export interface ConnectionOptions extends Omit<TransportConnectOptions, "signal"> {
  /** ms to wait for the connection to open. */
  connectTimeout?: number;
  /** ms a request may wait for its reply, counted from when it is issued. */
  timeout?: number;
  /** Most requests that may wait on the connection at once; past it a request fails at once. */
  maxQueue?: number;
  /** Observability (see _observe.ts): connection events, and each request's bytes counted to its call. */
  observer?: ConnectionObserver;
  /** A request sent before anything else on the connection (memcached ASCII auth). */
  first?: FirstRequest;
}

/**
 * A request encoded ahead of everything the caller queues, when the
 * connection is made. Its reply goes to `check`; when the server answers
 * with an error or `check` throws, the connection closes and every request
 * on it rejects with `failure(error, command)`. Whatever else ends the
 * connection first (timeout, close) rejects as it always does.
 */
export interface FirstRequest {
  /** The command's name, for errors (never the request's bytes). */
  command: string;
  /** The reply expected, as for {@linkcode Connection.request}. */
  expect: number;
  encode(out: Outbox): void;
  check(reply: Reply): void;
  failure(error: Error, command: string): Error;
}
