/**
 * One benchmark child: measures one client on this runtime for the
 * scenarios in its config (argv[2], JSON) and prints one `RESULT <json>`
 * line per scenario. Runs unchanged on Deno and Bun (TypeScript) and on
 * Node (bundled by bench.ts into bench/.out/runner.mjs).
 *
 * @module
 */

import process from "node:process";
import {
  bigKey,
  checkValue,
  filler,
  GET_KEYS,
  getKey,
  manyBatches,
  MIX_KEYS,
  mixKey,
  now,
  percentiles,
  type Result,
  type RunConfig,
  type Scenario,
  SET_KEYS,
  setKey,
  timed,
  timedLatency,
  VALUE,
  VALUE_BYTES,
} from "./_common.ts";
import { type Adapter, open } from "./_clients.ts";
import { exchange, openRaw, type RawSocket, run, type Step } from "./_raw.ts";

const encoder = new TextEncoder();
const config: RunConfig = JSON.parse(process.argv[2]);
const getKeys = Array.from({ length: GET_KEYS }, (_, i) => getKey(i));
const setKeys = Array.from({ length: SET_KEYS }, (_, i) => setKey(i));
const mixKeys = Array.from({ length: MIX_KEYS }, (_, i) => mixKey(i));

function report(result: Result): void {
  process.stdout.write(`RESULT ${JSON.stringify(result)}\n`);
}

// ---- our library and the peers, through an Adapter

async function clientScenario(a: Adapter, scenario: Scenario): Promise<Result> {
  const { warmupMs, durationMs, concurrency } = config;
  switch (scenario) {
    case "S1": {
      const op = async (i: number) => checkValue(await a.get(getKeys[i % GET_KEYS]), VALUE_BYTES, "S1 get");
      await timedLatency(warmupMs, op);
      const r = await timedLatency(durationMs, op);
      return { scenario, value: r.ops / r.seconds, p50: r.p50, p99: r.p99 };
    }
    case "S2": {
      const op = async (i: number) => checkValue(await a.get(getKeys[i % GET_KEYS]), VALUE_BYTES, "S2 get");
      await timed(concurrency, warmupMs, op);
      const r = await timed(concurrency, durationMs, op);
      return { scenario, value: r.ops / r.seconds };
    }
    case "S3": {
      const op = (i: number) => a.set(setKeys[i % SET_KEYS], VALUE);
      await timed(concurrency, warmupMs, op);
      const r = await timed(concurrency, durationMs, op);
      return { scenario, value: r.ops / r.seconds };
    }
    case "S4": {
      const batches = manyBatches(config.manyKeys);
      const op = async (i: number) => {
        const found = await a.getMany(batches[i % batches.length]);
        if (found !== config.manyKeys) throw new Error(`S4: found ${found} of ${config.manyKeys} keys`);
      };
      await timed(1, warmupMs, op);
      const r = await timed(1, durationMs, op);
      return { scenario, value: (r.ops * config.manyKeys) / r.seconds };
    }
    case "S5": {
      const key = bigKey(config.client);
      const big = filler(config.bigBytes, 7);
      const op = async () => {
        await a.set(key, big);
        checkValue(await a.get(key), config.bigBytes, "S5 get");
      };
      await timed(1, warmupMs, op);
      const cpu = cpuMicros();
      const r = await timed(1, durationMs, op);
      return { scenario, value: (r.ops * 2 * config.bigBytes) / r.seconds / 1e6, cpu: (cpuMicros() - cpu) / r.ops };
    }
    case "S6":
      return await mixed(a);
    case "S7": {
      // 50 small gets in flight while 512 KiB sets stream on the same client:
      // one set at a time, started at most every 2 ms, a pace both clients
      // hold (a set takes 0.3-1 ms here), so both carry the same large-value
      // load (back to back, a set stream that no longer waits behind the
      // gets would take more of the CPU). The latencies are those of the
      // gets started while a set streams: the gets a large value can hold
      // up (at a wider pace most gets run with no set at all).
      const key = bigKey(config.client);
      const big = filler(config.bigBytes, 3);
      let streaming = true;
      let setInFlight = false;
      const setDone = () => void (setInFlight = false);
      const tick = () => new Promise((resolve) => setTimeout(resolve, 2));
      const streamer = (async () => {
        while (streaming) {
          setInFlight = true;
          await Promise.all([a.set(key, big).then(setDone), tick()]);
        }
      })();
      let lat: number[] = [];
      const op = async (i: number) => {
        const beside = setInFlight;
        const t = now();
        checkValue(await a.get(getKeys[i % GET_KEYS]), VALUE_BYTES, "S7 get");
        if (beside) lat.push(now() - t);
      };
      await timed(concurrency, warmupMs, op);
      lat = [];
      const r = await timed(concurrency, durationMs, op);
      streaming = false;
      await streamer;
      return { scenario, value: r.ops / r.seconds, ...percentiles(lat) };
    }
  }
}

/**
 * S6: `s6Ops` mixed operations from `concurrency` workers over 10,000 keys
 * (60% get, 15% acked set, 10% noreply set, 10% getMany of 10, 5% delete);
 * heap and RSS are sampled after a full GC at the start (after
 * `s6WarmupOps`), at every quarter, and at the end.
 */
