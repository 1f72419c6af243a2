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
 * Background refreshes (a won hit in the recache window, or stale) are
 * the target's background work (src/clients/_background.ts): its `close()` and
 * `quit()` let them finish, bounded by `timeout`, or drop them, before
 * closing a connection; none starts once `close()` was called.
 *
 * Seconds (`ttl`, `lease.ttl`, `recacheWithin`, `staleFor`) are relative;
 * above 30 days they are sent as the unix time they end at (memcached reads
 * a larger number as one: as relative seconds, a date in 1970).
 *
 * In-process coalescing: concurrent calls for one key on one client object
 * share one flight (one `mg`, one loader run, one `ms`). A flight is
 * bounded as a lease winner in another process is: a caller joins it, and
 * waits for it, at most its starter's `lease.wait` ms from its start (with
 * `lease: false`, the default 11 s); a joiner still waiting then goes on
 * by itself (one more `mg`: a value found is returned, else its own loader
 * runs), and later calls start a flight of their own. So a loader that
 * never settles holds up its own caller only. On Cloudflare
 * Workers flights are shared only within one request: a flight runs on the
 * sockets of the request that started it, which Workers ties to that
 * request (no other may use them; they end with it). Sharing one across
 * requests worked without a warning in workerd (miniflare) in our tests,
 * but within one request is the safe side. Across requests the
 * lease makes the loader run once all the same (tests/workerd checks it).
 *
 * @module
 */

import { type Background, backgroundEpoch, startBackground } from "./_background.ts";
import { MemcacheError, MemcacheIllegalInputError, MemcacheSerdeError } from "../errors.ts";
import type { MetaDeleteOptions, MetaGetOptions, MetaKey, MetaResult, MetaSetOptions } from "../protocol/_meta.ts";
import { requestMarker } from "../connection/transport.ts";

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
   * the lease, so a dead winner is replaced before anyone gives up. It
   * bounds in-process coalescing alike: concurrent calls on one client join
   * one flight for up to this many ms from its start, then go on by
   * themselves (a loader that never settles blocks no later call). `0`:
   * never wait for another caller's load, in-process either.
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
   * tries again), or `waitUntil` threw when given the refresh (which runs
   * all the same; the call's value is unchanged).
   */
  stage: "get" | "set" | "release" | "refresh";
}

/**
 * Options of `getOrSet`. Durations the server applies in seconds, those the
 * client waits in ms. Seconds are relative, whatever their size: above 30
 * days (where memcached reads a number as a unix time) they are sent as the
 * unix time they end at, as `MemcachedCache` does.
 */
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
   * items), which the call does not wait for; it resolves once the refresh
   * stored its value, failed, or was dropped by `close()`. On Cloudflare
   * Workers pass `ctx.waitUntil.bind(ctx)` so the refresh may finish after
   * the response. If it throws, that goes to `onError` (stage
   * `"refresh"`) and the call's value is unchanged.
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

/** A getOrSet's options, checked. Seconds are relative here; {@linkcode wire} converts them when sent. */
interface Plan {
  ttl: number;
  /** ms a caller waits for another's load: a lease winner's, or an in-process flight's. */
  wait: number;
  /** The lease's seconds (meta `N`), if any. */
  vivify: number | undefined;
  recacheWithin: number | undefined;
  onError: GetOrSetOptions["onError"];
  waitUntil: GetOrSetOptions["waitUntil"];
  /** The target's close() count when the call started (see _background.ts): a refresh of an older call is not run. */
  epoch: number;
}

/**
 * One load in flight for a key of a client; `same` (Workers) tells whether
 * the caller is in its request. Callers join it until `deadline` (its
 * starter's `wait` from its start); joiners still waiting then go on by
 * themselves (see {@linkcode join}).
 */
interface Flight {
  promise: Promise<unknown>;
  same: (() => boolean) | undefined;
  deadline: number;
  /** Resolves at `deadline`; made when the first caller joins, its timer cleared when the flight settles. */
  expired: Promise<void> | undefined;
  timer: ReturnType<typeof setTimeout> | undefined;
}

const DEFAULT_LEASE_TTL = 10;
const FIRST_POLL_MS = 5;
const MAX_POLL_MS = 100;
const MAX_SECONDS = 2147483647;
/** The longest delay setTimeout takes. */
const MAX_TIMER_MS = 2147483647;
/** memcached reads a TTL above this many seconds (30 days) as a unix time. */
const MAX_RELATIVE_SECONDS = 60 * 60 * 24 * 30;
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

/**
 * Relative seconds as memcached takes them: up to 30 days as they are,
 * beyond that as the unix time they end at (memcached would read a larger
 * relative number as a date in 1970 and expire the item at once).
 */
function wire(seconds: number): number {
  return seconds > MAX_RELATIVE_SECONDS ? Math.min(Math.floor(Date.now() / 1000) + seconds, MAX_SECONDS) : seconds;
}

