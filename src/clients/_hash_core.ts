/**
 * `HashClient`: keys spread over several memcached servers, with
 * pymemcache's `HashClient` API, placement and failover.
 *
 * @module
 */

import { Client } from "./client.ts";
import type { GetOrSetOptions, InvalidateOptions, Loader } from "./_get_or_set.ts"; // generated: the commands' types
import type { Mapping } from "./_mapping.ts"; // generated: the commands' types
import type {
  MetaArithmeticOptions,
  MetaDeleteOptions,
  MetaGetManyOptions,
  MetaGetOptions,
  MetaKey,
  MetaResult,
  MetaSetOptions,
} from "../protocol/_meta.ts"; // generated: the commands' types
import type { NoreplyOptions, StoreOptions, Value } from "./client.ts"; // generated: the commands' types
import { type CommandName, type CommandRow, type Commands, missOf, rowOf, runComposed } from "./commands.ts";
import { AutoDiscovery } from "./_discovery.ts";
import { MemcacheError, MemcacheIllegalInputError } from "../errors.ts";
import type { Node } from "../placement/_failover.ts";
import { checkKey as checkWireKey, keyBytes } from "../protocol/_keys.ts";
import { entriesOf } from "./_mapping.ts";
import { checkMs } from "./_options.ts";
import { endBackground, requestTimeout, timeoutOf } from "./_background.ts";
import { serverEvents } from "./_observe.ts";
import { HASHERS, Placement } from "../placement/_placement.ts";
import { checkCompatibleWith, type PythonClientName, pythonHasher, pythonSerde } from "./_python_compat.ts";
import { PooledClient, type PooledClientOptions } from "./pooled_client.ts";
import type { Serde } from "../values/serde.ts";
import type { ServerSpec } from "../connection/transport.ts";
import { defaultPoolLimit } from "../connection/_default_transport.ts";
import { checkFlags, inContext } from "../protocol/_validate.ts";

/**
 * Options of {@linkcode HashClient}: those of {@linkcode ClientOptions},
 * the pool options (used with `usePooling`), and placement and failover.
 */
