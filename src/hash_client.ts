/**
 * `HashClient`: keys spread over several memcached servers, with
 * pymemcache's `HashClient` API, placement and failover.
 *
 * @module
 */

import { Client, type Mapping, type NoreplyOptions, type StoreOptions, type Value } from "./client.ts";
import { Failover, type Node } from "./_failover.ts";
import { KetamaHash } from "./_ketama.ts";
import { checkKey as checkWireKey, keyBytes } from "./_keys.ts";
import { RendezvousHash } from "./_rendezvous.ts";
import { PooledClient, type PooledClientOptions } from "./pooled_client.ts";
import type { Serde } from "./serde.ts";
import { parseServerSpec, type ServerSpec } from "./transport.ts";
import { defaultPoolLimit } from "./_default_transport.ts";
import { inContext } from "./_validate.ts";

/**
 * Options of {@linkcode HashClient}: those of {@linkcode ClientOptions},
 * the pool options (used with `usePooling`), and placement and failover.
 */
export interface HashClientOptions extends PooledClientOptions {
  /**
   * How keys are placed: `"rendezvous"` as pymemcache's HashClient,
   * `"ketama"` as libmemcached's weighted ketama.
   * @default {"rendezvous"}
   */
  hasher?: "rendezvous" | "ketama";
  /** Give every server a {@linkcode PooledClient} instead of a {@linkcode Client}. @default {false} */
  usePooling?: boolean;
  /**
   * Retries of a failing server before it is marked dead and leaves the
   * ring (0: dead at the first failure). @default {2}
   */
  retryAttempts?: number;
  /** ms after a failure before the server is tried again (0: at once). @default {1000} */
  retryTimeout?: number;
  /** ms a dead server stays out of the ring before it is tried again. @default {60000} */
  deadTimeout?: number;
}

type Inner = Client | PooledClient;

function checkMs(name: string, value: number): number {
  if (!(typeof value === "number" && value >= 0 && !Number.isNaN(value))) {
    throw new TypeError(`${name} must be a non-negative number of milliseconds, got ${String(value)}`);
  }
  return value;
}

function entriesOf(values: Mapping): Iterable<readonly [string, unknown]> {
  if (values instanceof Map) return values;
  if (Symbol.iterator in values) return values as Iterable<readonly [string, unknown]>;
  return Object.entries(values);
}

// pymemcache's HashClient defaults for a failed call under ignoreExc.
const FALSE = () => false;
const TRUE = () => true as const;
const NULL = () => null;

/** A server-wide call's result for a server that failed under ignoreExc: left out. */
const NO_ANSWER: unique symbol = Symbol("no answer");

/**
 * A client for a cluster of memcached servers, mirroring pymemcache's
 * `HashClient`: each key lives on one server, chosen by hashing the key
 * (without the prefix).
 *
 * - `hasher: "rendezvous"` (default) puts every key on the same server as
 *   pymemcache's HashClient given the same server list, so Python and
 *   TypeScript services share one cluster.
 * - `hasher: "ketama"` places keys as libmemcached's weighted ketama (md5,
 *   160 points per server), as PHP's and C's clients configured for it.
 *
 * Multi-key calls are split per server and run in parallel; results are
 * merged and keyed as passed.
 *
 * Failover, as pymemcache's: when a call to a server fails on the network
 * (connection refused or lost, timeout), the server is marked failed;
 * calls to it fail at once (`MemcacheConnectionError`; with `ignoreExc`, the
 * command's default as pymemcache's: a miss, `false` for storage, delete and
 * touch, `null` for incr/decr) until `retryTimeout` ms have passed, then one is
 * let through. After `retryAttempts` failed retries the server is dead: it
 * leaves the ring, so its keys move to the other servers, and it comes back
 * after `deadTimeout` ms. With every server dead, calls reject with
 * `MemcacheConnectionError("All servers seem to be down right now")`
 * (the default of each command with `ignoreExc`).
 *
 * Server-wide commands (`stats`, `version`, `flushAll`, ...) go to every
 * server in the ring, each through the same failover as key commands; dead
 * servers are skipped until `deadTimeout` brings them back. Those with a
 * result resolve to a `Map` keyed by server (`"host:port"`) with an entry per
 * server that answered. With `ignoreExc` a failing server is left out of
 * that `Map` (and makes `flushAll` resolve `false`); without it, its error
 * rejects once every server has answered.
 *
 * @example
 * ```ts ignore
 * import { HashClient } from "@memkit/memcache";
 * await using cluster = new HashClient(["10.0.0.1:11211", "10.0.0.2:11211"]);
 * await cluster.setMany({ a: 1, b: 2, c: 3 });
 * console.log(await cluster.getMany(["a", "b", "c"])); // Map { "a" => 1, "b" => 2, "c" => 3 }
 * ```
 */
