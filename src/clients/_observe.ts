/**
 * Observability: the `observer` option's events, and the same events on
 * `diagnostics_channel` where the runtime has it (Node, Bun, Deno).
 *
 * Written once, for every class: {@linkcode observeCommands} gives a
 * client instance its own wrapper of each command of the table in
 * commands.ts (none is installed when nothing observes, so an unobserved
 * client runs its methods as written); the connection counts each
 * request's bytes to the call that issued it (`ConnectionObserver.tally`)
 * and reports opens, closes and failures. HashClient's failover reports
 * servers leaving and rejoining the ring through {@linkcode serverEvents}.
 *
 * @module
 */

import type { ConnectionObserver, Tally } from "../connection/_connection_options.ts";
import type { Route } from "./_route.ts";
import { aliasOwner } from "./_background.ts";

/** What a command's observer sees when it starts. */
export interface CommandStartEvent {
  /** The public method called, e.g. `"getMany"` (an alias reports its command: `getMulti` is `"getMany"`). */
  readonly command: string;
  /** The server, `"host:port"` (or a socket path). */
  readonly server: string;
  /** How many keys the call names (0 for server-wide commands such as `stats`). */
  readonly keys: number;
}

/** A command that settled: {@linkcode CommandStartEvent} plus what happened. */
export interface CommandEvent extends CommandStartEvent {
  /** Keys found (the get family and `metaGet`/`metaGetMany`; 0 for other commands). */
  readonly hits: number;
  /** Keys asked for and not found (a read that failed under `ignoreExc` counts as misses). */
  readonly misses: number;
  /** Bytes of the requests the call wrote. */
  readonly bytesWritten: number;
  /**
   * Bytes of the replies the call read. Replies arriving in one read of the
   * socket are counted to the first of them, so calls made concurrently on
   * one connection may see their bytes counted to one another; totals are
   * exact.
   */
  readonly bytesRead: number;
  /** ms from the call until it settled. */
  readonly durationMs: number;
  /** What the call threw, if it failed. */
  readonly error?: unknown;
}

/** A connection opened, closed or failed. */
export interface ConnectionEvent {
  /**
   * `"open"`: connected. `"error"`: the connection could not open, or
   * failed (timeout, lost, a reply out of step) and is closed. `"close"`:
   * a connection that was open is closed (after its `"error"`, if it failed).
   */
  readonly type: "open" | "close" | "error";
  /** The server, `"host:port"` (or a socket path). */
  readonly server: string;
  /** Why, for `"error"` (and for `"close"` after a failure). */
  readonly error?: Error;
}

/** A HashClient server left the ring (dead after its retries) or rejoined it (after `deadTimeout`). */
export interface ServerEvent {
  /** `"leave"`: dead after its retries, out of the ring; `"rejoin"`: back in it after `deadTimeout`. */
  readonly type: "leave" | "rejoin";
  /** The server's name on the ring, `"host:port"` (or a socket path). */
  readonly server: string;
  /** `"leave"`: the failure that made the server dead. */
  readonly error?: unknown;
}

/**
 * Callbacks for what a client does; every one is optional. They run
 * synchronously in the client's code: keep them cheap. An observer that
 * throws (or whose callback getter throws) never breaks a call: its first
 * error is reported with `console.error`, later ones are ignored.
 *
 * Calls a callback makes before it returns (an `onCommandStart` that reads
 * a flag from the cache) are not reported to its observer: neither
 * `onCommandStart` nor `onCommand` runs for them, so a callback never
 * starts itself again. A call it starts later (after an `await`) is an
 * ordinary call. Calls a command makes inside itself (`getOrSet`'s `mg`
 * and `ms`, `deleteMany`'s deletes) are not reported beside it.
 *
 * `T` is what `onCommandStart` returns (a span, a start time...): it is
 * handed back to `onCommand` for the same call. `onCommandStart` runs in
 * the caller's synchronous context, so tracing libraries see the caller's
 * active span there.
 */
