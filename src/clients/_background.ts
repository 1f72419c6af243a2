/**
 * The background work of a client object — `getOrSet`'s refreshes
 * (`recacheWithin`, stale recompute), which no caller awaits — and how the
 * object's `close()` and `quit()` end it (API.md "Lifecycle"):
 *
 * - From the moment `close()` is called, no refresh starts that a call
 *   made before it (or during it) won; calls made after it resolved are
 *   the client's again (it stays usable).
 * - `close()` waits up to the client's `timeout` for the refreshes under
 *   way to finish. Then each is dropped: one still in its loader sends
 *   nothing when the loader settles; one with its `ms`/`md` in flight gets
 *   up to `timeout` more for that request's reply (the request's own
 *   limit), before the client closes the connection under it. A dropped
 *   refresh reports nothing (no `onError`, no `console.warn`).
 * - Only then does the client close its connections, so no refresh
 *   reopens one, and when `close()` resolves no timer of it is left.
 *
 * Each client class calls {@linkcode endBackground} at the start of its
 * `close()`/`quit()`; with no refresh under way it returns `undefined`,
 * so closing stays synchronous up to the first await, as before (calls made
 * right after `close()` go out on new connections).
 *
 * @module
 */

/** What a refresh is given: whether it may still act, and how it sends a request. */
export interface Background {
  /** `false` once close() dropped the work: it must send and report nothing more. */
  live(): boolean;
  /**
   * Sends one request of the work, tracked so close() can let its reply
   * come in. Rejects with {@linkcode Dropped} without sending once dropped.
   */
  send<T>(request: () => Promise<T>): Promise<T>;
}

/** The rejection of {@linkcode Background.send} after close() dropped the work. */
export class Dropped extends Error {
  constructor() {
    super("Dropped by close(): the client was closed");
    this.name = "Dropped";
  }
}

/**
 * The symbol under which a client class exposes the `timeout` (ms per
 * request) its close() waits for background work with; `undefined`: no
 * limit was set. Not exported from mod.ts.
 */
export const requestTimeout: unique symbol = Symbol("memkit.requestTimeout");

/** What close() waits at most, per phase, when the client set no request limit. */
export const NO_LIMIT_WAIT_MS = 5000;

interface Task {
  done: Promise<void>;
  dropped: boolean;
  /** The request in flight, if any (settles, never rejects). */
  sending: Promise<void> | undefined;
}

interface State {
  tasks: Set<Task>;
  /** Bumped by every close()/quit(): a call that started before may start no refresh. */
  epoch: number;
  /** close()/quit() calls under way: no refresh starts meanwhile. */
  closing: number;
}

const states = new WeakMap<object, State>();
/** Objects that stand for a client (the observer's unobserved view of it): their background is the client's. */
const aliases = new WeakMap<object, object>();

/** Makes `alias` share `owner`'s background: its refreshes end with `owner`'s close(). */
export function aliasOwner(alias: object, owner: object): void {
  aliases.set(alias, owner);
}

function stateOf(alias: object): State {
  const owner = aliases.get(alias) ?? alias;
  let state = states.get(owner);
  if (state === undefined) states.set(owner, state = { tasks: new Set(), epoch: 0, closing: 0 });
  return state;
}

/** Noted by a call when it starts; {@linkcode startBackground} refuses work of a call older than a close(). */
export function backgroundEpoch(owner: object): number {
  return stateOf(owner).epoch;
}

/**
 * Runs `work` in the background of `owner`, unless `owner`'s close() or
 * quit() was called since the call noted `epoch`, or is under way: then
 * `work` does not run and `undefined` is returned. `work` must not
 * reject (a rejection is swallowed). Resolves when it settled or was dropped.
 */
export function startBackground(
  owner: object,
  epoch: number,
  work: (background: Background) => Promise<void>,
): Promise<void> | undefined {
  const state = stateOf(owner);
  if (state.epoch !== epoch || state.closing > 0) return undefined;
  const task: Task = { done: undefined as unknown as Promise<void>, dropped: false, sending: undefined };
  const background: Background = {
    live: () => !task.dropped,
    send: <T>(request: () => Promise<T>) => {
      if (task.dropped) return Promise.reject(new Dropped());
      const reply = request();
      const sending = task.sending = reply.then(ignore, ignore).finally(() => {
        if (task.sending === sending) task.sending = undefined;
      });
      return reply;
    },
  };
  state.tasks.add(task);
  task.done = work(background).then(ignore, ignore).finally(() => state.tasks.delete(task));
  return task.done;
}

/**
 * Ends `owner`'s background work, as the module doc says; `timeout` is the
 * owner's request limit in ms (`undefined`: none, then
 * {@linkcode NO_LIMIT_WAIT_MS}). `undefined` when there is nothing to wait
 * for (no await needed); otherwise resolves once the work finished or was
 * dropped.
 */
export function endBackground(owner: object, timeout: number | undefined): Promise<void> | undefined {
  const state = states.get(owner);
  if (state === undefined) return undefined;
  state.epoch++;
  if (state.tasks.size === 0) return undefined;
  state.closing++;
  return end(state, [...state.tasks], timeout ?? NO_LIMIT_WAIT_MS).finally(() => state.closing--);
}

async function end(state: State, tasks: Task[], wait: number): Promise<void> {
  await within(Promise.all(tasks.map((task) => task.done)), wait);
  for (const task of tasks) {
    task.dropped = true;
    state.tasks.delete(task); // a loader that never settles does not hold up a later close()
  }
  const sending = tasks.flatMap((task) => task.sending ?? []);
  if (sending.length > 0) await within(Promise.all(sending), wait);
}

/** Resolves when `promise` settles or `ms` have passed, whichever is first; leaves no timer behind. */
async function within(promise: Promise<unknown>, ms: number): Promise<void> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const expired = new Promise<void>((resolve) => (timer = setTimeout(resolve, ms)));
  try {
    await Promise.race([promise.then(ignore, ignore), expired]);
  } finally {
    clearTimeout(timer);
  }
}

/**
 * The wait of `owner`'s close() for background work: the longest request
 * limit among `clients` (the client classes expose it under
 * {@linkcode requestTimeout}); `undefined` (no limit) when none has one.
 */
export function timeoutOf(clients: Iterable<unknown>): number | undefined {
  let longest: number | undefined;
  for (const client of clients) {
    const ms = (client as { [requestTimeout]?: number } | null)?.[requestTimeout];
    if (ms === undefined) return undefined;
    longest = Math.max(longest ?? 0, ms);
  }
  return longest;
}

function ignore(): void {}
