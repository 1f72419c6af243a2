// A Worker using @memkit/memcache as the README shows. The transport is picked
// by the package itself (its "workerd" export condition).
//   /kv/<key>      one client per request, closed after the response (ctx.waitUntil)
//   /shared/<key>  one client at module scope, shared by every request
//   /cache         a MemcachedCache (cachelib's API) per request, on its own client
//   /keyv          a KeyvMemcache (@memkit/memcache/keyv) per request, on its own client
// GET → the value or 404; PUT → stores the body. GET /selftest and GET /cache
// run a few commands and return their results as JSON.
//
// The get/set Worker whose size is budgeted (under 72,000 bytes minified) is
// this file bundled with `--define globalThis.MEMKIT_CACHE_ROUTE=false`
// (scripts/build_npm.ts, scripts/stages/40-npm.sh): the /cache and /keyv routes
// are then dead code and MemcachedCache and KeyvMemcache, with the HashClient they
// build on, are tree-shaken out. Bundled as is (as wrangler.toml does), they are in.
import { Client, MemcachedCache } from "@memkit/memcache";
import { KeyvMemcache } from "@memkit/memcache/keyv";

const OPTIONS = { connectTimeout: 2000, timeout: 2000 };
let shared;

export default {
  async fetch(request, env, ctx) {
    const { pathname } = new URL(request.url);
    if (pathname.startsWith("/shared/")) {
      shared ??= new Client(env.MEMCACHED, OPTIONS);
      return await handle(shared, request, pathname.slice("/shared/".length));
    }
    if (globalThis.MEMKIT_CACHE_ROUTE !== false && pathname === "/cache") {
      const cache = new MemcachedCache([env.MEMCACHED], { keyPrefix: `wc${Date.now()}:`, defaultTimeout: 60 });
      try {
        return Response.json(await cacheSelftest(cache));
      } finally {
        ctx.waitUntil(cache.close());
      }
    }
    if (globalThis.MEMKIT_CACHE_ROUTE !== false && pathname === "/keyv") {
      const store = new KeyvMemcache(env.MEMCACHED, { namespace: `wk${Date.now()}`, ...OPTIONS });
      try {
        return Response.json(await keyvSelftest(store));
      } finally {
        ctx.waitUntil(store.disconnect());
      }
    }
    const client = new Client(env.MEMCACHED, OPTIONS);
    try {
      if (pathname.startsWith("/kv/")) return await handle(client, request, pathname.slice("/kv/".length));
      if (pathname === "/selftest") return Response.json(await selftest(client));
      return new Response("not found", { status: 404 });
    } finally {
      ctx.waitUntil(client.close());
    }
  },
};

async function handle(client, request, key) {
  try {
    key = decodeURIComponent(key);
    if (request.method === "PUT") {
      await client.set(key, await request.text(), { expire: 60 });
      return new Response(null, { status: 204 });
    }
    const value = await client.get(key);
    return value === null ? new Response("not found", { status: 404 }) : new Response(String(value));
  } catch (error) {
    return new Response(`${error?.name}: ${error?.message}`, { status: 500 });
  }
}

async function selftest(client) {
  const prefix = `w${Date.now()}-`;
  await client.set(`${prefix}text`, "héllo");
  await client.set(`${prefix}int`, 41);
  await client.set(`${prefix}json`, { a: [1, 2] });
  await client.set(`${prefix}bytes`, new Uint8Array([0, 255, 13, 10]));
  const many = await client.getMany([`${prefix}text`, `${prefix}int`, `${prefix}missing`]);
  const bytes = await client.get(`${prefix}bytes`);
  const [, cas] = await client.gets(`${prefix}text`);
  return {
    text: await client.get(`${prefix}text`),
    json: await client.get(`${prefix}json`),
    bytes: bytes instanceof Uint8Array ? [...bytes] : String(bytes),
    many: Object.fromEntries(many),
    incr: await client.incr(`${prefix}int`, 1),
    casStored: await client.cas(`${prefix}text`, "new", cas),
    casStale: await client.cas(`${prefix}text`, "newer", cas),
    added: await client.add(`${prefix}text`, "x", { noreply: false }),
    deleted: await client.delete(`${prefix}text`, { noreply: false }),
    missing: await client.get(`${prefix}text`, "default"),
    version: await client.version(),
  };
}

async function cacheSelftest(cache) {
  const stored = await cache.set("greeting", "héllo");
  return {
    prefix: cache.keyPrefix,
    stored,
    get: await cache.get("greeting"),
    inc: await cache.inc("hits", 5),
    dec: await cache.dec("hits", 7),
    dict: Object.fromEntries(await cache.getDict("greeting", "hits", "missing")),
    has: [await cache.has("greeting"), await cache.has("missing")],
    added: await cache.add("greeting", "x"),
    deleted: await cache.deleteMany("greeting", "missing"),
    after: await cache.get("greeting"),
  };
}

async function keyvSelftest(store) {
  // What Keyv hands a store: keys with its namespace, values it serialized, TTLs in ms.
  const stored = await store.set("keyv:ключ 2", '{"value":"héllo"}', 60_000);
  await store.setMany([{ key: "keyv:a", value: "1" }, { key: "keyv:b", value: "2", ttl: 1000 }]);
  const before = await store.getMany(["keyv:ключ 2", "keyv:a", "keyv:missing"]);
  await store.clear();
  return {
    namespace: store.namespace,
    stored,
    before,
    after: await store.getMany(["keyv:ключ 2", "keyv:a"]),
  };
}
