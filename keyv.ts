/**
 * `@memkit/memcache/keyv`: {@linkcode KeyvMemcache}, a
 * [Keyv](https://keyv.org) storage adapter on this package's clients, so
 * Keyv, `cacheable` and `cache-manager` run on memcached with this client's
 * speed, its `HashClient` and its Workers transport.
 *
 * ```ts ignore
 * import Keyv from "keyv";
 * import { KeyvMemcache } from "@memkit/memcache/keyv";
 *
 * const keyv = new Keyv({ store: new KeyvMemcache("127.0.0.1:11211") });
 * await keyv.set("greeting", "hello", 60_000); // ms
 * ```
 *
 * The module imports only the package's public API (`mod.ts`) and nothing
 * of Keyv: the package stays dependency-free.
 *
 * @module
 */

import { type Commands, HashClient, type HashClientOptions, type ServerSpec } from "./mod.ts";

/** Options of {@linkcode KeyvMemcache}: the namespace, and those of the `HashClient` it builds for server specs. */
export interface KeyvMemcacheOptions extends HashClientOptions {
  /**
   * The namespace whose entries `clear()` removes. Keyv sets the store's
   * `namespace` property to its own, so with Keyv this is rarely needed.
   * @default {undefined} (one namespace of its own, separate from every named one)
   */
  namespace?: string;
}

/** A listener of {@linkcode KeyvMemcache.on}. */
// deno-lint-ignore no-explicit-any
export type KeyvMemcacheListener = (...args: any[]) => void;

/** memcached reads an expiry above 30 days (in seconds) as a unix time. */
const MAX_RELATIVE_EXPIRE = 30 * 24 * 60 * 60;
/** memcached's longest key, bytes. */
const MAX_KEY_BYTES = 250;
/** Longest namespace sent as it is; a longer one (or one with other characters) is hashed. */
const MAX_PLAIN_NAMESPACE = 64;
/** Printable ASCII but space: what memcached takes in a key, whatever the client's options. */
const PLAIN = /^[\x21-\x7e]+$/;
const encoder = new TextEncoder();

/**
 * A Keyv storage adapter on memcached (Keyv 5 and 6, `cacheable`,
 * `cache-manager` 7).
 *
 * - **Clients.** Given a client of this package (`Client`, `PooledClient`,
 *   `HashClient`, `RetryingClient`) it uses it as it is, and `disconnect()`
 *   leaves it open. Given a server spec or a list of them (or nothing:
 *   `"127.0.0.1:11211"`) it builds its own `HashClient` with `options`, and
 *   `disconnect()` closes it. Every call waits for the server's reply,
 *   whatever the client's `defaultNoreply`.
 * - **Values.** Stored through the client's serde as Keyv hands them (a
 *   string Keyv has serialized, or a value when Keyv's `serialize` is off),
 *   so any client reads them back; a `CompressedSerde` client compresses them.
 * - **TTL** in milliseconds, rounded up to whole seconds; above 30 days sent
 *   as a unix time (memcached's rule); `0` or absent: no expiry; negative:
 *   the key is deleted (it has expired).
 * - **Keys.** Any string. A key is sent as `<ns>:<generation>:<key>`, the
 *   key as it is when it is printable ASCII without spaces, does not start
 *   with `~` and fits in memcached's 250 bytes; otherwise as `~b` and its
 *   UTF-8 in base64url if that fits, else `~h` and the base64url of its
 *   SHA-256. A plain key never starts with `~` and base64url is one-to-one,
 *   so no two keys share a wire key (a hashed one could only by a SHA-256
 *   collision). A namespace is sent as it is when it is up to 64 printable
 *   ASCII characters without `:` that do not start with `~`, else as `~h`
 *   and its hash; no namespace is the empty string.
 * - **`clear()`** clears its namespace only, with one command and never
 *   `flush_all`: each namespace has a generation counter in memcached (key
 *   `<ns>:g`) and data keys embed it, so `clear()` increments it (`ma`) and
 *   the older keys are never read again, leaving memcached to expire or
 *   evict them. A missing counter is created (vivified) at the current time
 *   in µs, above any generation it held before it was evicted, so evicted
 *   counters never bring cleared entries back.
 * - **Consistency.** Each call reads the counter in the same round trip as
 *   its command (reads in the same multi-key `get`; writes with an `ma`
 *   sent beside theirs): a call that ran on a generation
 *   cached from an earlier call, which the counter shows was cleared since
 *   (by any process), runs again on the current one. So no call sees an
 *   entry that a `clear()` finished before the call began has removed, and
 *   no write lands in a cleared generation unless a `clear()` ran during the
 *   write (ordered after it). A call after another process's `clear()` takes
 *   two round trips, as does the first call of a namespace. With a
 *   `HashClient`, a server that left the ring and comes back brings its old
 *   counter back, as it brings its old entries back with any client.
 * - **Needs** memcached 1.6 or later (the meta command `ma`).
 * - **Events.** `on`/`off`/`emit` of its own; Keyv listens for `error`. A
 *   failed call rejects (Keyv emits its error) rather than emitting.
 *
 * @example
 * ```ts ignore
 * import Keyv from "keyv";
 * import { HashClient } from "@memkit/memcache";
 * import { KeyvMemcache } from "@memkit/memcache/keyv";
 *
 * const client = new HashClient(["10.0.0.1:11211", "10.0.0.2:11211"]);
 * const users = new Keyv({ store: new KeyvMemcache(client), namespace: "users" });
 * await users.set("ada", { name: "Ada" }, 60_000);
 * await users.clear(); // only "users": one increment, no flush_all
 * ```
 */
