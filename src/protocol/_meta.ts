/**
 * The meta protocol (`mg`, `ms`, `md`, `ma`, `mn`, memcached ≥ 1.6.10) as
 * pure code: typed options checked and turned into a command's flags before
 * any I/O, and reply lines parsed by flag letter, never by position (the
 * server may reorder return flags: `W`, `X` and `Z` come wherever it puts
 * them). No sockets, no runtime APIs.
 *
 * What memcached 1.6.18 does, measured (the tests spawn it):
 * - flags are applied in the order sent, so `R` goes before `T` (a touch
 *   in the same call must not hide a recache win), return flags before
 *   `T` (they describe the item as found) but after `N` (a vivified item's
 *   TTL is its own, not -1);
 * - `ms` in append mode ignores `N` (no autovivify) and `mg` ignores `C`:
 *   neither is offered; `E` (`newCas`) and `md x` (`removeValue`) are
 *   refused with `CLIENT_ERROR invalid flag` (`ms`, `mg`; `ms` after reading
 *   its data block) or `CLIENT_ERROR invalid or duplicate flag` (`md`,
 *   `ma`), and `ms s` (`returnSize`) is ignored: no size comes back;
 *
 * What memcached 1.6.38 does with those, measured:
 * - `E<cas>` gives the item that cas instead of the next one: on `ms`
 *   (stored, also quiet), `ma` (applied or vivified), `md I` and `md x`;
 *   on `mg` only to an item `N` vivifies (a hit keeps its cas); on a plain
 *   `md` nothing is left to have it; `E0` is ignored (the next cas is
 *   given), and above 2^64-1 is `CLIENT_ERROR bad token`;
 * - `md x` keeps the item with an empty value, resets its client flags to
 *   0 and its TTL to never expiring unless `T` is given; its cas stays
 *   (with `I`, bumped as `I` does; with `E`, that one);
 * - `ms s` returns `s<size>`: the value's size after the store (append and
 *   prepend: the whole value), and with `NS` the size of the data sent;
 * - a command line may hold at most 19 tokens ("options flags are too long");
 * - an opaque token may be at most 31 bytes;
 * - the 250-byte key limit applies to a binary key's base64 form;
 * - `k` with a base64 key returns the decoded bytes raw: binary keys are
 *   never sent with `k`, the client fills the key in itself;
 * - `q` hides `HD` (ms, md, ma; `ma … v q` hides the value too) and `EN`
 *   (mg); failures (`NS`, `EX`, `NF`) and errors are always sent.
 *
 * @module
 */

import { MemcacheClientError, MemcacheIllegalInputError, MemcacheUnknownCommandError } from "../errors.ts";
import { checkCas, checkFlags } from "./_validate.ts";
import type { Outbox } from "./_outbox.ts";
import type { Item } from "./_wire.ts";

/** A key of a meta command: a string (checked as every key is) or any bytes, sent base64. */
export type MetaKey = string | Uint8Array;

/** The two-letter status of a meta reply. */
export type MetaStatus = "HD" | "VA" | "EN" | "NF" | "NS" | "EX" | "MN";

/** Options every keyed meta command takes. */
export interface MetaCommonOptions {
  /**
   * Opaque token (`O`), copied back into the result's `opaque`: 1 to 31
   * printable ASCII characters, no spaces. The client checks the reply
   * carries it.
   */
  opaque?: string;
  /** Return the key (`k`) in the result's `key`. */
  returnKey?: boolean;
}