export interface Observer<T = unknown> {
  /** A command is starting (before any byte is sent). */
  onCommandStart?(event: CommandStartEvent): T;
  /** A command settled: once per call. `started` is what `onCommandStart` returned for it. */
  onCommand?(event: CommandEvent, started: T | undefined): void;
  /** A connection opened, closed or failed. */
  onConnection?(event: ConnectionEvent): void;
  /** A HashClient server left or rejoined the ring. */
  onServer?(event: ServerEvent): void;
}

// ---- diagnostics_channel

/** The part of `node:diagnostics_channel` used here. */
interface DiagnosticsChannel {
  channel(name: string): Channel;
  tracingChannel(name: string): TracingChannel;
}
interface Channel {
  readonly hasSubscribers: boolean;
  publish(message: unknown): void;
}
interface TracingChannel {
  readonly hasSubscribers?: boolean; // Bun has none: see #tracing
  readonly start: Channel;
  readonly end: Channel;
  readonly asyncStart: Channel;
  readonly asyncEnd: Channel;
  readonly error: Channel;
  tracePromise<T>(fn: () => Promise<T>, context: object): Promise<T>;
}

/**
 * The channel names: a tracing channel for commands (its `start`, `end`,
 * `asyncStart`, `asyncEnd` and `error` channels are
 * `tracing:memkit:memcache:command:start` and so on; the context object is
 * the {@linkcode CommandEvent}, filled in when the call settles, with
 * Node's `result` or `error` added), and plain channels for connection and
 * HashClient ring events.
 */
export const OBSERVER_CHANNELS = {
  command: "memkit:memcache:command",
  connection: "memkit:memcache:connection",
  server: "memkit:memcache:server",
} as const;

interface Channels {
  command: TracingChannel;
  connection: Channel;
  server: Channel;
}

let loadChannels: (() => DiagnosticsChannel | undefined) | undefined;
/** undefined: not looked for yet; null: the runtime has none. */
let channels: Channels | null | undefined;

/**
 * Registers how to get `node:diagnostics_channel` synchronously (mod.ts:
 * `process.getBuiltinModule`, where the runtime has it). Looked up at the
 * first client made after, never before.
 */
export function setChannelLoader(load: () => DiagnosticsChannel | undefined): void {
  loadChannels = load;
  channels = undefined;
}

function getChannels(): Channels | null {
  if (channels === undefined) {
    channels = null;
    try {
      const dc = loadChannels?.();
      if (dc) {
        channels = {
          command: dc.tracingChannel(OBSERVER_CHANNELS.command),
          connection: dc.channel(OBSERVER_CHANNELS.connection),
          server: dc.channel(OBSERVER_CHANNELS.server),
        };
      }
    } catch {
      // no diagnostics_channel: nothing is published
    }
  }
  return channels;
}

/** Whether anyone listens on a tracing channel (Bun's has no `hasSubscribers`). */
function tracing(tc: TracingChannel): boolean {
  const has = tc.hasSubscribers;
  if (has !== undefined) return has;
  return tc.start.hasSubscribers || tc.end.hasSubscribers || tc.asyncStart.hasSubscribers ||
    tc.asyncEnd.hasSubscribers || tc.error.hasSubscribers;
}

// ---- calling observers safely

function checkObserver(observer: unknown): void {
  if (observer !== undefined && (typeof observer !== "object" || observer === null)) {
    throw new TypeError("observer must be an object with optional onCommandStart, onCommand, onConnection, onServer");
  }
}

const complained = new WeakSet<object>();

/** An observer's failure: reported once per observer, never passed on. */
function complain(observer: object, error: unknown): void {
  if (!complained.has(observer)) {
    complained.add(observer);
    console.error("@memkit/memcache: an observer threw (reported once; the call went on):", error);
  }
}

type CallbackName = keyof Observer;