export class HashClient {
  /** The servers, as their clients name them (`"host:port"` or a path), in the order given. */
  readonly servers: readonly string[];
  /** The serde in use. */
  readonly serde: Serde;
  /** The key prefix. */
  readonly keyPrefix: string;
  /** Whether storage commands skip replies by default. */
  readonly defaultNoreply: boolean;
  /** Whether get-family errors become misses. */
  readonly ignoreExc: boolean;
  /** Whether non-ASCII keys are allowed. */
  readonly allowUnicodeKeys: boolean;
  /** The placement. */
  readonly hasher: "rendezvous" | "ketama";
  /** Retries before a server is marked dead. */
  readonly retryAttempts: number;
  /** ms between retries of a failing server. */
  readonly retryTimeout: number;
  /** ms a dead server stays out of the ring. */
  readonly deadTimeout: number;
  #nodes: Node<Inner>[] = [];
  #failover: Failover<Inner>;
  #closing = new Set<Promise<void>>();

  /**
   * Creates a client for the cluster; no connection opens until a call needs one.
   *
   * @param servers the cluster; see {@linkcode ServerSpec}. Duplicates count once.
   * @throws {TypeError} for an invalid server spec or option.
   * @throws {MemcacheIllegalInputError} for an invalid key prefix.
   */
  constructor(servers: Iterable<ServerSpec>, options: HashClientOptions = {}) {
    const {
      hasher,
      usePooling,
      retryAttempts,
      retryTimeout,
      deadTimeout,
      maxPoolSize,
      poolIdleTimeout,
      poolBlocking,
      ...clientOptions
    } = options;
    // Inner clients always throw, so failover sees every failure; the
    // HashClient applies ignoreExc itself.
    const innerOptions = { ...clientOptions, ignoreExc: false };
    const template = new Client("127.0.0.1", clientOptions); // validates the options; never connects
    this.serde = template.serde;
    this.keyPrefix = template.keyPrefix;
    this.defaultNoreply = template.defaultNoreply;
    this.ignoreExc = template.ignoreExc;
    this.allowUnicodeKeys = template.allowUnicodeKeys;
    this.hasher = hasher ?? "rendezvous";
    if (this.hasher !== "rendezvous" && this.hasher !== "ketama") {
      throw new TypeError(`hasher must be "rendezvous" or "ketama", got ${String(hasher)}`);
    }
    this.retryAttempts = retryAttempts ?? 2;
    if (!Number.isInteger(this.retryAttempts)) throw new TypeError("retryAttempts must be an integer");
    this.retryTimeout = checkMs("retryTimeout", retryTimeout ?? 1000);
    this.deadTimeout = checkMs("deadTimeout", deadTimeout ?? 60000);

    const specs = [...servers];
    // Pooling on a runtime with a connection limit (Workers: 6): the servers
    // share it, so the default per-server pool is that limit split between them.
    const poolSize = maxPoolSize ??
      Math.max(1, Math.floor(defaultPoolLimit(options.transport, 10 * specs.length) / Math.max(1, specs.length)));
    const ketama: { node: string; host: string; port: number }[] = [];
    for (const spec of specs) {
      const address = parseServerSpec(spec);
      // pymemcache names a node "host:port" (no IPv6 brackets), or the socket path.
      const name = "path" in address ? address.path : `${address.host}:${address.port}`;
      if (this.#nodes.some((n) => n.name === name)) continue;
      const client = usePooling
        ? new PooledClient(spec, { ...innerOptions, maxPoolSize: poolSize, poolIdleTimeout, poolBlocking })
        : new Client(spec, innerOptions);
      this.#nodes.push({ name, client, failure: null, generation: 0, deadAt: null });
      ketama.push("path" in address ? { node: name, host: address.path, port: 0 } : { node: name, ...address });
    }
    this.servers = this.#nodes.map((n) => n.client.server);
    const ring = this.hasher === "ketama" ? new KetamaHash(ketama) : new RendezvousHash(this.#nodes.map((n) => n.name));
    const { ignoreExc } = this;
    const failover = {
      retryAttempts: this.retryAttempts,
      retryTimeout: this.retryTimeout,
      deadTimeout: this.deadTimeout,
      ignoreExc,
    };
    this.#failover = new Failover(this.#nodes, ring, failover, (closing) => this.#track(closing));
  }

  // ---- placement and failover

  /**
   * Checks a key and adds the prefix.
   *
   * @returns the key's wire bytes, prefix included.
   * @throws {MemcacheIllegalInputError} for a key memcached cannot take.
   */
  checkKey(key: string): Uint8Array {
    return keyBytes(checkWireKey(key, this.keyPrefix, this.allowUnicodeKeys));
  }

  /**
   * The server a key is placed on now, as `"host:port"` or a socket path;
   * `null` when every server is dead.
   *
   * @throws {MemcacheIllegalInputError} for a key memcached cannot take.
   */
  serverFor(key: string): string | null {
    return this.#route(key)?.client.server ?? null;
  }

  /** Checks the key and finds its node in the ring (null: every server is dead). */
  #route(key: string): Node<Inner> | null {
    checkWireKey(key, this.keyPrefix, this.allowUnicodeKeys);
    return this.#failover.route(key);
  }

  #track(closing: Promise<void>): void {
    this.#closing.add(closing);
    closing.finally(() => this.#closing.delete(closing));
  }

  /** A single-key call: routed, with failover. */
  #key<T>(command: string, key: string, call: (client: Inner) => Promise<T>, fallback?: () => T): Promise<T> {
    let node: Node<Inner> | null;
    try {
      node = this.#route(key);
    } catch (error) {
      return Promise.reject(inContext(error, command));
    }
    if (node === null) {
      return fallback && this.ignoreExc ? Promise.resolve(fallback()) : Promise.reject(this.#failover.allDown());
    }
    return this.#failover.run(node, call, fallback);
  }

  /** Groups keys by node; keys of no node (all dead) throw, or are skipped with `skip`. */
  #group<K>(
    command: string,
    items: Iterable<K>,
    keyOf: (item: K) => string,
    skip: boolean,
  ): Map<Node<Inner>, K[]> {
    const groups = new Map<Node<Inner>, K[]>();
    const list = [...items];
    try {
      for (const item of list) checkWireKey(keyOf(item), this.keyPrefix, this.allowUnicodeKeys); // all before any I/O
    } catch (error) {
      throw inContext(error, command);
    }
    for (const item of list) {
      const node = this.#route(keyOf(item));
      if (node === null) {
        if (skip) continue;
        throw this.#failover.allDown();
      }
      const group = groups.get(node);
      if (group) group.push(item);
      else groups.set(node, [item]);
    }
    return groups;
  }