/** Options of `metaGet` (and, except `opaque`, `metaGetMany`). Times in seconds. */
export interface MetaGetOptions extends MetaCommonOptions {
  /** Return the value (`v`), deserialized with the client's serde (its flags are asked for too). @default {true} */
  value?: boolean;
  /** Return the cas token (`c`), as a decimal string. */
  returnCas?: boolean;
  /** Return the client flags (`f`); implied by `value`. */
  returnFlags?: boolean;
  /** Return the seconds of TTL left (`t`; -1: never expires), as found before any `touch`. */
  returnTtl?: boolean;
  /** Return the value's size in bytes (`s`). */
  returnSize?: boolean;
  /** Return the seconds since the item was last accessed (`l`), before this access. */
  returnLastAccess?: boolean;
  /** Return whether the item had been read before (`h`), before this access. */
  returnHitBefore?: boolean;
  /** Do not bump the item in the LRU, nor mark it accessed (`u`). */
  noLruBump?: boolean;
  /** Set the item's TTL to this many seconds on a hit (`T`; 0: never expires). */
  touch?: number;
  /**
   * On a miss, create an empty item living this many seconds (`N`): this
   * caller gets `win` (it should compute and `metaSet` the value), later
   * callers see the empty item with `winnerExists` until then.
   */
  vivify?: number;
  /**
   * On a hit with less than this many seconds of TTL left (and a TTL at
   * all), one caller gets `win` to refresh it early (`R`); later ones see
   * `winnerExists`. Checked before `touch` in the same call.
   */
  recacheWithin?: number;
  /**
   * With `vivify`: the cas the item it creates gets (`E`, 1 to 2^64-1),
   * instead of the server's next one, so that every client of a fleet can
   * tell a lease of this version; a hit keeps its cas. memcached ≥ 1.6.38
   * (measured there); an older one refuses it with
   * {@linkcode MemcacheClientError} naming the option.
   */
  newCas?: string | number | bigint;
}

/** Options of `metaGetMany`: those of `metaGet` but `opaque`, which the batch uses itself. */
export type MetaGetManyOptions = Omit<MetaGetOptions, "opaque">;

/** How `metaSet` stores (`M`). */
export type MetaSetMode = "set" | "add" | "replace" | "append" | "prepend";

/** Options of `metaSet`. Times in seconds. */
export interface MetaSetOptions extends MetaCommonOptions {
  /** `"add"`: only if absent; `"replace"`: only if present; `"append"`/`"prepend"`: to a present value. @default {"set"} */
  mode?: MetaSetMode;
  /** Seconds until the item expires (`T`; 0: never). @default {0} */
  expire?: number;
  /** Client flags to store (`F`), overriding the serde's. */
  flags?: number;
  /** Store only if the item's cas is this (`C`); else `EX` (changed) or `NF` (absent). */
  cas?: string | number | bigint;
  /**
   * With `cas`: a `cas` older than the item's still stores, but marks the
   * item stale (`I`): readers get `stale`, and one of them `win`.
   */
  invalidate?: boolean;
  /** Return the new cas token (`c`). */
  returnCas?: boolean;
  /**
   * The cas the stored item gets (`E`, 1 to 2^64-1) instead of the
   * server's next one: a version of your own, as a database row's, that
   * every client can compare. memcached ≥ 1.6.38 (measured there); an
   * older one refuses it with {@linkcode MemcacheClientError} naming the
   * option, and the connection stays.
   */
  newCas?: string | number | bigint;
  /**
   * Return the item's size in bytes (`s`) in `size`: the value's after the
   * store (append, prepend: the whole value); when not stored (`NS`), the
   * size of the value sent. memcached ≥ 1.6.38; an older one ignores the
   * flag and `size` is absent.
   */
  returnSize?: boolean;
  /**
   * Quiet (`q`): the server answers only a failure. The call still settles
   * when the server has processed it (a trailing `mn`), so errors reach
   * the caller; no `return…` or `opaque` with it.
   */
  noreply?: boolean;
}

/** Options of `metaDelete`. */
export interface MetaDeleteOptions extends MetaCommonOptions {
  /** Delete only if the item's cas is this (`C`); else `EX`. */
  cas?: string | number | bigint;
  /**
   * Instead of deleting, mark the item stale and bump its cas (`I`): the
   * next reader gets the old value with `stale` and `win`.
   */
  invalidate?: boolean;
  /** With `invalidate` or `removeValue`: the item's new TTL in seconds (`T`). */
  expire?: number;
  /**
   * Instead of deleting, keep the item with an empty value (`x`). What
   * memcached 1.6.38 does, measured: its client flags become 0 and, unless
   * `expire` is given, it never expires; its cas stays (with `invalidate`
   * bumped, with `newCas` that one). A reader then gets an empty value
   * with flags 0 (through the serde: empty bytes). memcached ≥ 1.6.38; an
   * older one refuses it with {@linkcode MemcacheClientError} naming the
   * option.
   */
  removeValue?: boolean;
  /**
   * With `invalidate` or `removeValue`: the cas the item gets (`E`, 1 to
   * 2^64-1). memcached ≥ 1.6.38; an older one refuses it with
   * {@linkcode MemcacheClientError} naming the option.
   */
  newCas?: string | number | bigint;
  /** Quiet (`q`), as {@linkcode MetaSetOptions.noreply}. */
  noreply?: boolean;
}

