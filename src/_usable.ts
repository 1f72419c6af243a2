/**
 * The one rule for "does this error leave the connection usable", shared by
 * every place that decides whether to keep a connection (STYLE.md rule 5,
 * as gomemcache's `resumableError`).
 *
 * @module
 */

import {
  MemcacheError,
  MemcacheIllegalInputError,
  MemcacheSerdeError,
  MemcacheServerError,
  MemcacheUnexpectedCloseError,
  MemcacheUnknownCommandError,
  QueueFullError,
} from "./errors.ts";

/**
 * Whether the connection a request failed on is still in step with the
 * server after `error`. Yes for errors raised before anything was sent
 * (bad input, a serde's or caller's own exception: anything that is not a
 * `MemcacheError`, and a full queue) and for well-framed per-request replies
 * (`ERROR` as `MemcacheUnknownCommandError`, `SERVER_ERROR` as
 * `MemcacheServerError`, a value the serde could not read).
 * No for everything else: timeouts, closes, `CLIENT_ERROR`, unparseable
 * replies, connection errors.
 */
export function leavesConnectionUsable(error: unknown): boolean {
  if (!(error instanceof MemcacheError)) return true;
  if (error instanceof MemcacheIllegalInputError || error instanceof MemcacheUnknownCommandError) return true;
  // A value the serde could not read came in a well-framed reply; a call
  // refused for a full queue sent nothing.
  if (error instanceof MemcacheSerdeError || error instanceof QueueFullError) return true;
  return error instanceof MemcacheServerError && !(error instanceof MemcacheUnexpectedCloseError);
}
