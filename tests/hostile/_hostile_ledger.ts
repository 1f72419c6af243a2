/**
 * The ledger every reliability harness checks its calls against
 * ({@linkcode Invariants}): no call settles later than its timeout + 100 ms
 * (less the time the OS starved this process: the starvation clock), no
 * call resolves with another key's or request's value, every acknowledged
 * write is on the server (read back over an independent connection), and
 * no error but a `MemcacheError` escapes.
 */
import { MemcacheError } from "../../mod.ts";
import { cpuMs, delay, readTag } from "./_hostile.ts";

// ---------------------------------------------------------------- invariants

/** The bound of the issue: no call settles later than its timeout plus this. */
export const LATE_MS = 100;

/** Period of the starvation clock's probe timer, ms. */
const PROBE_MS = 10;
/** A probe later than this (ms) is a stall, not timer jitter. */
const STALL_MS = 20;

/**
 * How long this process was starved: it had work due (a timer) and the OS
 * ran something else instead (a loaded machine), which no client can help.
 * A probe timer runs every 10 ms while any call is being timed; a probe
 * that comes more than 20 ms late is a stall, and the part of the stall
 * this process did not spend on the CPU (`process.cpuUsage`) was
 * starvation. A stall the process spent on the CPU is its own doing (a
 * loop blocked by the code under test) and is not counted: a client that
 * blocks the loop, or ignores its timeout while the process idles, is
 * still late.
 */
class StarvationClock {
  #users = 0;
  #timer: ReturnType<typeof setInterval> | undefined;
  #total = 0;
  #lastProbe = 0;
  #cpuAtProbe = 0;

