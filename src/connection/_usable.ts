/**
 * The one rule for "does this error leave the connection usable", shared by
 * every place that decides whether to keep a connection (STYLE.md rule 5,
 * as gomemcache's `resumableError`).
 *
 * @module
 */

/** Errors a connection rejected its requests with as it closed (see {@linkcode connectionLost}). */
const lost = new WeakSet<object>();

/**
 * Marks `error` as one a connection rejects a request with because the
 * connection is closing or closed under it (a timeout, a close, a reply out
 * of step, an error after a data block, a failed connect). Returns it.
 */
export function connectionLost<E extends Error>(error: E): E {
  lost.add(error);
  return error;
}

/**
 * Whether the connection a request failed on is still in step with the
 * server after `error`. The connection itself says so: an error it marked
 * with {@linkcode connectionLost} means the connection is gone; any other
 * (bad input, a serde's error, a full queue, a well-framed `ERROR`,
 * `CLIENT_ERROR` or `SERVER_ERROR` to a one-line command, a caller's own
 * exception) left it as it was.
 */
export function leavesConnectionUsable(error: unknown): boolean {
  return !(typeof error === "object" && error !== null && lost.has(error));
}
