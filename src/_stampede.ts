/**
 * Stampede-protected reads, written once over the meta commands of any
 * client class: `getOrSet` (read, or load and store, so that concurrent
 * callers run the loader once) and `invalidate` (mark stale instead of
 * deleting). Each class's `getOrSet` runs {@linkcode getOrSet} over the
 * class itself (see `composed` in commands.ts), so every memcached request
 * is a separate call: a PooledClient holds a connection only per request,
 * never while the loader runs; a RetryingClient retries single requests,
 * never the loader; a HashClient sends every request to the key's server,
 * which arbitrates.
 *
 * What memcached 1.6.18 answers, measured (an `mg … N<s>` on a miss
 * creates an empty item, flags 0, and answers `W` to that caller alone):
 *
 * | item                          | first `mg`   | later `mg`s  |
 * |-------------------------------|--------------|--------------|
 * | missing (with `N`)            | `VA 0 W`     | `VA 0 Z`     |
 * | TTL left < `R` seconds        | value, `W`   | value, `Z`   |
 * | after `md I` (stale)          | value, `X W` | value, `X Z` |
 *
 * A `W` or `Z` answer with an empty value and flags 0 is therefore the
 * empty item of a lease (a stored empty `Uint8Array` looks the same: its
 * readers then wait or load as on a miss; nothing worse). `md I` clears a
 * sent `W`, so marking an item stale again hands the win to the next
 * reader. `ms C<cas> I` with an older cas stores the value but stale.
 *
 * In-process coalescing: concurrent calls for one key on one client object
 * share one flight (one `mg`, one loader run, one `ms`). On Cloudflare
 * Workers flights are shared only within one request: a flight runs on the
 * sockets of the request that started it, which Workers ties to that
 * request (no other may use them; they end with it). Sharing one across
 * requests worked without a warning in workerd (miniflare) in our tests,
 * but within one request is the safe side. Across requests the
 * lease makes the loader run once all the same (tests/workerd checks it).
 *
 * @module
 */

import { MemcacheError, MemcacheIllegalInputError, MemcacheSerdeError } from "./errors.ts";
import type { MetaDeleteOptions, MetaGetOptions, MetaKey, MetaResult, MetaSetOptions } from "./_meta.ts";
import { requestMarker } from "./transport.ts";

/** What {@linkcode getOrSet} needs of a client: every client class has it. */
export interface StampedeTarget {
  checkKey(key: string): Uint8Array;
  metaGet(key: MetaKey, options?: MetaGetOptions): Promise<MetaResult>;
  metaSet(key: MetaKey, value: unknown, options?: MetaSetOptions): Promise<MetaResult>;
  metaDelete(key: MetaKey, options?: MetaDeleteOptions): Promise<MetaResult>;
}

/**
 * Computes the value of a key on a miss: its result (or what its promise
 * resolves to) is stored and returned. `undefined` means "no value": it is
 * returned to the callers and nothing is stored (a won lease is released).
 * `null` is a value like any other, stored through the serde.
 */
// deno-lint-ignore no-explicit-any
export type Loader = (key: string) => any;

/** The lease a miss takes (meta `N`), so that one caller fleet-wide loads. */
export interface LeaseOptions {
  /**
   * Seconds the lease lives: a winner that dies holds the key up at most
   * this long, then the next caller wins. A loader slower than this gets
   * its value returned but not stored (another winner's is).
   * @default {10}
   */
  ttl?: number;
  /**
   * ms a caller that lost the lease waits for the winner's value (polling
   * with `mg`, from 5 ms up to 100 ms apart); after that it runs the loader
   * itself and returns its value without storing it. The default outlives
   * the lease, so a dead winner is replaced before anyone gives up.
   * @default {lease.ttl * 1000 + 1000}
   */
  wait?: number;
}

/** Where a memcached failure hit a {@linkcode getOrSet} that went on without the cache. */
export interface StampedeErrorEvent {
  /** The key, as passed. */
  key: string;
  /**
   * `"get"`: reading failed, the loader ran and its value was returned
   * (unstored when memcached failed; stored in place of the item when the
   * serde could not read it); `"set"`: storing the loaded value failed; `"release"`:
   * handing a won lease back failed (it expires with `lease.ttl`);
   * `"refresh"`: a background refresh's loader threw (the callers already
   * had the current value; the item is marked stale so the next caller
   * tries again).
   */
  stage: "get" | "set" | "release" | "refresh";
}

