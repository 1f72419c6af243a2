/**
 * One cache shared with Python apps, both directions, against the real
 * libraries (Debian's python3-pylibmc, python3-memcache, python3-pymemcache,
 * python3-cachelib; scripts/apt-packages.txt installs them): cachelib's
 * MemcachedCache over pylibmc and over python-memcached, and pymemcache's
 * HashClient with its pickle serde, write dicts, lists, tuples, floats,
 * None, bools, str, ints (small and beyond 2^64), bytes, sets and nested
 * values to one and to two memcached servers; MemcachedCache here, with
 * `compatibleWith`, reads every one, writes them back, and Python reads
 * those equal (tests/tools/python_interop.py does the Python side). Skipped,
 * with the reason, only when python3 or one of the libraries is missing.
 */
import assert from "node:assert/strict";
import { execFile, execFileSync } from "node:child_process";
import { existsSync } from "node:fs";
import { dirname, join } from "node:path";
import process from "node:process";
import { fileURLToPath } from "node:url";
import { inspect } from "node:util";
import { describe, it } from "../_support/_harness.ts";
import { comparable, untag } from "./_python_tags.ts";
import { readFileSync } from "node:fs";
import {
  CompressedSerde,
  HashClient,
  MemcachedCache,
  MemcachePickleError,
  MemcacheSerdeError,
  PickleSerde,
  type PythonClientName,
} from "../../mod.ts";
import { cmemcacheHash, crc32, Crc32Hash, ModulaHash, oneAtATime } from "../../src/placement/_python_hash.ts";
import { startMemcached } from "../_support/_memcached.ts";

/** tests/tools/python_interop.py, beside this file or, for the compiled tests (in <repo>/.tmp/...), up the tree. */
function script(): string {
  let dir = dirname(fileURLToPath(import.meta.url));
  for (;;) {
    for (
      const candidate of [join(dir, "tools", "python_interop.py"), join(dir, "tests", "tools", "python_interop.py")]
    ) {
      if (existsSync(candidate)) return candidate;
    }
    if (dirname(dir) === dir) return join(process.cwd(), "tests", "tools", "python_interop.py");
    dir = dirname(dir);
  }
}

/** The first python3 that has all four libraries (Debian's lives in /usr/bin), or why there is none. */
function findPython(): { python: string } | { skip: string } {
  const tried: string[] = [];
  for (const python of [process.env.PYTHON3, "/usr/bin/python3", "python3"]) {
    if (!python) continue;
    try {
      execFileSync(python, [script(), "check"], { stdio: ["ignore", "pipe", "pipe"], timeout: 30_000 });
      return { python };
    } catch (error) {
      const stderr = String((error as { stderr?: unknown }).stderr ?? error).trim().split("\n").pop();
      tried.push(`${python}: ${stderr}`);
    }
  }
  return {
    skip: `no python3 with pylibmc, memcache, pymemcache and cachelib ` +
      `(apt-get install python3-pylibmc python3-memcache python3-pymemcache python3-cachelib): ${tried.join("; ")}`,
  };
}

const found = findPython();
const skip = "skip" in found ? found.skip : false;

function runPython(args: string[]): Promise<unknown> {
  const python = "python" in found ? found.python : "python3";
  return new Promise((resolve, reject) => {
    execFile(python, [script(), ...args], { timeout: 60_000, maxBuffer: 16 << 20 }, (error, stdout, stderr) => {
      if (error) reject(new Error(`python ${args.join(" ")} failed: ${error.message}\n${stderr}`));
      else resolve(JSON.parse(stdout));
    });
  });
}

const LIBRARIES: PythonClientName[] = ["pylibmc", "python-memcached", "pymemcache"];

