/**
 * What the parts of {@linkcode Client} share, over its {@linkcode ClientCore}:
 * key checks, input errors in context, (de)serialization errors, and the
 * reply checks every command makes.
 *
 * @module
 */

import { checkKey as checkWireKey } from "../protocol/_keys.ts";
import type { Reply } from "../protocol/_reply_parser.ts";
import { type Item, ProtocolError } from "../protocol/_wire.ts";
import { inContext } from "../protocol/_validate.ts";
import { MemcacheError, MemcacheIllegalInputError, MemcacheSerdeError } from "../errors.ts";
import type { ClientCore } from "./_client_types.ts";

export function isPromise<T>(value: unknown): value is Promise<T> {
  // Bytes first: looking up a missing `then` on a typed array is slow in JavaScriptCore.
  if (value === null || (typeof value !== "object" && typeof value !== "function") || ArrayBuffer.isView(value)) {
    return false;
  }
  return typeof (value as Promise<T>).then === "function";
}

/** A reply that does not fit its request: the connection closes (see Connection.request). */
export function unexpected(reply: Reply): ProtocolError {
  const text = reply.type === "line" ? reply.text : reply.type === "status" ? reply.status : reply.type;
  return new ProtocolError(`Unexpected reply ${JSON.stringify(text)}`);
}

/** A key checked, with the prefix: its wire form (see Client.checkKey). */
export function wireKey(core: ClientCore, key: string): string {
  return checkWireKey(key, core.keyPrefix, core.allowUnicodeKeys);
}

/** The checked wire keys of `keys` (a list of the caller's own): `keys` itself without a prefix. */
export function wireKeys(core: ClientCore, command: string, keys: string[]): string[] {
  return inputs(core, command, () => {
    if (core.keyPrefix !== "") return keys.map((k) => wireKey(core, k));
    for (let i = 0; i < keys.length; i++) wireKey(core, keys[i]);
    return keys;
  });
}

/**
 * Input checks of `command`: what `check` throws for bad input is thrown
 * again naming this server and the command, as every error does.
 */
export function inputs<T>(core: ClientCore, command: string, check: () => T): T {
  try {
    return check();
  } catch (error) {
    throw context(core, error, command);
  }
}

/** `error` naming this server and `command`, as every error of a call does. */
export function context(core: ClientCore, error: unknown, command: string): unknown {
  return inContext(error, command, core.server);
}

/** A call's `noreply`: the client's default when not given. */
export function noreplyOf(core: ClientCore, noreply: boolean | undefined): boolean {
  if (noreply === undefined) return core.defaultNoreply;
  if (typeof noreply !== "boolean") throw new MemcacheIllegalInputError("noreply must be a boolean");
  return noreply;
}

/** A value the serde could not serialize: bad input, refused before anything is sent. */
export function unserializable(key: string, error: unknown): unknown {
  if (error instanceof MemcacheError) return error;
  return new MemcacheIllegalInputError(
    `Could not serialize the value of ${JSON.stringify(key)}: ${(error as Error)?.message ?? error}`,
    { cause: error },
  );
}

/** What a serde's deserialize threw, as an error naming the key and flags (a MemcacheError passes as it is). */
function undeserializable(core: ClientCore, key: string, flags: number, error: unknown): unknown {
  if (error instanceof MemcacheError) return error;
  return new MemcacheSerdeError(
    `Could not deserialize the value of ${JSON.stringify(key)} (flags ${flags}): ${(error as Error)?.message ?? error}`,
    { server: core.server, cause: error },
  );
}

/** Deserializes one item; a failure (sync or async) becomes undeserializable's error. */
export function deserialize(core: ClientCore, key: string, item: Item): unknown {
  let value: unknown;
  try {
    value = core.serde.deserialize(key, item.value, item.flags);
  } catch (error) {
    throw undeserializable(core, key, item.flags, error);
  }
  return isPromise(value)
    ? value.catch((error) => Promise.reject(undeserializable(core, key, item.flags, error)))
    : value;
}

/** A gets/gats hit without its cas token: a reply that does not fit the request. */
export function noCas(item: Item): ProtocolError {
  return new ProtocolError(`A gets reply without a cas token for ${JSON.stringify(item.key)}`);
}

/** The map of a gets/gats batch: every hit must carry its cas token. */
export function checkCasItems(reply: Reply): Reply {
  if (reply.type === "values") { for (const item of reply.items) if (item.cas === undefined) throw noCas(item); }
  return reply;
}
