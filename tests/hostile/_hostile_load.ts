/**
 * Load and watchers of the reliability harnesses: {@linkcode MixedLoad}
 * (acknowledged sets, checked reads, counters, noreply traffic on a set of
 * clients), {@linkcode watchSockets} (a client's open sockets, as the
 * kernel sees them) and {@linkcode watchLoop} (how long the event loop was
 * blocked).
 */
import { execFile } from "node:child_process";
import { cpuMs, delay, type Rng, taggedValue } from "./_hostile.ts";
import type { Invariants } from "./_hostile_ledger.ts";

// ---------------------------------------------------------------- sockets

/** Runs `ss` (iproute2) and resolves with its output, or undefined if it cannot run. */
function ss(args: string[]): Promise<string | undefined> {
  return new Promise((resolve) => {
    execFile("ss", args, { timeout: 5000 }, (error, stdout) => resolve(error ? undefined : String(stdout)));
  });
}

/**
 * Watches how many connected TCP sockets on this host have `port` as their
 * peer (a client's sockets to a server, as the kernel sees them: open until
 * the client closes them, whatever the server reads), sampling with `ss`
 * in a child process so the event loop is not held. `stop()` resolves with
 * the most seen at once, or undefined where `ss` cannot run.
 */
export function watchSockets(port: number): { stop(): Promise<number | undefined> } {
  let most: number | undefined;
  let stopped = false;
  const sampling = (async () => {
    while (!stopped) {
      const out = await ss(["-Htn", "state", "established", `( dport = :${port} )`]);
      if (out === undefined) return;
      const count = out.split("\n").filter((line) => line.trim() !== "").length;
      most = Math.max(most ?? 0, count);
      await delay(20);
    }
  })();
  return {
    async stop() {
      stopped = true;
      await sampling;
      return most;
    },
  };
}

// ---------------------------------------------------------------- event loop

/**
 * Measures how long the event loop was blocked: the worst lateness of a
 * 10 ms timer; `stalls` lists when (ms since the start) it was late by
 * more than 100 ms, by how much, and how much CPU this process had in that
 * time (ms): far less than the stall means the OS ran other work (a
 * starved process), about as much means this process held its own loop.
 */
export function watchLoop(): { stop(): number; readonly stalls: [number, number, number][] } {
  let worst = 0;
  const began = performance.now();
  let expected = began + 10;
  let cpu = cpuMs();
  const stalls: [number, number, number][] = [];
  const timer = setInterval(() => {
    const now = performance.now();
    const late = now - expected;
    const used = cpuMs();
    worst = Math.max(worst, late);
    if (late > 100 && stalls.length < 1000) stalls.push([now - began, late, used - cpu]);
    expected = now + 10;
    cpu = used;
  }, 10);
  return {
    stalls,
    stop() {
      clearInterval(timer);
      return worst;
    },
  };
}

// ---------------------------------------------------------------- mixed load

/** What the load needs of a client (Client, PooledClient and HashClient all have it). */
export interface LoadClient {
  get(key: string): Promise<unknown>;
  getMany(keys: Iterable<string>): Promise<Map<string, unknown>>;
  set(key: string, value: unknown, options?: { noreply?: boolean; expire?: number }): Promise<unknown>;
  incr(key: string, value: number): Promise<unknown>;
  delete(key: string, options?: { noreply?: boolean }): Promise<unknown>;
}

/** Options of {@linkcode MixedLoad}. */
export interface LoadOptions {
  clients: { name: string; client: LoadClient }[];
  inv: Invariants;
  rng: Rng;
  /** Concurrent lanes, each running one call at a time. @default {8} */
  lanes?: number;
  /** The `timeout` the clients were made with (ms). */
  timeout: number;
  /** Keys each lane writes (only that lane writes them). @default {40} */
  keysPerLane?: number;
  /** Prefix of every key, so runs never meet. @default {"load"} */
  prefix?: string;
}

/**
 * Lanes of calls a harness can pause (to verify the server, or kill it,
 * with nothing in flight) and stop. A subclass says what one call of a lane
 * is: `laneStep(lane)` gives the lane's step, which makes one call;
 * resolving `false` skips the short rest that otherwise follows a call now
 * and then.
 */
export abstract class Lanes {
  readonly #lanes: number;
  readonly #rng: Rng;
  #running: Promise<void>[] = [];
  #stopped = false;
  #paused: Promise<void> | null = null;
  #unpause: () => void = () => {};
  #inFlight = 0;
  #idle: (() => void)[] = [];
  ops = 0;

  constructor(lanes: number, rng: Rng) {
    this.#lanes = lanes;
    this.#rng = rng;
  }

