/**
 * PickleSerde's reader against JSON.parse: a dict of mixed types (str,
 * int, float, bool, None, lists, nested dicts) of about 10 KB, pickled the
 * way the Python clients write it (protocol 5 as pylibmc and pymemcache,
 * protocol 0 as python-memcached; by Python itself when /usr/bin/python3 or
 * python3 is there, else by this library's writer), decoded against
 * `JSON.parse` of the same data as JSON text (decoded from UTF-8 bytes too,
 * as a cache read gets them). Prints each one's best time per decode over
 * 7 interleaved rounds, and the ratio.
 *
 * Then hostile input: for every text opcode (INT, LONG, FLOAT, STRING,
 * UNICODE, GLOBAL, PUT, GET), an argument the reader must refuse, 1 MiB and
 * 4 MiB long, and the milliseconds per MiB to refuse it at each size: equal
 * figures mean linear work (a quadratic parser shows 4× at the larger size).
 *
 *   node_modules/deno/deno run -A bench/pickle.ts
 *   node_modules/.bin/bun bench/pickle.ts
 *
 * @module
 */

import { execFileSync } from "node:child_process";
import { unpickle } from "../src/values/_pickle_read.ts";
import { OPCODES, TEXT_OPCODES } from "../src/values/_pickle_ops.ts";
import { pickle } from "../src/values/_pickle_write.ts";

function sample(): Record<string, unknown> {
  let seed = 18;
  const rand = () => (seed = (seed * 1103515245 + 12345) % 2 ** 31) / 2 ** 31;
  const word = () => Math.floor(rand() * 36 ** 6).toString(36);
  const out: Record<string, unknown> = {};
  for (let i = 0; out && JSON.stringify(out).length < 10_000; i++) {
    switch (i % 6) {
      case 0:
        out[`user_${i}`] = { id: i * 7919, name: `${word()} ${word()}`, active: rand() > 0.5, score: rand() * 100 };
        break;
      case 1:
        out[`tags_${i}`] = [word(), word(), word()];
        break;
      case 2:
        out[`count_${i}`] = Math.floor(rand() * 1e6);
        break;
      case 3:
        out[`ratio_${i}`] = rand();
        break;
      case 4:
        out[`note_${i}`] = `${word()} ${word()} ${word()} é ✓`;
        break;
      default:
        out[`empty_${i}`] = null;
    }
  }
  return out;
}

function pythonPickle(json: string, protocol: number): Uint8Array | null {
  for (const python of ["/usr/bin/python3", "python3"]) {
    try {
      const hex = execFileSync(python, [
        "-c",
        `import json, pickle, sys; print(pickle.dumps(json.loads(sys.stdin.read()), ${protocol}).hex())`,
      ], { input: json, stdio: ["pipe", "pipe", "ignore"] }).toString().trim();
      return new Uint8Array(hex.match(/../g)!.map((h) => parseInt(h, 16)));
    } catch {
      // try the next
    }
  }
  return null;
}

function time(fn: () => unknown, ms = 1500): number {
  for (let i = 0; i < 200; i++) fn(); // warm up
  let runs = 0;
  const start = performance.now();
  let now = start;
  while (now - start < ms) {
    for (let i = 0; i < 50; i++) fn();
    runs += 50;
    now = performance.now();
  }
  return ((now - start) * 1e6) / runs; // ns per run
}

const value = sample();
const json = JSON.stringify(value);
const jsonBytes = new TextEncoder().encode(json);
const decoder = new TextDecoder();
const rows: [string, Uint8Array | null][] = [
  ["Python protocol 5 (pylibmc, pymemcache)", pythonPickle(json, 5)],
  ["Python protocol 0 (python-memcached)", pythonPickle(json, 0)],
  ["this library's writer, protocol 3", pickle(value, 3)],
];
// Rounds interleave the contenders; each one's best round counts (the host's other load only slows a round down).
const ROUNDS = 7;
const best = new Map<string, number>();
for (let round = 0; round < ROUNDS; round++) {
  const jsonNs = time(() => JSON.parse(decoder.decode(jsonBytes)), 300);
  best.set("json", Math.min(best.get("json") ?? Infinity, jsonNs));
  for (const [name, bytes] of rows) {
    if (bytes !== null) best.set(name, Math.min(best.get(name) ?? Infinity, time(() => unpickle(bytes), 300)));
  }
}
const jsonNs = best.get("json")!;
console.log(`JSON: ${jsonBytes.length} bytes, JSON.parse(TextDecoder.decode(...)): ${(jsonNs / 1000).toFixed(1)} µs`);
for (const [name, bytes] of rows) {
  if (bytes === null) {
    console.log(`${name}: skipped (no python3)`);
    continue;
  }
  const ns = best.get(name)!;
  console.log(
    `${name}: ${bytes.length} bytes, unpickle ${(ns / 1000).toFixed(1)} µs, ${(ns / jsonNs).toFixed(2)}× JSON.parse`,
  );
}

// ---- hostile arguments: milliseconds per MiB at two sizes
const MiB = 1 << 20;
const hostile: Record<string, (n: number) => string> = {
  INT: (n) => "1".repeat(n) + "x",
  LONG: (n) => "1".repeat(n) + "xL",
  FLOAT: (n) => "1".repeat(n) + "x", // the backtracking case: 100,000 digits took 4.5 s to refuse before
  STRING: (n) => "'" + "\\1".repeat(n / 2) + "\\xff'",
  UNICODE: (n) => "\\u00e9".repeat(n / 6) + "\\uZZZZ",
  GLOBAL: (n) => "a".repeat(n / 2) + "\n" + "b".repeat(n / 2),
  PUT: (n) => "1".repeat(n) + "x",
  GET: (n) => "1".repeat(n) + "x",
};
const latin1 = (s: string) => Uint8Array.from(s, (c) => c.charCodeAt(0));
function msToRefuse(bytes: Uint8Array): number {
  let best = Infinity;
  for (let round = 0; round < 5; round++) {
    const start = performance.now();
    try {
      unpickle(bytes);
      throw new Error("a hostile pickle was read");
    } catch (error) {
      if (!(error instanceof Error) || error.name !== "MemcachePickleError") throw error;
    }
    best = Math.min(best, performance.now() - start);
  }
  return best;
}
const cells: string[] = [];
for (const op of TEXT_OPCODES) {
  const name = OPCODES.get(op)!.name;
  const make = (n: number) => latin1((name === "PUT" ? "N" : "") + String.fromCharCode(op) + hostile[name](n) + "\n.");
  const [small, large] = [1, 4].map((m) => msToRefuse(make(m * MiB)) / m);
  cells.push(`${name} ${small.toFixed(1)} / ${large.toFixed(1)}`);
}
console.log(`hostile text arguments, ms per MiB to refuse at 1 MiB / 4 MiB: ${cells.join(", ")}`);
