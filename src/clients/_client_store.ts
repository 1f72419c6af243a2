/**
 * {@linkcode Client}'s storage and retrieval internals over its
 * {@linkcode ClientCore}: the storage commands' shared path, the batched
 * reads of getMany and getsMany, incr/decr and the one-line commands.
 * (The single-key reads stay in the class: they coalesce on its pipeline.)
 *
 * @module
 */

import type { Outbox } from "../protocol/_outbox.ts";
import {
  encodeArithmetic,
  encodeDelete,
  encodeRetrieve,
  encodeStore,
  encodeTouch,
} from "../protocol/_text_commands.ts";
import { EXPECT_LINE, EXPECT_VALUES, type Status, WITH_DATA } from "../protocol/_reply_parser.ts";
import type { Item } from "../protocol/_wire.ts";
import { checkDelta, checkExpire, checkFlags, parseCounter, splitKeys } from "../protocol/_validate.ts";
import { MemcacheIllegalInputError } from "../errors.ts";
import { entriesOf, type Mapping } from "./_mapping.ts";
import {
  checkCasItems,
  context,
  deserialize,
  inputs,
  isPromise,
  noreplyOf,
  unexpected,
  unserializable,
  wireKey,
  wireKeys,
} from "./_client_core.ts";
import type { ClientCore, PreparedStore, Serialized, StoreFields } from "./_client_types.ts";

/**
 * Shared path of the storage commands. Encodes synchronously when the
 * serde is synchronous, so calls go out in call order.
 * Resolves `undefined` for noreply, `true` (STORED), `false` (NOT_STORED
 * or EXISTS) or `null` (NOT_FOUND); with `always`, `true` for all of them
 * (set's result, without another promise on top).
 */
export function store(
  core: ClientCore,
  command: string,
  key: string,
  value: unknown,
  options: StoreFields,
  cas?: string,
  always = false,
): Promise<boolean | null | undefined> {
  try {
    const prepared = prepareStore(core, key, value, options);
    const serialized = prepared.serialized;
    return isPromise<Serialized>(serialized)
      ? serialized.then((pair) =>
        inputs(
          core,
          command,
          () => sendStore(core, command, prepared, pair[0], checkSerialized(prepared, pair), cas, always),
        )
      )
      : sendStore(core, command, prepared, serialized[0], checkSerialized(prepared, serialized), cas, always);
  } catch (error) {
    return Promise.reject(context(core, error, command));
  }
}

/** setMany: the keys (as passed) not stored; every pair is checked and serialized before any is sent. */
export async function storeMany(core: ClientCore, values: Mapping, options: StoreFields): Promise<string[]> {
  const pairs = [...entriesOf(values)];
  // Every key and value is checked and serialized before any is sent:
  // one bad pair fails the call with nothing written.
  const prepared = inputs(core, "set", () => pairs.map(([key, value]) => prepareStore(core, key, value, options)));
  // A synchronous serde sends in this tick, so calls made after this one go after it.
  const serialized = prepared.some((p) => isPromise(p.serialized))
    ? await inputs(core, "set", () => Promise.all(prepared.map((p) => p.serialized)))
    : prepared.map((p) => p.serialized as Serialized);
  const flags = inputs(core, "set", () => prepared.map((p, i) => checkSerialized(p, serialized[i])));
  // Sent in one synchronous loop: one write, in order, admitted as one call.
  const sends = core.connection().batch(
    "set",
    () => prepared.map((p, i) => sendStore(core, "set", p, serialized[i][0], flags[i], undefined, false)),
  );
  const results = await Promise.all(sends);
  const failed: string[] = [];
  results.forEach((stored, i) => {
    if (stored === false) failed.push(pairs[i][0]);
  });
  return failed;
}

/** Checks a storage call's key and options and starts serializing its value; sends nothing. */
function prepareStore(core: ClientCore, key: string, value: unknown, options: StoreFields): PreparedStore {
  const wire = wireKey(core, key);
  const noreply = noreplyOf(core, options.noreply);
  const expire = options.expire === undefined ? 0 : checkExpire(options.expire);
  const flags = options.flags === undefined ? undefined : checkFlags(options.flags);
  let serialized: Serialized | Promise<Serialized>;
  try {
    serialized = core.serde.serialize(key, value);
  } catch (error) {
    throw unserializable(key, error);
  }
  if (isPromise<Serialized>(serialized)) {
    serialized = serialized.catch((error) => Promise.reject(unserializable(key, error)));
  }
  return { wireKey: wire, noreply, expire, flags, serialized };
}

/** Encodes and sends a checked storage call (see checkSerialized for its flags). */
function sendStore(
  core: ClientCore,
  command: string,
  store: PreparedStore,
  data: Uint8Array | string,
  flags: number,
  cas: string | undefined,
  always: boolean,
): Promise<boolean | null | undefined> {
  const { wireKey, expire, noreply } = store;
  const encode = (out: Outbox) => encodeStore(out, command, wireKey, flags, expire, data, noreply, cas);
  const conn = core.connection();
  if (noreply) return conn.send(command, encode).then(() => (always ? true : undefined));
  return conn.request(command, EXPECT_LINE | WITH_DATA, encode, undefined, undefined, (reply) => {
    if (reply.type === "status") {
      switch (reply.status) {
        case "STORED":
          return true;
        case "NOT_STORED":
        case "EXISTS":
          return always || false;
        case "NOT_FOUND":
          return always || null;
      }
    }
    throw unexpected(reply);
  });
}