/** Options of `metaArithmetic`. Times in seconds; numbers unsigned 64-bit. */
export interface MetaArithmeticOptions extends MetaCommonOptions {
  /**
   * Add (`"incr"`) or subtract (`"decr"`) the delta (`M`). Decrementing stops at 0; incrementing wraps at 2^64.
   * @default {"incr"}
   */
  mode?: "incr" | "decr";
  /** Amount to add or subtract (`D`). @default {1} */
  delta?: number | bigint;
  /** With `vivify`: the value a missing counter is created with (`J`); the delta is not applied then. @default {0} */
  initial?: number | bigint;
  /** On a miss, create the counter living this many seconds (`N`). */
  vivify?: number;
  /** On success, set the TTL to this many seconds (`T`). */
  expire?: number;
  /** Apply only if the item's cas is this (`C`); else `EX`. */
  cas?: string | number | bigint;
  /** Return the new value (`v`) as `number`, or `bigint` above 2^53-1. @default {true} (false with noreply) */
  value?: boolean;
  /** Return the new cas token (`c`). */
  returnCas?: boolean;
  /** Return the seconds of TTL left (`t`; -1: never expires). */
  returnTtl?: boolean;
  /**
   * The cas the counter gets (`E`, 1 to 2^64-1), changed or vivified.
   * memcached ≥ 1.6.38; an older one refuses it with
   * {@linkcode MemcacheClientError} naming the option.
   */
  newCas?: string | number | bigint;
  /** Quiet (`q`), as {@linkcode MetaSetOptions.noreply}: no value comes back. */
  noreply?: boolean;
}

/**
 * What a meta command returned. Fields the server did not send are absent;
 * the lease states are always there (false unless the server set them).
 */
export interface MetaResult<V = unknown> {
  /** The server's status: `HD`/`VA` success, `EN` miss, `NF` not found, `NS` not stored, `EX` cas mismatch. */
  status: MetaStatus;
  /**
   * The server answered `HD` or `VA`: metaGet and metaArithmetic found (or
   * vivified) the item, metaSet stored, metaDelete deleted.
   */
  hit: boolean;
  /** metaGet: the value, as the serde returns it; metaArithmetic: the counter (`number`, `bigint` above 2^53-1). */
  value?: V;
  /** The cas token, a decimal string (exact beyond 2^53). */
  cas?: string;
  /** Seconds of TTL left; -1: never expires. */
  ttl?: number;
  /** The value's size in bytes (metaGet `returnSize`; metaSet `returnSize`, memcached ≥ 1.6.38). */
  size?: number;
  /** Seconds since the item was last accessed. */
  lastAccess?: number;
  /** Whether the item had been read before. */
  hitBefore?: boolean;
  /** The item's client flags. */
  flags?: number;
  /** The opaque token sent with the command. */
  opaque?: string;
  /** The key, as the caller passed it (same string or the same bytes). */
  key?: MetaKey;
  /** `W`: this caller won the right to (re)compute the item and should `metaSet` it. */
  win: boolean;
  /** `X`: the item is stale (invalidated); its value may still serve while it is recomputed. */
  stale: boolean;
  /** `Z`: another caller already won; use the current value, wait, or retry. */
  winnerExists: boolean;
  /** metaSet: the item was stored. */
  stored?: boolean;
  /** metaDelete: the item was deleted (or, with `invalidate`, marked stale). */
  deleted?: boolean;
}

/** One parsed meta reply line (and, for `VA`, its data block once read). */
export interface MetaLine {
  type: "meta";
  status: MetaStatus;
  /** `VA`: the data block's length; -1 for the other statuses. */
  dataLength: number;
  /** `VA`: the data block, filled in by the reply parser. */
  item?: Item;
  cas?: string;
  flags?: number;
  ttl?: number;
  size?: number;
  lastAccess?: number;
  hitBefore?: boolean;
  opaque?: string;
  /** The `k` token as sent back. */
  key?: string;
  win: boolean;
  stale: boolean;
  winnerExists: boolean;
}

/** Most tokens memcached 1.6.18 takes on a meta command line (20 gives "options flags are too long"). */
export const META_MAX_TOKENS = 19;
/** Longest opaque token memcached 1.6.18 takes, in bytes. */
export const MAX_OPAQUE = 31;
/** memcached's longest key, in bytes: for a binary key, of its base64 form. */
const MAX_KEY = 250;