describe("Sharing a cache with Python", () => {
  for (const library of LIBRARIES) {
    for (const count of [1, 2]) {
      it(
        `${library}, ${count} server${count === 1 ? "" : "s"}: Python writes, we read; we write, Python reads`,
        async () => {
          await using a = await startMemcached();
          await using b = await startMemcached();
          const servers = count === 1 ? [a.spec] : [a.spec, b.spec];
          const prefix = `${library}-${count}-`;
          const expected = await runPython(["write", library, servers.join(","), prefix]) as Record<string, unknown>;
          const names = Object.keys(expected);
          assert.ok(names.length >= 20);

          await using cache = new MemcachedCache(servers, { compatibleWith: library, keyPrefix: prefix });
          const read = new Map<string, unknown>();
          for (const name of names) {
            const value = await cache.get(name);
            assert.deepStrictEqual(
              comparable(value, true),
              comparable(untag(expected[name]), false),
              `${library}: ${name} read as ${inspect(value)}`,
            );
            read.set(name, value);
          }
          const many = await cache.getMany(...names);
          assert.equal(many.filter((v) => v === null).length, names.filter((n) => expected[n] === null).length);

          // Back the other way: what we read, under "ts-<name>".
          const stored = await cache.setMany(new Map([...read].map(([name, value]) => [`ts-${name}`, value])), 0);
          assert.equal(stored.length, names.length);
          assert.equal(await cache.inc("counter", 5), 15); // atomic incr on what Python stored
          assert.equal(await cache.dec("counter", 20), -5); // below zero: read, then write, as cachelib
          assert.equal(await cache.inc("ts-counter", 41), 41); // missing: starts at delta

          if (library !== "pymemcache") {
            // Compressed both ways: Python wrote "zipped" with min_compress_len; we write "ts-zipped" through
            // CompressedSerde over PickleSerde (flag 9, zlib).
            assert.ok(read.has("zipped"));
            const serde = new CompressedSerde({
              serde: new PickleSerde({ compatibleWith: library }),
              minCompressLen: 10,
            });
            await using zipping = new HashClient(servers, { compatibleWith: library, serde, defaultNoreply: false });
            await zipping.set(`${prefix}ts-zipped`, read.get("zipped"));
            await using raw = new HashClient(servers, {
              hasher: zipping.hasher,
              serde: { serialize: () => ["", 0], deserialize: (_k, _v, f) => f },
            });
            assert.equal(await raw.get(`${prefix}ts-zipped`), 9);
            assert.equal(await raw.get(`${prefix}zipped`), 9); // Python compressed it too
          }

          const wrong = await runPython(["read", library, servers.join(","), prefix]);
          assert.deepEqual(wrong, {}, `${library} read back differently`);

          if (count === 2) {
            // Both servers hold keys: placement was really exercised.
            for (const server of [a, b]) {
              await using one = new MemcachedCache([server.spec], { compatibleWith: library });
              const held = (await one.getMany(...names.map((n) => prefix + n))).filter((v) => v !== null);
              assert.ok(held.length > 0 && held.length < names.length, `${server.spec} holds ${held.length} keys`);
            }
          }
        },
        { skip },
      );
    }
  }

  it("a pickle that would run code rejects get with MemcachePickleError, a MemcacheSerdeError; the cache goes on", async () => {
    await using server = await startMemcached();
    await using cache = new MemcachedCache([server.spec], { compatibleWith: "pymemcache" });
    // What Python's pickle.dumps writes for an object whose __reduce__ is (os.system, ("echo pwned",)).
    const evil = new TextEncoder().encode("cposix\nsystem\np0\n(Vecho pwned\np1\ntp2\nRp3\n.");
    await cache.client.set("evil", evil, { flags: 1, noreply: false });
    await cache.set("fine", { ok: true });
    await assert.rejects(cache.get("evil"), (e: unknown) => {
      assert.ok(e instanceof MemcachePickleError, `not a MemcachePickleError: ${e}`);
      assert.ok(e instanceof MemcacheSerdeError);
      assert.match((e as Error).message, /global posix\.system is not allowed/);
      return true;
    });
    assert.deepEqual({ ...(await cache.get("fine") as object) }, { ok: true });
  });

  it("integers beyond the int64 range and below zero stay exact both ways", async () => {
    await using server = await startMemcached();
    await using cache = new MemcachedCache([server.spec], { compatibleWith: "python-memcached" });
    await cache.set("big", 2n ** 70n);
    assert.equal(await cache.get("big"), 2n ** 70n);
    await cache.set("neg", -(2n ** 70n));
    assert.equal(await cache.get("neg"), -(2n ** 70n));
    assert.equal(await cache.inc("neg", 1), -(2n ** 70n) + 1n);
    await cache.set("top", 2n ** 64n - 2n);
    assert.equal(await cache.inc("top", 5), 2n ** 64n + 3n); // past 2^64−1: written exactly
    assert.equal(await cache.get("top"), 2n ** 64n + 3n);
    assert.equal(await cache.inc("top", 1), 2n ** 64n + 4n); // memcached cannot incr it: read, then write
    assert.equal(await cache.dec("fresh", 3), -3);
    assert.equal(await cache.get("fresh"), -3);
  });
});

/** A placement table from tests/data/ (written by tests/tools/gen_python_hash_tables.py through the real libraries). */
function table(name: string): { keys: string[]; placements: [string, string[], number[]][] } {
  const raw = JSON.parse(readFileSync(new URL(`../data/${name}`, import.meta.url), "utf8"));
  return {
    keys: raw.keys.split("\n"),
    placements: Object.entries<{ servers: string[]; server: string }>(raw.placements).map((
      [list, p],
    ) => [list, p.servers, p.server.split(",").map(Number)]),
  };
}

