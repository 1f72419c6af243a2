/**
 * The command surface, stated once: one row per public command of
 * {@linkcode Client}, saying what the wrapper classes need to know about it.
 * `PooledClient`, `HashClient` and `RetryingClient` take their per-command
 * methods from this table; none of them writes a command by hand, except
 * HashClient where its result differs (`perServer`).
 *
 * ## Adding a command
 *
 * 1. Write the method on `Client` (src/clients/client.ts), with its doc comment:
 *    the only implementation of the wire work.
 * 2. Add its row below, in the order of `Client`'s methods.
 * 3. Run `deno run --allow-all scripts/gen_commands.ts`: it rewrites the
 *    generated files src/clients/pooled_client.ts, src/clients/hash_client.ts
 *    and src/clients/retrying_client.ts, each the public class over its
 *    hand-written core (`_pooled_core.ts`, ...): the core's public members
 *    and one method per command, with `Client`'s signature and doc comment,
 *    delegating to the core. The test `tests/unit/commands_deno_test.ts` fails
 *    while that output is stale, and `tests/unit/uniformity_test.ts` while a
 *    `Client` method has no row or a class lacks a command.
 *
 * For example `metaNoop()` (`mn`, resolves `true`) is, besides its `Client`
 * method, the row `metaNoop: { route: "all", miss: true, replay: true }`.
 * A command whose HashClient result is not `Client`'s (a `Map` per server)
 * gets `perServer: true` and a hand-written HashClient method.
 *
 * A command built from other commands (`getOrSet`: `mg`, the loader, `ms`)
 * gets `composed`, the one function that implements it over any client:
 * every class, `Client` too, runs that function over itself, so each
 * memcached request in it is one call of the class's own (a pooled
 * connection is held per request, a retry repeats one request, a
 * HashClient sends each to the key's server), never the whole.
 *
 * @module
 */

import type { Client } from "./client.ts";
import type { Route } from "./_route.ts";
import { entriesOf } from "./_mapping.ts";
import type { MetaResult, MetaStatus } from "../protocol/_meta.ts";
import { getOrSet, type GetOrSetOptions, type Loader, type StampedeTarget } from "./_get_or_set.ts";

export type { Route };

/** One command: how the wrappers route, fail and retry it. */
export interface CommandRow {
  /** How a wrapper over several servers routes it. */
  readonly route: Route;
  /**
   * What the call returns when it fails under `ignoreExc` (HashClient, as
   * pymemcache's: every command; Client and PooledClient: `read` ones): a
   * constant, or a function of the call's arguments (defaults applied; for
   * a split call, the part's arguments). For `"all"` it is the result when
   * no server answered.
   */
  readonly miss: boolean | null | undefined | ((args: readonly unknown[]) => unknown);
  /** The get family: `ignoreExc` on a Client or PooledClient turns its failures into `miss`. */
  readonly read?: true;
  /**
   * Whether a retry may run it again after a failure that may have reached
   * the server (a timeout, an unexpected close). `false` for commands that
   * running twice would apply twice (`incr`, `append`, ...):
   * `RetryingClient` retries them only after other failures.
   */
  readonly replay: boolean;
  /** The command named in errors, as `Client` names it (`setMany` is `"set"`). @default the method name */
  readonly wire?: string;
  /**
   * `"all"` only: HashClient resolves to a `Map` of every server's answer,
   * in a hand-written method; the generator leaves it out of HashClient.
   */
  readonly perServer?: true;
  /** `"all"` only: `true` only if every server answered and each answered `true` (`flushAll`). */
  readonly combine?: "and";
  /**
   * Built from other commands: the function every class runs over itself
   * with the call's arguments (see the module doc), instead of forwarding
   * the call to a `Client`. `route`, `miss` and `replay` then describe its
   * parts, which are commands of their own.
   */
  readonly composed?: (target: StampedeTarget, args: readonly unknown[]) => Promise<unknown>;
}

/** A second name of a command (pymemcache's `*_multi`): a method calling the other. */
export interface AliasRow {
  readonly alias: CommandName;
}

/** `Client`'s methods that are not commands: every class has them, none is in the table. */
export const LIFECYCLE = ["checkKey", "quit", "close"] as const;

/** `Client`'s methods named by a string. */
type ClientMethod = {
  // deno-lint-ignore no-explicit-any
  [K in keyof Client]: K extends string ? Client[K] extends (...args: any[]) => unknown ? K : never : never;
}[keyof Client];

/** The table's type: every `Client` method but {@linkcode LIFECYCLE} needs a row (else deno check fails). */