// ---- option checks

type Options = Record<string, unknown>;

const GET_OPTIONS = new Set([
  "opaque",
  "returnKey",
  "value",
  "returnCas",
  "returnFlags",
  "returnTtl",
  "returnSize",
  "returnLastAccess",
  "returnHitBefore",
  "noLruBump",
  "touch",
  "vivify",
  "recacheWithin",
  "newCas",
]);
const SET_OPTIONS = new Set([
  "opaque",
  "returnKey",
  "mode",
  "expire",
  "flags",
  "cas",
  "invalidate",
  "returnCas",
  "newCas",
  "returnSize",
  "noreply",
]);
const DELETE_OPTIONS = new Set([
  "opaque",
  "returnKey",
  "cas",
  "invalidate",
  "expire",
  "removeValue",
  "newCas",
  "noreply",
]);
const ARITHMETIC_OPTIONS = new Set([
  "opaque",
  "returnKey",
  "mode",
  "delta",
  "initial",
  "vivify",
  "expire",
  "cas",
  "value",
  "returnCas",
  "returnTtl",
  "newCas",
  "noreply",
]);

function illegal(message: string): MemcacheIllegalInputError {
  return new MemcacheIllegalInputError(message);
}

function checkNames(method: string, options: Options, allowed: Set<string>): void {
  if (typeof options !== "object" || options === null) throw illegal(`${method} options must be an object`);
  for (const name in options) {
    if (!allowed.has(name) && options[name] !== undefined) throw illegal(`${method} takes no option ${name}`);
  }
}

function flag(name: string, value: unknown): boolean {
  if (value === undefined) return false;
  if (typeof value !== "boolean") throw illegal(`${name} must be a boolean, got ${String(value)}`);
  return value;
}

/** Seconds: an integer from 0 to 2^31-1 (meta commands take no negative or fractional times). */
function seconds(name: string, value: unknown): number {
  if (typeof value !== "number" || !Number.isInteger(value) || value < 0 || value > 2147483647) {
    throw illegal(`${name} must be a whole number of seconds from 0 to 2147483647, got ${String(value)}`);
  }
  return value;
}

/** An unsigned 64-bit integer, as decimal text. */
function u64(name: string, value: unknown): string {
  if (typeof value === "bigint" && value >= 0n && value <= 0xffffffffffffffffn) return value.toString();
  if (typeof value === "number" && Number.isSafeInteger(value) && value >= 0) return value.toString();
  throw illegal(`${name} must be a non-negative integer below 2^64, got ${String(value)}`);
}

/** `E<cas>`: 1 to 2^64-1 (memcached ignores `E0`: the item would get the next cas all the same). */
function newCas(value: unknown): string {
  const text = typeof value === "string" || typeof value === "number" || typeof value === "bigint" ? String(value) : "";
  if (!/^\d{1,20}$/.test(text) || BigInt(text) === 0n || BigInt(text) > 0xffffffffffffffffn) {
    throw illegal(
      `newCas must be an integer from 1 to 2^64-1 (a decimal string, number or bigint), got ${String(value)}`,
    );
  }
  return " E" + text;
}

/**
 * The options of `options` that memcached before 1.6.38 refuses (`E`, `md
 * x`), for the error of a server that does: empty when there are none.
 */
export function newerOptions(options: object | undefined): string {
  if (options === undefined || options === null) return "";
  const o = options as Options;
  const names: string[] = [];
  if (o.newCas !== undefined) names.push("newCas (E)");
  if (o.removeValue === true) names.push("removeValue (md x)");
  return names.join(" and ");
}

/** memcached's answers to a meta flag it does not know (mg, ms; md, ma). */
const INVALID_FLAG = /^CLIENT_ERROR invalid (?:or duplicate )?flag\b/;

/**
 * `request`, unless `options` hold a meta option older memcached refuses
 * (`newerOptions`): then its refusal rejects as a `MemcacheClientError`
 * naming the option (the connection stays: see INVALID_FLAG_SWALLOWS_DATA).
 */