  /** The step of lane `lane`: one call per run (state across calls lives in its closure). */
  protected abstract laneStep(lane: number): () => Promise<boolean | void>;

  start(): void {
    for (let lane = 0; lane < this.#lanes; lane++) this.#running.push(this.#lane(lane));
  }

  /** Stops issuing calls and waits for those in flight to settle. */
  async pause(): Promise<void> {
    if (this.#paused === null) this.#paused = new Promise((resolve) => (this.#unpause = resolve));
    if (this.#inFlight > 0) await new Promise<void>((resolve) => this.#idle.push(resolve));
  }

  resume(): void {
    this.#paused = null;
    this.#unpause();
  }

  /** Stops the lanes and waits for them. */
  async stop(): Promise<void> {
    this.#stopped = true;
    this.resume();
    await Promise.all(this.#running);
  }

  async #lane(lane: number): Promise<void> {
    const step = this.laneStep(lane);
    while (!this.#stopped) {
      if (this.#paused !== null) {
        await this.#paused;
        continue;
      }
      this.#inFlight++;
      this.ops++;
      let rest = true;
      try {
        rest = (await step()) !== false;
      } finally {
        this.#inFlight--;
        if (this.#inFlight === 0) { for (const resolve of this.#idle.splice(0)) resolve(); }
      }
      if (rest && this.#rng.chance(0.3)) await delay(1);
    }
  }
}

/**
 * Mixed load on a set of clients: acknowledged sets (recorded in the
 * ledger), reads and multi-reads checked against what was written, incr on
 * per-lane counters whose ranges never overlap, noreply sets and deletes
 * of keys the ledger does not follow. `pause()` lets a harness verify the
 * server (or kill it) with nothing in flight.
 */
export class MixedLoad extends Lanes {
  readonly #o: Required<LoadOptions>;

  constructor(options: LoadOptions) {
    const o = { lanes: 8, keysPerLane: 40, prefix: "load", ...options };
    super(o.lanes, o.rng);
    this.#o = o;
  }

  protected laneStep(lane: number): () => Promise<boolean | void> {
    const { rng, inv, timeout, prefix, keysPerLane, lanes } = this.#o;
    const key = (l: number, i: number) => `${prefix}:w${l}x${i}`;
    const counter = `${prefix}:ctr${lane}`;
    const base = (lane + 1) * 1e9;
    let counterSet = false;
    return async () => {
      const { name, client } = rng.pick(this.#o.clients);
      const roll = rng.int(100);
      if (roll < 30) {
        const k = key(lane, rng.int(keysPerLane));
        const size = rng.chance(0.02) ? 50_000 : 10 + rng.int(1500);
        const value = taggedValue(k, inv.serial(), size);
        await inv.write(`${name} set ${k}`, k, value, timeout, () => client.set(k, value, { noreply: false }));
      } else if (roll < 60) {
        const k = key(rng.int(lanes), rng.int(keysPerLane));
        await inv.call(`${name} get ${k}`, timeout, () => client.get(k), (v) => inv.checkRead(k, v));
      } else if (roll < 72) {
        const keys = Array.from({ length: 2 + rng.int(20) }, () => key(rng.int(lanes), rng.int(keysPerLane)));
        await inv.call(`${name} getMany`, timeout, () => client.getMany(keys), (found) => {
          for (const [k, v] of found) {
            if (!keys.includes(k)) return `getMany returned ${k}, which was not asked for`;
            const problem = inv.checkRead(k, v);
            if (problem) return problem;
          }
          return undefined;
        });
      } else if (roll < 85) {
        if (!counterSet) {
          const o = await inv.call(
            `${name} set ${counter}`,
            timeout,
            () => client.set(counter, base, { noreply: false }),
          );
          counterSet = o.ok;
          return false;
        }
        const o = await inv.call(
          `${name} incr ${counter}`,
          timeout,
          () => client.incr(counter, 1 + rng.int(9)),
          (n) => {
            if (n === null) return undefined;
            return typeof n === "number" && Math.floor(n / 1e9) === lane + 1
              ? undefined
              : `incr ${counter} gave ${String(n)}, outside ${base}..${base + 1e9}`;
          },
        );
        if (o.ok && o.value === null) counterSet = false; // the server lost it (restart)
      } else if (roll < 93) {
        const k = `${prefix}:nr${lane}x${rng.int(20)}`;
        await inv.call(`${name} set noreply`, timeout, () => client.set(k, "fire and forget", { noreply: true }));
      } else {
        const k = `${prefix}:nr${lane}x${rng.int(20)}`;
        await inv.call(`${name} delete`, timeout, () => client.delete(k, { noreply: rng.chance(0.5) }));
      }
    };
  }
}