type Table = { readonly [K in Exclude<ClientMethod, (typeof LIFECYCLE)[number]>]: CommandRow | AliasRow };

const keysOfPairs = (args: readonly unknown[]): string[] =>
  [...entriesOf(args[0] as Parameters<Client["setMany"]>[0])].map(([key]) => key);
const emptyMap = (): Map<string, unknown> => new Map();
/** A meta command's result when it failed under `ignoreExc`: nothing found, no lease. */
const metaMiss = (status: MetaStatus): MetaResult => ({
  status,
  hit: false,
  win: false,
  stale: false,
  winnerExists: false,
});

/** Every command, in the order of `Client`'s methods. */
export const COMMANDS: Table = {
  set: { route: "key", miss: false, replay: true },
  add: { route: "key", miss: false, replay: true },
  replace: { route: "key", miss: false, replay: true },
  append: { route: "key", miss: false, replay: false },
  prepend: { route: "key", miss: false, replay: false },
  cas: { route: "key", miss: false, replay: true },
  setMany: { route: "pairs", miss: keysOfPairs, replay: true, wire: "set" },
  setMulti: { alias: "setMany" },
  get: { route: "key", read: true, miss: (args) => args[1], replay: true },
  getMany: { route: "keys", read: true, miss: emptyMap, replay: true, wire: "get" },
  getMulti: { alias: "getMany" },
  gets: { route: "key", read: true, miss: (args) => [args[1], args[2]], replay: true },
  getsMany: { route: "keys", read: true, miss: emptyMap, replay: true, wire: "gets" },
  gat: { route: "key", read: true, miss: (args) => args[2], replay: true },
  gats: { route: "key", read: true, miss: (args) => [args[2], args[3]], replay: true },
  delete: { route: "key", miss: false, replay: true },
  deleteMany: { route: "keys", miss: true, replay: true, wire: "delete" },
  deleteMulti: { alias: "deleteMany" },
  incr: { route: "key", miss: null, replay: false },
  decr: { route: "key", miss: null, replay: false },
  touch: { route: "key", miss: false, replay: true },
  stats: { route: "all", perServer: true, miss: undefined, replay: true },
  cacheMemlimit: { route: "all", miss: true, replay: true, wire: "cache_memlimit" },
  version: { route: "all", perServer: true, miss: undefined, replay: true },
  verbosity: { route: "all", miss: true, replay: true },
  flushAll: { route: "all", combine: "and", miss: false, replay: true, wire: "flush_all" },
  shutdown: { route: "all", miss: undefined, replay: true },
  rawCommand: { route: "all", perServer: true, miss: undefined, replay: false, wire: "raw" },
  // Meta commands; keys may be Uint8Array (HashClient places those by their base64).
  // Not replayed: ms may append and ma add again; mg with vivify/recacheWithin would
  // hand a lost win to nobody until its TTL, so neither is mg.
  metaGet: { route: "key", miss: () => metaMiss("EN"), replay: false, wire: "mg" },
  metaGetMany: { route: "keys", miss: emptyMap, replay: false, wire: "mg" },
  metaSet: { route: "key", miss: () => ({ ...metaMiss("NS"), stored: false }), replay: false, wire: "ms" },
  metaDelete: { route: "key", miss: () => ({ ...metaMiss("NF"), deleted: false }), replay: true, wire: "md" },
  metaArithmetic: { route: "key", miss: () => metaMiss("NF"), replay: false, wire: "ma" },
  metaNoop: { route: "all", miss: true, replay: true, wire: "mn" },
  // Stampede-protected reads (src/clients/_get_or_set.ts).
  getOrSet: {
    route: "key",
    miss: undefined,
    replay: false,
    composed: (target, args) => getOrSet(target, args[0] as string, args[1] as Loader, args[2] as GetOrSetOptions),
  },
  invalidate: { route: "key", miss: false, replay: true, wire: "md" },
};

/** The name of a command (or an alias of one): a key of {@linkcode COMMANDS}. */
export type CommandName = keyof Table;

/** The row of a command; an alias gives its command's. */
export function rowOf(name: CommandName): CommandRow {
  const row = COMMANDS[name];
  return "alias" in row ? COMMANDS[row.alias] as CommandRow : row;
}

/** Runs the composed command `name` over `target` itself (see {@linkcode CommandRow.composed}). */
export function runComposed(name: CommandName, target: StampedeTarget, args: readonly unknown[]): Promise<unknown> {
  const composed = rowOf(name).composed;
  if (composed === undefined) throw new TypeError(`${name} is not a composed command`);
  return composed(target, args);
}