export function newer<T>(request: Promise<T>, options: object | undefined): Promise<T> {
  const names = newerOptions(options);
  if (names === "") return request;
  return request.catch((error) => {
    if (
      !(error instanceof MemcacheClientError) || error instanceof MemcacheUnknownCommandError ||
      !INVALID_FLAG.test(error.message)
    ) throw error;
    throw new MemcacheClientError(
      `The server does not take ${names} (memcached 1.6.38 does): ${error.message.replace(/ \(server .*$/, "")}`,
      { server: error.server, command: error.command, cause: error },
    );
  });
}

/** Checks an opaque token: 1-31 printable ASCII characters. */
export function checkOpaque(value: unknown): string {
  if (typeof value !== "string" || value.length === 0 || value.length > MAX_OPAQUE || !/^[\x21-\x7e]+$/.test(value)) {
    throw illegal(
      `opaque must be 1 to ${MAX_OPAQUE} printable ASCII characters without spaces, got ${JSON.stringify(value)}`,
    );
  }
  return value;
}

/** The checked flag tokens, each with its leading space; throws when there are more than the server takes. */
function finish(tokens: string, fixedTokens: number): string {
  let count = fixedTokens;
  for (let i = 0; i < tokens.length; i++) if (tokens.charCodeAt(i) === 32) count++;
  if (count > META_MAX_TOKENS) {
    throw illegal(`a meta command may have at most ${META_MAX_TOKENS} tokens; this one would have ${count}`);
  }
  return tokens;
}

/** The default metaGet's flags: value and its client flags. */
const GET_DEFAULT = " v f";
const GET_DEFAULT_LINE = GET_DEFAULT + "\r\n";

/**
 * The flags of an `mg` (without `b`, `q` and the batch's `O`), checked.
 * Order matters to memcached: `N`, return flags, then `R` before `T`.
 */
export function metaGetFlags(options: MetaGetOptions | undefined, binaryKey: boolean, batch = false): string {
  if (options === undefined) return GET_DEFAULT;
  const o = options as Options;
  checkNames(batch ? "metaGetMany" : "metaGet", o, GET_OPTIONS);
  if (batch && o.opaque !== undefined) throw illegal("metaGetMany takes no opaque: it tags each key with its own");
  const value = o.value === undefined ? true : flag("value", o.value);
  // N first: a vivified item's TTL is then the one returned.
  let s = o.vivify === undefined ? "" : " N" + seconds("vivify", o.vivify);
  if (o.newCas !== undefined) {
    // Measured on 1.6.38: mg applies E only to the item N creates; without N it does nothing.
    if (o.vivify === undefined) throw illegal("metaGet newCas needs vivify: it is the cas of the item a miss creates");
    s += newCas(o.newCas);
  }
  s += value ? " v f" : flag("returnFlags", o.returnFlags) ? " f" : "";
  if (flag("returnCas", o.returnCas)) s += " c";
  if (flag("returnTtl", o.returnTtl)) s += " t";
  if (flag("returnSize", o.returnSize)) s += " s";
  if (flag("returnHitBefore", o.returnHitBefore)) s += " h";
  if (flag("returnLastAccess", o.returnLastAccess)) s += " l";
  if (flag("returnKey", o.returnKey) && !binaryKey) s += " k";
  if (o.opaque !== undefined) s += " O" + checkOpaque(o.opaque);
  if (o.recacheWithin !== undefined) s += " R" + seconds("recacheWithin", o.recacheWithin);
  if (o.touch !== undefined) s += " T" + seconds("touch", o.touch);
  if (flag("noLruBump", o.noLruBump)) s += " u";
  // mg, key, b; batches add O<index> and q.
  return finish(s, 2 + (binaryKey ? 1 : 0) + (batch ? 2 : 0));
}

const SET_MODES: Record<string, string> = { set: "", add: " ME", replace: " MR", append: " MA", prepend: " MP" };

/** What metaSet checked: its flags but `F` (known once the serde has run) and `b`. */
export interface MetaSetPlan {
  tail: string;
  flags: number | undefined;
  quiet: boolean;
}