/** The `mg` of a getOrSet, its TTLs converted now. */
function readOptions(p: Plan): MetaGetOptions {
  const mg: MetaGetOptions = { returnCas: true, returnTtl: true, returnSize: true };
  if (p.vivify !== undefined) mg.vivify = wire(p.vivify);
  if (p.recacheWithin !== undefined) mg.recacheWithin = wire(p.recacheWithin);
  return mg;
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
  const recacheWithin = o.recacheWithin === undefined ? undefined : seconds("recacheWithin", o.recacheWithin, 1);
  // Without a lease, an in-process flight is still joined for the default lease's wait.
  let wait = DEFAULT_LEASE_TTL * 1000 + 1000;
  let vivify: number | undefined;
  if (o.lease !== false) {
    const lease = o.lease ?? {};
    if (typeof lease !== "object" || lease === null) {
      throw illegal("getOrSet", "lease must be { ttl?, wait? } or false");
    }
    names("lease", lease, LEASE_OPTIONS);
    vivify = lease.ttl === undefined ? DEFAULT_LEASE_TTL : seconds("lease.ttl", lease.ttl, 1);
    wait = lease.wait === undefined ? vivify * 1000 + 1000 : lease.wait;
    if (typeof wait !== "number" || !(wait >= 0) || !Number.isFinite(wait)) {
      throw illegal("getOrSet", `lease.wait must be a finite number of ms, 0 or more, got ${String(lease.wait)}`);
    }
  }
  for (const name of ["onError", "waitUntil"] as const) {
    if (o[name] !== undefined && typeof o[name] !== "function") {
      throw illegal("getOrSet", `${name} must be a function`);
    }
  }
  const epoch = backgroundEpoch(target);
  return { ttl, wait, vivify, recacheWithin, onError: o.onError, waitUntil: o.waitUntil, epoch };
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
  const now = Date.now();
  if (list !== undefined) {
    for (const flight of list) {
      if (now < flight.deadline && (flight.same === undefined || flight.same())) {
        return join(flight, target, key, loader, p);
      }
    }
  } else byKey.set(key, list = []);
  const flight: Flight = {
    promise: undefined as unknown as Promise<unknown>,
    same: requestScope(),
    deadline: now + p.wait,
    expired: undefined,
    timer: undefined,
  };
  const done = () => {
    clearTimeout(flight.timer);
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

/**
 * A caller joining `flight`: its value, or, if the flight has not settled
 * by its deadline (its loader is slow, or never settles), what the caller
 * gets going on by itself as a lease loser whose wait is over: one more
 * read, a value found (another client may have stored it) returned, else
 * its own loader's (stored if it wins the lease).
 */
function join(flight: Flight, target: StampedeTarget, key: string, loader: Loader, p: Plan): Promise<unknown> {
  flight.expired ??= new Promise<void>((resolve) => {
    // Timers take at most 2^31-1 ms (longer ones fire at once): a later deadline waits that long.
    flight.timer = setTimeout(resolve, Math.min(Math.max(0, flight.deadline - Date.now()), MAX_TIMER_MS));
  });
  const alone = flight.expired.then(() => readOrLoad(target, key, loader, { ...p, wait: 0 }));
  return Promise.race([flight.promise, alone]);
}

/** One flight: read with the lease flags; win → load and store; lose → poll; hit → value (maybe refresh). */
async function readOrLoad(target: StampedeTarget, key: string, loader: Loader, p: Plan): Promise<unknown> {
  const deadline = Date.now() + p.wait;
  let pause = FIRST_POLL_MS;
  for (;;) {
    let r: MetaResult;
    try {
      r = await target.metaGet(key, readOptions(p));
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
    const expire = wire(p.ttl);
    const options: MetaSetOptions = cas === undefined ? { expire } : { expire, cas, invalidate: true };
    await target.metaSet(key, value, options);
  } catch (error) {
    report(p, error, key, "set");
    if (cas !== undefined) await release(target, key, p, { cas });
  }
  return value;
}

/**
 * A won hit (recache window or stale): the loader runs in the background,
 * its value stored against the cas. It is the target's background work
 * (see _background.ts): not started once the target's close() was called,
 * and silent once close() dropped it. A `waitUntil` that throws is
 * reported and changes nothing else: the caller still gets its value.
 */
function refresh(target: StampedeTarget, key: string, loader: Loader, p: Plan, r: MetaResult): void {
  const cas = r.cas;
  const work = startBackground(target, p.epoch, async (bg) => {
    let value: unknown;
    try {
      value = await loader(key);
    } catch (error) {
      if (!bg.live()) return;
      report(p, error, key, "refresh");
      // Marking it stale hands the win to the next reader; others keep the value.
      if (cas !== undefined) await release(target, key, p, { cas, invalidate: true }, bg);
      return;
    }
    try {
      if (value === undefined) {
        if (cas !== undefined) await bg.send(() => target.metaDelete(key, { cas }));
      } else {
        const expire = wire(p.ttl);
        await bg.send(() => target.metaSet(key, value, cas === undefined ? { expire } : { expire, cas }));
      }
    } catch (error) {
      if (bg.live()) report(p, error, key, "set");
    }
  });
  if (work === undefined || p.waitUntil === undefined) return;
  try {
    p.waitUntil(work);
  } catch (error) {
    report(p, error, key, "refresh");
  }
}

/** Hands a won lease back (md at its cas), so the next caller wins at once; failures are reported. */
async function release(
  target: StampedeTarget,
  key: string,
  p: Plan,
  options: MetaDeleteOptions,
  bg?: Background,
): Promise<void> {
  try {
    await (bg === undefined ? target.metaDelete(key, options) : bg.send(() => target.metaDelete(key, options)));
  } catch (error) {
    if (bg === undefined || bg.live()) report(p, error, key, "release");
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
    if (options?.staleFor !== undefined) md.expire = wire(seconds("staleFor", options.staleFor, 1));
  } catch (error) {
    return Promise.reject(error);
  }
  return target.metaDelete(key, md).then((r) => r.deleted === true);
}
