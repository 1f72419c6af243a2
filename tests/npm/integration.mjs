// The installed npm package, as a Node or Bun user gets it: run by
// scripts/stages/40-npm.sh inside a fresh project where the packed tarball was
// installed, with MEMCACHED=host:port of a memcached the stage spawned.
// Plain JavaScript, no test framework: the same file runs in `node`, `bun`
// and `deno` (which takes the package from node_modules/ like npm: imports).
// Prints one line per case and last "N passed, N failed".
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { createRequire } from "node:module";
import net from "node:net";
import process from "node:process";
import { fileURLToPath } from "node:url";
import {
  Client,
  defaultSerde,
  FLAG_JSON,
  FLAG_TEXT,
  HashClient,
  MemcacheClientError,
  MemcachedCache,
  MemcacheError,
  MemcacheIllegalInputError,
  MemcacheUnexpectedCloseError,
  parseServerSpec,
  PooledClient,
  RetryingClient,
} from "@memkit/memcache";
import { NodeTransport } from "@memkit/memcache/node";

const SPEC = process.env.MEMCACHED;
if (!SPEC) throw new Error("set MEMCACHED=host:port");
const runtime = typeof globalThis.Bun === "object" ? "bun" : typeof globalThis.Deno === "object" ? "deno" : "node";
const entry = runtime === "deno" ? "mod.deno.js" : "mod.node.js";
const cases = [];
const test = (name, body) => cases.push({ name, body });
let n = 0;
const key = (name) => `npm-${runtime}-${process.pid}-${n++}-${name}`;

/** Sends one raw command to memcached and returns the reply text. */
function raw(command, end) {
  const { host, port } = parseServerSpec(SPEC);
  return new Promise((resolve, reject) => {
    const socket = net.connect({ host, port });
    let reply = "";
    socket.on("error", reject);
    socket.on("data", (chunk) => {
      reply += chunk.toString("latin1");
      if (reply.endsWith(end)) {
        socket.destroy();
        resolve(reply);
      }
    });
    socket.write(command);
  });
}

test(`"@memkit/memcache" resolves to the ${runtime} entry`, () => {
  const url = import.meta.resolve("@memkit/memcache");
  assert.ok(url.endsWith(`/node_modules/@memkit/memcache/${entry}`), url);
  const pkg = JSON.parse(readFileSync(fileURLToPath(import.meta.resolve("@memkit/memcache/package.json")), "utf8"));
  assert.equal(pkg.name, "@memkit/memcache");
  assert.equal(pkg.type, "module");
  assert.deepEqual(pkg.dependencies ?? {}, {});
  // The entry registers the default transport when imported: bundlers must keep it.
  assert.deepEqual(pkg.sideEffects, ["./mod.js", "./mod.*.js"]);
  assert.equal(pkg.engines.node, ">=20");
});

test("set/get round-trips strings, integers, JSON and bytes with the default transport", async () => {
  const client = new Client(SPEC);
  try {
    const [s, i, j, b] = [key("s"), key("i"), key("j"), key("b")];
    assert.equal(await client.set(s, "héllo ✓"), true);
    await client.set(i, 12345678901234567890n);
    await client.set(j, { list: [1, "two", null] }, { expire: 60 });
    await client.set(b, new Uint8Array([0, 13, 10, 255]));
    assert.equal(await client.get(s), "héllo ✓");
    assert.equal(await client.get(i), 12345678901234567890n);
    assert.deepEqual(await client.get(j), { list: [1, "two", null] });
    assert.deepEqual(await client.get(b), new Uint8Array([0, 13, 10, 255]));
    assert.equal(await client.get(key("missing"), "fallback"), "fallback");
    const many = await client.getMany([s, key("missing"), j]);
    assert.deepEqual([...many.keys()], [s, j]);
  } finally {
    await client.close();
  }
});