/** The flags of an `ms`, checked; `F` comes from the serde unless `flags` is given. */
export function metaSetPlan(options: MetaSetOptions | undefined, binaryKey: boolean): MetaSetPlan {
  if (options === undefined) return { tail: "", flags: undefined, quiet: false };
  const o = options as Options;
  checkNames("metaSet", o, SET_OPTIONS);
  const mode = o.mode === undefined ? "set" : o.mode;
  if (typeof mode !== "string" || !Object.hasOwn(SET_MODES, mode)) {
    throw illegal(`metaSet mode must be one of set, add, replace, append, prepend, got ${String(mode)}`);
  }
  const quiet = flag("noreply", o.noreply);
  let s = "";
  if (o.expire !== undefined) s += " T" + seconds("expire", o.expire);
  if (o.cas !== undefined) s += " C" + checkCas(o.cas);
  if (flag("invalidate", o.invalidate)) {
    if (o.cas === undefined) throw illegal("metaSet invalidate needs cas: it marks stale what an older cas stores");
    s += " I";
  }
  if (o.newCas !== undefined) s += newCas(o.newCas);
  s += SET_MODES[mode];
  s += returns(o, quiet, binaryKey, "metaSet", flag("returnSize", o.returnSize) ? " s" : "");
  const flags = o.flags === undefined ? undefined : checkFlags(o.flags);
  // ms, key, datalen, F, b, q
  return { tail: finish(s, 4 + (binaryKey ? 1 : 0) + (quiet ? 1 : 0)), flags, quiet };
}

/** `c`, `k`, `O` of ms/md/ma; refused with noreply, which hides the line they come back on. */
function returns(o: Options, quiet: boolean, binaryKey: boolean, method: string, extra = ""): string {
  let s = extra;
  if (flag("returnCas", o.returnCas)) s += " c";
  if (flag("returnKey", o.returnKey) && !binaryKey) s += " k";
  if (o.opaque !== undefined) s += " O" + checkOpaque(o.opaque);
  if (quiet && (s !== "" || o.returnKey === true)) {
    throw illegal(
      `${method} with noreply returns nothing: drop value, returnCas, returnTtl, returnSize, returnKey and opaque`,
    );
  }
  return s;
}

/** The flags of an `md`, checked (without `b` and `q`). */
export function metaDeleteFlags(options: MetaDeleteOptions | undefined, binaryKey: boolean): string {
  if (options === undefined) return "";
  const o = options as Options;
  checkNames("metaDelete", o, DELETE_OPTIONS);
  const quiet = flag("noreply", o.noreply);
  let s = "";
  if (o.cas !== undefined) s += " C" + checkCas(o.cas);
  const invalidate = flag("invalidate", o.invalidate);
  if (invalidate) s += " I";
  const keep = flag("removeValue", o.removeValue);
  if (keep) s += " x";
  if (o.expire !== undefined) {
    if (!invalidate && !keep) {
      throw illegal("metaDelete expire is only for invalidate or removeValue: a deleted item has no TTL");
    }
    s += " T" + seconds("expire", o.expire);
  }
  if (o.newCas !== undefined) {
    if (!invalidate && !keep) {
      throw illegal("metaDelete newCas is only for invalidate or removeValue: a deleted item has no cas");
    }
    s += newCas(o.newCas);
  }
  s += returns(o, quiet, binaryKey, "metaDelete");
  return finish(s, 2 + (binaryKey ? 1 : 0) + (quiet ? 1 : 0));
}

/** Whether the options ask for quiet mode. */
export function isQuiet(options: { noreply?: boolean } | undefined): boolean {
  return options !== undefined && options.noreply === true;
}

/** The default metaArithmetic's flags: increment by 1, return the value. */
const ARITHMETIC_DEFAULT = " v";

/** The flags of an `ma`, checked (without `b` and `q`). */
export function metaArithmeticFlags(options: MetaArithmeticOptions | undefined, binaryKey: boolean): string {
  if (options === undefined) return ARITHMETIC_DEFAULT;
  const o = options as Options;
  checkNames("metaArithmetic", o, ARITHMETIC_OPTIONS);
  const quiet = flag("noreply", o.noreply);
  const mode = o.mode === undefined ? "incr" : o.mode;
  if (mode !== "incr" && mode !== "decr") {
    throw illegal(`metaArithmetic mode must be incr or decr, got ${String(mode)}`);
  }
  let s = "";
  if (o.vivify !== undefined) s += " N" + seconds("vivify", o.vivify);
  if (o.initial !== undefined) {
    if (o.vivify === undefined) throw illegal("metaArithmetic initial needs vivify: it is the value a miss creates");
    s += " J" + u64("initial", o.initial);
  }
  if (o.delta !== undefined) s += " D" + u64("delta", o.delta);
  if (mode === "decr") s += " MD";
  if (o.cas !== undefined) s += " C" + checkCas(o.cas);
  if (o.expire !== undefined) s += " T" + seconds("expire", o.expire);
  if (o.newCas !== undefined) s += newCas(o.newCas);
  const value = o.value === undefined ? !quiet : flag("value", o.value);
  let wanted = value ? " v" : "";
  if (flag("returnTtl", o.returnTtl)) wanted += " t";
  s += returns(o, quiet, binaryKey, "metaArithmetic", wanted);
  return finish(s, 2 + (binaryKey ? 1 : 0) + (quiet ? 1 : 0));
}