/**
 * An observer's callback, read now (it may be a getter): what reading it
 * throws is reported as a throwing callback is, and it counts as absent.
 */
function callbackOf<K extends CallbackName>(observer: Observer, name: K): NonNullable<Observer[K]> | undefined {
  try {
    const callback = observer[name];
    if (callback === undefined || callback === null) return undefined;
    if (typeof callback !== "function") throw new TypeError(`observer.${name} is not a function`);
    return callback as NonNullable<Observer[K]>;
  } catch (error) {
    complain(observer, error);
    return undefined;
  }
}

/**
 * Observers running one of their callbacks now. A call made meanwhile (an
 * `onCommandStart` that reads the cache) is not reported to that observer
 * (nor published): otherwise such a callback would start itself again,
 * without end.
 */
const inCallback = new Set<object>();

/** Runs an observer's callback; what it throws is reported once per observer, never passed on. */
function safely<A, B, R>(observer: Observer, callback: (a: A, b: B) => R, a: A, b: B): R | undefined {
  const outer = inCallback.has(observer);
  if (!outer) inCallback.add(observer);
  try {
    return callback.call(observer, a, b);
  } catch (error) {
    complain(observer, error);
    return undefined;
  } finally {
    if (!outer) inCallback.delete(observer);
  }
}

// ---- commands

/** The event of the observed call running synchronously now: requests issued meanwhile count to it. */
let active: Tally | undefined;

/** Stands for a caller's default, to tell a miss from a hit (a value may equal the default). */
const MISS = Symbol("miss");
/** get, gat: index of `defaultValue`; gets, gats: of `casDefault`. */
const MISS_AT: Partial<Record<ObservedName, number>> = { get: 1, gat: 2, gets: 2, gats: 3 };

/** How many keys a call's first argument names; an iterable is read into an array, stored back in `args`. */
function countKeys(args: unknown[], pairs: boolean): number {
  const first = args[0];
  if (Array.isArray(first)) return first.length;
  if (first instanceof Map) return first.size;
  if (first === null || typeof first !== "object") return 0;
  if (typeof (first as Iterable<unknown>)[Symbol.iterator] === "function") {
    const list = [...(first as Iterable<unknown>)];
    args[0] = list;
    return list.length;
  }
  return pairs ? Object.keys(first).length : 0;
}

/** Hits and misses of a settled read, from its result (`result` already had MISS swapped back). */
function count(event: { hits: number; misses: number; keys: number }, name: string, result: unknown, hit: boolean) {
  if (name in MISS_AT || name === "metaGet") {
    const found = name === "metaGet" ? (result as { hit?: boolean })?.hit === true : hit;
    event.hits = found ? 1 : 0;
    event.misses = found ? 0 : 1;
  } else if (result instanceof Map) {
    event.hits = result.size;
    event.misses = Math.max(0, event.keys - result.size);
  }
}

/** A command's event as the wrapper fills it in. */
type Event = { -readonly [K in keyof CommandEvent]: CommandEvent[K] };

/**
 * Calls `method`: synchronously, with `event` (if any) as the call the
 * connection counts requests to, and `state.depth` raised so that commands
 * the method calls on its own client meanwhile (deleteMany's deletes) are
 * not reported again.
 */
function invoke(
  state: { depth: number },
  target: object,
  method: (...args: unknown[]) => Promise<unknown>,
  args: unknown[],
  event: Event | undefined,
): Promise<unknown> {
  const outer = active;
  if (event !== undefined) active = event;
  state.depth++;
  try {
    return method.apply(target, args);
  } catch (error) {
    return Promise.reject(error);
  } finally {
    state.depth--;
    active = outer;
  }
}

/** A call settled: its duration, and the observer told. */
function settle(observer: Observer | undefined, event: Event, started: unknown, t0: number): void {
  event.durationMs = performance.now() - t0;
  if (observer === undefined) return;
  const done = callbackOf(observer, "onCommand");
  if (done !== undefined) safely(observer, done, event, started);
}