export class KeyvMemcache {
  /** The client the adapter runs on: the one passed in, or its own `HashClient`. */
  readonly client: Commands;
  /**
   * Keyv reads `store.opts` (`@keyv/test-suite` writes it): `dialect` is
   * `"memcache"`, `url` the servers of its own client (empty for a client
   * passed in).
   */
  opts: { dialect: "memcache"; url: string; namespace?: string; [option: string]: unknown };
  /** The namespace `clear()` clears; Keyv assigns its own to it. */
  namespace: string | undefined;
  readonly #owned: boolean;
  readonly #listeners = new Map<string, KeyvMemcacheListener[]>();
  /** Generations seen last, by namespace tag. */
  readonly #generations = new Map<string, string>();
  /** The namespace whose tag `#tag` holds. */
  #tagOf: string | undefined;
  #tag: string | Promise<string> = "";
  /** Bytes of the client's own key prefix, learnt on first use. */
  #prefixBytes = -1;

  /**
   * Creates the adapter on a client of this package, or on a `HashClient` of
   * its own for server specs. Nothing connects until the first call.
   *
   * @param clientOrServers a client of this package, or the server specs of
   *   the `HashClient` to build (one spec or a list). @default {"127.0.0.1:11211"}
   * @throws {TypeError} for an invalid server spec or option.
   */
  constructor(
    clientOrServers?: Commands | ServerSpec | Iterable<ServerSpec> | null,
    options: KeyvMemcacheOptions = {},
  ) {
    const { namespace, ...clientOptions } = options;
    if (namespace !== undefined && typeof namespace !== "string") throw new TypeError("namespace must be a string");
    this.namespace = namespace;
    if (isClient(clientOrServers)) {
      this.client = clientOrServers;
      this.#owned = false;
      this.opts = { dialect: "memcache", url: "", namespace };
      return;
    }
    const servers: ServerSpec[] = clientOrServers === undefined || clientOrServers === null
      ? ["127.0.0.1:11211"]
      : typeof clientOrServers === "string" || !isIterable(clientOrServers)
      ? [clientOrServers as ServerSpec]
      : [...clientOrServers];
    this.client = new HashClient(servers, clientOptions);
    this.#owned = true;
    this.opts = { dialect: "memcache", url: servers.map(specName).join(","), namespace };
  }

