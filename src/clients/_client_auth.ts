/**
 * {@linkcode Client}'s credentials: the checks of `auth` and `tls.cert`,
 * the login every new connection sends first (memcached `-Y`), and the
 * second after a refused login during which calls fail at once.
 *
 * @module
 */

import type { FirstRequest } from "../connection/_connection_options.ts";
import type { Transport } from "../connection/transport.ts";
import { encodeStore } from "../protocol/_text_commands.ts";
import { EXPECT_LINE, WITH_DATA } from "../protocol/_reply_parser.ts";
import { MemcacheAuthError, MemcacheClientError } from "../errors.ts";
import { unexpected } from "./_client_core.ts";
import type { AuthOptions, ClientOptions } from "./_client_types.ts";

const encoder = new TextEncoder();

/** ms after a refused login during which calls fail at once instead of logging in again. */
const AUTH_RETRY_MS = 1000;
/**
 * When each server last refused a login, per `auth` object: shared by the
 * clients a PooledClient or HashClient makes from one options object, so a
 * pool whose clients are replaced after each failure does not log in again
 * and again either.
 */
const refusals = new WeakMap<object, Map<string, number>>();
/** The key of the login `set` (memcached ignores it; a server without `-Y` stores it already expired). */
const AUTH_KEY = "_memkit_auth";

/** A client's login to one server. */
export interface Login {
  /** The request each new connection sends before anything else. */
  readonly request: FirstRequest;
  /** When a server last refused these credentials (see refusals), keyed by server. */
  readonly refusals: Map<string, number>;
}

/**
 * The login of a client of `server` with `auth` (`undefined` without
 * one), checked before any I/O: messages never show the values.
 *
 * @throws {TypeError} for credentials memcached cannot take.
 */
export function clientLogin(auth: ClientOptions["auth"], server: string): Login | undefined {
  const checked = checkAuth(auth);
  if (checked === undefined) return undefined;
  const key = auth as object;
  if (!refusals.has(key)) refusals.set(key, new Map());
  const byServer = refusals.get(key)!;
  return {
    request: loginRequest(checked, (error, command) => refused(byServer, server, error, command)),
    refusals: byServer,
  };
}

/**
 * The transport a new connection to `server` opens with: within a second
 * of a refused login, none (every request rejects at once, no new login).
 */
export function loginTransport(
  login: Login | undefined,
  server: string,
  transport: Transport | Promise<Transport>,
): Transport | Promise<Transport> {
  const since = Date.now() - (login?.refusals.get(server) ?? 0);
  if (since >= AUTH_RETRY_MS) return transport;
  return Promise.reject(
    new MemcacheAuthError(
      `The server refused the login ${since} ms ago; it is tried again ${AUTH_RETRY_MS} ms after`,
      { server },
    ),
  );
}

/** The error of a call on a connection whose login the server refused. */
function refused(byServer: Map<string, number>, server: string, error: Error, command: string): MemcacheAuthError {
  byServer.set(server, Date.now());
  // The server's reply is in `cause`; the message is the same whatever memcached answered
  // (pipelined behind a refused login, it may say "unauthenticated" instead).
  const why = error instanceof MemcacheClientError ? "wrong username or password" : "unexpected reply";
  return new MemcacheAuthError(`The server refused the login (${why})`, { server, command, cause: error });
}

/**
 * The login request (memcached `-Y`): `set <key> 0 -1 <n>` with `username
 * password` as its data. The expiry of -1 means a server that does not
 * check logins keeps nothing of it. `refused` builds each call's error.
 */
function loginRequest(auth: AuthOptions, refused: (error: Error, command: string) => Error): FirstRequest {
  const token = encoder.encode(`${auth.username} ${auth.password}`);
  return {
    command: "auth",
    expect: EXPECT_LINE | WITH_DATA,
    encode: (out) => encodeStore(out, "set", AUTH_KEY, 0, -1, token, false),
    check: (reply) => {
      if (reply.type !== "status" || reply.status !== "STORED") throw unexpected(reply);
    },
    failure: refused,
  };
}

/** Checks `auth` before any I/O; messages never show the values. */
function checkAuth(auth: unknown): AuthOptions | undefined {
  if (auth === undefined) return undefined;
  if (typeof auth !== "object" || auth === null) throw new TypeError("auth must be { username, password }");
  const { username, password } = auth as Record<string, unknown>;
  for (const [name, value] of [["username", username], ["password", password]] as const) {
    // memcached splits the token at the first space and reads it up to CR/LF.
    // deno-lint-ignore no-control-regex
    if (typeof value !== "string" || value === "" || /[\s\x00-\x1f\x7f]/.test(value)) {
      throw new TypeError(`auth.${name} must be a non-empty string without whitespace or control characters`);
    }
  }
  return { username: username as string, password: password as string };
}

/**
 * Checks `tls.cert` and `tls.key` before any I/O: both or neither, each
 * PEM. Whether the PEM parses is known only when a connection is made
 * (`MemcacheConnectionError` then, with the runtime's reason).
 */
export function checkClientCert(tls: ClientOptions["tls"]): void {
  if (typeof tls !== "object" || tls === null || (tls.cert === undefined && tls.key === undefined)) return;
  if (typeof tls.cert !== "string" || !/-----BEGIN [A-Z0-9 ]*CERTIFICATE-----/.test(tls.cert)) {
    throw new TypeError("tls.cert must be a PEM certificate (-----BEGIN CERTIFICATE-----), given with tls.key");
  }
  if (typeof tls.key !== "string" || !/-----BEGIN [A-Z0-9 ]*PRIVATE KEY-----/.test(tls.key)) {
    throw new TypeError("tls.key must be the PEM private key of tls.cert (-----BEGIN PRIVATE KEY-----)");
  }
}