async function mixed(a: Adapter): Promise<Result> {
  const heap: number[] = [];
  const rss: number[] = [];
  const sample = () => {
    fullGc();
    const m = process.memoryUsage();
    heap.push(m.heapUsed);
    rss.push(m.rss);
  };
  const setQuiet = a.setNoreply ?? a.set;
  const op = (i: number): Promise<unknown> => {
    const key = mixKeys[(i * 7919) % MIX_KEYS];
    switch (i % 20) {
      case 12:
      case 13:
      case 14:
        return a.set(key, VALUE);
      case 15:
      case 16:
        return setQuiet(key, VALUE);
      case 17:
      case 18:
        return a.getMany(mixKeys.slice(i % (MIX_KEYS - 10), i % (MIX_KEYS - 10) + 10));
      case 19:
        return a.delete(key);
      default:
        return a.get(key);
    }
  };
  const runOps = async (count: number, from: number) => {
    let next = from;
    const end = from + count;
    const worker = async () => {
      while (next < end) await op(next++);
    };
    await Promise.all(Array.from({ length: config.concurrency }, worker));
  };
  await runOps(config.s6WarmupOps, 0);
  sample();
  const start = now();
  const quarter = Math.ceil(config.s6Ops / 4);
  for (let done = 0; done < config.s6Ops; done += quarter) {
    await runOps(Math.min(quarter, config.s6Ops - done), config.s6WarmupOps + done);
    sample();
  }
  return { scenario: "S6", heap, rss, ops: config.s6Ops, seconds: (now() - start) / 1000 };
}

/** CPU time of this process (user + system), µs. */
function cpuMicros(): number {
  const { user, system } = process.cpuUsage();
  return user + system;
}

function fullGc(): void {
  // deno-lint-ignore no-explicit-any
  const g = globalThis as any;
  if (g.Bun) g.Bun.gc(true);
  else if (typeof g.gc === "function") {
    g.gc();
    g.gc();
  } else throw new Error("S6 needs a GC hook: node --expose-gc / deno --v8-flags=--expose-gc");
}

// ---- the raw baseline

const getCommand = (key: string) => encoder.encode(`get ${key}\r\n`);
const valueReply = (key: string, bytes: number, flags = 0) =>
  `VALUE ${key} ${flags} ${bytes}\r\n`.length + bytes + "\r\nEND\r\n".length;
const setCommand = (key: string, value: Uint8Array) => {
  const head = encoder.encode(`set ${key} 0 0 ${value.length}\r\n`);
  const out = new Uint8Array(head.length + value.length + 2);
  out.set(head);
  out.set(value, head.length);
  out.set([13, 10], head.length + value.length);
  return out;
};
const STORED = "STORED\r\n".length;

/** Checks once, before timing, that a raw step gets the reply it is counted as (`prefix`: its first 6 bytes). */
async function check(socket: RawSocket, step: Step, prefix: "VALUE " | "STORED"): Promise<void> {
  const reply = new TextDecoder().decode((await exchange(socket, step.command, step.replyLength)).subarray(0, 6));
  if (reply !== prefix) {
    throw new Error(`raw: expected ${prefix}, got ${JSON.stringify(reply)}`);
  }
}

async function rawScenario(socket: RawSocket, scenario: Scenario): Promise<Result> {
  const { warmupMs, durationMs, concurrency } = config;
  const measure = async (steps: Step[], window: number, latency = false) => {
    await run(socket, steps, window, warmupMs);
    return await run(socket, steps, window, durationMs, latency);
  };
  switch (scenario) {
    case "S1":
    case "S2": {
      const steps = getKeys.map((key) => ({ command: getCommand(key), replyLength: valueReply(key, VALUE_BYTES) }));
      await check(socket, steps[0], "VALUE ");
      const r = await measure(steps, scenario === "S1" ? 1 : concurrency, scenario === "S1");
      return { scenario, value: r.ops / r.seconds, p50: r.p50, p99: r.p99 };
    }
    case "S3": {
      const steps = setKeys.map((key) => ({ command: setCommand(key, VALUE), replyLength: STORED }));
      await check(socket, steps[0], "STORED");
      const r = await measure(steps, concurrency);
      return { scenario, value: r.ops / r.seconds };
    }
    case "S4": {
      const steps = manyBatches(config.manyKeys).map((batch) => ({
        command: encoder.encode(`get ${batch.join(" ")}\r\n`),
        replyLength: batch.reduce((n, key) => n + valueReply(key, VALUE_BYTES) - 5, 0) + 5,
      }));
      await check(socket, steps[0], "VALUE ");
      const r = await measure(steps, 1);
      return { scenario, value: (r.ops * config.manyKeys) / r.seconds };
    }
    case "S5": {
      const key = bigKey("raw");
      const steps = [
        { command: setCommand(key, filler(config.bigBytes, 7)), replyLength: STORED },
        { command: getCommand(key), replyLength: valueReply(key, config.bigBytes) },
      ];
      await check(socket, steps[0], "STORED");
      await check(socket, steps[1], "VALUE ");
      await run(socket, steps, 1, warmupMs);
      const cpu = cpuMicros();
      const r = await run(socket, steps, 1, durationMs);
      // A step is a set or a get: a round is two.
      return { scenario, value: (r.ops * config.bigBytes) / r.seconds / 1e6, cpu: (cpuMicros() - cpu) / (r.ops / 2) };
    }
    case "S6":
    case "S7":
      throw new Error(`${scenario} has no raw baseline`);
  }
}

// ---- main

if (config.client === "raw") {
  const socket = await openRaw(config.port);
  for (const scenario of config.scenarios) report(await rawScenario(socket, scenario));
  await socket.close();
} else {
  const adapter = await open(config.client, config.port);
  for (const scenario of config.scenarios) report(await clientScenario(adapter, scenario));
  await adapter.close();
}
// Some peers keep timers (reconnect, idle) alive; the measurements are out.
process.exit(0);