  async #fetchMany<V>(
    command: string,
    keys: Iterable<string>,
    call: (client: Inner, keys: string[]) => Promise<Map<string, V>>,
  ) {
    const list = [...keys];
    const groups = this.#group(command, list, (k) => k, this.ignoreExc);
    const parts = await Promise.all(
      [...groups].map(([node, group]) => this.#failover.run(node, (c) => call(c, group), () => new Map<string, V>())),
    );
    const found = new Map<string, V>();
    for (const part of parts) for (const [k, v] of part) found.set(k, v);
    const result = new Map<string, V>(); // keyed as passed, in the order passed
    for (const key of list) if (found.has(key) && !result.has(key)) result.set(key, found.get(key)!);
    return result;
  }

  /**
   * A server-wide call on every live server, in parallel, each through
   * failover as a key command. Dead servers (out of the ring) are skipped.
   * With ignoreExc a failing server is left out of `answers`; without it,
   * the first failure rejects once every server is done. With every server
   * dead: "All servers seem to be down right now", or no answers with
   * ignoreExc. `complete`: every server answered.
   */
  async #all<T>(call: (client: Inner) => Promise<T>): Promise<{ answers: Map<string, T>; complete: boolean }> {
    const live = this.#failover.live();
    if (live.length === 0 && !this.ignoreExc) throw this.#failover.allDown();
    const settled = await Promise.allSettled(
      live.map((n) => this.#failover.run<T | typeof NO_ANSWER>(n, call, () => NO_ANSWER)),
    );
    const answers = new Map<string, T>();
    settled.forEach((outcome, i) => {
      if (outcome.status === "rejected") throw outcome.reason;
      if (outcome.value !== NO_ANSWER) answers.set(live[i].client.server, outcome.value as T);
    });
    return { answers, complete: answers.size === this.#nodes.length };
  }

  // ---- storage

  /** As {@linkcode Client.set}, on the key's server: resolves `true`. */
  set(key: string, value: unknown, options?: StoreOptions): Promise<boolean> {
    return this.#key("set", key, (c) => c.set(key, value, options), FALSE);
  }

  /** As {@linkcode Client.add}: `true` if stored (or noreply), `false` if the key exists. */
  add(key: string, value: unknown, options?: StoreOptions): Promise<boolean> {
    return this.#key("add", key, (c) => c.add(key, value, options), FALSE);
  }

  /** As {@linkcode Client.replace}: `true` if stored (or noreply), `false` if the key is absent. */
  replace(key: string, value: unknown, options?: StoreOptions): Promise<boolean> {
    return this.#key("replace", key, (c) => c.replace(key, value, options), FALSE);
  }

  /** As {@linkcode Client.append}: `true` if done (or noreply), `false` if absent. */
  append(key: string, value: unknown, options?: StoreOptions): Promise<boolean> {
    return this.#key("append", key, (c) => c.append(key, value, options), FALSE);
  }

  /** As {@linkcode Client.prepend}: `true` if done (or noreply), `false` if absent. */
  prepend(key: string, value: unknown, options?: StoreOptions): Promise<boolean> {
    return this.#key("prepend", key, (c) => c.prepend(key, value, options), FALSE);
  }

  /** As {@linkcode Client.cas}: `true` stored, `false` changed meanwhile, `null` not found. */
  cas(key: string, value: unknown, cas: string | number | bigint, options?: StoreOptions): Promise<boolean | null> {
    return this.#key("cas", key, (c) => c.cas(key, value, cas, options), FALSE);
  }

  /**
   * As {@linkcode Client.setMany}, split per server and run in parallel:
   * the keys not stored (empty with noreply). Every key is checked first.
   *
   * @throws the first server's error, once every server has answered.
   */
  async setMany(values: Mapping, options?: StoreOptions): Promise<string[]> {
    const pairs = [...entriesOf(values)];
    const groups = this.#group("set", pairs, ([k]) => k, this.ignoreExc);
    const settled = await Promise.allSettled(
      // With ignoreExc a failing server's keys are reported failed, as pymemcache.
      [...groups].map(([node, group]) =>
        this.#failover.run(node, (c) => c.setMany(group, options), () => group.map(([k]) => k))
      ),
    );
    const failed: string[] = [];
    if (this.ignoreExc) { // keys no live server could take (every server dead) failed too
      const placed = new Set([...groups.values()].flat().map(([k]) => k));
      for (const [k] of pairs) if (!placed.has(k)) failed.push(k);
    }
    for (const outcome of settled) {
      if (outcome.status === "rejected") throw outcome.reason;
      failed.push(...outcome.value);
    }
    return failed;
  }

  /** Alias of {@linkcode HashClient.setMany}. */
  setMulti(values: Mapping, options?: StoreOptions): Promise<string[]> {
    return this.setMany(values, options);
  }

  // ---- retrieval

  /** As {@linkcode Client.get}: the value, or `defaultValue` on a miss. */
  get(key: string, defaultValue: Value = null): Promise<Value> {
    return this.#key("get", key, (c) => c.get(key, defaultValue), () => defaultValue);
  }

  /** As {@linkcode Client.getMany}, split per server: the values found, keyed as passed. */
  getMany(keys: Iterable<string>): Promise<Map<string, Value>> {
    return this.#fetchMany("get", keys, (c, group) => c.getMany(group));
  }

  /** Alias of {@linkcode HashClient.getMany}. */
  getMulti(keys: Iterable<string>): Promise<Map<string, Value>> {
    return this.getMany(keys);
  }

  /** As {@linkcode Client.gets}: `[value, cas]`, or `[defaultValue, casDefault]` on a miss. */
  gets(key: string, defaultValue: Value = null, casDefault: string | null = null): Promise<[Value, string | null]> {
    return this.#key("gets", key, (c) => c.gets(key, defaultValue, casDefault), () => [defaultValue, casDefault]);
  }

  /** As {@linkcode Client.getsMany}, split per server: `[value, cas]` of every key found. */
  getsMany(keys: Iterable<string>): Promise<Map<string, [Value, string]>> {
    return this.#fetchMany("gets", keys, (c, group) => c.getsMany(group));
  }

  /** As {@linkcode Client.gat}: like get, setting the expiry to `expire` seconds. */
  gat(key: string, expire = 0, defaultValue: Value = null): Promise<Value> {
    return this.#key("gat", key, (c) => c.gat(key, expire, defaultValue), () => defaultValue);
  }

  /** As {@linkcode Client.gats}: like gets, setting the expiry to `expire` seconds. */
  gats(
    key: string,
    expire = 0,
    defaultValue: Value = null,
    casDefault: string | null = null,
  ): Promise<[Value, string | null]> {
    return this.#key(
      "gats",
      key,
      (c) => c.gats(key, expire, defaultValue, casDefault),
      () => [defaultValue, casDefault],
    );
  }

  // ---- other key commands

  /** As {@linkcode Client.delete}: `true` if deleted (or noreply), `false` if absent. */
  delete(key: string, options?: NoreplyOptions): Promise<boolean> {
    return this.#key("delete", key, (c) => c.delete(key, options), FALSE);
  }

  /** As {@linkcode Client.deleteMany}, split per server: resolves `true`. */
  async deleteMany(keys: Iterable<string>, options?: NoreplyOptions): Promise<true> {
    const groups = this.#group("delete", keys, (k) => k, this.ignoreExc);
    const settled = await Promise.allSettled(
      [...groups].map(([node, group]) => this.#failover.run(node, (c) => c.deleteMany(group, options), TRUE)),
    );
    for (const outcome of settled) if (outcome.status === "rejected") throw outcome.reason;
    return true;
  }

  /** Alias of {@linkcode HashClient.deleteMany}. */
  deleteMulti(keys: Iterable<string>, options?: NoreplyOptions): Promise<true> {
    return this.deleteMany(keys, options);
  }

  /** As {@linkcode Client.incr}: the new value, or `null` if absent or with noreply. */
  incr(key: string, value: number | bigint, options?: NoreplyOptions): Promise<number | bigint | null> {
    return this.#key("incr", key, (c) => c.incr(key, value, options), NULL);
  }

  /** As {@linkcode Client.decr}: the new value (memcached stops at 0), or `null`. */
  decr(key: string, value: number | bigint, options?: NoreplyOptions): Promise<number | bigint | null> {
    return this.#key("decr", key, (c) => c.decr(key, value, options), NULL);
  }

  /** As {@linkcode Client.touch}: `true` if touched (or noreply), `false` if absent. */
  touch(key: string, expire = 0, options?: NoreplyOptions): Promise<boolean> {
    return this.#key("touch", key, (c) => c.touch(key, expire, options), FALSE);
  }

  // ---- server-wide commands: every live server, with failover

  /**
   * Statistics of every live server, keyed by server (`"host:port"` or the
   * socket path), each as {@linkcode Client.stats}. A dead server (out of
   * the ring until `deadTimeout` has passed) has no entry; with `ignoreExc`
   * neither has a server that failed (pymemcache gives it `False`).
   *
   * @throws {MemcacheConnectionError} without `ignoreExc`: the first
   *   server's failure, once every server has answered; with every server
   *   dead, "All servers seem to be down right now".
   */
  async stats(...args: string[]): Promise<Map<string, Record<string, string | number | boolean>>> {
    return (await this.#all((c) => c.stats(...args))).answers;
  }

  /**
   * Sets every live server's memory limit in megabytes. Resolves `true`
   * (with `ignoreExc`, even if a server failed, as `deleteMany`).
   *
   * @throws as {@linkcode HashClient.stats}.
   */
  async cacheMemlimit(megabytes: number): Promise<true> {
    await this.#all((c) => c.cacheMemlimit(megabytes));
    return true;
  }

  /**
   * Every live server's version string, keyed by server; as
   * {@linkcode HashClient.stats}, dead servers (and failed ones with
   * `ignoreExc`) have no entry.
   *
   * @throws as {@linkcode HashClient.stats}.
   */
  async version(): Promise<Map<string, string>> {
    return (await this.#all((c) => c.version())).answers;
  }

  /**
   * Sets every live server's log verbosity. Resolves `true` (with
   * `ignoreExc`, even if a server failed).
   *
   * @throws as {@linkcode HashClient.stats}.
   */
  async verbosity(level: number, options?: NoreplyOptions): Promise<true> {
    await this.#all((c) => c.verbosity(level, options));
    return true;
  }

  /**
   * Invalidates every item on every live server after `delay` seconds.
   * Resolves `true` once every server has confirmed (or with noreply), and
   * `false` if one was not flushed: it is dead (out of the ring), or it
   * failed with `ignoreExc` (pymemcache's `flush_all` gives such a server
   * `False`).
   *
   * @throws as {@linkcode HashClient.stats}.
   */
  async flushAll(delay = 0, options?: NoreplyOptions): Promise<boolean> {
    const { answers, complete } = await this.#all((c) => c.flushAll(delay, options));
    return complete && [...answers.values()].every(Boolean);
  }

  /**
   * Asks every live server to shut down (memcached needs `-A`).
   *
   * @throws as {@linkcode HashClient.stats}.
   */
  async shutdown(graceful = false): Promise<void> {
    await this.#all((c) => c.shutdown(graceful));
  }

  /**
   * Sends a raw command line to every live server (see
   * {@linkcode Client.rawCommand}); the replies keyed by server, as
   * {@linkcode HashClient.stats}.
   *
   * @throws as {@linkcode HashClient.stats}, and the server's error reply
   *   without `ignoreExc`.
   */
  async rawCommand(
    command: string | Uint8Array,
    endTokens: string | Uint8Array = "\r\n",
  ): Promise<Map<string, Uint8Array>> {
    return (await this.#all((c) => c.rawCommand(command, endTokens))).answers;
  }

  // ---- lifecycle

  /** Sends `quit` to every server and waits for the connections to close. The client stays usable. */
  async quit(): Promise<void> {
    await Promise.all(this.#nodes.map((n) => n.client.quit()));
    await this.#settled();
  }

  /** Closes every connection, as {@linkcode Client.close}. The client stays usable. */
  async close(): Promise<void> {
    await Promise.all(this.#nodes.map((n) => n.client.close()));
    await this.#settled();
  }

  async #settled(): Promise<void> {
    while (this.#closing.size > 0) await Promise.all(this.#closing);
  }

  /** Same as {@linkcode HashClient.close}, for `await using`. */
  [Symbol.asyncDispose](): Promise<void> {
    return this.close();
  }
}