export interface HashClientOptions extends PooledClientOptions {
  /**
   * How keys are placed: `"rendezvous"` as pymemcache's HashClient,
   * `"ketama"` as libmemcached's weighted ketama, `"modula"` as pylibmc
   * (libmemcached's defaults), `"crc32"` as python-memcached, `"jump"` as
   * memcached's built-in proxy (1.6.x `mcp.pool`, its default placement):
   * `XXH3_64bits_withSeed` of the key as sent (prefix included; a binary
   * meta key: its base64), seed 0 or the pool's `seed`, then jump
   * consistent hashing over the servers in the order given. A
   * `HashClient` with `"jump"` and a proxy pool with the same backends in
   * the same order (and the same `seed`) put every key on the same
   * backend. When failover takes a server out, the others close up in the
   * same order; it takes its place again when it comes back.
   * @default {"rendezvous"} (or the one `compatibleWith` picks)
   */
  hasher?: "rendezvous" | "ketama" | "modula" | "crc32" | "jump";
  /**
   * With `hasher: "jump"`: the seed string of the proxy pool to match
   * (`mcp.pool(backends, { seed = "…" })`; routelib: the pool's
   * `options = { seed = "…" }`); keys are then hashed with seed
   * `XXH3_64bits(seed)`, as the proxy does. Without it, seed 0, as a pool
   * without one. Only with `"jump"` (a `TypeError` otherwise).
   * @default {undefined}
   */
  seed?: string;
  /**
   * Share the cluster with a Python app using this client library (or
   * cachelib's `MemcachedCache` over it): picks the serde (a
   * {@linkcode PickleSerde} writing that library's flags) and the hasher
   * (`"modula"` for pylibmc, `"crc32"` for python-memcached, `"rendezvous"`
   * for pymemcache). An explicit `serde` or `hasher` wins.
   */
  compatibleWith?: PythonClientName;
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

/**
 * Options of {@linkcode HashClient.discover}: those of a
 * {@linkcode HashClient}, plus how often to read the node list again.
 */
export interface DiscoveryOptions extends HashClientOptions {
  /**
   * ms between reads of the node list from the configuration endpoint
   * (0: read it once, never again).
   * @default {60000}
   */
  discoveryInterval?: number;
  /**
   * Told when a scheduled read fails (the endpoint is down, or its reply
   * does not parse, is over the limits or lists an invalid node; see
   * {@linkcode HashClient.discover}): the servers stay as they were, and
   * the next read comes `discoveryInterval` ms later.
   * @default console.warn
   */
  onDiscoveryError?: (error: Error) => void;
}

// deno-lint-ignore no-explicit-any
type AnyMethod = (...args: any[]) => Promise<any>;

/**
 * A value setMany serialized before sending anything; the servers' clients
 * get a serde that passes it through instead of serializing it again.
 */
class Serialized {
  constructor(readonly data: Uint8Array | string, readonly flags: number) {}
}

/** `serde`, passing {@linkcode Serialized} values through as they are. */
function passingSerialized(serde: Serde): Serde {
  return {
    serialize: (key, value) => value instanceof Serialized ? [value.data, value.flags] : serde.serialize(key, value),
    deserialize: (key, value, flags) => serde.deserialize(key, value, flags),
  };
}

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
 * - `hasher: "modula"` and `"crc32"` place keys as pylibmc (default
 *   behaviors) and python-memcached do; `compatibleWith` picks these and a
 *   {@linkcode PickleSerde} for sharing the cluster with a Python app.
 * - `hasher: "jump"` (with an optional `seed`) places keys as memcached's
 *   built-in proxy does in a pool of the same servers in the same order
 *   (XXH3-64 and jump consistent hashing).
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
export class HashCore implements Commands {
  /**
   * The servers, as their clients name them (`"host:port"` or a path), in
   * the order given (with {@linkcode HashClient.discover}: as the cluster
   * configuration lists them now).
   */
  get servers(): readonly string[] {
    return this.#placement.servers;
  }
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
  readonly hasher: "rendezvous" | "ketama" | "modula" | "crc32" | "jump";
  /** With `hasher: "jump"`: the proxy pool's seed string, if any. */
  readonly seed: string | undefined;
  /** Retries before a server is marked dead. */
  readonly retryAttempts: number;
  /** ms between retries of a failing server. */
  readonly retryTimeout: number;
  /** ms a dead server stays out of the ring. */
  readonly deadTimeout: number;
  /** The servers, their ring and failover. */
  #placement: Placement<Inner>;
  #discovery: AutoDiscovery | undefined;

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
      seed,
      compatibleWith,
      usePooling,
      retryAttempts,
      retryTimeout,
      deadTimeout,
      maxPoolSize,
      poolIdleTimeout,
      poolBlocking,
      ...clientOptions
    } = options;
    const python = checkCompatibleWith(compatibleWith);
    if (python !== undefined) clientOptions.serde ??= pythonSerde(python);
    // Inner clients always throw, so failover sees every failure; the
    // HashClient applies ignoreExc itself.
    const innerOptions = { ...clientOptions, ignoreExc: false };
    const template = new Client("127.0.0.1", clientOptions); // validates the options; never connects
    this.serde = template.serde;
    this.keyPrefix = template.keyPrefix;
    this.defaultNoreply = template.defaultNoreply;
    this.ignoreExc = template.ignoreExc;
    this.allowUnicodeKeys = template.allowUnicodeKeys;
    this.hasher = hasher ?? (python === undefined ? "rendezvous" : pythonHasher(python));
    if (!HASHERS.includes(this.hasher)) {
      throw new TypeError(`hasher must be "rendezvous", "ketama", "modula", "crc32" or "jump", got ${String(hasher)}`);
    }
    if (seed !== undefined && typeof seed !== "string") throw new TypeError("seed must be a string");
    if (seed !== undefined && this.hasher !== "jump") throw new TypeError(`seed applies to hasher "jump" only`);
    this.seed = seed;
    this.retryAttempts = retryAttempts ?? 2;
    if (!Number.isInteger(this.retryAttempts)) throw new TypeError("retryAttempts must be an integer");
    this.retryTimeout = checkMs("retryTimeout", retryTimeout ?? 1000);
    this.deadTimeout = checkMs("deadTimeout", deadTimeout ?? 60000);