/** Options of `getOrSet`. Durations the server applies in seconds, those the client waits in ms. */
export interface GetOrSetOptions {
  /** Seconds a loaded value lives (0: never expires). Required. */
  ttl: number;
  /**
   * Seconds: when a hit has less TTL left than this, one caller fleet-wide
   * (meta `R` win) runs the loader in the background and stores its value,
   * while every caller, that one included, gets the current value at once.
   */
  recacheWithin?: number;
  /**
   * The lease of a miss (meta `N`): one caller fleet-wide loads, the others
   * wait for its value. `false`: every missing caller (one per client, by
   * coalescing) loads and stores. @default {{ ttl: 10 }}
   */
  lease?: LeaseOptions | false;
  /**
   * Called with each memcached failure the call went on without (the cache
   * is an optimisation: the loader's value is still returned), and with a
   * background refresh's loader error. Without it, these are written with
   * `console.warn`.
   */
  onError?: (error: unknown, event: StampedeErrorEvent) => void;
  /**
   * Given the promise of each background refresh (`recacheWithin`, stale
   * items), which the call does not wait for. On Cloudflare Workers pass
   * `ctx.waitUntil.bind(ctx)` so the refresh may finish after the response.
   */
  waitUntil?: (promise: Promise<unknown>) => void;
}

/** Options of `invalidate`. */
export interface InvalidateOptions {
  /**
   * Seconds the stale item lives from now (meta `md I T`). Meanwhile every
   * `getOrSet` of the key gets the stale value at once, and one of them
   * recomputes it in the background. @default the item's remaining TTL
   */
  staleFor?: number;
}

/** A getOrSet's options, checked. */
interface Plan {
  ttl: number;
  wait: number;
  mg: MetaGetOptions;
  onError: GetOrSetOptions["onError"];
  waitUntil: GetOrSetOptions["waitUntil"];
}

/** One load in flight for a key of a client; `same` (Workers) tells whether the caller is in its request. */
interface Flight {
  promise: Promise<unknown>;
  same: (() => boolean) | undefined;
}

const DEFAULT_LEASE_TTL = 10;
const FIRST_POLL_MS = 5;
const MAX_POLL_MS = 100;
const MAX_SECONDS = 2147483647;
const OPTIONS = new Set(["ttl", "recacheWithin", "lease", "onError", "waitUntil"]);
const LEASE_OPTIONS = new Set(["ttl", "wait"]);

/** The flights of each client object, by key. */
const flights = new WeakMap<object, Map<string, Flight[]>>();

function illegal(command: string, message: string): MemcacheIllegalInputError {
  return new MemcacheIllegalInputError(message, { command });
}

function seconds(name: string, value: unknown, min: number): number {
  if (typeof value !== "number" || !Number.isInteger(value) || value < min || value > MAX_SECONDS) {
    throw illegal(
      name.startsWith("staleFor") ? "invalidate" : "getOrSet",
      `${name} must be a whole number of seconds from ${min} to ${MAX_SECONDS}, got ${String(value)}`,
    );
  }
  return value;
}

function names(what: string, options: object, allowed: Set<string>): void {
  for (const name of Object.keys(options)) {
    if (!allowed.has(name)) throw illegal("getOrSet", `${what} takes no option ${name}`);
  }
}