// ---- keys

const encoder = new TextEncoder();
const B64 = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

/** Standard base64 with padding, as memcached decodes it. */
export function encodeBase64(bytes: Uint8Array): string {
  let s = "";
  let i = 0;
  for (; i + 2 < bytes.length; i += 3) {
    const n = (bytes[i] << 16) | (bytes[i + 1] << 8) | bytes[i + 2];
    s += B64[n >> 18] + B64[(n >> 12) & 63] + B64[(n >> 6) & 63] + B64[n & 63];
  }
  if (i + 1 === bytes.length) {
    const n = bytes[i] << 16;
    s += B64[n >> 18] + B64[(n >> 12) & 63] + "==";
  } else if (i + 2 === bytes.length) {
    const n = (bytes[i] << 16) | (bytes[i + 1] << 8);
    s += B64[n >> 18] + B64[(n >> 12) & 63] + B64[(n >> 6) & 63] + "=";
  }
  return s;
}

/**
 * The wire form of a binary key: `prefix` (UTF-8) then the key's bytes, in
 * base64. At most 250 characters, so at most 186 bytes.
 */
export function binaryWireKey(key: Uint8Array, prefix: string): string {
  if (key.length === 0) throw illegal("Key is empty");
  let bytes = key;
  if (prefix !== "") {
    const p = encoder.encode(prefix);
    bytes = new Uint8Array(p.length + key.length);
    bytes.set(p);
    bytes.set(key, p.length);
  }
  const wire = encodeBase64(bytes);
  if (wire.length > MAX_KEY) {
    throw illegal(
      `Binary key is too long: ${bytes.length} bytes (prefix included) are ${wire.length} in base64; 250 at most`,
    );
  }
  return wire;
}

// ---- encoding

const CRLF = "\r\n";

/** `<command> <key>[ b]<flags>[ q]\r\n` for mg, md, ma. */
export function encodeMeta(
  out: Outbox,
  command: string,
  wireKey: string,
  binary: boolean,
  flags: string,
  quiet: boolean,
) {
  out.text(command);
  out.byte(32);
  out.text(wireKey);
  if (binary) out.text(" b");
  out.text(quiet ? flags + " q\r\nmn\r\n" : flags === GET_DEFAULT ? GET_DEFAULT_LINE : flags + CRLF);
}

/** `ms <key> <datalen>[ b][ F<flags>]<flags>[ q]\r\n<data>\r\n`, then `mn` when quiet. */
export function encodeMetaSet(
  out: Outbox,
  wireKey: string,
  binary: boolean,
  data: Uint8Array,
  clientFlags: number,
  tail: string,
  quiet: boolean,
): void {
  out.text("ms ");
  out.text(wireKey);
  out.byte(32);
  out.int(data.length);
  if (binary) out.text(" b");
  if (clientFlags !== 0) {
    out.text(" F");
    out.int(clientFlags);
  }
  out.text(tail);
  out.text(quiet ? " q\r\n" : CRLF);
  out.bytes(data);
  out.text(quiet ? "\r\nmn\r\n" : CRLF);
}

/**
 * A batch of quiet `mg`s, each tagged `O<index>`, closed by one `mn`.
 * `binary[i]`: key i is base64 (sent with `b` and `binaryFlags`).
 */
export function encodeMetaGetBatch(
  out: Outbox,
  wireKeys: readonly string[],
  binary: readonly boolean[] | undefined,
  flags: string,
  binaryFlags: string,
): void {
  const tail = flags + " q O";
  const binaryTail = " b" + binaryFlags + " q O";
  // One string, encoded in one call: several times cheaper than writing each piece.
  let text = "";
  for (let i = 0; i < wireKeys.length; i++) {
    text += "mg " + wireKeys[i] + (binary !== undefined && binary[i] ? binaryTail : tail) + i + CRLF;
  }
  out.text(text + "mn\r\n");
}