  // ---- events

  /** Adds a listener of `event` (Keyv listens for `"error"`). */
  on(event: string, listener: KeyvMemcacheListener): this {
    const list = this.#listeners.get(event);
    if (list === undefined) this.#listeners.set(event, [listener]);
    else list.push(listener);
    return this;
  }

  /** Removes a listener added with {@linkcode KeyvMemcache.on}. */
  off(event: string, listener: KeyvMemcacheListener): this {
    const list = this.#listeners.get(event);
    const at = list?.indexOf(listener) ?? -1;
    if (at >= 0) list!.splice(at, 1);
    return this;
  }

  /** Calls the listeners of `event`; `true` if it had any. */
  emit(event: string, ...args: unknown[]): boolean {
    const list = this.#listeners.get(event);
    if (list === undefined || list.length === 0) return false;
    for (const listener of [...list]) listener(...args);
    return true;
  }

  // ---- Keyv's storage adapter contract

  /** The value of `key`, or `undefined` when it is absent (or cleared). */
  async get<Value = unknown>(key: string): Promise<Value | undefined> {
    return (await this.#fetch<Value>([key]))[0];
  }

  /** The values of `keys`, in order, `undefined` where absent. */
  async getMany<Value = unknown>(keys: string[]): Promise<Array<Value | undefined>> {
    return await this.#fetch<Value>(keys);
  }

  /** Whether `key` is present. */
  async has(key: string): Promise<boolean> {
    return (await this.get(key)) !== undefined;
  }

  /** Whether each of `keys` is present. */
  async hasMany(keys: string[]): Promise<boolean[]> {
    return (await this.getMany(keys)).map((value) => value !== undefined);
  }

  /**
   * Stores `value` under `key` for `ttl` ms (see the class's TTL rules).
   * Resolves `true` once memcached stored it.
   *
   * @throws {TypeError} for a `ttl` that is not a number.
   */
  async set(key: string, value: unknown, ttl?: number): Promise<boolean> {
    const expire = expireOf(ttl);
    if (expire === null) {
      await this.delete(key);
      return true;
    }
    const wire = await this.#wireKeys([key]);
    return await this.#run((gen) => this.client.set(wire(gen)[0], value, { expire, noreply: false }));
  }

  /**
   * Stores many entries, each with its own `ttl` (ms), pipelined. Resolves
   * nothing, as Keyv 5's adapter type says; an entry memcached did not store
   * rejects the call (Keyv then reports `false` for every entry).
   *
   * @throws {Error} naming the keys memcached did not store.
   */
  async setMany(entries: Array<{ key: string; value: unknown; ttl?: number }>): Promise<void> {
    const expires = entries.map((entry) => expireOf(entry.ttl));
    const wire = await this.#wireKeys(entries.map((entry) => entry.key));
    // One setMany per expiry (usually one), all sent at once; expired entries are deleted.
    const groups = new Map<number | null, number[]>();
    expires.forEach((expire, i) => {
      const group = groups.get(expire);
      if (group === undefined) groups.set(expire, [i]);
      else group.push(i);
    });
    const failed = await this.#run(async (gen) => {
      const names = wire(gen);
      const lists = await Promise.all([...groups].map(async ([expire, indexes]) => {
        if (expire === null) {
          await Promise.all(indexes.map((i) => this.client.delete(names[i], { noreply: false })));
          return [];
        }
        const notStored = await this.client.setMany(
          indexes.map((i) => [names[i], entries[i].value] as const),
          { expire, noreply: false },
        );
        return notStored.map((name) => entries[names.indexOf(name)].key);
      }));
      return lists.flat();
    });
    if (failed.length > 0) throw new Error(`KeyvMemcache: memcached did not store ${JSON.stringify(failed)}`);
  }

  /** Deletes `key`: `true` if it was present, `false` if not. */
  async delete(key: string): Promise<boolean> {
    const wire = await this.#wireKeys([key]);
    return await this.#run((gen) => this.client.delete(wire(gen)[0], { noreply: false }));
  }

  /** Deletes `keys`: `true` if every one was present (Keyv 5 returns this to its caller as is). */
  async deleteMany(keys: string[]): Promise<boolean> {
    const wire = await this.#wireKeys(keys);
    const deleted = await this.#run((gen) =>
      Promise.all(wire(gen).map((name) => this.client.delete(name, { noreply: false })))
    );
    return deleted.every(Boolean);
  }

  /**
   * Clears this namespace — one increment of its generation counter, never
   * `flush_all`: other namespaces and other clients' keys stay.
   */
  async clear(): Promise<void> {
    const tag = await this.#namespaceTag();
    const result = await this.client.metaArithmetic(`${tag}:g`, {
      delta: 1,
      initial: freshGeneration(),
      vivify: 0,
    });
    this.#generations.set(tag, generationOf(result, tag));
  }

  /** Closes the client the adapter built; a client passed in stays open. */
  async disconnect(): Promise<void> {
    if (this.#owned) await this.client.close();
  }

  /** {@linkcode KeyvMemcache.disconnect}, for `await using`. */
  async [Symbol.asyncDispose](): Promise<void> {
    await this.disconnect();
  }

  // ---- generations and wire keys

  /**
   * Runs `call` on the namespace's generation, reading the counter with the
   * same round trip; if the counter moved since the generation `call` ran
   * on was seen, runs `call` again on the counter's value (see the class's
   * "Consistency").
   */
  async #run<T>(call: (gen: string) => Promise<T>): Promise<T> {
    const tag = await this.#namespaceTag();
    const known = this.#generations.get(tag);
    if (known === undefined) {
      const gen = await this.#readGeneration(tag);
      return await call(gen);
    }
    const [gen, result] = await Promise.all([this.#readGeneration(tag), call(known)]);
    return gen === known ? result : await call(gen);
  }

  /**
   * The values of `keys`: one multi-key `get` of the counter and the keys in
   * the generation last seen; when the counter moved (or is missing), the
   * keys again in its current generation (as `#run` does).
   */
  async #fetch<Value>(keys: readonly string[]): Promise<Array<Value | undefined>> {
    const wire = await this.#wireKeys(keys);
    const tag = await this.#namespaceTag();
    const counter = `${tag}:g`;
    const known = this.#generations.get(tag);
    let gen: string;
    if (known === undefined) gen = await this.#readGeneration(tag);
    else {
      const names = wire(known);
      const found = await this.client.getMany(new Set([counter, ...names]));
      const current = counterValue(found.get(counter));
      if (current === known) return names.map((name) => found.get(name) ?? undefined);
      if (current === undefined) gen = await this.#readGeneration(tag);
      else this.#generations.set(tag, gen = current);
    }
    const names = wire(gen);
    const found = await this.client.getMany(new Set(names));
    return names.map((name) => found.get(name) ?? undefined);
  }

  /** The namespace's generation, creating the counter when it is missing. */
  async #readGeneration(tag: string): Promise<string> {
    const result = await this.client.metaArithmetic(`${tag}:g`, {
      delta: 0,
      initial: freshGeneration(),
      vivify: 0,
    });
    const gen = generationOf(result, tag);
    this.#generations.set(tag, gen);
    return gen;
  }

  #namespaceTag(): string | Promise<string> {
    const namespace = this.namespace ?? "";
    if (namespace !== this.#tagOf) {
      if (typeof namespace !== "string") throw new TypeError("namespace must be a string");
      this.#tagOf = namespace;
      this.#tag = namespace === "" ||
          (namespace.length <= MAX_PLAIN_NAMESPACE && PLAIN.test(namespace) && !namespace.includes(":") &&
            !namespace.startsWith("~"))
        ? namespace
        : sha256(namespace).then((hash) => `~h${hash}`);
    }
    return this.#tag;
  }

  /**
   * The wire key forms of `keys`, as a function of the generation: keys are
   * encoded (hashed where needed) once, before the round trips.
   */
  async #wireKeys(keys: readonly string[]): Promise<(gen: string) => string[]> {
    const tag = await this.#namespaceTag();
    // The longest generation is 13 base-36 digits (2^64).
    const room = MAX_KEY_BYTES - this.#prefixLength() - encoder.encode(tag).length - 2 - 13;
    const encoded = keys.map((key) => encodeKey(key, room));
    const parts = encoded.some((part) => typeof part !== "string") ? await Promise.all(encoded) : encoded as string[];
    return (gen) => parts.map((part) => `${tag}:${gen}:${part}`);
  }

  #prefixLength(): number {
    if (this.#prefixBytes < 0) {
      this.#prefixBytes = typeof this.client.checkKey === "function" ? this.client.checkKey("k").length - 1 : 0;
    }
    return this.#prefixBytes;
  }
}