/** Checks getOrSet's arguments, before any I/O. */
function plan(target: StampedeTarget, key: unknown, loader: unknown, options: unknown): Plan {
  if (typeof key !== "string") throw illegal("getOrSet", `getOrSet keys are strings, got ${typeof key}`);
  target.checkKey(key);
  if (typeof loader !== "function") throw illegal("getOrSet", `loader must be a function, got ${typeof loader}`);
  if (typeof options !== "object" || options === null) {
    throw illegal("getOrSet", "getOrSet needs options with ttl (seconds)");
  }
  const o = options as GetOrSetOptions;
  names("getOrSet", o, OPTIONS);
  const ttl = seconds("ttl", o.ttl, 0);
  const mg: MetaGetOptions = { returnCas: true, returnTtl: true, returnSize: true };
  if (o.recacheWithin !== undefined) mg.recacheWithin = seconds("recacheWithin", o.recacheWithin, 1);
  let wait = 0;
  if (o.lease !== false) {
    const lease = o.lease ?? {};
    if (typeof lease !== "object" || lease === null) {
      throw illegal("getOrSet", "lease must be { ttl?, wait? } or false");
    }
    names("lease", lease, LEASE_OPTIONS);
    mg.vivify = lease.ttl === undefined ? DEFAULT_LEASE_TTL : seconds("lease.ttl", lease.ttl, 1);
    wait = lease.wait === undefined ? mg.vivify * 1000 + 1000 : lease.wait;
    if (typeof wait !== "number" || !(wait >= 0) || !Number.isFinite(wait)) {
      throw illegal("getOrSet", `lease.wait must be a finite number of ms, 0 or more, got ${String(lease.wait)}`);
    }
  }
  for (const name of ["onError", "waitUntil"] as const) {
    if (o[name] !== undefined && typeof o[name] !== "function") {
      throw illegal("getOrSet", `${name} must be a function`);
    }
  }
  return { ttl, wait, mg, onError: o.onError, waitUntil: o.waitUntil };
}

/**
 * On Cloudflare Workers, a check whether the caller runs in the request
 * that called this (an object of one request throws when another touches
 * it, as CloudflareTransport's contextCheck relies on); elsewhere none.
 */
function requestScope(): (() => boolean) | undefined {
  const agent = (globalThis as { navigator?: { userAgent?: unknown } }).navigator?.userAgent;
  return agent === "Cloudflare-Workers" ? requestMarker() : undefined;
}

/**
 * The value of `key`, read through `target`'s meta commands, or loaded by
 * `loader` and stored for `options.ttl` seconds, with the leases and
 * coalescing the module doc describes.
 */
export function getOrSet(
  target: StampedeTarget,
  key: string,
  loader: Loader,
  options: GetOrSetOptions,
): Promise<unknown> {
  let p: Plan;
  try {
    p = plan(target, key, loader, options);
  } catch (error) {
    return Promise.reject(error);
  }
  let byKey = flights.get(target);
  if (byKey === undefined) flights.set(target, byKey = new Map());
  let list = byKey.get(key);
  if (list !== undefined) {
    for (const flight of list) if (flight.same === undefined || flight.same()) return flight.promise;
  } else byKey.set(key, list = []);
  const flight: Flight = { promise: undefined as unknown as Promise<unknown>, same: requestScope() };
  const done = () => {
    const now = byKey.get(key);
    if (now === undefined) return;
    const at = now.indexOf(flight);
    if (at >= 0) now.splice(at, 1);
    if (now.length === 0) byKey.delete(key);
  };
  flight.promise = readOrLoad(target, key, loader, p).finally(done);
  list.push(flight);
  return flight.promise;
}

/** One flight: read with the lease flags; win → load and store; lose → poll; hit → value (maybe refresh). */
async function readOrLoad(target: StampedeTarget, key: string, loader: Loader, p: Plan): Promise<unknown> {
  const deadline = Date.now() + p.wait;
  let pause = FIRST_POLL_MS;
  for (;;) {
    let r: MetaResult;
    try {
      r = await target.metaGet(key, p.mg);
    } catch (error) {
      if (error instanceof MemcacheIllegalInputError) throw error;
      report(p, error, key, "get");
      // memcached failed: go on without it. The serde could not read the item: replace it.
      if (error instanceof MemcacheError && !(error instanceof MemcacheSerdeError)) return await loader(key);
      return await loadAndStore(target, key, loader, p, undefined);
    }
    if (!r.hit) return await loadAndStore(target, key, loader, p, undefined); // no lease asked (or ignoreExc)
    if (r.size === 0 && r.flags === 0 && (r.win || r.winnerExists)) {
      // A lease's empty item.
      if (r.win) return await loadAndStore(target, key, loader, p, r.cas);
      const left = deadline - Date.now();
      if (left <= 0) return await loader(key); // the winner is slow: load, leave storing to it
      await new Promise((resolve) => setTimeout(resolve, Math.min(pause, left)));
      pause = Math.min(pause * 2, MAX_POLL_MS);
      continue;
    }
    // A value: in the recache window or stale, one caller (W) refreshes it in the background.
    if (r.win) refresh(target, key, loader, p, r);
    return r.value;
  }
}