/** The flags to send with what the serde returned; throws when that cannot be sent. */
function checkSerialized(store: PreparedStore, [data, serdeFlags]: Serialized): number {
  if (typeof data !== "string" && !(data instanceof Uint8Array)) {
    throw new MemcacheIllegalInputError(
      `The serde must return a string or Uint8Array for ${JSON.stringify(store.wireKey)}`,
    );
  }
  return store.flags ?? checkFlags(serdeFlags);
}

/**
 * A one-line command: with noreply resolves `true` once written; otherwise
 * `true` for the `ok` status, `false` for `miss`, and throws for anything else.
 * Encodes synchronously, like every request, so calls keep their order.
 */
export async function simple(
  core: ClientCore,
  command: string,
  noreply: boolean,
  encode: (out: Outbox, noreply: boolean) => void,
  ok: Status,
  miss?: Status,
): Promise<boolean> {
  const conn = core.connection();
  if (noreply) {
    await conn.send(command, (out) => encode(out, true));
    return true;
  }
  return await conn.request(command, EXPECT_LINE, (out) => encode(out, false), undefined, undefined, (reply) => {
    if (reply.type === "status" && reply.status === ok) return true;
    if (reply.type === "status" && miss !== undefined && reply.status === miss) return false;
    throw unexpected(reply);
  });
}

/**
 * The many-key path of get, gets, gat and gats: the hits keyed as passed
 * (`[value, cas]` with `withCas`), in as few requests as the line length
 * allows, sent in one write.
 */
export function fetchMany(
  core: ClientCore,
  command: string,
  keys: string[],
  withCas: false,
  expire?: number,
): Promise<Map<string, unknown>>;
export function fetchMany(
  core: ClientCore,
  command: string,
  keys: string[],
  withCas: true,
  expire?: number,
): Promise<Map<string, [unknown, string]>>;
export async function fetchMany(
  core: ClientCore,
  command: string,
  keys: string[],
  withCas: boolean,
  expire?: number,
): Promise<Map<string, unknown>> {
  const wire = wireKeys(core, command, keys); // throws before any I/O
  const result = new Map<string, unknown>();
  if (wire.length === 0) return result;
  try {
    // Without a prefix the wire keys are the keys: no map needed.
    let byWire: Map<string, string> | undefined;
    if (wire !== keys) {
      byWire = new Map<string, string>();
      for (let i = 0; i < wire.length; i++) byWire.set(wire[i], keys[i]);
    }
    const conn = core.connection();
    const batches = splitKeys(wire, command.length + (expire === undefined ? 0 : 12));
    // gets/gats: every hit must carry its cas token.
    const check = withCas ? checkCasItems : undefined;
    const ask = (batch: string[]) =>
      conn.request(
        command,
        EXPECT_VALUES,
        (out) => encodeRetrieve(out, command, batch, expire),
        batch,
        undefined,
        check,
      );
    const replies = batches.length === 1
      ? [await ask(batches[0])]
      : await Promise.all(conn.batch(command, () => batches.map(ask)));
    const pending: Promise<void>[] = [];
    for (let r = 0; r < replies.length; r++) {
      const items = (replies[r] as { items: Item[] }).items;
      for (let i = 0; i < items.length; i++) {
        const item = items[i];
        const key = byWire === undefined ? item.key : byWire.get(item.key)!;
        const value = deserialize(core, key, item);
        if (isPromise(value)) {
          pending.push(value.then((v) => void result.set(key, withCas ? [v, item.cas ?? null] : v)));
        } else {
          result.set(key, withCas ? [value, item.cas ?? null] : value);
        }
      }
    }
    if (pending.length) await Promise.all(pending);
    return result;
  } catch (error) {
    if (core.ignoreExc) return new Map();
    throw error;
  }
}

/** Client.delete: `true` if deleted (or noreply), `false` if it was absent. */
export function deleteOne(core: ClientCore, key: string, options: { noreply?: boolean }): Promise<boolean> {
  const [wire, noreply] = inputs(core, "delete", () => [wireKey(core, key), noreplyOf(core, options.noreply)] as const);
  return simple(core, "delete", noreply, (out, nr) => encodeDelete(out, wire, nr), "DELETED", "NOT_FOUND");
}

/** Client.touch: `true` if touched (or noreply), `false` if absent. */
export function touchOne(
  core: ClientCore,
  key: string,
  expire: number,
  options: { noreply?: boolean },
): Promise<boolean> {
  const [wire, exptime, noreply] = inputs(
    core,
    "touch",
    () => [wireKey(core, key), checkExpire(expire), noreplyOf(core, options.noreply)] as const,
  );
  return simple(core, "touch", noreply, (out, nr) => encodeTouch(out, wire, exptime, nr), "TOUCHED", "NOT_FOUND");
}

/** incr and decr: the new value, or `null` for a miss or with noreply. */
export async function arithmetic(
  core: ClientCore,
  command: "incr" | "decr",
  key: string,
  value: number | bigint,
  options: { noreply?: boolean },
): Promise<number | bigint | null> {
  const [wire, delta] = inputs(core, command, () => [wireKey(core, key), checkDelta(value)] as const);
  const noreply = options.noreply ?? false;
  const conn = core.connection();
  if (noreply) {
    await conn.send(command, (out) => encodeArithmetic(out, command, wire, delta, true));
    return null;
  }
  return await conn.request(
    command,
    EXPECT_LINE,
    (out) => encodeArithmetic(out, command, wire, delta, false),
    undefined,
    undefined,
    (reply) => {
      if (reply.type === "status" && reply.status === "NOT_FOUND") return null;
      if (reply.type === "line") return parseCounter(reply.text.trimEnd());
      throw unexpected(reply);
    },
  );
}
