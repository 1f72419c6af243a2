// A seeded fuzzer of reply streams: correct replies to random pipelined
// requests, split at random points and mutated once (a byte flipped,
// inserted or deleted, a CRLF inserted, the stream cut with a close, a
// reset or silence), fed to the client three ways:
//
// 1. the pure ReplyParser: any split of a stream parses the same, a clean
//    stream parses exactly, a mutated one parses exactly up to the mutation
//    and fails with a ProtocolError (nothing else) if it fails;
// 2. a Client over a fake transport (no sockets): every call settles within
//    its timeout + 100 ms, with its own exact result, or with a MemcacheError;
//    only the call whose reply holds the mutation may get a corrupted value,
//    and never one tagged with another key;
// 3. the same over a loopback socket, the stream dribbled in random chunks.
//
// Sizes: MEMKIT_FUZZ_ITERATIONS (default 300) trials over the fake transport,
// 5x that for the parser, a fifth over sockets. Seed: MEMKIT_SEED (a number,
// or "random"); a failure prints the seed.
import assert from "node:assert/strict";
import { isDeepStrictEqual } from "node:util";
import { describe, it } from "../_support/_harness.ts";
import {
  Client,
  MemcacheError,
  type ServerAddress,
  type Transport,
  type TransportConnectOptions,
  type TransportHandlers,
  type TransportSocket,
} from "../../mod.ts";
import {
  EXPECT_LINE,
  EXPECT_STATS,
  EXPECT_VALUES,
  type Expectation,
  ReplyParser,
} from "../../src/protocol/_reply_parser.ts";
import { ProtocolError } from "../../src/protocol/_wire.ts";
import { envInt, fromLatin1, harnessSeed, latin1, readTag, Rng, withSeed } from "./_hostile.ts";
import { RequestReader, type ScriptedRequest, ServerModel, startScriptedServer } from "./_hostile_server.ts";
import { Invariants } from "./_hostile_ledger.ts";
import { chunking, mutate, type Mutation, parseAll } from "./_hostile_mutate.ts";

const ITERATIONS = envInt("MEMKIT_FUZZ_ITERATIONS", 300);
const TIMEOUT = 1000;
/** The longest a stream is dribbled out: replies that come whole must beat the timeout (even on a loaded machine). */
const MAX_DRIBBLE_MS = 80;

// ---------------------------------------------------------------- trials

/** One call of a trial, with the result the correct stream gives it. */
interface Op {
  what: string;
  /** The request's first key, or its command for keyless ones: how a request is matched to its op. */
  id: string;
  run(client: Client): Promise<unknown>;
  expected: unknown;
  /** Keys whose values this op may return. */
  keys: string[];
}

/** A value that names its key twice, with bytes that look like protocol in between. */
function fuzzValue(rng: Rng, key: string, serial: number): string {
  const tricky = ["", "\r\nEND\r\n", "VALUE x 0 5\r\n", "STORED\r\n", "\r\n", "ERROR\r\n", "12345\r\n", "\u00ff\u0000"];
  let fill = "";
  const parts = rng.int(4);
  for (let i = 0; i < parts; i++) fill += rng.pick(tricky) + "y".repeat(rng.int(rng.chance(0.1) ? 3000 : 40));
  return `v|${key}|${serial}|${fill}|${key}|${serial}`;
}

/**
 * Random calls on distinct keys (so their results do not depend on order),
 * with the server's model seeded to give each its expected result. Keys
 * repeat their number (`k12x12`) so no single changed byte turns one into
 * another.
 */