/** Names whose result says hits and misses. */
const READS = new Set(["get", "gat", "gets", "gats", "getMany", "getsMany", "metaGet", "metaGetMany"]);

/**
 * Gives `target` its own observed version of every command in the table
 * (aliases call their command, so they are left alone). `wire`: `target`
 * is a Client: the bytes of requests issued during a call count to it, and
 * its calls are published on diagnostics_channel; otherwise (RetryingClient)
 * only `observer` hears of them. Installs nothing when nothing can observe;
 * with no observer but a diagnostics_channel, each call checks once whether
 * anyone subscribes.
 *
 * @returns whether anything was installed.
 */
export function observeCommands(
  target: object,
  server: string,
  observer: Observer | undefined,
  wire: boolean,
): boolean {
  checkObserver(observer);
  const dc = wire ? getChannels() : null;
  if (observer === undefined && dc === null) return false;
  const measure = wire;
  const tc = dc?.command;
  const state = { depth: 0 };
  const methods = target as Record<string, (...args: unknown[]) => Promise<unknown>>;
  const originals = new Map<string, (...args: unknown[]) => Promise<unknown>>();
  for (const name of Object.keys(ROUTES)) originals.set(name, methods[name]);
  let view: object | undefined;
  for (const name of Object.keys(ROUTES) as ObservedName[]) {
    const route = ROUTES[name]!;
    const method = methods[name];
    const missAt = MISS_AT[name];
    const read = READS.has(name);
    const composed = COMPOSED.has(name);
    Object.defineProperty(target, name, {
      configurable: true,
      writable: true,
      value: function observed(this: object): Promise<unknown> {
        // A composed command runs over the target's unobserved commands, even after it awaited.
        const self = composed ? (view ??= unobserved(target, originals)) : this;
        const traced = tc !== undefined && tracing(tc);
        if (
          state.depth > 0 || (observer === undefined && !traced) || (observer !== undefined && inCallback.has(observer))
        ) {
          return method.apply(self, arguments as never);
        }
        // The arguments are copied only when a key count or a default must be read from them or swapped.
        const args: unknown[] = missAt !== undefined || route === "keys" || route === "pairs"
          ? Array.prototype.slice.call(arguments)
          : arguments as never;
        const event: Event = {
          command: name,
          server,
          keys: route === "key" ? 1 : route === "all" ? 0 : countKeys(args, route === "pairs"),
          hits: 0,
          misses: 0,
          bytesWritten: 0,
          bytesRead: 0,
          durationMs: 0,
          error: undefined,
        };
        let callerMiss: unknown;
        if (missAt !== undefined) {
          callerMiss = args[missAt] === undefined ? null : args[missAt];
          while (args.length < missAt) args.push(undefined);
          args[missAt] = MISS;
        }
        const start = observer === undefined ? undefined : callbackOf(observer, "onCommandStart");
        const started = start === undefined ? undefined : safely(observer!, start, event, undefined);
        const t0 = performance.now();
        const settled = (result: unknown) => {
          let hit = true;
          if (missAt !== undefined) {
            // get/gat: MISS itself; gets/gats: [value, MISS].
            if (result === MISS) {
              hit = false;
              result = callerMiss;
            } else if (Array.isArray(result) && result[1] === MISS) {
              hit = false;
              result = [result[0], callerMiss];
            }
          }
          if (read) count(event, name, result, hit);
          settle(observer, event, started, t0);
          return result;
        };
        const failed = (error: unknown) => {
          event.error = error ?? new Error(String(error));
          settle(observer, event, started, t0);
          throw error;
        };
        if (!traced) return invoke(state, self, method, args, measure ? event : undefined).then(settled, failed);
        return tc!.tracePromise(
          () => invoke(state, self, method, args, measure ? event : undefined).then(settled, failed),
          event,
        );
      },
    });
  }
  return true;
}