/** The key part of a wire key: plain, `~b` base64url, or `~h` hashed (see the class's "Keys"). */
function encodeKey(key: string, room: number): string | Promise<string> {
  if (typeof key !== "string") throw new TypeError(`Keyv keys are strings, got ${typeof key}`);
  if (key.length > 0 && key.length <= room && PLAIN.test(key) && !key.startsWith("~")) return key;
  const bytes = encoder.encode(key);
  if (2 + Math.ceil(bytes.length / 3) * 4 <= room) return `~b${base64url(bytes)}`;
  return sha256(key).then((hash) => `~h${hash}`);
}

/** memcached's expiry for a Keyv TTL in ms: whole seconds rounded up, absolute above 30 days; `null`: expired. */
function expireOf(ttl: number | undefined | null): number | null {
  if (ttl === undefined || ttl === null || ttl === 0) return 0;
  if (typeof ttl !== "number" || Number.isNaN(ttl)) throw new TypeError(`ttl must be a number of ms, got ${ttl}`);
  if (ttl < 0) return null;
  if (ttl === Infinity) return 0;
  const seconds = Math.ceil(ttl / 1000);
  return seconds <= MAX_RELATIVE_EXPIRE ? seconds : Math.ceil((Date.now() + ttl) / 1000);
}

/** A new counter's value: the time in µs, above any generation an evicted counter had reached. */
function freshGeneration(): number {
  return Date.now() * 1000 + Math.floor(Math.random() * 1000);
}

