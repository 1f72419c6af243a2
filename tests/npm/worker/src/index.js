// A Worker using @memkit/memcache as the README shows. The transport is picked
// by the package itself (its "workerd" export condition).
//   /kv/<key>      one client per request, closed after the response (ctx.waitUntil)
//   /shared/<key>  one client at module scope, shared by every request
//   /cache         a MemcachedCache (cachelib's API) per request, on its own client
// GET → the value or 404; PUT → stores the body. GET /selftest and GET /cache
// run a few commands and return their results as JSON.
//
// The get/set Worker whose size is budgeted (40 KB minified; README: "about
// 30 KB") is this file bundled with `--define globalThis.MEMKIT_CACHE_ROUTE=false`
// (scripts/build_npm.ts, scripts/stages/40-npm.sh): the /cache route is then
// dead code and MemcachedCache, with the HashClient it builds on, is tree-shaken
// out. Bundled as is (as wrangler.toml does), the route is in.
import { Client, MemcachedCache } from "@memkit/memcache";

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