test("items are stored with pymemcache's flags (read back over a raw socket)", async () => {
  const client = new Client(SPEC);
  try {
    const [s, j] = [key("s"), key("j")];
    await client.set(s, "text", { noreply: false });
    await client.set(j, [1, 2], { noreply: false });
    assert.equal(await raw(`get ${s}\r\n`, "END\r\n"), `VALUE ${s} ${FLAG_TEXT} 4\r\ntext\r\nEND\r\n`);
    assert.equal(await raw(`get ${j}\r\n`, "END\r\n"), `VALUE ${j} ${FLAG_JSON} 5\r\n[1,2]\r\nEND\r\n`);
    assert.equal(typeof defaultSerde.serialize, "function");
  } finally {
    await client.close();
  }
});

test("cas, incr/decr, add/replace, touch and delete", async () => {
  const client = new Client(SPEC, { transport: new NodeTransport() });
  try {
    const [c, k] = [key("c"), key("k")];
    await client.set(c, "v1");
    const [value, cas] = await client.gets(c);
    assert.equal(value, "v1");
    assert.match(cas, /^\d+$/);
    assert.equal(await client.cas(c, "v2", cas), true);
    assert.equal(await client.cas(c, "v3", cas), false);
    assert.equal(await client.cas(key("none"), "v", "1"), null);
    await client.set(k, 10);
    assert.equal(await client.incr(k, 5), 15);
    assert.equal(await client.decr(k, 20), 0);
    assert.equal(await client.incr(key("none"), 1), null);
    assert.equal(await client.add(c, "x", { noreply: false }), false);
    assert.equal(await client.replace(c, "v4", { noreply: false }), true);
    assert.equal(await client.touch(c, 100, { noreply: false }), true);
    assert.equal(await client.delete(c, { noreply: false }), true);
    assert.equal(await client.delete(c, { noreply: false }), false);
    assert.match(await client.version(), /^\d+\.\d+/);
  } finally {
    await client.close();
  }
});

test("PooledClient and HashClient from the package", async () => {
  const pooled = new PooledClient(SPEC, { maxPoolSize: 3 });
  const hashed = new HashClient([SPEC]);
  try {
    const keys = Array.from({ length: 12 }, (_, i) => key(`p${i}`));
    await Promise.all(keys.map((k, i) => pooled.set(k, i, { noreply: false })));
    assert.deepEqual(await Promise.all(keys.map((k) => pooled.get(k))), keys.map((_, i) => i));
    await hashed.setMany(Object.fromEntries(keys.map((k) => [k, `h-${k}`])));
    const found = await hashed.getMany(keys);
    assert.deepEqual([...found.values()], keys.map((k) => `h-${k}`));
  } finally {
    await Promise.all([pooled.close(), hashed.close()]);
  }
});

test("MemcachedCache: set/get, inc/dec, getDict, getMany, has, add and deleteMany, under a key prefix", async () => {
  const prefix = `mc-${runtime}-${process.pid}:`;
  const cache = new MemcachedCache([SPEC], { keyPrefix: prefix, defaultTimeout: 60 });
  try {
    const [a, b, n, missing] = [key("a"), key("b"), key("n"), key("missing")];
    assert.ok(cache.client instanceof HashClient);
    assert.equal(await cache.set(a, "alpha"), true);
    assert.equal(await cache.set(b, { x: [1, 2] }, 0), true);
    assert.equal(await cache.get(a), "alpha");
    assert.equal(
      await raw(`get ${prefix}${a}\r\n`, "END\r\n"),
      `VALUE ${prefix}${a} ${FLAG_TEXT} 5\r\nalpha\r\nEND\r\n`,
    );
    assert.equal(await cache.inc(n), 1); // a missing key starts at delta
    assert.equal(await cache.inc(n, 10), 11);
    assert.equal(await cache.dec(n, 20), -9); // signed, not clamped at 0 as memcached's decr
    assert.equal(
      await raw(`get ${prefix}${n}\r\n`, "END\r\n"),
      `VALUE ${prefix}${n} 2 20\r\n18446744073709551607\r\nEND\r\n`,
    );
    assert.equal(await cache.dec(key("fresh"), 3n), -3);
    const dict = await cache.getDict(a, b, n, missing, "bad key");
    assert.ok(dict instanceof Map);
    assert.deepEqual([...dict], [[a, "alpha"], [b, { x: [1, 2] }], [n, -9], [missing, null], ["bad key", null]]);
    assert.deepEqual(await cache.getMany(missing, a), [null, "alpha"]);
    assert.equal(await cache.has(a), true);
    assert.equal(await cache.has(missing), false);
    assert.equal(await cache.add(a, "other"), false);
    assert.deepEqual(await cache.deleteMany(a, missing, b), [a, b]);
    assert.equal(await cache.get(a), null);
    await assert.rejects(cache.set("bad key", 1), MemcacheIllegalInputError);
  } finally {
    await cache.close();
  }
});

