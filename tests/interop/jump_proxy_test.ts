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
 * it; see tests/_support/_memcached.ts): without it the cases fail, saying so, unless
 * MEMKIT_SKIP_1638=1.
 */
import assert from "node:assert/strict";
import { describe, it } from "../_support/_harness.ts";
import { Client, HashClient } from "../../mod.ts";
import { skipWithout1638, startProxy } from "../_support/_memcached.ts";

/** routelib: one pool of `backends` in that order, with `seed` as routelib takes it (in `options`). */
function seededConfig(backends: string[], seed: string | undefined): string {
  return [
    "pools{",
    "  main = {",
    `    backends = { ${backends.map((b) => JSON.stringify(b)).join(", ")} },`,
    ...(seed === undefined ? [] : [`    options = { seed = ${JSON.stringify(seed)} },`]),
    "  }",
    "}",
    'routes{ default = route_direct{ child = "main" } }',
    "",
  ].join("\n");
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
        {
          await using proxy = await startProxy({ backends: 3, config: (specs) => seededConfig(specs, seed) });
          const backends = proxy.backends;
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
        }
      },
      { skip: skipWithout1638() },
    );
  }
});
