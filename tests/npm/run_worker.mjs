// Runs the wrangler-built bundle of tests/npm/worker in workerd (miniflare)
// against a memcached on loopback:
//   node tests/npm/run_worker.mjs <bundle.js> <host:port> [<get/set bundle.js>]
// The size budget applies to the get/set bundle (the Worker built without its
// MemcachedCache route), or to <bundle.js> when none is given.
// Run by scripts/stages/40-npm.sh; prints one line per case and last
// "N passed, N failed".
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import net from "node:net";
import { dirname, resolve } from "node:path";
import process from "node:process";
import { Miniflare } from "miniflare";

const [bundle, spec, getSetBundle] = process.argv.slice(2);
if (!bundle || !spec) throw new Error("usage: run_worker.mjs <bundle.js> <host:port> [<get/set bundle.js>]");
const LIMIT = 72_000;
const code = readFileSync(bundle, "utf8");
const getSetCode = getSetBundle ? readFileSync(getSetBundle, "utf8") : code;
const cases = [];
const test = (name, body) => cases.push({ name, body });

function rawGet(key) {
  const [host, port] = [spec.slice(0, spec.lastIndexOf(":")), Number(spec.slice(spec.lastIndexOf(":") + 1))];
  return new Promise((resolve, reject) => {
    const socket = net.connect({ host, port });
    let reply = "";
    socket.on("error", reject);
    socket.on("data", (chunk) => {
      reply += chunk.toString("latin1");
      if (reply.endsWith("END\r\n")) {
        socket.destroy();
        resolve(reply);
      }
    });
    socket.write(`get ${key}\r\n`);
  });
}