test("MemcachedCache.importPreferredMemcacheLib resolves to a HashClient on the runtime's transport", async () => {
  const cache = new MemcachedCache([SPEC], { poolSize: 2 });
  const client = await cache.importPreferredMemcacheLib([SPEC]);
  try {
    assert.ok(client instanceof HashClient);
    assert.equal(client.defaultNoreply, false);
    assert.equal(client.allowUnicodeKeys, true);
    const k = `${key("lib")}-ключ`;
    assert.equal(await client.set(k, "shared"), true);
    assert.equal(await cache.get(k), "shared");
    const versions = await client.version();
    assert.deepEqual([...versions.keys()], client.servers);
    assert.match(versions.get(client.servers[0]), /^\d+\.\d+/);
    await assert.rejects(cache.importPreferredMemcacheLib([]), TypeError);
  } finally {
    await Promise.all([client.close(), cache.close()]);
  }
});

test("RetryingClient wraps a Client: results pass through, a dropped connection is retried", async () => {
  // A proxy to memcached that drops the next `drop` connections on their first bytes.
  const upstream = parseServerSpec(SPEC);
  const sockets = new Set();
  const track = (socket) => (sockets.add(socket), socket.on("close", () => sockets.delete(socket)));
  let accepted = 0;
  let drop = 0;
  const proxy = net.createServer((socket) => {
    accepted++;
    track(socket);
    socket.on("error", () => {});
    if (drop > 0) {
      drop--;
      socket.once("data", () => socket.destroy());
      return;
    }
    const server = track(net.connect({ host: upstream.host, port: upstream.port }));
    server.on("error", () => socket.destroy());
    socket.on("close", () => server.destroy());
    server.on("close", () => socket.destroy());
    socket.pipe(server).pipe(socket);
  });
  await new Promise((resolve) => proxy.listen(0, "127.0.0.1", resolve));
  const via = `127.0.0.1:${proxy.address().port}`;
  const inner = new Client(via, { connectTimeout: 2000, timeout: 2000 });
  const retrying = new RetryingClient(inner, { attempts: 2, retryFor: [MemcacheError] });
  const once = new RetryingClient(new Client(via, { connectTimeout: 2000, timeout: 2000 }), { attempts: 1 });
  try {
    const k = key("r");
    assert.equal(retrying.client, inner);
    assert.equal(retrying.attempts, 2);
    drop = 1;
    assert.equal(await retrying.set(k, "retried", { noreply: false }), true);
    assert.equal(accepted, 2, "the first connection was dropped, the retry opened a second");
    assert.equal(await retrying.get(k), "retried");
    assert.equal(await retrying.incr(key("none"), 1), null);
    assert.deepEqual([...(await retrying.getMany([k, key("none")])).entries()], [[k, "retried"]]);
    // Not retried: bad input fails before any I/O; one attempt lets the drop through.
    await assert.rejects(retrying.set("has space", 1), MemcacheIllegalInputError);
    drop = 1;
    const error = await once.get(k).then(() => null, (e) => e);
    assert.ok(error instanceof MemcacheError, `got ${error}`);
    assert.equal(accepted, 3);
    assert.equal(await once.get(k), "retried");
    assert.throws(() => new RetryingClient(inner, { attempts: 0 }), TypeError);
    assert.throws(
      () =>
        new RetryingClient(inner, {
          retryFor: [MemcacheUnexpectedCloseError],
          doNotRetryFor: [MemcacheUnexpectedCloseError],
        }),
      TypeError,
    );
  } finally {
    await Promise.all([retrying.close(), once.close()]);
    for (const socket of sockets) socket.destroy();
    await new Promise((resolve) => proxy.close(resolve));
  }
});