  /** A call starts being timed: the probe runs while any is. */
  acquire(): void {
    if (this.#users++ > 0) return;
    this.#lastProbe = performance.now();
    this.#cpuAtProbe = cpuMs();
    this.#timer = setInterval(() => this.#probe(), PROBE_MS);
  }

  release(): void {
    if (--this.#users > 0) return;
    this.#probe();
    clearInterval(this.#timer);
    this.#timer = undefined;
  }

  #probe(): void {
    const now = performance.now();
    const cpu = cpuMs();
    this.#total += this.#stalled(now, cpu);
    this.#lastProbe = now;
    this.#cpuAtProbe = cpu;
  }

  /** Starvation in the stall under way at `now`, if the probe is overdue. */
  #stalled(now: number, cpu: number): number {
    const stall = now - (this.#lastProbe + PROBE_MS);
    return stall > STALL_MS ? Math.max(0, stall - (cpu - this.#cpuAtProbe)) : 0;
  }

  /** ms this process has been starved while calls were timed, counting a stall under way. */
  now(): number {
    return this.#total + (this.#users > 0 ? this.#stalled(performance.now(), cpuMs()) : 0);
  }
}

/** One clock for every ledger: starvation is the process's, whichever ledger's call it hits. */
const starvation = new StarvationClock();

/**
 * The starvation clock for a harness that times calls itself (see
 * {@linkcode Invariants.call} for the rule): `now()` is the ms this process
 * has been starved so far; `release()` stops the probe once its calls are
 * done.
 */
export function watchStarvation(): { now(): number; release(): void } {
  starvation.acquire();
  let released = false;
  return {
    now: () => starvation.now(),
    release: () => {
      if (!released) starvation.release();
      released = true;
    },
  };
}

/** How one call ended, for the ledger's counts. */
export type Outcome =
  & ({ ok: true; value: unknown } | { ok: false; error: unknown })
  & {
    /** How long the call took, ms. */
    ms: number;
    /** ms of it this process was starved (see StarvationClock): not the client's time. */
    starved: number;
  };

/**
 * Runs `attempt` until it succeeds, at most `tries` times; a failed try is
 * retried only when it timed out while this process was starved for at
 * least {@linkcode LATE_MS} (a loaded machine, not the client). Resolves
 * with the last outcome. For checks that a client works again (recovery),
 * which a bug (a dead connection reused) still fails on an idle machine.
 */
export async function unlessStarved(
  attempt: () => Promise<Outcome>,
  isTimeout: (error: unknown) => boolean,
  tries = 5,
): Promise<Outcome> {
  for (let i = 1;; i++) {
    const outcome = await attempt();
    if (outcome.ok || i >= tries || !isTimeout(outcome.error) || outcome.starved < LATE_MS) return outcome;
  }
}

/** Counts and violations of a harness run. */
export interface Report {
  calls: number;
  ok: number;
  errors: Record<string, number>;
  late: number;
  /** Calls past timeout + the bound only for the time this process was starved (not late). */
  excused: number;
  /** Most ms this process was starved during one call. */
  maxStarvedMs: number;
  hung: number;
  wrong: number;
  lost: number;
  foreign: number;
  maxMs: number;
}

/** A write the ledger must find on the server. */
interface WriteRecord {
  /** The value last acknowledged (after the last outage), or undefined. */
  acked?: string;
  ackedSerial: number;
  /** Values of writes that failed after it: each may or may not be stored. */
  maybe: Set<string>;
  /** Whether a failed or unacknowledged delete may have removed it. */
  maybeGone: boolean;
}

/**
 * The ledger of a harness run: every call goes through {@linkcode Invariants.call},
 * which times it, classifies its outcome and checks its value; writes go
 * through {@linkcode Invariants.write} so {@linkcode Invariants.verify} can read
 * them back over an independent connection.
 */
export class Invariants {
  readonly report: Report = {
    calls: 0,
    ok: 0,
    errors: {},
    late: 0,
    excused: 0,
    maxStarvedMs: 0,
    hung: 0,
    wrong: 0,
    lost: 0,
    foreign: 0,
    maxMs: 0,
  };
  /** The first violations, described. */
  readonly violations: string[] = [];
  /** The first messages of each error class seen (three each), for reports. */
  readonly samples: Record<string, string[]> = {};
  #pending = new Map<number, { what: string; started: number; timeout: number; starved: number }>();
  #serial = 0;
  #writes = new Map<string, WriteRecord>();
  /** Serials issued per key, so a read can be checked against what was really written. */
  #issued = new Map<string, number>();
  /** Set while a server is down or restarting: acknowledgements then say nothing. */
  #outageSince: number | undefined;
  #outageEnded = 0;
  #late: number;
  /** TypeError is allowed where the caller passed bad arguments on purpose. */
  allowTypeError = false;

  constructor(readonly label: string, options: { lateMs?: number } = {}) {
    this.#late = options.lateMs ?? LATE_MS;
  }

  /** A fresh serial number for a request. */
  serial(): number {
    return ++this.#serial;
  }

  readonly #born = performance.now();

  /** Records a violation (the first 50 are kept verbatim, with when it happened). */
  violation(kind: "late" | "hung" | "wrong" | "lost" | "foreign", text: string): void {
    this.report[kind]++;
    const at = ((performance.now() - this.#born) / 1000).toFixed(1);
    if (this.violations.length < 50) this.violations.push(`${kind} (+${at} s): ${text}`);
  }

  /**
   * Runs one call with timeout `timeout` ms, times it and classifies it;
   * `check(value)` returns a description of what is wrong with a value, if
   * anything. Resolves with the outcome, never rejects.
   */
  async call<T>(
    what: string,
    timeout: number,
    run: () => Promise<T>,
    check?: (value: T) => string | undefined,
  ): Promise<Outcome> {
    const id = this.report.calls++;
    starvation.acquire();
    const starvedBefore = starvation.now();
    const started = performance.now();
    this.#pending.set(id, { what, started, timeout, starved: starvedBefore });
    let outcome: Outcome;
    try {
      const value = await run();
      outcome = { ok: true, value, ms: performance.now() - started, starved: 0 };
    } catch (error) {
      outcome = { ok: false, error, ms: performance.now() - started, starved: 0 };
    }
    const starved = outcome.starved = starvation.now() - starvedBefore;
    starvation.release();
    this.#pending.delete(id);
    this.report.maxMs = Math.max(this.report.maxMs, outcome.ms);
    this.report.maxStarvedMs = Math.max(this.report.maxStarvedMs, starved);
    // Late only for the time the process had the CPU: a call is not late
    // because the OS did not run this process (see StarvationClock).
    if (outcome.ms - starved > timeout + this.#late) {
      this.violation(
        "late",
        `${what} settled after ${outcome.ms.toFixed(0)} ms (timeout ${timeout}; process starved ${
          starved.toFixed(0)
        } ms of it)`,
      );
    } else if (outcome.ms > timeout + this.#late) {
      this.report.excused++;
    }
    if (outcome.ok) {
      this.report.ok++;
      const problem = check?.(outcome.value as T);
      if (problem !== undefined) this.violation("wrong", `${what}: ${problem}`);
    } else {
      const error = outcome.error;
      const name = error instanceof Error ? error.constructor.name : typeof error;
      this.report.errors[name] = (this.report.errors[name] ?? 0) + 1;
      const seen = (this.samples[name] ??= []);
      if (seen.length < 3) seen.push(`${what}: ${error instanceof Error ? error.message : String(error)}`);
      const allowed = error instanceof MemcacheError || (this.allowTypeError && error instanceof TypeError);
      if (!allowed) {
        const detail = error instanceof Error ? `${error.name}: ${error.message}` : String(error);
        this.violation("foreign", `${what} rejected with ${detail}`);
      }
    }
    return outcome;
  }

  /** Calls still running after their timeout + the bound: each is counted as hung. */
  hung(): string[] {
    const now = performance.now();
    const starved = starvation.now();
    const out: string[] = [];
    for (const p of this.#pending.values()) {
      if (now - p.started - (starved - p.starved) > p.timeout + this.#late) {
        out.push(
          `${p.what} (${(now - p.started).toFixed(0)} ms, process starved ${(starved - p.starved).toFixed(0)} ms)`,
        );
      }
    }
    return out;
  }

  /**
   * Waits up to `ms` for every call to settle; those still running are
   * counted as hung.
   */
  async drain(ms: number): Promise<void> {
    // The wait is extended by the time the process is starved meanwhile.
    const until = performance.now() + ms;
    const starved = starvation.now();
    while (this.#pending.size > 0 && performance.now() < until + starvation.now() - starved) await delay(10);
    for (const text of this.hung()) this.violation("hung", text);
  }

  // ---- reads

  /** Notes that `serial` was issued as a write of `key` (before it is sent). */
  issued(key: string, serial: number): void {
    this.#issued.set(key, Math.max(this.#issued.get(key) ?? 0, serial));
  }

  /**
   * What is wrong with `value` as the result of reading `key` (a tagged
   * value or a miss), or undefined if nothing is.
   */
  checkRead(key: string, value: unknown): string | undefined {
    if (value === null || value === undefined) return undefined;
    const tag = readTag(value);
    if (tag === undefined) return `read of ${key} gave ${preview(value)}`;
    if (tag.key !== key) return `read of ${key} gave ${tag.key}'s value (serial ${tag.serial})`;
    const max = this.#issued.get(key) ?? 0;
    if (tag.serial > max) return `read of ${key} gave serial ${tag.serial}, never written (max ${max})`;
    return undefined;
  }

  // ---- writes

  /**
   * Runs a write of tagged `value` to `key` through {@linkcode Invariants.call}
   * and records its outcome: an acknowledged write must be found by
   * {@linkcode Invariants.verify}; a failed one may or may not be there.
   * `run` must wait for the server's reply (noreply: false).
   */
  async write(
    what: string,
    key: string,
    value: string,
    timeout: number,
    run: () => Promise<unknown>,
  ): Promise<Outcome> {
    const tag = readTag(value);
    if (tag === undefined || tag.key !== key) throw new Error(`write of ${key}: value is not tagged with it`);
    this.issued(key, tag.serial);
    const started = performance.now();
    const outcome = await this.call(what, timeout, run, (result) => {
      return result === true ? undefined : `write of ${key} acknowledged with ${preview(result)}`;
    });
    const record = this.#writes.get(key) ?? { ackedSerial: 0, maybe: new Set<string>(), maybeGone: false };
    this.#writes.set(key, record);
    const trustworthy = this.#outageSince === undefined && started > this.#outageEnded;
    if (outcome.ok && outcome.value === true && trustworthy) {
      // Earlier failed writes stay possible: one sent on a connection that
      // then died may still be read and applied by memcached after this one.
      record.acked = value;
      record.ackedSerial = tag.serial;
      record.maybeGone = false;
    } else {
      record.maybe.add(value);
    }
    return outcome;
  }

  /** The server is about to go down (kill, restart): what it acknowledged so far is void. */
  outageBegins(): void {
    this.#outageSince = performance.now();
    this.#writes.clear();
  }

  /** The server is back: acknowledgements of writes issued from now on count again. */
  outageEnds(): void {
    this.#outageSince = undefined;
    this.#outageEnded = performance.now();
    this.#writes.clear();
  }

  /** Keys whose write was acknowledged and must be on the server. */
  ackedKeys(): string[] {
    return [...this.#writes].filter(([, r]) => r.acked !== undefined).map(([k]) => k);
  }

  /**
   * Reads every acknowledged key back with `read` (an independent
   * connection: a fresh Client straight to memcached) and counts what is
   * missing or different as lost.
   */
  async verify(read: (keys: string[]) => Promise<Map<string, unknown>>): Promise<number> {
    const keys = this.ackedKeys();
    let checked = 0;
    for (let i = 0; i < keys.length; i += 100) {
      const batch = keys.slice(i, i + 100);
      const found = await read(batch);
      for (const key of batch) {
        const record = this.#writes.get(key)!;
        const value = found.get(key);
        checked++;
        if (value === record.acked || (typeof value === "string" && record.maybe.has(value))) continue;
        if (value === undefined && record.maybeGone) continue;
        this.violation(
          "lost",
          `${key}: acknowledged ${preview(record.acked)}, server has ${preview(value)}`,
        );
      }
    }
    return checked;
  }

  /** Fails (throws) with every violation if there was any. */
  assertClean(): void {
    const r = this.report;
    if (r.late + r.hung + r.wrong + r.lost + r.foreign === 0) return;
    throw new Error(
      `${this.label}: ${r.late} late, ${r.hung} hung, ${r.wrong} wrong, ${r.lost} lost, ${r.foreign} foreign ` +
        `errors in ${r.calls} calls\n  ${this.violations.join("\n  ")}`,
    );
  }

  /** One line of counts. */
  summary(): string {
    const r = this.report;
    const errors = Object.entries(r.errors).map(([k, v]) => `${k} ${v}`).join(", ") || "none";
    return `${this.label}: ${r.calls} calls, ${r.ok} ok, errors: ${errors}; ` +
      `late ${r.late}, hung ${r.hung}, wrong ${r.wrong}, lost ${r.lost}, foreign ${r.foreign}; ` +
      `slowest ${r.maxMs.toFixed(0)} ms; starved up to ${r.maxStarvedMs.toFixed(0)} ms in a call, ` +
      `${r.excused} calls past the bound only for that`;
  }
}

function preview(value: unknown): string {
  if (value === undefined) return "nothing";
  if (value instanceof Uint8Array) return `bytes(${value.length})`;
  const text = typeof value === "string" ? JSON.stringify(value) : String(value);
  return text.length > 80 ? text.slice(0, 77) + "..." : text;
}
