/**
 * The error classes of `@memkit/memcache`, shaped like pymemcache's
 * `pymemcache.exceptions`:
 *
 * ```text
 * MemcacheError
 * ├── MemcacheClientError
 * │   ├── MemcacheUnknownCommandError   the server answered ERROR
 * │   ├── MemcacheIllegalInputError     a bad key, value or argument; nothing was sent
 * │   └── MemcacheAuthError             the server refused the login (`auth`, memcached -Y)
 * ├── MemcacheServerError               the server answered SERVER_ERROR
 * │   └── MemcacheUnexpectedCloseError  the connection closed under a request
 * ├── MemcacheUnknownError              a reply the client could not place
 * ├── MemcacheSerdeError                a stored value the serde could not read
 * │   └── MemcachePickleError           a pickle PickleSerde refuses (pickle_serde.ts)
 * ├── MemcacheTimeoutError              a request or connect outlived its timeout
 * └── MemcacheConnectionError           the connection could not be opened or was lost
 * ```
 *
 * Misses, `NOT_STORED`, `EXISTS` and `NOT_FOUND` are return values, never
 * errors.
 *
 * @module
 */

/** Where an error happened: the server and the command, when known. */
export interface MemcacheErrorOptions extends ErrorOptions {
  /** The server, as `"host:port"` or a unix socket path. */
  server?: string;
  /** The memcached command, such as `"get"` or `"set"`. */
  command?: string;
}

function describe(message: string, options?: MemcacheErrorOptions): string {
  const where: string[] = [];
  if (options?.server) where.push(`server ${options.server}`);
  if (options?.command) where.push(`command ${options.command}`);
  return where.length ? `${message} (${where.join(", ")})` : message;
}

/** The base class of every error this library throws on purpose. */
export class MemcacheError extends Error {
  /** The server the error concerns, if any. */
  readonly server?: string;
  /** The command the error concerns, if any. */
  readonly command?: string;
  /** Builds the error; the message gets the server and command appended. */
  constructor(message: string, options?: MemcacheErrorOptions) {
    super(describe(message, options), options);
    this.name = "MemcacheError";
    this.server = options?.server;
    this.command = options?.command;
  }
}

/** The request was at fault: the server said `CLIENT_ERROR`, or input was illegal. */
export class MemcacheClientError extends MemcacheError {
  /** Builds the error. */
  constructor(message: string, options?: MemcacheErrorOptions) {
    super(message, options);
    this.name = "MemcacheClientError";
  }
}

/** The server answered `ERROR`: it does not know the command. */
export class MemcacheUnknownCommandError extends MemcacheClientError {
  /** Builds the error. */
  constructor(message: string, options?: MemcacheErrorOptions) {
    super(message, options);
    this.name = "MemcacheUnknownCommandError";
  }
}

/**
 * A key, value or argument was refused before anything was sent: the
 * connection and every other request are unaffected.
 */
export class MemcacheIllegalInputError extends MemcacheClientError {
  /** Builds the error. */
  constructor(message: string, options?: MemcacheErrorOptions) {
    super(message, options);
    this.name = "MemcacheIllegalInputError";
  }
}

/**
 * The server refused the login (`auth`, memcached's ASCII authentication,
 * `-Y`): the credentials are wrong, or the server wants some and none were
 * given. Every request queued on that connection rejects with it, and the
 * connection is closed. It is not retried (RetryingClient, HashClient's
 * failover): another attempt would be refused too. The message never holds
 * the credentials.
 */
export class MemcacheAuthError extends MemcacheClientError {
  /** Builds the error. */
  constructor(message: string, options?: MemcacheErrorOptions) {
    super(message, options);
    this.name = "MemcacheAuthError";
  }
}

/** The server answered `SERVER_ERROR`, for example for a value over its item size. */
export class MemcacheServerError extends MemcacheError {
  /** Builds the error. */
  constructor(message: string, options?: MemcacheErrorOptions) {
    super(message, options);
    this.name = "MemcacheServerError";
  }
}

/** The connection closed while a request was waiting for its reply. */
export class MemcacheUnexpectedCloseError extends MemcacheServerError {
  /** Builds the error. */
  constructor(message: string, options?: MemcacheErrorOptions) {
    super(message, options);
    this.name = "MemcacheUnexpectedCloseError";
  }
}

/** The server sent a reply the client cannot place; the connection was closed. */
export class MemcacheUnknownError extends MemcacheError {
  /** Builds the error. */
  constructor(message: string, options?: MemcacheErrorOptions) {
    super(message, options);
    this.name = "MemcacheUnknownError";
  }
}

/**
 * The serde could not turn a stored value back into a value (corrupt JSON,
 * a pickle it refuses, ...). The message names the key and flags; `cause`
 * is the serde's own error. The reply was well framed: the connection and
 * every other request are unaffected.
 */
export class MemcacheSerdeError extends MemcacheError {
  /** Builds the error. */
  constructor(message: string, options?: MemcacheErrorOptions) {
    super(message, options);
    this.name = "MemcacheSerdeError";
  }
}

/**
 * A call refused because `maxQueue` requests already wait on the connection.
 * Shown to users as a `MemcacheError` (not exported by name): nothing was
 * sent, and the connection is as it was.
 */
export class QueueFullError extends MemcacheError {
  /** Builds the error. */
  constructor(message: string, options?: MemcacheErrorOptions) {
    super(message, options);
    this.name = "MemcacheError";
  }
}

/** A request (or the connect) took longer than its timeout; the connection was closed. */
export class MemcacheTimeoutError extends MemcacheError {
  /** Builds the error. */
  constructor(message: string, options?: MemcacheErrorOptions) {
    super(message, options);
    this.name = "MemcacheTimeoutError";
  }
}

/** The connection could not be opened, or was lost or closed before the reply. */
export class MemcacheConnectionError extends MemcacheError {
  /** Builds the error. */
  constructor(message: string, options?: MemcacheErrorOptions) {
    super(message, options);
    this.name = "MemcacheConnectionError";
  }
}