function makeTrial(rng: Rng, model: ServerModel, size: number): Op[] {
  const ops: Op[] = [];
  let n = 0;
  const key = () => (n++, `k${n}x${n}`);
  const put = (k: string, data: string, flags = 16) => {
    model.items.set(k, { flags, data, cas: BigInt(1000 + n) });
    return model.items.get(k)!;
  };
  let keyless = false;
  for (let i = 0; i < size; i++) {
    const kind = rng.int(12);
    if (kind === 0) {
      const k = key();
      const v = fuzzValue(rng, k, n);
      put(k, latin1Of(v));
      ops.push({ what: `get ${k}`, id: k, keys: [k], run: (c) => c.get(k), expected: v });
    } else if (kind === 1) {
      const k = key();
      ops.push({ what: `get ${k} (miss)`, id: k, keys: [k], run: (c) => c.get(k), expected: null });
    } else if (kind === 2) {
      const [a, miss, b] = [key(), key(), key()];
      const [va, vb] = [fuzzValue(rng, a, 1), fuzzValue(rng, b, 2)];
      put(a, latin1Of(va));
      put(b, latin1Of(vb));
      ops.push({
        what: `getMany ${a} ${miss} ${b}`,
        id: a,
        keys: [a, miss, b],
        run: (c) => c.getMany([a, miss, b]),
        expected: new Map([[a, va], [b, vb]]),
      });
    } else if (kind === 3) {
      const k = key();
      const v = fuzzValue(rng, k, n);
      const item = put(k, latin1Of(v));
      ops.push({ what: `gets ${k}`, id: k, keys: [k], run: (c) => c.gets(k), expected: [v, String(item.cas)] });
    } else if (kind === 4) {
      const k = key();
      const v = fuzzValue(rng, k, n);
      ops.push({ what: `set ${k}`, id: k, keys: [k], run: (c) => c.set(k, v, { noreply: false }), expected: true });
    } else if (kind === 5) {
      const k = key();
      put(k, "old");
      ops.push({
        what: `add ${k} (exists)`,
        id: k,
        keys: [k],
        run: (c) => c.add(k, "new", { noreply: false }),
        expected: false,
      });
    } else if (kind === 6 || kind === 7) {
      const k = key();
      const base = 1_000_000 * n + rng.int(1000);
      const delta = 1 + rng.int(50);
      put(k, String(base), 2);
      const incr = kind === 6;
      ops.push({
        what: `${incr ? "incr" : "decr"} ${k}`,
        id: k,
        keys: [k],
        run: (c) => (incr ? c.incr(k, delta) : c.decr(k, delta)),
        expected: incr ? base + delta : base - delta,
      });
    } else if (kind === 8) {
      const k = key();
      ops.push({ what: `incr ${k} (missing)`, id: k, keys: [k], run: (c) => c.incr(k, 1), expected: null });
    } else if (kind === 9) {
      const k = key();
      const exists = rng.chance(0.5);
      if (exists) put(k, "x");
      ops.push({
        what: `delete ${k}`,
        id: k,
        keys: [k],
        run: (c) => c.delete(k, { noreply: false }),
        expected: exists,
      });
    } else if (kind === 10) {
      const k = key();
      put(k, "x");
      ops.push({
        what: `touch ${k}`,
        id: k,
        keys: [k],
        run: (c) => c.touch(k, 100, { noreply: false }),
        expected: true,
      });
    } else if (!keyless) {
      keyless = true;
      ops.push({ what: "version", id: "version", keys: [], run: (c) => c.version(), expected: "1.6.18-scripted" });
    }
  }
  return ops;
}

/** The model stores one char per byte: a value's UTF-8 bytes as such chars. */
function latin1Of(text: string): string {
  return fromLatin1(new TextEncoder().encode(text));
}

/** Which op a request belongs to. */
function opIdOf(req: ScriptedRequest): string {
  if (req.command === "version" || req.command === "stats") return req.command;
  return req.command.startsWith("gat") ? req.args[1] : req.args[0];
}

/** The correct reply stream to `requests`, with each op's byte range in it and where the protocol lines are. */
function buildStream(model: ServerModel, requests: ScriptedRequest[]) {
  let text = "";
  const regions = new Map<string, [number, number]>();
  const lineBytes: number[] = [];
  for (const req of requests) {
    const reply = model.answer(req) ?? "";
    const start = text.length;
    // Protocol bytes: everything but value data (lines are what framing depends on).
    let at = 0;
    while (at < reply.length) {
      const nl = reply.indexOf("\n", at);
      const line = reply.slice(at, nl + 1);
      for (let i = 0; i < line.length; i++) lineBytes.push(start + at + i);
      at = nl + 1;
      const value = /^VALUE \S+ \d+ (\d+)/.exec(line);
      if (value) at += Number(value[1]) + 2;
    }
    text += reply;
    regions.set(opIdOf(req), [start, text.length]);
  }
  return { bytes: latin1(text), regions, lineBytes };
}

/** The values an op's result carries, for the "never another key's value" check. */
function carried(value: unknown): unknown[] {
  if (value instanceof Map) return [...value.values()].flatMap(carried);
  if (Array.isArray(value)) return value.flatMap(carried);
  if (value instanceof Uint8Array) return [new TextDecoder().decode(value)];
  return [value];
}

