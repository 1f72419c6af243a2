/**
 * `HashClient({ hasher: "jump" })` against memcached 1.6.38's built-in
 * proxy: 10,000 keys (every XXH3 length class) stored through a proxy pool
 * of three memcached backends, with and without a pool seed, then read
 * from each backend directly; the HashClient must name the same backend
 * for every key; and 300 binary meta keys, which the proxy places by the
 * base64 text sent, as the HashClient does. The proxy runs routelib (`proxy_config=routelib`), which
 * passes a pool's `options` (here `seed`) to `mcp.pool`.
 *
 * Needs memcached 1.6.38 with the proxy (scripts/build_memcached.sh builds
 * it into node_modules/.cache/memkit/; or MEMCACHED_1638_BIN): skipped,
 * saying so, when it is absent.
 */
import assert from "node:assert/strict";
import { type ChildProcess, spawn } from "node:child_process";
import { existsSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import process from "node:process";
import { fileURLToPath } from "node:url";
import { describe, it } from "./_harness.ts";
import { Client, HashClient } from "../mod.ts";
import { freePort, type MemcachedServer, probe, sleep, startMemcached } from "./_memcached.ts";

const BUILT = join("node_modules", ".cache", "memkit", "memcached-1.6.38", "memcached");

/** memcached 1.6.38: MEMCACHED_1638_BIN, else the build cache in a node_modules up from here or the cwd. */
function proxyBinary(): string | undefined {
  if (process.env.MEMCACHED_1638_BIN) return process.env.MEMCACHED_1638_BIN;
  const starts = [process.cwd()];
  try {
    starts.push(dirname(fileURLToPath(import.meta.url)));
  } catch { /* not a file: URL */ }
  for (const start of starts) {
    for (let dir = start, i = 0; i < 8; i++) {
      if (existsSync(join(dir, BUILT))) return join(dir, BUILT);
      const up = dirname(dir);
      if (up === dir) break;
      dir = up;
    }
  }
  return undefined;
}

const BIN = proxyBinary();
const skip = BIN === undefined
  ? `memcached 1.6.38 (with the proxy) is not built: run bash scripts/build_memcached.sh, or set MEMCACHED_1638_BIN`
  : false;

/** A memcached proxy in front of `backends` (one routelib pool, in that order); `await using` stops it. */
async function startProxy(backends: MemcachedServer[], seed?: string): Promise<AsyncDisposable & { spec: string }> {
  const dir = mkdtempSync(join(tmpdir(), "memkit-proxy-"));
  const config = join(dir, "config.lua");
  writeFileSync(
    config,
    [
      "pools{",
      "  main = {",
      `    backends = { ${backends.map((b) => JSON.stringify(b.spec)).join(", ")} },`,
      ...(seed === undefined ? [] : [`    options = { seed = ${JSON.stringify(seed)} },`]),
      "  }",
      "}",
      'routes{ default = route_direct{ child = "main" } }',
      "",
    ].join("\n"),
  );
  const port = await freePort();
  const args = ["-U", "0", "-t", "1", "-l", "127.0.0.1", "-p", String(port), "-o"];
  args.push(`proxy_config=routelib,proxy_arg=${config}`);
  if (process.getuid?.() === 0) args.push("-u", "root");
  const child: ChildProcess = spawn(BIN!, args, { stdio: ["ignore", "ignore", "pipe"] });
  let stderr = "";
  child.stderr!.on("data", (d) => (stderr += d));
  child.once("error", () => {});
  let gone = false;
  const exited = new Promise<void>((resolve) => child.once("close", () => ((gone = true), resolve())));
  const stop = async () => {
    if (!gone) child.kill("SIGKILL");
    await exited;
    rmSync(dir, { recursive: true, force: true });
  };
  for (let i = 0; i < 300 && !gone; i++) {
    if (await probe({ host: "127.0.0.1", port })) {
      // The proxy listens before its config is loaded: wait until a backend answers through it.
      await using client = new Client(`127.0.0.1:${port}`, { timeout: 1000 });
      try {
        await client.get("memkit-proxy-ready");
        return { spec: `127.0.0.1:${port}`, [Symbol.asyncDispose]: stop };
      } catch { /* not routing yet */ }
    }
    await sleep(10);
  }
  await stop();
  throw new Error(`the memcached proxy did not start: ${stderr.trim() || "no output"}`);
}

/** 10,000 keys: 1-16 bytes (XXH3 0-16 class), 17-128, 129-240 and 241-250 bytes. */
function testKeys(): string[] {
  const keys: string[] = [];
  for (let i = 0; i < 10_000; i++) {
    const base = `k${i}:`;
    const length = [1 + (i % 15), 17 + (i % 112), 129 + (i % 112), 241 + (i % 10)][i % 4];
    keys.push((base + "x".repeat(length)).slice(0, Math.max(length, base.length)));
  }
  return keys;
}

describe("HashClient hasher jump against memcached 1.6.38's proxy", () => {
  for (const seed of [undefined, "pool seed"]) {
    it(
      `10,000 keys land on the backend the proxy pool picks (${seed === undefined ? "no seed" : "seed"})`,
      async () => {
        const backends = [await startMemcached(), await startMemcached(), await startMemcached()];
        try {
          await using proxy = await startProxy(backends, seed);
          const keys = testKeys();
          assert.equal(new Set(keys).size, keys.length);
          {
            await using through = new Client(proxy.spec, { timeout: 10_000 });
            const notStored = await through.setMany(Object.fromEntries(keys.map((k) => [k, "v"])), { noreply: false });
            assert.deepEqual(notStored, []);
          }
          const actual = new Map<string, string>();
          for (const backend of backends) {
            await using direct = new Client(backend.spec, { timeout: 10_000 });
            for (const key of (await direct.getMany(keys)).keys()) actual.set(key, backend.spec);
          }
          assert.equal(actual.size, keys.length, "every key stored on one backend");
          for (const backend of backends) {
            assert.ok([...actual.values()].filter((s) => s === backend.spec).length > 2000, backend.spec);
          }
          const cluster = new HashClient(backends.map((b) => b.spec), { hasher: "jump", seed });
          const wrong = keys.filter((key) => cluster.serverFor(key) !== actual.get(key));
          assert.deepEqual(wrong.slice(0, 3), [], `${wrong.length} of ${keys.length} keys placed elsewhere`);
          // Binary meta keys: the proxy places them by the base64 text sent, as the HashClient does.
          const binaries = Array.from({ length: 300 }, (_, i) => new Uint8Array([i & 255, 0, 255, i >> 8, 13, 10]));
          await using meta = new HashClient(backends.map((b) => b.spec), { hasher: "jump", seed });
          {
            await using through = new Client(proxy.spec, { timeout: 10_000 });
            for (const key of binaries) assert.equal((await through.metaSet(key, "b")).stored, true);
          }
          for (const backend of backends) {
            await using direct = new Client(backend.spec);
            for (const [key, result] of await direct.metaGetMany(binaries)) {
              assert.ok(result.hit);
              const mine = await meta.metaSet(key, "mine", { noreply: false });
              assert.equal(mine.stored, true);
              assert.equal((await direct.metaGet(key)).value, "mine", `binary key ${String(key)}`);
            }
          }
          // The other seed places differently: the comparison can fail.
          const other = new HashClient(backends.map((b) => b.spec), { hasher: "jump", seed: seed ? undefined : "x" });
          assert.ok(keys.filter((key) => other.serverFor(key) !== actual.get(key)).length > 3000);
        } finally {
          await Promise.all(backends.map((b) => b[Symbol.asyncDispose]()));
        }
      },
      { skip },
    );
  }
});