test("errors are the package's classes; bad input fails before any I/O", async () => {
  assert.throws(() => new Client("bad host:11211"), TypeError);
  const client = new Client(SPEC);
  try {
    const error = await client.set("has space", 1).then(() => null, (e) => e);
    assert.ok(error instanceof MemcacheIllegalInputError);
    assert.ok(error instanceof MemcacheClientError);
    assert.ok(error instanceof MemcacheError);
    assert.equal(error.name, "MemcacheIllegalInputError");
    assert.equal(await client.set(key("after"), "ok", { noreply: false }), true);
  } finally {
    await client[Symbol.asyncDispose]();
  }
});

test("a refused connection rejects with a MemcacheError", async () => {
  const server = net.createServer();
  await new Promise((resolve) => server.listen(0, "127.0.0.1", resolve));
  const port = server.address().port;
  await new Promise((resolve) => server.close(resolve));
  const client = new Client(`127.0.0.1:${port}`, { connectTimeout: 2000 });
  try {
    const error = await client.get("k").then(() => null, (e) => e);
    assert.ok(error instanceof MemcacheError, `got ${error}`);
  } finally {
    await client.close();
  }
});

test("@memkit/memcache/deno and /node can be imported in any of Node, Bun and Deno", async () => {
  const { DenoTransport } = await import("@memkit/memcache/deno");
  assert.equal(new DenoTransport().name, "deno");
  assert.equal(new NodeTransport().name, "node");
});

test("@memkit/memcache/keyv: KeyvMemcache on the runtime's entry, clear() of one namespace", async () => {
  const { KeyvMemcache } = await import("@memkit/memcache/keyv");
  const client = new Client(SPEC);
  try {
    const a = new KeyvMemcache(client, { namespace: key("keyv-a") });
    const b = new KeyvMemcache(client, { namespace: key("keyv-b") });
    assert.equal(await a.set("k", "A", 60_000), true);
    assert.equal(await b.set("k", "B"), true);
    assert.equal(await a.get("key 2"), undefined);
    await a.clear();
    assert.deepEqual(await Promise.all([a.get("k"), b.get("k")]), [undefined, "B"]);
    // Its own client comes from the same module graph as the user's import.
    const own = new KeyvMemcache(SPEC, { namespace: key("keyv-own") });
    assert.ok(own.client instanceof HashClient);
    await own.set("ключ", "v");
    assert.equal(await own.get("ключ"), "v");
    await own.disconnect();
  } finally {
    await client.close();
  }
});

test("require() gives the same classes as import (ESM only, no dual package)", () => {
  const require = createRequire(import.meta.url);
  const cjs = require("@memkit/memcache");
  assert.equal(cjs.Client, Client);
  assert.equal(require("@memkit/memcache/node").NodeTransport, NodeTransport);
});

let passed = 0;
let failed = 0;
for (const { name, body } of cases) {
  try {
    await body();
    passed++;
    console.log(`ok - ${runtime}: ${name}`);
  } catch (error) {
    failed++;
    console.log(`not ok - ${runtime}: ${name}\n${error?.stack ?? error}`);
  }
}
console.log(`${passed} passed, ${failed} failed`);
process.exitCode = failed === 0 ? 0 : 1;