/**
 * Runs a trial's ops at once (one pipelined write) and checks each outcome
 * against where the mutation fell, in stream order:
 * - a reply that came whole before the mutation gives exactly its result;
 * - the reply holding the mutation may give a corrupted result, never a
 *   value tagged with another key;
 * - after it, exact results or a MemcacheError: a reply that does not fit
 *   its request must close the connection, not hand the next request
 *   another's reply. Except where the mutated reply still parsed (a line
 *   split in two numbers, say): replies are then out of step in a way no
 *   client of the text protocol can see, and only "never another key's
 *   value" (which the client does check) holds.
 */
async function runOps(
  inv: Invariants,
  client: Client,
  ops: Op[],
  where: () => { regions: Map<string, [number, number]>; mutation: Mutation } | undefined,
  options: { resetLosesData?: boolean } = {},
): Promise<void> {
  const outcomes = await Promise.all(ops.map((op) => inv.call(op.what, TIMEOUT, () => op.run(client))));
  const known = where();
  const order = ops.map((op, i) => ({ op, outcome: outcomes[i], region: known?.regions.get(op.id) }))
    .sort((a, b) => (a.region?.[0] ?? Infinity) - (b.region?.[0] ?? Infinity));
  let outOfStep = false;
  for (const { op, outcome, region } of order) {
    if (region === undefined || known === undefined) {
      if (outcome.ok) inv.violation("wrong", `${op.what} resolved, but no reply was ever sent for it`);
      continue;
    }
    const { mutation } = known;
    const [start, end] = region;
    const where = `(mutation ${mutation.kind}, reply at ${start}-${end})`;
    const before = end <= mutation.at;
    const inside = !before && mutation.at >= start;
    if (!outcome.ok) {
      // RST over a real socket may discard bytes already sent: only the fake transport is exact.
      const lost = mutation.ending === "reset" && options.resetLosesData;
      if (before && !lost) {
        const error = outcome.error;
        inv.violation(
          "wrong",
          `${op.what} failed although its reply came whole before the mutation ${where}: ` +
            (error instanceof Error ? error.message : String(error)),
        );
      }
      continue;
    }
    const exact = isDeepStrictEqual(outcome.value, op.expected);
    if (exact && !inside) continue;
    for (const v of carried(outcome.value)) {
      const tag = readTag(v);
      if (tag !== undefined && !op.keys.includes(tag.key)) {
        inv.violation("wrong", `${op.what} resolved with ${tag.key}'s value ${where}`);
      }
    }
    if (inside) {
      outOfStep = mutation.ending === "none"; // it parsed: what follows may be shifted, unseen
    } else if (!exact && !outOfStep) {
      inv.violation("wrong", `${op.what} resolved with ${show(outcome.value)}, expected ${show(op.expected)} ${where}`);
    }
  }
}

function show(value: unknown): string {
  if (value instanceof Map) return `Map(${[...value].map(([k, v]) => `${k}=${show(v)}`).join(", ")})`;
  if (Array.isArray(value)) return `[${value.map(show).join(", ")}]`;
  const text = typeof value === "string" ? JSON.stringify(value) : String(value);
  return text.length > 60 ? text.slice(0, 57) + "..." : text;
}

// ---------------------------------------------------------------- 1. the parser

/** A random reply for an expectation, with the reply the parser must produce. */
function parserScript(
  rng: Rng,
  count: number,
): { expects: Expectation[]; stream: Uint8Array; ends: number[]; lineBytes: number[] } {
  const model = new ServerModel();
  const ops = makeTrial(rng, model, count);
  const requests: ScriptedRequest[] = [];
  const reader = new RequestReader((r) => requests.push(r));
  for (const op of ops) {
    // The request each op sends, as text: enough for the model to answer.
    const [command, ...rest] = op.what.split(" ");
    const args = rest.filter((a) => !a.startsWith("("));
    if (command === "set" || command === "add") {
      reader.feed(latin1(`${command} ${args[0]} 16 0 3\r\nnew\r\n`));
    } else if (command === "incr" || command === "decr") reader.feed(latin1(`${command} ${args[0]} 7\r\n`));
    else if (command === "touch") reader.feed(latin1(`touch ${args[0]} 100\r\n`));
    else if (command === "getMany") reader.feed(latin1(`get ${args.join(" ")}\r\n`));
    else reader.feed(latin1(`${command} ${args.join(" ")}\r\n`));
  }
  if (rng.chance(0.5)) reader.feed(latin1("stats\r\n"));
  const { bytes, lineBytes } = buildStream(model, requests);
  const expects = requests.map((r) => ({
    expect: r.command.startsWith("get") ? EXPECT_VALUES : r.command === "stats" ? EXPECT_STATS : EXPECT_LINE,
    keys: r.command.startsWith("get") ? r.args : undefined,
  }));
  // Where each reply ends: from a clean parse.
  const ends: number[] = [];
  const queue = [...expects];
  let fed = 0;
  const parser = new ReplyParser(() => queue[0], () => {
    queue.shift();
    ends.push(fed);
  });
  for (let i = 0; i < bytes.length; i++) {
    fed = i + 1;
    parser.feed(bytes.subarray(i, i + 1));
  }
  return { expects, stream: bytes, ends, lineBytes };
}

