/**
 * The hand-written part of `HashClient` (keys spread over several
 * memcached servers, with pymemcache's `HashClient` API, placement and
 * failover): `HashCore` holds its state and logic. src/clients/hash_client.ts,
 * written by scripts/gen_commands.ts, is the public class: every public
 * member here, with its doc comment, plus the commands, each delegating
 * to {@linkcode HashCore.run}.
 *
 * @module
 */

import { Client, type StoreOptions } from "./client.ts";
import { type CommandName, type CommandRow, missOf, rowOf } from "./commands.ts";
import { AutoDiscovery } from "./_discovery.ts";
import { MemcacheError, MemcacheIllegalInputError } from "../errors.ts";
import type { Node } from "../placement/_failover.ts";
import { checkKey as checkWireKey, keyBytes } from "../protocol/_keys.ts";
import { entriesOf, type Mapping } from "./_mapping.ts";
import { checkMs } from "./_options.ts";
import { endBackground, requestTimeout, timeoutOf } from "./_background.ts";
import { serverEvents } from "./_observe.ts";
import { HASHERS, Placement } from "../placement/_placement.ts";
import { checkCompatibleWith, type PythonClientName, pythonHasher, pythonSerde } from "./_python_compat.ts";
import { PooledClient } from "./pooled_client.ts";
import type { PooledClientOptions } from "./_pooled_core.ts";
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
export class HashCore {
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
  /** The public HashClient: getOrSet's refreshes belong to it. */
  readonly #owner: { close(): Promise<void> };
  /** Each public HashClient's core, for discover. */
  static #cores = new WeakMap<object, HashCore>();

  /**
   * Creates a client for the cluster; no connection opens until a call needs one.
   *
   * @param servers the cluster; see {@linkcode ServerSpec}. Duplicates count once.
   * @throws {TypeError} for an invalid server spec or option.
   * @throws {MemcacheIllegalInputError} for an invalid key prefix.
   */
  constructor(owner: { close(): Promise<void> }, servers: Iterable<ServerSpec>, options: HashClientOptions = {}) {
    this.#owner = owner;
    HashCore.#cores.set(owner, this);
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
   * the servers stay as they were. A reply over 1 MiB (the read stops
   * there), or listing more than 1,000 nodes, is refused the same way
   * (ElastiCache allows 60 nodes per cluster by default, 300 on request);
   * reading a reply costs time in proportion to its length.
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
  static async discover<T extends object>(
    cls: new (servers: ServerSpec[], options: HashClientOptions) => T,
    endpoint: ServerSpec,
    options: DiscoveryOptions = {},
  ): Promise<T> {
    const { discoveryInterval, onDiscoveryError, ...rest } = options;
    const interval = checkMs("discoveryInterval", discoveryInterval ?? 60_000);
    if (onDiscoveryError !== undefined && typeof onDiscoveryError !== "function") {
      throw new TypeError("onDiscoveryError must be a function");
    }
    const client = new cls([], rest); // checks the options
    const core = HashCore.#cores.get(client)!;
    core.#discovery = await AutoDiscovery.start(
      endpoint,
      rest,
      interval,
      onDiscoveryError,
      (servers) => core.#placement.setServers(servers),
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
  run(name: CommandName, args: unknown[]): Promise<unknown> {
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

  // ---- here the public class has the commands (written by scripts/gen_commands.ts)

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
    const ending = endBackground(this.#owner, this[requestTimeout]); // getOrSet's refreshes (src/clients/_background.ts)
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
    const ending = endBackground(this.#owner, this[requestTimeout]); // getOrSet's refreshes (src/clients/_background.ts)
    if (ending !== undefined) await ending;
    // Every client is told in this tick: calls made after close() go out on new connections.
    const stopping = this.#discovery?.stop();
    const clients = this.#placement.clients(true);
    await Promise.all([stopping, ...clients.map((client) => client.close())]);
    await this.#placement.settled();
  }

  /** Same as {@linkcode HashClient.close}, for `await using`. */
  [Symbol.asyncDispose](): Promise<void> {
    return this.#owner.close(); // the public object's: a subclass's or a patched close() runs
  }

  /** @internal The request limit (ms; `undefined`: none) close() bounds background work with. */
  get [requestTimeout](): number | undefined {
    return timeoutOf(this.#placement.clients());
  }
}