function generationOf(result: { hit: boolean; value?: unknown }, tag: string): string {
  const value = result.value;
  if (!result.hit || (typeof value !== "number" && typeof value !== "bigint")) {
    throw new Error(`KeyvMemcache: could not read the generation counter of namespace tag "${tag}"`);
  }
  return value.toString(36);
}

/** A counter read with `get` (flags 0: bytes with the default serde), in base 36; `undefined` if absent or not one. */
function counterValue(value: unknown): string | undefined {
  const text = value instanceof Uint8Array
    ? new TextDecoder().decode(value)
    : typeof value === "string" || typeof value === "number" || typeof value === "bigint"
    ? String(value)
    : undefined;
  return text !== undefined && /^\d{1,20}$/.test(text) ? BigInt(text).toString(36) : undefined;
}

async function sha256(text: string): Promise<string> {
  return base64url(new Uint8Array(await crypto.subtle.digest("SHA-256", encoder.encode(text))));
}

function base64url(bytes: Uint8Array): string {
  let binary = "";
  for (let i = 0; i < bytes.length; i += 0x8000) binary += String.fromCharCode(...bytes.subarray(i, i + 0x8000));
  return btoa(binary).replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, "");
}

function isClient(value: unknown): value is Commands {
  return typeof value === "object" && value !== null && typeof (value as Commands).get === "function" &&
    typeof (value as Commands).metaArithmetic === "function";
}

function isIterable(value: unknown): value is Iterable<ServerSpec> {
  return typeof value === "object" && value !== null && Symbol.iterator in value;
}

function specName(spec: ServerSpec): string {
  return typeof spec === "string" ? spec : JSON.stringify(spec);
}
