/**
 * MemoryServer against memcached, in one run (the machine is shared and
 * noisy: compare the ratio, not the numbers across runs):
 *
 * - S1: sequential `get` of 100-byte values (1,000 keys), ops/s;
 * - S2: 50 concurrent callers doing sequential `get`s, ops/s;
 *
 * each through `server.transport()` (no socket) and over loopback TCP to a
 * memcached 1.6.18 this script starts, with the runtime's transport.
 * Rounds alternate between the two; medians are reported.
 *
 * `--hostile` instead measures what a hostile client costs, MemoryServer
 * over TCP (`listen()`) against memcached 1.6.18 in the same run:
 *
 * - H1: a 15 MB `get kkk…` line (no newline until the end) in 4 KB writes:
 *   the process's CPU time until it is answered, and the longest another
 *   connection waits for `version` meanwhile;
 * - H2: 300 connections each sending `set kN 0 0 1000000` and the first
 *   1,000 bytes of the block, then stalling: memcached's RSS growth at
 *   `-m 8`, MemoryServer's heap + buffers growth at `maxBytes` 8 MiB.
 *
 * `--memory` instead measures what an item costs beyond what `maxBytes`
 * counts (memcached's item size): run with a GC exposed, e.g.
 * `deno run -A --v8-flags=--expose-gc bench/memory_server.ts --memory`
 * or `bun bench/memory_server.ts --memory`.
 *
 *   deno run -A bench/memory_server.ts [--seconds 2] [--rounds 3]
 */
import process from "node:process";
import { Client } from "../mod.ts";
import { MemoryServer } from "../testing.ts";
import { itemSize } from "../src/server/_store.ts";
import { startMemcached } from "../tests/_support/_memcached.ts";
import net from "node:net";
import { execFileSync } from "node:child_process";

const arg = (name: string, fallback: number) => {
  const at = process.argv.indexOf(`--${name}`);
  return at >= 0 ? Number(process.argv[at + 1]) : fallback;
};
const SECONDS = arg("seconds", 2);
const ROUNDS = arg("rounds", 3);
const KEYS = Array.from({ length: 1000 }, (_, i) => `bench:${i}`);
const VALUE = new Uint8Array(100).fill(120);

async function fill(client: Client): Promise<void> {
  await client.setMany(Object.fromEntries(KEYS.map((k) => [k, VALUE])), { noreply: false });
}

async function s1(client: Client): Promise<number> {
  const end = performance.now() + SECONDS * 1000;
  let ops = 0;
  const start = performance.now();
  while (performance.now() < end) {
    for (let i = 0; i < 100; i++) await client.get(KEYS[(ops + i) % KEYS.length]);
    ops += 100;
  }
  return ops / ((performance.now() - start) / 1000);
}

async function s2(client: Client): Promise<number> {
  const end = performance.now() + SECONDS * 1000;
  let ops = 0;
  const start = performance.now();
  await Promise.all(Array.from({ length: 50 }, async (_, w) => {
    let i = w * 20;
    while (performance.now() < end) {
      await client.get(KEYS[i++ % KEYS.length]);
      ops++;
    }
  }));
  return ops / ((performance.now() - start) / 1000);
}

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
const fmt = (n: number) => Math.round(n).toLocaleString("en-US");

async function speed(): Promise<void> {
  await using memcached = await startMemcached();
  await using server = new MemoryServer();
  await using real = new Client(memcached.spec);
  await using memory = new Client("memory", { transport: server.transport() });
  await fill(real);
  await fill(memory);
  const results: Record<string, number[]> = {
    "S1 memcached": [],
    "S1 memory": [],
    "S2 memcached": [],
    "S2 memory": [],
  };
  for (let round = 0; round < ROUNDS; round++) {
    results["S1 memcached"].push(await s1(real));
    results["S1 memory"].push(await s1(memory));
    results["S2 memcached"].push(await s2(real));
    results["S2 memory"].push(await s2(memory));
  }
  const runtime = "Deno" in globalThis ? "deno" : "Bun" in globalThis ? "bun" : "node";
  console.log(`runtime ${runtime}, ${ROUNDS} rounds of ${SECONDS} s, medians (ops/s):`);
  for (const s of ["S1", "S2"]) {
    const a = median(results[`${s} memcached`]);
    const b = median(results[`${s} memory`]);
    console.log(
      `  ${s}: memcached over loopback ${fmt(a)}, MemoryServer.transport() ${fmt(b)}: ×${(b / a).toFixed(2)}`,
    );
  }
}