describe("Placement as the Python clients place keys", () => {
  const cases = [
    ["modula_pylibmc.json", "modula", "pylibmc"],
    ["crc32_python_memcached.json", "crc32", "python-memcached"],
  ] as const;
  for (const [file, hasher, library] of cases) {
    it(`"${hasher}" puts every key where ${library} did (${file})`, () => {
      const { keys, placements } = table(file);
      assert.ok(keys.length >= 2000 && placements.length >= 7);
      assert.ok(keys.some((k) => [...k].some((c) => c.charCodeAt(0) > 0x7f)), "non-ASCII keys are in the table");
      for (const [list, servers, server] of placements) {
        for (
          const client of [
            new HashClient(servers, { hasher, allowUnicodeKeys: true }),
            new HashClient(servers, { compatibleWith: library, allowUnicodeKeys: true }),
          ]
        ) {
          assert.equal(client.hasher, hasher);
          const wrong = keys.filter((key, i) => client.serverFor(key) !== servers[server[i]]);
          assert.deepEqual(wrong.slice(0, 5), [], `${list}: ${wrong.length} of ${keys.length} keys misplaced`);
        }
      }
    });
  }

  it("the hash functions: CRC-32, python-memcached's 15 bits, libmemcached's one-at-a-time", () => {
    const utf8 = (s: string) => new TextEncoder().encode(s);
    assert.equal(crc32(utf8("123456789")), 0xcbf43926); // the CRC-32 check value
    assert.equal(crc32(new Uint8Array(0)), 0);
    assert.equal(cmemcacheHash(utf8("123456789")), (0xcbf43926 >>> 16) & 0x7fff);
    assert.equal(cmemcacheHash(new Uint8Array(0)), 1); // 0 becomes 1
    assert.equal(oneAtATime(new Uint8Array(0)), 0);
    assert.equal(oneAtATime(utf8("a")), 0xca2e9442); // Bob Jenkins' one-at-a-time of "a"
  });

  it("dead servers: crc32 re-hashes as python-memcached, modula spreads over the live ones", () => {
    const nodes = ["a:1", "b:2", "c:3"];
    const crc = new Crc32Hash(nodes);
    const modula = new ModulaHash(nodes);
    const keys = Array.from({ length: 300 }, (_, i) => `key${i}`);
    const before = new Map(keys.map((k) => [k, [crc.getNode(k), modula.getNode(k)]]));
    crc.removeNode("b:2");
    modula.removeNode("b:2");
    for (const key of keys) {
      const [wasCrc] = before.get(key)!;
      const now = crc.getNode(key);
      assert.notEqual(now, "b:2");
      if (wasCrc !== "b:2") {
        assert.equal(now, wasCrc, "keys of live servers stay (python-memcached re-hashes only misses)");
      }
      // python-memcached: hash, then str(hash) + str(attempt) re-hashed while the bucket is dead
      let hash = cmemcacheHash(new TextEncoder().encode(key));
      let attempt = 0;
      while (nodes[hash % 3] === "b:2") hash = cmemcacheHash(new TextEncoder().encode(`${hash}${attempt++}`));
      assert.equal(now, nodes[hash % 3]);
      assert.equal(modula.getNode(key), ["a:1", "c:3"][oneAtATime(new TextEncoder().encode(key)) % 2]);
    }
    crc.addNode("b:2");
    modula.addNode("b:2");
    for (const key of keys) assert.deepEqual([crc.getNode(key), modula.getNode(key)], before.get(key));
    for (const node of nodes) {
      crc.removeNode(node);
      modula.removeNode(node);
    }
    assert.equal(crc.getNode("k"), null);
    assert.equal(modula.getNode("k"), null);
  });

  it("compatibleWith picks the serde and hasher; explicit options win; unknown names are refused", () => {
    const picks = { pylibmc: "modula", "python-memcached": "crc32", pymemcache: "rendezvous" } as const;
    for (const [library, hasher] of Object.entries(picks)) {
      const client = new HashClient(["127.0.0.1:1"], { compatibleWith: library as PythonClientName });
      assert.equal(client.hasher, hasher);
      assert.ok(client.serde instanceof PickleSerde);
      assert.equal((client.serde as PickleSerde).compatibleWith, library);
      const cache = new MemcachedCache(["127.0.0.1:1"], { compatibleWith: library as PythonClientName });
      assert.equal(cache.compatibleWith, library);
      assert.equal((cache.client as HashClient).hasher, hasher);
    }
    const explicit = new HashClient(["127.0.0.1:1"], { compatibleWith: "pylibmc", hasher: "ketama" });
    assert.equal(explicit.hasher, "ketama");
    assert.throws(() => new HashClient(["127.0.0.1:1"], { compatibleWith: "libmc" as PythonClientName }), TypeError);
    assert.throws(() => new HashClient(["127.0.0.1:1"], { hasher: "md5" as "modula" }), TypeError);
    assert.throws(() => new MemcachedCache(["127.0.0.1:1"], { compatibleWith: "x" as PythonClientName }), TypeError);
  });
});