    const specs = [...servers];
    // Pooling on a runtime with a connection limit (Workers: 6): the servers
    // share it, so the default per-server pool is that limit split between them.
    // (discover starts with no servers: it gets the single-server default.)
    const shares = Math.max(1, specs.length);
    const poolSize = maxPoolSize ?? Math.max(1, Math.floor(defaultPoolLimit(options.transport, 10 * shares) / shares));
    const serde = passingSerialized(this.serde); // setMany serializes every value before sending any
    this.#placement = new Placement<Inner>(specs, {
      hasher: this.hasher,
      seed,
      keyPrefix: this.keyPrefix,
      allowUnicodeKeys: this.allowUnicodeKeys,
      failover: {
        retryAttempts: this.retryAttempts,
        retryTimeout: this.retryTimeout,
        deadTimeout: this.deadTimeout,
        ignoreExc: this.ignoreExc,
        onServer: serverEvents(options.observer),
      },
      newClient: (spec) =>
        usePooling
          ? new PooledClient(spec, { ...innerOptions, serde, maxPoolSize: poolSize, poolIdleTimeout, poolBlocking })
          : new Client(spec, { ...innerOptions, serde }),
    });
  }

  // ---- AWS ElastiCache auto discovery

  /**
   * A client for an AWS ElastiCache (memcached) cluster, whose nodes it
   * reads from the cluster's configuration endpoint (`config get cluster`;
   * `get AmazonElastiCache:cluster` on engines before 1.4.14) and reads
   * again every `discoveryInterval` ms. When the configuration's version
   * changes, servers that joined get a client and enter the ring, and
   * servers that left leave it: their keys move, as with any change of
   * the server list. Calls already running finish where they were sent
   * (a leaving server's connections are closed with `quit`, after the
   * replies they wait for). A read that fails (the endpoint is down, or
   * its reply does not parse) changes nothing; it goes to
   * `onDiscoveryError`. {@linkcode HashClient.close} stops the reads.
   *
   * A configuration is applied whole or not at all: one node that is not a
   * host name, IPv4 or IPv6 address with a port 1–65535 (`a]b`,
   * `foo:bar`, control characters, port 0) refuses the whole reply, and
   * the servers stay as they were. A reply over 1 MiB, or listing more
   * than 1,000 nodes, is refused the same way (ElastiCache allows 60
   * nodes per cluster by default, 300 on request); reading a reply costs
   * time in proportion to its length.
   *
   * The endpoint is reached with the connection options given
   * (`transport`, `tls`, `auth`, timeouts), as the nodes are.
   *
   * @param endpoint the configuration endpoint, such as
   *   `"mycluster.abc123.cfg.use1.cache.amazonaws.com:11211"`.
   * @throws {TypeError} for an invalid endpoint or option (before any I/O).
   * @throws {MemcacheUnknownError} when the first reply does not parse, is
   *   over the limits or lists an invalid node; whatever the first read
   *   fails with otherwise (no client is made).
   */
  static async discover(endpoint: ServerSpec, options: DiscoveryOptions = {}): Promise<HashClient> {
    const { discoveryInterval, onDiscoveryError, ...rest } = options;
    const interval = checkMs("discoveryInterval", discoveryInterval ?? 60_000);
    if (onDiscoveryError !== undefined && typeof onDiscoveryError !== "function") {
      throw new TypeError("onDiscoveryError must be a function");
    }
    const client = new HashClient([], rest); // checks the options
    client.#discovery = await AutoDiscovery.start(
      endpoint,
      rest,
      interval,
      onDiscoveryError,
      (servers) => client.#placement.setServers(servers),
    );
    return client;
  }

  /** With {@linkcode HashClient.discover}: the cluster configuration's version in use, else `undefined`. */
  get configVersion(): number | undefined {
    return this.#discovery?.version;
  }

  /**
   * With {@linkcode HashClient.discover}: reads the node list now (as the
   * scheduled reads do) and applies it if its version changed. Resolves
   * `true` when the servers changed.
   *
   * @throws {MemcacheUnknownError} for a reply that does not parse, one over
   *   the limits, or one listing an invalid node (nothing changes);
   *   whatever the read fails with otherwise.
   * @throws {TypeError} on a client not made by `discover`.
   */
  refreshServers(): Promise<boolean> {
    const discovery = this.#discovery;
    if (discovery === undefined) return Promise.reject(new TypeError("refreshServers needs a client made by discover"));
    return discovery.refresh();
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
    return this.#placement.route(key)?.client.server ?? null;
  }

  // ---- the commands, routed as src/clients/commands.ts says

  /** Runs command `name` where its route says, with failover. */
  #run(name: CommandName, args: unknown[]): Promise<unknown> {
    const row = rowOf(name);
    const call = (client: Inner) => (client[name] as AnyMethod)(...args);
    switch (row.route) {
      case "key":
        return this.#placement.key(row.wire ?? name, args[0] as string, call, () => missOf(row, args));
      case "all":
        return this.#everywhere(row, call);
      default:
        return this.#spread(name, row, args);
    }
  }

  /** A server-wide command's one result: `Client`'s, or with `combine: "and"` whether every server said yes. */
  async #everywhere(row: CommandRow, call: (client: Inner) => Promise<unknown>): Promise<unknown> {
    const { answers, complete } = await this.#placement.all(call);
    if (row.combine === "and") return complete && [...answers.values()].every(Boolean);
    for (const answer of answers.values()) return answer;
    return missOf(row, []);
  }

  /**
   * A command over many keys (or pairs), split per server and run in
   * parallel; the parts' results merged. Every key is checked, and every
   * value serialized, before anything is sent. A failing server's part
   * rejects the call once every server has answered; with ignoreExc it
   * gives the command's miss (as do keys no live server could take).
   */
  async #spread(name: CommandName, row: CommandRow, args: unknown[]): Promise<unknown> {
    const command = row.wire ?? name;
    const [items, ...rest] = args;
    const pairs = row.route === "pairs";
    // Pairs copied: serializing replaces their values.
    const list: unknown[] = pairs
      ? [...entriesOf(items as Mapping)].map(([key, value]) => [key, value])
      : [...(items as Iterable<string>)];
    const keyOf = pairs ? (pair: unknown) => (pair as [string, unknown])[0] : (key: unknown) => key as string;
    const groups = this.#placement.group(command, list, keyOf, this.ignoreExc);
    if (pairs) {
      // A synchronous serde sends in this tick, so calls made after this one go after it.
      const serializing = this.#serialize(command, groups as Map<Node<Inner>, [string, unknown][]>, rest[0]);
      if (serializing !== undefined) await serializing;
    }
    const parts: unknown[] = [];
    let unplaced: unknown[] | undefined;
    if (this.ignoreExc && groups.size > 0) {
      const placed = new Set([...groups.values()].flat());
      unplaced = list.filter((item) => !placed.has(item));
    }
    if (unplaced?.length || groups.size === 0) parts.push(missOf(row, [unplaced ?? list, ...rest]));
    const settled = await Promise.allSettled(
      [...groups].map(([node, group]) =>
        this.#placement.run(node, (c) => (c[name] as AnyMethod)(group, ...rest), () => missOf(row, [group, ...rest]))
      ),
    );
    for (const outcome of settled) {
      if (outcome.status === "rejected") throw outcome.reason;
      parts.push(outcome.value);
    }
    if (parts[0] instanceof Map) {
      const found = new Map<unknown, unknown>();
      for (const part of parts as Map<unknown, unknown>[]) for (const [k, v] of part) found.set(k, v);
      const result = new Map<unknown, unknown>(); // keyed as passed, in the order passed
      for (const key of list) if (found.has(key) && !result.has(key)) result.set(key, found.get(key));
      return result;
    }
    if (Array.isArray(parts[0])) return parts.flat();
    return parts.every((part) => part === true);
  }

  /**
   * Serializes every pair's value in place (as a {@linkcode Serialized}),
   * checking what the serde returned: one bad value fails the call before
   * anything is sent, so no server stores part of it.
   */
  #serialize(
    command: string,
    groups: Map<Node<Inner>, [string, unknown][]>,
    options: unknown,
  ): Promise<void> | undefined {
    const all = [...groups.values()].flat();
    const flags = (options as StoreOptions | undefined)?.flags;
    const fail = (key: string, error: unknown, why: string) =>
      inContext(
        error instanceof MemcacheError
          ? error
          : new MemcacheIllegalInputError(`Could not serialize the value of ${JSON.stringify(key)}: ${why}`, {
            cause: error ?? undefined,
          }),
        command,
      );
    const failed = (key: string) => (error: unknown) => {
      throw fail(key, error, error instanceof Error ? error.message : String(error));
    };
    const results = all.map(([key, value]) => {
      try {
        const result = this.serde.serialize(key, value);
        return result instanceof Promise ? result.catch(failed(key)) : result;
      } catch (error) {
        return failed(key)(error);
      }
    });
    const store = (settled: unknown[]) =>
      settled.forEach((result, i) => {
        const [key] = all[i];
        const [data, serdeFlags] = Array.isArray(result) ? result : [undefined, undefined];
        if (typeof data !== "string" && !(data instanceof Uint8Array)) {
          throw fail(key, null, "the serde must return a string or Uint8Array");
        }
        try {
          all[i][1] = new Serialized(data, flags ?? checkFlags(serdeFlags));
        } catch (error) {
          throw inContext(error, command);
        }
      });
    if (!results.some((r) => r instanceof Promise)) return void store(results);
    return Promise.all(results).then(store);
  }

  // ---- generated by scripts/gen_commands.ts from src/clients/commands.ts: do not edit by hand
  /**
   * Stores a value. Resolves to `true` (always, as pymemcache: with
   * noreply nothing is known; otherwise failures throw).
   *
   * Runs on the key's server (see {@linkcode HashClient.serverFor}), with failover. With `ignoreExc` a failure
   * resolves `false`.
   *
   * @throws {MemcacheIllegalInputError} for a bad key, value, expire or flags (nothing is sent).
   * @throws {MemcacheServerError} e.g. for a value over the server's item size (with noreply the server stays silent).
   */
  set(key: string, value: unknown, options: StoreOptions = {}): Promise<boolean> {
    return this.#run("set", [key, value, options]) as Promise<boolean>;
  }

  /**
   * Stores only if the key is absent: `true` if stored (or noreply), `false` if it exists.
   *
   * Runs on the key's server (see {@linkcode HashClient.serverFor}), with failover. With `ignoreExc` a failure
   * resolves `false`.
   */
  add(key: string, value: unknown, options: StoreOptions = {}): Promise<boolean> {
    return this.#run("add", [key, value, options]) as Promise<boolean>;
  }

  /**
   * Stores only if the key exists: `true` if stored (or noreply), `false` if it is absent.
   *
   * Runs on the key's server (see {@linkcode HashClient.serverFor}), with failover. With `ignoreExc` a failure
   * resolves `false`.
   */
  replace(key: string, value: unknown, options: StoreOptions = {}): Promise<boolean> {
    return this.#run("replace", [key, value, options]) as Promise<boolean>;
  }

  /**
   * Appends bytes to an existing value: `true` if done (or noreply), `false` if absent.
   *
   * Runs on the key's server (see {@linkcode HashClient.serverFor}), with failover. With `ignoreExc` a failure
   * resolves `false`.
   */
  append(key: string, value: unknown, options: StoreOptions = {}): Promise<boolean> {
    return this.#run("append", [key, value, options]) as Promise<boolean>;
  }

  /**
   * Prepends bytes to an existing value: `true` if done (or noreply), `false` if absent.
   *
   * Runs on the key's server (see {@linkcode HashClient.serverFor}), with failover. With `ignoreExc` a failure
   * resolves `false`.
   */
  prepend(key: string, value: unknown, options: StoreOptions = {}): Promise<boolean> {
    return this.#run("prepend", [key, value, options]) as Promise<boolean>;
  }

  /**
   * Check-and-set: `true` if stored, `false` if the item changed since
   * `cas` was read, `null` if it does not exist. Waits for the reply unless
   * `noreply: true` (then `true`).
   *
   * Runs on the key's server (see {@linkcode HashClient.serverFor}), with failover. With `ignoreExc` a failure
   * resolves `false`.
   */
  cas(key: string, value: unknown, cas: string | number | bigint, options: StoreOptions = {}): Promise<boolean | null> {
    return this.#run("cas", [key, value, cas, options]) as Promise<boolean | null>;
  }

  /**
   * Stores many values, pipelined. Resolves to the keys (as passed) that
   * were not stored; always empty with noreply.
   *
   * Split per server and run in parallel, with failover. Every key is checked and every value serialized before
   * any is sent: a bad pair fails the call with nothing stored anywhere. The keys not stored of every server,
   * in one list. With `ignoreExc` a failing server's keys are reported not stored.
   */
  setMany(values: Mapping, options: StoreOptions = {}): Promise<string[]> {
    return this.#run("setMany", [values, options]) as Promise<string[]>;
  }

  /** Alias of {@linkcode HashClient.setMany}. */
  setMulti(values: Mapping, options: StoreOptions = {}): Promise<string[]> {
    return this.setMany(values, options);
  }

  /**
   * The value of `key`, or `defaultValue` on a miss. A byte value up to
   * 4 KiB may be a view of a shared `ArrayBuffer`; see {@linkcode HashClient.getMany}.
   *
   * Runs on the key's server (see {@linkcode HashClient.serverFor}), with failover. With `ignoreExc` a failure
   * resolves as a miss does.
   */
  get(key: string, defaultValue: Value = null): Promise<Value> {
    return this.#run("get", [key, defaultValue]) as Promise<Value>;
  }

  /**
   * The values of the keys found, keyed as passed (without the prefix).
   * Byte values up to 4 KiB may be views of a shared 8 KiB `ArrayBuffer`,
   * as Node's pooled Buffers are (see the README): `value.slice()` before
   * transferring a value's `.buffer` or keeping it for long.
   *
   * Split per server and run in parallel, with failover; the results are merged, keyed as passed. With
   * `ignoreExc` a failure resolves as a miss does.
   */
  getMany(keys: Iterable<string>): Promise<Map<string, Value>> {
    return this.#run("getMany", [keys]) as Promise<Map<string, Value>>;
  }

  /** Alias of {@linkcode HashClient.getMany}. */
  getMulti(keys: Iterable<string>): Promise<Map<string, Value>> {
    return this.getMany(keys);
  }

  /**
   * `[value, cas]` of `key`, or `[defaultValue, casDefault]` on a miss.
   *
   * Runs on the key's server (see {@linkcode HashClient.serverFor}), with failover. With `ignoreExc` a failure
   * resolves as a miss does.
   */
  gets(key: string, defaultValue: Value = null, casDefault: string | null = null): Promise<[Value, string | null]> {
    return this.#run("gets", [key, defaultValue, casDefault]) as Promise<[Value, string | null]>;
  }

  /**
   * `[value, cas]` of every key found, keyed as passed.
   *
   * Split per server and run in parallel, with failover; the results are merged, keyed as passed. With
   * `ignoreExc` a failure resolves as a miss does.
   */
  getsMany(keys: Iterable<string>): Promise<Map<string, [Value, string]>> {
    return this.#run("getsMany", [keys]) as Promise<Map<string, [Value, string]>>;
  }

  /**
   * Like {@linkcode HashClient.get}, setting the item's expiry to `expire` seconds.
   *
   * Runs on the key's server (see {@linkcode HashClient.serverFor}), with failover. With `ignoreExc` a failure
   * resolves as a miss does.
   */
  gat(key: string, expire = 0, defaultValue: Value = null): Promise<Value> {
    return this.#run("gat", [key, expire, defaultValue]) as Promise<Value>;
  }

  /**
   * Like {@linkcode HashClient.gets}, setting the item's expiry to `expire` seconds.
   *
   * Runs on the key's server (see {@linkcode HashClient.serverFor}), with failover. With `ignoreExc` a failure
   * resolves as a miss does.
   */
  gats(
    key: string,
    expire = 0,
    defaultValue: Value = null,
    casDefault: string | null = null,
  ): Promise<[Value, string | null]> {
    return this.#run("gats", [key, expire, defaultValue, casDefault]) as Promise<[Value, string | null]>;
  }

  /**
   * Deletes `key`: `true` if deleted (or noreply), `false` if it was absent.
   *
   * Runs on the key's server (see {@linkcode HashClient.serverFor}), with failover. With `ignoreExc` a failure
   * resolves `false`.
   */
  delete(key: string, options: NoreplyOptions = {}): Promise<boolean> {
    return this.#run("delete", [key, options]) as Promise<boolean>;
  }

  /**
   * Deletes many keys, pipelined. Resolves `true`.
   *
   * Split per server and run in parallel, with failover; the results are merged, keyed as passed. With
   * `ignoreExc` a failure resolves `true`.
   */
  deleteMany(keys: Iterable<string>, options: NoreplyOptions = {}): Promise<true> {
    return this.#run("deleteMany", [keys, options]) as Promise<true>;
  }

  /** Alias of {@linkcode HashClient.deleteMany}. */
  deleteMulti(keys: Iterable<string>, options: NoreplyOptions = {}): Promise<true> {
    return this.deleteMany(keys, options);
  }

  /**
   * Adds `value` to a decimal counter. Resolves to the new value (a
   * `bigint` above 2^53-1), or `null` if the key is absent or with
   * noreply. Waits for the reply unless `noreply: true`.
   *
   * Runs on the key's server (see {@linkcode HashClient.serverFor}), with failover. With `ignoreExc` a failure
   * resolves `null`.
   */
  incr(key: string, value: number | bigint, options: NoreplyOptions = {}): Promise<number | bigint | null> {
    return this.#run("incr", [key, value, options]) as Promise<number | bigint | null>;
  }

  /**
   * Subtracts from a counter; memcached stops at 0. Otherwise as {@linkcode HashClient.incr}.
   *
   * Runs on the key's server (see {@linkcode HashClient.serverFor}), with failover. With `ignoreExc` a failure
   * resolves `null`.
   */
  decr(key: string, value: number | bigint, options: NoreplyOptions = {}): Promise<number | bigint | null> {
    return this.#run("decr", [key, value, options]) as Promise<number | bigint | null>;
  }

  /**
   * Sets the expiry of `key`: `true` if touched (or noreply), `false` if absent.
   *
   * Runs on the key's server (see {@linkcode HashClient.serverFor}), with failover. With `ignoreExc` a failure
   * resolves `false`.
   */
  touch(key: string, expire = 0, options: NoreplyOptions = {}): Promise<boolean> {
    return this.#run("touch", [key, expire, options]) as Promise<boolean>;
  }

  /**
   * Sets the server's memory limit in megabytes. Resolves `true`.
   *
   * Runs on every live server, with failover (see the class doc). With `ignoreExc` a failure resolves `true`.
   */
  cacheMemlimit(megabytes: number): Promise<true> {
    return this.#run("cacheMemlimit", [megabytes]) as Promise<true>;
  }

  /**
   * Sets the server's log verbosity. Resolves `true`.
   *
   * Runs on every live server, with failover (see the class doc). With `ignoreExc` a failure resolves `true`.
   */
  verbosity(level: number, options: NoreplyOptions = {}): Promise<true> {
    return this.#run("verbosity", [level, options]) as Promise<true>;
  }

  /**
   * Invalidates every item, after `delay` seconds. `true` once the server
   * confirms (or with noreply).
   *
   * Runs on every live server, with failover (see the class doc). With `ignoreExc` a failure resolves `false`.
   */
  flushAll(delay = 0, options: NoreplyOptions = {}): Promise<boolean> {
    return this.#run("flushAll", [delay, options]) as Promise<boolean>;
  }

  /**
   * Asks the server to shut down (memcached needs `-A`). Resolves once the
   * server closed the connection.
   *
   * Runs on every live server, with failover (see the class doc).
   *
   * @throws {MemcacheUnknownCommandError} when the server has shutdown disabled.
   */
  shutdown(graceful = false): Promise<void> {
    return this.#run("shutdown", [graceful]) as Promise<void>;
  }

  /**
   * `mg`: reads `key` (a string, or any bytes as a `Uint8Array`, sent
   * base64) with what `options` asks for: by default its value (through
   * the serde), plus any of cas, TTL, size, last access, hit-before, and
   * touch, vivify-on-miss and early-recache leases. A miss resolves to
   * `{ hit: false, … }`. See {@linkcode MetaGetOptions}, {@linkcode MetaResult}.
   *
   * Runs on the key's server (see {@linkcode HashClient.serverFor}), with failover. With `ignoreExc` a failure
   * resolves as a miss does.
   *
   * @throws {MemcacheIllegalInputError} for a bad key or option (nothing is sent).
   * @throws {MemcacheUnknownCommandError} when the server does not speak meta.
   */
  metaGet(key: MetaKey, options?: MetaGetOptions): Promise<MetaResult> {
    return this.#run("metaGet", [key, options]) as Promise<MetaResult>;
  }

  /**
   * Reads many keys in one round trip: a quiet `mg … q` per key (misses
   * send nothing) closed by one `mn`. Resolves to the hits, keyed by the
   * keys as passed (a `Uint8Array` key: that very object).
   *
   * Split per server and run in parallel, with failover; the results are merged, keyed as passed. With
   * `ignoreExc` a failure resolves as a miss does.
   */
  metaGetMany(keys: Iterable<MetaKey>, options?: MetaGetManyOptions): Promise<Map<MetaKey, MetaResult>> {
    return this.#run("metaGetMany", [keys, options]) as Promise<Map<MetaKey, MetaResult>>;
  }

  /**
   * `ms`: stores `value` (through the serde) under `key`, by `mode` (set,
   * add, replace, append, prepend), optionally against a `cas` (with
   * `invalidate`: an older cas stores a stale item). Resolves with
   * `stored`; `status` says why not (`NS` not stored, `EX` cas mismatch,
   * `NF` not found). With `noreply` the server answers only failures.
   *
   * Runs on the key's server (see {@linkcode HashClient.serverFor}), with failover. With `ignoreExc` a failure
   * resolves as a miss does.
   */
  metaSet(key: MetaKey, value: unknown, options?: MetaSetOptions): Promise<MetaResult> {
    return this.#run("metaSet", [key, value, options]) as Promise<MetaResult>;
  }

  /**
   * `md`: deletes `key` (`deleted`), optionally only at a `cas`; with
   * `invalidate` it marks the item stale instead, so the next reader gets
   * `win` and the others the old value with `stale`.
   *
   * Runs on the key's server (see {@linkcode HashClient.serverFor}), with failover. With `ignoreExc` a failure
   * resolves as a miss does.
   */
  metaDelete(key: MetaKey, options?: MetaDeleteOptions): Promise<MetaResult> {
    return this.#run("metaDelete", [key, options]) as Promise<MetaResult>;
  }

  /**
   * `ma`: adds `delta` (default 1) to a decimal counter, or subtracts it
   * with `mode: "decr"` (stopping at 0); with `vivify` a missing counter is
   * created at `initial` (the delta is not applied then). `value` is the
   * new counter, a `number` or, above 2^53-1, a `bigint`.
   *
   * Runs on the key's server (see {@linkcode HashClient.serverFor}), with failover. With `ignoreExc` a failure
   * resolves as a miss does.
   */
  metaArithmetic(key: MetaKey, options?: MetaArithmeticOptions): Promise<MetaResult> {
    return this.#run("metaArithmetic", [key, options]) as Promise<MetaResult>;
  }

  /**
   * `mn`: resolves `true` once the server has answered everything sent before it.
   *
   * Runs on every live server, with failover (see the class doc). With `ignoreExc` a failure resolves `true`.
   */
  metaNoop(): Promise<true> {
    return this.#run("metaNoop", []) as Promise<true>;
  }

  /**
   * The value of `key`, or on a miss `loader(key)`'s value, stored for
   * `options.ttl` seconds, such that concurrent callers run the loader
   * once: in this client (concurrent calls for a key share one request and
   * one loader run), and across clients, processes and machines (a meta
   * lease: one caller wins and loads, the others wait for its value up to
   * `lease.wait` ms, then load themselves). With `recacheWithin`, a hit
   * about to expire is refreshed in the background by one caller
   * fleet-wide while every caller gets the current value; a stale item
   * (see {@linkcode HashClient.invalidate}) is served the same way while one
   * caller recomputes it. A loader that throws rejects its callers with
   * that error and hands the lease back at once. A loader result of
   * `undefined` is returned and not stored. When memcached fails, the
   * loader's value is returned all the same and the error goes to
   * `options.onError`. No connection is held while the loader runs. See
   * {@linkcode GetOrSetOptions}.
   *
   * Each memcached request in it runs on the key's server (see {@linkcode HashClient.serverFor}), which
   * arbitrates the lease; with `ignoreExc` a failing server reads as a miss.
   *
   * @throws {MemcacheIllegalInputError} for a bad key, a loader that is not a function or bad options (nothing is sent).
   */
  getOrSet(key: string, loader: Loader, options: GetOrSetOptions): Promise<Value> {
    return runComposed("getOrSet", this, [key, loader, options]) as Promise<Value>;
  }

  /**
   * Marks `key` stale instead of deleting it (`md I`, for `staleFor`
   * seconds if given): every {@linkcode HashClient.getOrSet} of it then gets
   * the stale value at once while one of them, fleet-wide, recomputes it.
   * Resolves `true` if the item existed, `false` if not.
   *
   * Runs on the key's server (see {@linkcode HashClient.serverFor}), with failover. With `ignoreExc` a failure
   * resolves `false`.
   *
   * @throws {MemcacheIllegalInputError} for a bad key or `staleFor` (nothing is sent).
   */
  invalidate(key: string, options?: InvalidateOptions): Promise<boolean> {
    return this.#run("invalidate", [key, options]) as Promise<boolean>;
  }
  // ---- end of generated code

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
    return (await this.#placement.all((c) => c.stats(...args))).answers;
  }

  /**
   * Every live server's version string, keyed by server; as
   * {@linkcode HashClient.stats}, dead servers (and failed ones with
   * `ignoreExc`) have no entry.
   *
   * @throws as {@linkcode HashClient.stats}.
   */
  async version(): Promise<Map<string, string>> {
    return (await this.#placement.all((c) => c.version())).answers;
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
    return (await this.#placement.all((c) => c.rawCommand(command, endTokens))).answers;
  }

  // ---- lifecycle

  /**
   * Sends `quit` to every server and waits for the connections to close.
   * The client stays usable; auto discovery stops (see {@linkcode HashClient.close}).
   */
  async quit(): Promise<void> {
    const ending = endBackground(this, this[requestTimeout]); // getOrSet's refreshes (src/clients/_background.ts)
    if (ending !== undefined) await ending;
    // Every client is told in this tick: calls made after quit() go out on new connections.
    const stopping = this.#discovery?.stop();
    const clients = this.#placement.clients();
    await Promise.all([stopping, ...clients.map((client) => client.quit())]);
    await this.#placement.settled();
  }

  /**
   * Closes every connection, as {@linkcode Client.close}. The client stays
   * usable; with {@linkcode HashClient.discover}, the node list is no
   * longer read (the servers stay as last read).
   */
  async close(): Promise<void> {
    const ending = endBackground(this, this[requestTimeout]); // getOrSet's refreshes (src/clients/_background.ts)
    if (ending !== undefined) await ending;
    // Every client is told in this tick: calls made after close() go out on new connections.
    const stopping = this.#discovery?.stop();
    const clients = this.#placement.clients(true);
    await Promise.all([stopping, ...clients.map((client) => client.close())]);
    await this.#placement.settled();
  }

  /** Same as {@linkcode HashClient.close}, for `await using`. */
  [Symbol.asyncDispose](): Promise<void> {
    return this.close();
  }

  /** @internal The request limit (ms; `undefined`: none) close() bounds background work with. */
  get [requestTimeout](): number | undefined {
    return timeoutOf(this.#placement.clients());
  }
}