async function memory(): Promise<void> {
  const gc = (globalThis as { gc?: () => void }).gc;
  if (!gc) throw new Error("run with a GC exposed (--v8-flags=--expose-gc, or node --expose-gc)");
  const used = () => {
    gc();
    gc();
    const m = process.memoryUsage();
    return m.heapUsed + m.external;
  };
  const N = 100_000;
  for (const size of [10, 100, 1000]) {
    await using server = new MemoryServer({ maxBytes: 1 << 30 });
    await using client = new Client("memory", { transport: server.transport() });
    const value = new Uint8Array(size).fill(97);
    await client.set("warm", value, { noreply: false });
    const before = used();
    for (let i = 0; i < N; i += 1000) {
      const batch: Record<string, Uint8Array> = {};
      for (let j = i; j < i + 1000; j++) batch[`key:${String(j).padStart(6, "0")}`] = value;
      await client.setMany(batch, { noreply: false });
    }
    const after = used();
    const counted = itemSize(10, 0, size);
    const perItem = (after - before) / N;
    console.log(
      `${size}-byte values: ${perItem.toFixed(0)} bytes of heap per item, ${counted} counted toward maxBytes: ` +
        `${(perItem - counted).toFixed(0)} bytes of overhead`,
    );
  }
}

/** A raw socket that resolves `reply(end)` once what came back ends with `end`. */
function connect(port: number): Promise<{ socket: net.Socket; reply: (end: string) => Promise<string> }> {
  return new Promise((resolve, reject) => {
    const socket = net.connect(port, "127.0.0.1", () => {
      socket.off("error", reject);
      socket.on("error", () => {});
      socket.setNoDelay(true);
      let data = "";
      let wake: (() => void) | undefined;
      socket.on("data", (chunk: Uint8Array) => {
        data += String.fromCharCode(...chunk);
        wake?.();
      });
      socket.on("close", () => wake?.());
      resolve({
        socket,
        reply: async (end) => {
          while (!data.endsWith(end) && !socket.destroyed) await new Promise<void>((r) => (wake = r));
          const text = data;
          data = "";
          return text;
        },
      });
    });
    socket.on("error", reject);
  });
}

const tick = () => new Promise<void>((resolve) => setImmediate(resolve));

async function longLine(port: number): Promise<{ cpu: number; wait: number; reply: string }> {
  const attacker = await connect(port);
  const other = await connect(port);
  let done = false;
  let wait = 0;
  const poll = (async () => {
    while (!done) {
      const start = performance.now();
      other.socket.write("version\r\n");
      await other.reply("\r\n");
      wait = Math.max(wait, performance.now() - start);
      await tick();
    }
  })();
  const cpu0 = process.cpuUsage();
  const line = new TextEncoder().encode("get " + "k".repeat(15_000_000 - 6) + "\r\n");
  const answered = attacker.reply("\r\n");
  for (let at = 0; at < line.length; at += 4096) {
    attacker.socket.write(line.subarray(at, at + 4096));
    await tick();
  }
  const reply = await answered;
  const cpu = process.cpuUsage(cpu0);
  done = true;
  await poll;
  attacker.socket.destroy();
  other.socket.destroy();
  return { cpu: (cpu.user + cpu.system) / 1000, wait, reply: reply.trim() };
}

async function stalledSets(port: number, rss: () => number): Promise<number> {
  const before = rss();
  const sockets: net.Socket[] = [];
  for (let i = 0; i < 300; i++) {
    const { socket } = await connect(port);
    socket.write(`set k${i} 0 0 1000000\r\n` + "v".repeat(1000));
    sockets.push(socket);
  }
  await new Promise((resolve) => setTimeout(resolve, 1000));
  const grown = rss() - before;
  for (const socket of sockets) socket.destroy();
  return grown;
}

async function hostile(): Promise<void> {
  const mb = (n: number) => `${(n / 1048576).toFixed(0)} MB`;
  {
    await using memcached = await startMemcached();
    await using server = new MemoryServer();
    const { port } = await server.listen();
    for (const [name, p] of [["memcached", memcached.port], ["MemoryServer", port]] as const) {
      const r = await longLine(p);
      console.log(
        `H1 ${name}: 15 MB line in 4 KB writes: ${r.cpu.toFixed(0)} ms CPU (this process), ` +
          `another connection's version waited at most ${r.wait.toFixed(1)} ms; answer ${r.reply.slice(0, 40)}`,
      );
    }
  }
  {
    await using memcached = await startMemcached({ args: ["-m", "8", "-c", "4096"] });
    await using server = new MemoryServer({ maxBytes: 8 * 1024 * 1024 });
    const { port } = await server.listen();
    const pid = execFileSync("sh", ["-c", `pgrep -f -- "-p ${memcached.port}( |$)" | head -1`]).toString().trim();
    const memcachedRss = () =>
      Number(/VmRSS:\s+(\d+)/.exec(execFileSync("cat", [`/proc/${pid}/status`]).toString())![1]) * 1024;
    console.log(
      `H2 memcached -m 8: 300 stalled 1 MB sets, RSS +${mb(await stalledSets(memcached.port, memcachedRss))}`,
    );
    // Buffers of zeroes may not be in RSS until written: count what the heap and the buffers hold.
    const held = () => process.memoryUsage().heapUsed + process.memoryUsage().external;
    const ours = await stalledSets(port, held);
    console.log(`H2 MemoryServer maxBytes 8 MiB: 300 stalled 1 MB sets, heap + buffers +${mb(ours)}`);
  }
}

if (process.argv.includes("--hostile")) await hostile();
else if (process.argv.includes("--memory")) await memory();
else await speed();