test(`the minified get/set bundle is under ${LIMIT} bytes; no bundle loads a node: module`, () => {
  const size = Buffer.byteLength(getSetCode);
  console.log(`# wrangler bundle: ${size} bytes${getSetBundle ? " (get/set)" : ""}`);
  if (getSetBundle) console.log(`# wrangler bundle with the MemcachedCache route: ${Buffer.byteLength(code)} bytes`);
  assert.ok(size < LIMIT, `${size} bytes`);
  for (const text of new Set([code, getSetCode])) {
    // No static or dynamic import (or require) of a node: module. The one node:
    // name a bundle may hold is diagnostics_channel's, asked of
    // process.getBuiltinModule where the runtime has it (mod.ts).
    assert.doesNotMatch(text, /(?:\bfrom\s*|\bimport\s*\(\s*|\brequire\s*\(\s*)["']node:/);
    assert.match(text, /["']cloudflare:sockets["']/);
  }
  if (getSetBundle) {
    // The budgeted bundle is the get/set Worker: its /cache and /keyv routes (and so MemcachedCache,
    // KeyvMemcache) dropped.
    assert.doesNotMatch(getSetCode, /"\/cache"/);
    assert.doesNotMatch(getSetCode, /"\/keyv"/);
    assert.match(code, /"\/cache"/);
    assert.match(code, /"\/keyv"/);
  }
});

const mf = new Miniflare({
  modules: true,
  scriptPath: resolve(bundle),
  modulesRoot: dirname(resolve(bundle)),
  compatibilityDate: "2025-09-01",
  bindings: { MEMCACHED: spec },
});
const fetch = (path, init) => mf.dispatchFetch(`http://worker.test${path}`, init);

test("the package picks its Cloudflare transport and runs commands in workerd", async () => {
  const res = await fetch("/selftest");
  const body = await res.text();
  assert.equal(res.status, 200, body);
  const result = JSON.parse(body);
  const many = Object.values(result.many);
  delete result.many;
  delete result.version;
  assert.deepEqual(result, {
    text: "héllo",
    json: { a: [1, 2] },
    bytes: [0, 255, 13, 10],
    incr: 42,
    casStored: true,
    casStale: false,
    added: false,
    deleted: true,
    missing: "default",
  });
  assert.deepEqual(many, ["héllo", 41]);
});

test("a MemcachedCache builds its own client on the Cloudflare transport: set/get, inc/dec, getDict", async () => {
  const res = await fetch("/cache");
  const body = await res.text();
  assert.equal(res.status, 200, body);
  const result = JSON.parse(body);
  const prefix = result.prefix;
  assert.match(prefix, /^wc\d+:$/);
  delete result.prefix;
  assert.deepEqual(result, {
    stored: true,
    get: "héllo",
    inc: 5,
    dec: -2,
    dict: { greeting: "héllo", hits: -2, missing: null },
    has: [true, false],
    added: false,
    deleted: ["greeting"],
    after: null,
  });
  // On the server: the prefixed key, the counter as int64's two's complement with flags 2, as cachelib reads it.
  assert.equal(await rawGet(`${prefix}hits`), `VALUE ${prefix}hits 2 20\r\n18446744073709551614\r\nEND\r\n`);
  assert.equal(await rawGet(`${prefix}greeting`), "END\r\n");
});

test("a KeyvMemcache builds its own client on the Cloudflare transport: any key, setMany, clear()", async () => {
  const res = await fetch("/keyv");
  const body = await res.text();
  assert.equal(res.status, 200, body);
  const result = JSON.parse(body);
  assert.match(result.namespace, /^wk\d+$/);
  delete result.namespace;
  assert.deepEqual(result, {
    stored: true,
    before: ['{"value":"héllo"}', "1", null],
    after: [null, null],
  });
});

test("a value PUT in one request is read in the next, and by other clients with pymemcache's flags", async () => {
  const key = `worker-kv-${process.pid}`;
  const put = await fetch(`/kv/${key}`, { method: "PUT", body: "from the worker" });
  assert.equal(put.status, 204, await put.text());
  const get = await fetch(`/kv/${key}`);
  assert.equal(await get.text(), "from the worker");
  assert.equal(await rawGet(key), `VALUE ${key} 16 15\r\nfrom the worker\r\nEND\r\n`);
  const missing = await fetch(`/kv/${key}-missing`);
  assert.equal(missing.status, 404);
  await missing.text();
});

test("30 sequential and 10 concurrent requests, each with its own client", async () => {
  for (let i = 0; i < 30; i++) {
    const res = await fetch(`/kv/seq-${i}`, { method: "PUT", body: String(i) });
    assert.equal(res.status, 204, await res.text());
  }
  const replies = await Promise.all(Array.from({ length: 10 }, (_, i) => fetch(`/kv/seq-${i * 3}`)));
  assert.deepEqual(
    await Promise.all(replies.map((r) => r.text())),
    Array.from({ length: 10 }, (_, i) => String(i * 3)),
  );
});

test("a module-scope client serves 20 sequential and 10 concurrent requests", async () => {
  for (let i = 0; i < 20; i++) {
    const res = await fetch(`/shared/mod-${i}`, { method: "PUT", body: `m${i}` });
    assert.equal(res.status, 204, await res.text());
  }
  const replies = await Promise.all(Array.from({ length: 10 }, (_, i) => fetch(`/shared/mod-${i * 2}`)));
  assert.deepEqual(await Promise.all(replies.map((r) => r.text())), Array.from({ length: 10 }, (_, i) => `m${i * 2}`));
  const again = await fetch("/shared/mod-19");
  assert.equal(await again.text(), "m19");
});

let passed = 0;
let failed = 0;
try {
  for (const { name, body } of cases) {
    try {
      await body();
      passed++;
      console.log(`ok - workerd: ${name}`);
    } catch (error) {
      failed++;
      console.log(`not ok - workerd: ${name}\n${error?.stack ?? error}`);
    }
  }
} finally {
  await mf.dispose();
}
console.log(`${passed} passed, ${failed} failed`);
process.exitCode = failed === 0 ? 0 : 1;