describe("fuzz: ReplyParser", () => {
  const seed = harnessSeed(13_001);
  it(`${ITERATIONS * 5} random streams, split anywhere and mutated (seed ${seed})`, () =>
    withSeed(seed, () => {
      const rng = new Rng(seed);
      const problems: string[] = [];
      for (let i = 0; i < ITERATIONS * 5 && problems.length < 10; i++) {
        const { expects, stream, ends, lineBytes } = parserScript(rng, 1 + rng.int(8));
        const clean = parseAll(expects, stream, [stream.length]);
        if (clean.error !== undefined || clean.replies.length !== expects.length) {
          problems.push(`#${i}: a clean stream did not parse: ${String(clean.error)}`);
          continue;
        }
        const { bytes, mutation } = mutate(rng, stream, lineBytes);
        const a = parseAll(expects, bytes, chunking(rng, bytes.length));
        const b = parseAll(expects, bytes, chunking(rng, bytes.length));
        const label = `#${i} (${mutation.kind}, ${bytes.length} bytes)`;
        if (!isDeepStrictEqual(a.replies, b.replies) || (a.error === undefined) !== (b.error === undefined)) {
          problems.push(`${label}: two splits of one stream parsed differently: ${a.error} / ${b.error}`);
        }
        for (const r of [a, b]) {
          if (r.error !== undefined && !(r.error instanceof ProtocolError)) {
            problems.push(`${label}: threw ${(r.error as Error)?.name}: ${(r.error as Error)?.message}`);
          }
          // Replies that ended before the mutation are exactly the clean ones.
          const intact = ends.filter((end) => end <= mutation.at).length;
          if (!isDeepStrictEqual(r.replies.slice(0, intact), clean.replies.slice(0, intact))) {
            problems.push(`${label}: a reply before the mutation changed`);
          }
          if (r.replies.length < intact) {
            problems.push(`${label}: only ${r.replies.length} of ${intact} intact replies`);
          }
        }
      }
      assert.deepEqual(problems, []);
      return Promise.resolve();
    }));
});

// ---------------------------------------------------------------- 2. a Client over a fake transport

/**
 * A transport whose "server" is a model: when a batch of requests is
 * complete it builds the reply stream, mutates it and delivers it in
 * random chunks, on timers it clears when closed.
 */
class FuzzTransport implements Transport {
  readonly name = "fuzz";
  readonly model = new ServerModel();
  known: { regions: Map<string, [number, number]>; mutation: Mutation } | undefined;
  #timers = new Set<ReturnType<typeof setTimeout>>();
  constructor(private readonly rng: Rng, private readonly expected: number) {}

