// A Worker using @memkit/memcache as its README shows: one client per
// request, closed after the response with ctx.waitUntil. The transport is
// picked by the package itself (the "workerd" export condition).
import { Client } from "@memkit/memcache";

export default {
  /**
   * GET /kv/<key> → the value, or 404; PUT /kv/<key> → stores the body.
   * GET /selftest → runs a few commands and returns what they gave, as JSON.
   */
  async fetch(request, env, ctx) {
    const client = new Client(env.MEMCACHED, { connectTimeout: 2000, timeout: 2000 });
    try {
      const { pathname } = new URL(request.url);
      if (pathname.startsWith("/kv/")) {
        const key = decodeURIComponent(pathname.slice(4));
        if (request.method === "PUT") {
          await client.set(key, await request.text(), { expire: 60 });
          return new Response(null, { status: 204 });
        }
        const value = await client.get(key);
        return value === null ? new Response("not found", { status: 404 }) : new Response(String(value));
      }
      if (pathname === "/selftest") return Response.json(await selftest(client));
      return new Response("not found", { status: 404 });
    } catch (error) {
      return new Response(`${error?.name}: ${error?.message}`, { status: 500 });
    } finally {
      ctx.waitUntil(client.close());
    }
  },
};

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