/** Runs the loader for a miss and stores its value; `cas` is the won lease's (released on failure). */
async function loadAndStore(
  target: StampedeTarget,
  key: string,
  loader: Loader,
  p: Plan,
  cas: string | undefined,
): Promise<unknown> {
  let value: unknown;
  try {
    value = await loader(key);
  } catch (error) {
    if (cas !== undefined) await release(target, key, p, { cas });
    throw error;
  }
  if (value === undefined) {
    if (cas !== undefined) await release(target, key, p, { cas });
    return value;
  }
  try {
    // Against the lease's cas: if the key was invalidated meanwhile (md I
    // bumped the cas) the value is stored stale, so the next reader
    // recomputes it; if it was deleted, or the lease expired and is gone,
    // it is not stored (`NF`).
    const options: MetaSetOptions = cas === undefined ? { expire: p.ttl } : { expire: p.ttl, cas, invalidate: true };
    await target.metaSet(key, value, options);
  } catch (error) {
    report(p, error, key, "set");
    if (cas !== undefined) await release(target, key, p, { cas });
  }
  return value;
}

/** A won hit (recache window or stale): the loader runs in the background, its value stored against the cas. */
function refresh(target: StampedeTarget, key: string, loader: Loader, p: Plan, r: MetaResult): void {
  const cas = r.cas;
  const work = (async () => {
    let value: unknown;
    try {
      value = await loader(key);
    } catch (error) {
      report(p, error, key, "refresh");
      // Marking it stale hands the win to the next reader; others keep the value.
      if (cas !== undefined) await release(target, key, p, { cas, invalidate: true });
      return;
    }
    try {
      if (value === undefined) {
        if (cas !== undefined) await target.metaDelete(key, { cas });
      } else {
        await target.metaSet(key, value, cas === undefined ? { expire: p.ttl } : { expire: p.ttl, cas });
      }
    } catch (error) {
      report(p, error, key, "set");
    }
  })();
  p.waitUntil?.(work);
}

/** Hands a won lease back (md at its cas), so the next caller wins at once; failures are reported. */
async function release(target: StampedeTarget, key: string, p: Plan, options: MetaDeleteOptions): Promise<void> {
  try {
    await target.metaDelete(key, options);
  } catch (error) {
    report(p, error, key, "release");
  }
}

function report(p: Plan, error: unknown, key: string, stage: StampedeErrorEvent["stage"]): void {
  if (p.onError === undefined) {
    console.warn(`getOrSet(${JSON.stringify(key)}) went on without memcached (${stage}):`, error);
    return;
  }
  try {
    p.onError(error, { key, stage });
  } catch {
    // The callback's own failure must not turn a served value into an error.
  }
}

/**
 * Marks `key` stale (`md I`, with `T<staleFor>`) instead of deleting it:
 * resolves `true` if the item existed, `false` if not.
 */
export function invalidate(target: StampedeTarget, key: string, options?: InvalidateOptions): Promise<boolean> {
  let md: MetaDeleteOptions;
  try {
    if (options !== undefined && (typeof options !== "object" || options === null)) {
      throw illegal("invalidate", "invalidate options must be an object");
    }
    for (const name of Object.keys(options ?? {})) {
      if (name !== "staleFor") throw illegal("invalidate", `invalidate takes no option ${name}`);
    }
    md = { invalidate: true };
    if (options?.staleFor !== undefined) md.expire = seconds("staleFor", options.staleFor, 1);
  } catch (error) {
    return Promise.reject(error);
  }
  return target.metaDelete(key, md).then((r) => r.deleted === true);
}