/** What a failed call of `row` returns under `ignoreExc`, for these arguments. */
export function missOf(row: CommandRow, args: readonly unknown[]): unknown {
  return typeof row.miss === "function" ? row.miss(args) : row.miss;
}

/**
 * Something with the commands: {@linkcode Client}, `PooledClient`,
 * `HashClient`, `RetryingClient`, or any object with their methods. Each
 * command takes `Client`'s arguments and resolves to `Client`'s result or,
 * on a client that reports failures as values (`ignoreExc`), the command's
 * constant miss (a HashClient's `set` may resolve `false`). Commands
 * HashClient answers per server (`stats`, `version`, `rawCommand`) resolve
 * to one server's answer or a `Map` of every server's.
 */
export type Commands =
  & {
    [K in keyof CommandMisses]: (
      ...args: Parameters<Client[K]>
    ) => Promise<K extends PerServerCommand ? unknown : Awaited<ReturnType<Client[K]>> | CommandMisses[K]>;
  }
  & {
    /**
     * Checks a key and adds the prefix.
     *
     * @returns the key's wire bytes, prefix included.
     * @throws {MemcacheIllegalInputError} for a key memcached cannot take.
     */
    checkKey(key: string): Uint8Array;
    /** Sends `quit` and waits for the connections to close. */
    quit(): Promise<void>;
    /** Closes the connections; the client stays usable. */
    close(): Promise<void>;
  };

// ---- generated by scripts/gen_commands.ts from COMMANDS above: do not edit by hand
/** Commands `HashClient` answers with a `Map` per server: {@linkcode Commands} leaves their result open. */
export type PerServerCommand = "stats" | "version" | "rawCommand";

/**
 * Every command of {@linkcode Commands}, with the constant it resolves to
 * when it fails on a client with `ignoreExc` (`never`: computed from the
 * arguments, or none).
 */
export interface CommandMisses {
  /** {@linkcode Client.set}. */
  set: false;
  /** {@linkcode Client.add}. */
  add: false;
  /** {@linkcode Client.replace}. */
  replace: false;
  /** {@linkcode Client.append}. */
  append: false;
  /** {@linkcode Client.prepend}. */
  prepend: false;
  /** {@linkcode Client.cas}. */
  cas: false;
  /** {@linkcode Client.setMany}. */
  setMany: never;
  /** {@linkcode Client.setMulti}. */
  setMulti: never;
  /** {@linkcode Client.get}. */
  get: never;
  /** {@linkcode Client.getMany}. */
  getMany: never;
  /** {@linkcode Client.getMulti}. */
  getMulti: never;
  /** {@linkcode Client.gets}. */
  gets: never;
  /** {@linkcode Client.getsMany}. */
  getsMany: never;
  /** {@linkcode Client.gat}. */
  gat: never;
  /** {@linkcode Client.gats}. */
  gats: never;
  /** {@linkcode Client.delete}. */
  delete: false;
  /** {@linkcode Client.deleteMany}. */
  deleteMany: true;
  /** {@linkcode Client.deleteMulti}. */
  deleteMulti: true;
  /** {@linkcode Client.incr}. */
  incr: null;
  /** {@linkcode Client.decr}. */
  decr: null;
  /** {@linkcode Client.touch}. */
  touch: false;
  /** {@linkcode Client.stats}. */
  stats: never;
  /** {@linkcode Client.cacheMemlimit}. */
  cacheMemlimit: true;
  /** {@linkcode Client.version}. */
  version: never;
  /** {@linkcode Client.verbosity}. */
  verbosity: true;
  /** {@linkcode Client.flushAll}. */
  flushAll: false;
  /** {@linkcode Client.shutdown}. */
  shutdown: never;
  /** {@linkcode Client.rawCommand}. */
  rawCommand: never;
  /** {@linkcode Client.metaGet}. */
  metaGet: never;
  /** {@linkcode Client.metaGetMany}. */
  metaGetMany: never;
  /** {@linkcode Client.metaSet}. */
  metaSet: never;
  /** {@linkcode Client.metaDelete}. */
  metaDelete: never;
  /** {@linkcode Client.metaArithmetic}. */
  metaArithmetic: never;
  /** {@linkcode Client.metaNoop}. */
  metaNoop: true;
  /** {@linkcode Client.getOrSet}. */
  getOrSet: never;
  /** {@linkcode Client.invalidate}. */
  invalidate: false;
}
// ---- end of generated code