  connect(_a: ServerAddress, _o: TransportConnectOptions, handlers: TransportHandlers): Promise<TransportSocket> {
    let closed = false;
    const requests: ScriptedRequest[] = [];
    const finish = (error?: Error) => {
      if (closed) return;
      closed = true;
      for (const t of this.#timers) clearTimeout(t);
      this.#timers.clear();
      handlers.onClose(error);
    };
    const reader = new RequestReader((req) => {
      requests.push(req);
      if (requests.length !== this.expected) return;
      const { bytes, regions, lineBytes } = buildStream(this.model, requests);
      const mutated = mutate(this.rng, bytes, lineBytes);
      this.known = { regions, mutation: mutated.mutation };
      // Delivered in order, one chunk after another: a burst in one task,
      // or a few ms apart (at most MAX_DRIBBLE_MS in all, well inside the timeout).
      const chunks: Uint8Array[] = [];
      let at = 0;
      for (const n of chunking(this.rng, mutated.bytes.length)) {
        chunks.push(mutated.bytes.slice(at, at + n));
        at += n;
      }
      const gaps = chunks.map(() => (this.rng.chance(0.3) ? this.rng.int(3) : 0));
      const ending = mutated.mutation.ending;
      let spent = 0;
      const deliver = (i: number) => {
        for (; i < chunks.length && !closed; i++) {
          handlers.onData(chunks[i]);
          const gap = i + 1 < chunks.length ? gaps[i + 1] : 0;
          if (gap > 0 && spent + gap <= MAX_DRIBBLE_MS) {
            spent += gap;
            const next = i + 1;
            const timer = setTimeout(() => (this.#timers.delete(timer), deliver(next)), gap);
            this.#timers.add(timer);
            return;
          }
        }
        if (ending === "close" || ending === "reset") {
          finish(ending === "reset" ? new Error("connection reset by peer") : undefined);
        }
      };
      const timer = setTimeout(() => (this.#timers.delete(timer), deliver(0)), 0);
      this.#timers.add(timer);
    });
    return Promise.resolve({
      write: (data: Uint8Array) => !closed && reader.feed(data),
      close: () => (finish(), Promise.resolve()),
    });
  }
}

describe("fuzz: Client over a scripted transport", () => {
  const seed = harnessSeed(13_002);
  it(`${ITERATIONS} pipelined batches, replies split and mutated (seed ${seed})`, () =>
    withSeed(seed, async () => {
      const rng = new Rng(seed);
      const inv = new Invariants("fuzz/transport");
      const trial = async (i: number) => {
        const trialRng = new Rng(rng.int(2 ** 31));
        const model = new ServerModel();
        const ops = makeTrial(trialRng, model, 1 + trialRng.int(12));
        const transport = new FuzzTransport(trialRng, ops.length);
        for (const [k, v] of model.items) transport.model.items.set(k, v);
        const client = new Client(`fuzz-${i}:11211`, { transport, timeout: TIMEOUT, connectTimeout: TIMEOUT });
        try {
          await runOps(inv, client, ops, () => transport.known);
        } finally {
          await client.close();
        }
      };
      for (let i = 0; i < ITERATIONS; i += 50) {
        await Promise.all(Array.from({ length: Math.min(50, ITERATIONS - i) }, (_, j) => trial(i + j)));
      }
      console.log(`# ${inv.summary()}`);
      inv.assertClean();
    }));
});

// ---------------------------------------------------------------- 3. over a loopback socket

describe("fuzz: Client over a loopback socket", () => {
  const seed = harnessSeed(13_003);
  const trials = Math.max(20, Math.floor(ITERATIONS / 5));
  /** Trials at once, each slot with a server of its own. */
  const SLOTS = 5;
  it(`${trials} batches, replies dribbled in random chunks and mutated (seed ${seed})`, () =>
    withSeed(seed, async () => {
      const rng = new Rng(seed);
      const inv = new Invariants("fuzz/socket");
      const seeds = Array.from({ length: trials }, () => rng.int(2 ** 31));
      const slot = async (first: number) => {
        let current: {
          rng: Rng;
          expected: number;
          known?: { regions: Map<string, [number, number]>; mutation: Mutation };
        } = { rng, expected: 0 };
        const pending: ScriptedRequest[] = [];
        await using server = await startScriptedServer({
          onConnection: () => void pending.splice(0),
          onRequest(req, io) {
            pending.push(req);
            if (pending.length !== current.expected) return;
            const { bytes, regions, lineBytes } = buildStream(io.model, pending.splice(0));
            const mutated = mutate(current.rng, bytes, lineBytes);
            current.known = { regions, mutation: mutated.mutation };
            let at = 0;
            let spent = 0;
            for (const n of chunking(current.rng, mutated.bytes.length)) {
              io.send(mutated.bytes.slice(at, at + n));
              at += n;
              const gap = current.rng.chance(0.2) ? current.rng.int(3) : 0;
              if (gap > 0 && spent + gap <= MAX_DRIBBLE_MS) {
                spent += gap;
                io.pause(gap);
              }
            }
            if (mutated.mutation.ending === "close") io.hangUp();
            if (mutated.mutation.ending === "reset") io.reset();
          },
        });
        for (let i = first; i < trials; i += SLOTS) {
          const trialRng = new Rng(seeds[i]);
          server.model.items.clear();
          const ops = makeTrial(trialRng, server.model, 1 + trialRng.int(12));
          current = { rng: trialRng, expected: ops.length };
          const trial = current;
          const client = new Client(server.spec, { timeout: TIMEOUT, connectTimeout: TIMEOUT });
          try {
            await runOps(inv, client, ops, () => trial.known, { resetLosesData: true });
          } finally {
            await client.close();
          }
        }
      };
      await Promise.all(Array.from({ length: SLOTS }, (_, i) => slot(i)));
      console.log(`# ${inv.summary()}`);
      inv.assertClean();
      assert.ok(inv.report.ok > 0);
    }));
});

// Keep MemcacheError referenced for readers: it is what every failure above must be.
void MemcacheError;