/**
 * `target` as a composed command (getOrSet) sees it: its commands are the
 * unobserved ones, so the `mg` and `ms` it sends, also after awaiting the
 * loader or in a background refresh, are not reported beside it. One per
 * target (the stampede's in-process flights are per target object); every
 * other property is the target's own, methods bound to it.
 */
function unobserved(target: object, originals: Map<string, (...args: unknown[]) => Promise<unknown>>): object {
  const bound = new Map<PropertyKey, unknown>();
  const view = new Proxy(target, {
    get(t, name) {
      let value = bound.get(name);
      if (value !== undefined) return value;
      const own = typeof name === "string" ? originals.get(name) : undefined;
      value = own ?? Reflect.get(t, name, t);
      if (typeof value !== "function") return value;
      value = (value as (...args: unknown[]) => unknown).bind(t);
      bound.set(name, value);
      return value;
    },
  });
  aliasOwner(view, target); // getOrSet's refreshes over the view end with the client's close()
  return view;
}

/**
 * What a Client's connections report to: bytes to the observed call
 * issuing a request, and connection events to `observer` and the
 * connection channel. Undefined when nothing can observe.
 */
export function connectionObserver(observer: Observer | undefined): ConnectionObserver | undefined {
  checkObserver(observer);
  const dc = getChannels();
  if (observer === undefined && dc === null) return undefined;
  const channel = dc?.connection;
  const on = observer === undefined ? undefined : callbackOf(observer, "onConnection");
  return {
    tally: () => active,
    event(type, server, error) {
      const traced = channel !== undefined && channel.hasSubscribers;
      if (on === undefined && !traced) return;
      const event: ConnectionEvent = error === undefined ? { type, server } : { type, server, error };
      if (on !== undefined) safely(observer!, on, event, undefined);
      if (traced) channel!.publish(event);
    },
  };
}

/** HashClient: reports a server leaving or rejoining the ring. Undefined when nothing can observe. */
export function serverEvents(
  observer: Observer | undefined,
): ((type: ServerEvent["type"], server: string, error?: unknown) => void) | undefined {
  const dc = getChannels();
  if (observer === undefined && dc === null) return undefined;
  const channel = dc?.server;
  const on = observer === undefined ? undefined : callbackOf(observer, "onServer");
  return (type, server, error) => {
    const event: ServerEvent = error === undefined ? { type, server } : { type, server, error };
    if (on !== undefined) safely(observer!, on, event, undefined);
    if (channel !== undefined && channel.hasSubscribers) channel.publish(event);
  };
}

// ---- generated by scripts/gen_commands.ts from src/clients/commands.ts: do not edit by hand
/** Every command but the aliases, with how its first argument names keys (see `Route`). */
const ROUTES = {
  set: "key",
  add: "key",
  replace: "key",
  append: "key",
  prepend: "key",
  cas: "key",
  setMany: "pairs",
  get: "key",
  getMany: "keys",
  gets: "key",
  getsMany: "keys",
  gat: "key",
  gats: "key",
  delete: "key",
  deleteMany: "keys",
  incr: "key",
  decr: "key",
  touch: "key",
  stats: "all",
  cacheMemlimit: "all",
  version: "all",
  verbosity: "all",
  flushAll: "all",
  shutdown: "all",
  rawCommand: "all",
  metaGet: "key",
  metaGetMany: "keys",
  metaSet: "key",
  metaDelete: "key",
  metaArithmetic: "key",
  metaNoop: "all",
  getOrSet: "key",
  invalidate: "key",
} as const satisfies { readonly [name: string]: Route };

/** A command the observer wraps. */
type ObservedName = keyof typeof ROUTES;

/** The commands built from others (`composed`): they run over the target's unobserved commands. */
const COMPOSED: ReadonlySet<string> = new Set(["getOrSet"]);
// ---- end of generated code
