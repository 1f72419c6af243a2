/**
 * The demo: `npm run demo` (or `deno task demo`). Talks to the servers in
 * MEMCACHED_SERVERS ("host:port,host:port"; Client uses the first); when
 * that is unset, to two memcached processes it starts on free loopback ports
 * if memcached is installed, and otherwise to two MemoryServers
 * (`@memkit/memcache/testing`) inside this process. It says which.
 */
import process from "node:process";
import {
  Client,
  type ClientOptions,
  CompressedSerde,
  HashClient,
  MemcachedCache,
  MemcacheError,
  MemcacheIllegalInputError,
  MemcacheServerError,
  type Transport,
} from "../mod.ts";
import { MemoryServer } from "../testing.ts";
import { addressName } from "../src/connection/transport.ts";
import { haveMemcached, startMemcached } from "../tests/_support/_memcached.ts";

const configured = process.env.MEMCACHED_SERVERS?.split(",").map((s) => s.trim()).filter(Boolean);
const spawn = !configured?.length && haveMemcached();
await using started = spawn ? await startMemcached() : undefined;
await using second = spawn ? await startMemcached() : undefined;
// Neither: two in-process servers, reached by name through one routing transport.
await using memoryA = configured?.length || spawn ? undefined : new MemoryServer();
await using memoryB = configured?.length || spawn ? undefined : new MemoryServer();
const embedded = new Map([["memory-a:11211", memoryA], ["memory-b:11211", memoryB]]);
const transport: Transport | undefined = memoryA && {
  name: "memory",
  connect: (address, options, handlers) =>
    embedded.get(addressName(address))!.transport().connect(address, options, handlers),
};
/** Options every client of the demo gets: the routing transport when it runs on MemoryServer. */
const via = (options: ClientOptions = {}): ClientOptions => (transport ? { ...options, transport } : options);
const servers = configured?.length
  ? configured
  : spawn
  ? [started!.spec, second!.spec]
  : ["memory-a:11211", "memory-b:11211"];
const where = configured?.length
  ? "(MEMCACHED_SERVERS)"
  : spawn
  ? "(memcached processes it started)"
  : "(MemoryServers in this process: memcached is not installed; set MEMCACHED_SERVERS to use yours)";
const server = servers[0];
const show = (label: string, value: unknown) => console.log(`  ${label.padEnd(44)} ${Deno.inspect(value)}`);

console.log(`@memkit/memcache demo against ${servers.join(", ")} ${where}\n`);
await using client = new Client(server, via({ timeout: 2000, keyPrefix: "demo:" }));

console.log("Storage and retrieval (pymemcache semantics, flags shared with Python):");
await client.set("greeting", "hello, memcached", { expire: 60 });
show('get("greeting")', await client.get("greeting"));
await client.setMany({ n: 41, user: { id: 7, tags: ["a", "b"] }, bytes: new Uint8Array([0, 255]) });
show('getMany(["n", "user", "bytes", "missing"])', await client.getMany(["n", "user", "bytes", "missing"]));
show('incr("n", 1)', await client.incr("n", 1));
show('add("n", 0) with noreply: false', await client.add("n", 0, { noreply: false }));

console.log("\nCheck-and-set:");
const [value, cas] = await client.gets("greeting");
show("gets → [value, cas]", [value, cas]);
show("cas with that token", await client.cas("greeting", "updated", cas!));
show("cas with the same (now stale) token", await client.cas("greeting", "again", cas!));

console.log("\nValues are framed by length: protocol text inside a value is just data:");
await client.set("tricky", "line one\r\nEND\r\nVALUE x 0 5\r\n");
show('get("tricky")', await client.get("tricky"));

console.log("\nPipelining: 10,000 gets issued at once share one connection:");
const keys = Array.from({ length: 10_000 }, (_, i) => `k${i}`);
await client.setMany(Object.fromEntries(keys.map((k, i) => [k, i])));
const t0 = performance.now();
const results = await Promise.all(keys.map((k) => client.get(k)));
const ms = performance.now() - t0;
show("every get got its own value", results.every((v, i) => v === i));
show("elapsed", `${ms.toFixed(1)} ms (${Math.round(10_000 / (ms / 1000)).toLocaleString()} gets/s)`);

console.log("\nCompression compatible with pymemcache's CompressedSerde:");
await using compressed = new Client(server, via({ serde: new CompressedSerde(), keyPrefix: "demo:" }));
await compressed.set("long", "memcached ".repeat(500), { noreply: false });
const raw = await client.rawCommand("get demo:long", "END\r\n");
show("5,000 chars stored as", `${raw.length} bytes (flags 24 = text | zlib)`);

console.log("\nErrors are specific, and bad input never reaches the server:");
try {
  await client.get("a\r\nflush_all");
} catch (e) {
  show("key with CRLF", `${(e as Error).name}: ${(e as Error).message}`);
  console.assert(e instanceof MemcacheIllegalInputError);
}
try {
  await client.set("huge", new Uint8Array(2 * 1024 * 1024), { noreply: false });
} catch (e) {
  show("2 MiB value", `${(e as Error).name}: ${(e as Error).message}`);
  console.assert(e instanceof MemcacheServerError);
}
show("the connection still works", await client.get("greeting"));
try {
  await using dead = new Client("127.0.0.1:1", { timeout: 500 });
  await dead.get("k");
} catch (e) {
  show("nothing listening", `${(e as Error).name}: ${(e as Error).message}`);
  console.assert(e instanceof MemcacheError);
}

console.log("\nMeta protocol and stampede protection (one loader run for many concurrent misses):");
await client.set("page:1", "v1", { expire: 60, noreply: false });
const meta = await client.metaGet("page:1", { returnTtl: true, returnCas: true });
show('metaGet("page:1", { returnTtl, returnCas })', { hit: meta.hit, value: meta.value, ttl: meta.ttl, cas: meta.cas });
let loads = 0;
const loader = async (key: string) => {
  loads++;
  await new Promise((resolve) => setTimeout(resolve, 20)); // a slow database
  return `rendered ${key}`;
};
const herd = await Promise.all(Array.from({ length: 500 }, () => client.getOrSet("report", loader, { ttl: 60 })));
show("500 concurrent getOrSet on a cold key", `${new Set(herd).size} value, loader ran ${loads} time(s)`);
await client.invalidate("report", { staleFor: 30 });
const refreshes: Promise<unknown>[] = [];
const waitUntil = (refresh: Promise<unknown>) => void refreshes.push(refresh);
show("after invalidate: stale, one refreshes", await client.getOrSet("report", loader, { ttl: 60, waitUntil }));
await Promise.all(refreshes); // (close() would also let it finish, up to the client's timeout)
show("the refresh, awaited through waitUntil", `stored; loader ran ${loads} time(s) in all`);
await client.deleteMany(["page:1", "report"]);

console.log(`\nHashClient: keys spread over ${servers.length} server(s), placed as pymemcache's HashClient would:`);
await using cluster = new HashClient(servers, via({ timeout: 2000, keyPrefix: "demo:" }));
const spread = new Map<string, number>();
for (let i = 0; i < 1000; i++) {
  const owner = cluster.serverFor(`user:${i}`)!;
  spread.set(owner, (spread.get(owner) ?? 0) + 1);
}
show("1,000 keys per server", Object.fromEntries(spread));
const users = Array.from({ length: 100 }, (_, i) => `user:${i}`);
await cluster.setMany(Object.fromEntries(users.map((k, i) => [k, i])));
show("getMany of 100 keys, split per server", `${(await cluster.getMany(users)).size} found`);
await cluster.deleteMany(users);

console.log("\ncachelib's MemcachedCache:");
await using cache = new MemcachedCache(servers, via({ keyPrefix: "demo-cache:" }));
await cache.set("page", "<html>…</html>", 30);
show('has("page") (no value transferred)', await cache.has("page"));
show('dec("stock", 3) on a missing key', await cache.dec("stock", 3));
show('dec("stock", 2): below zero, still exact', await cache.dec("stock", 2));
show('getDict("page", "nope", "bad key!")', await cache.getDict("page", "nope", "bad key!"));
await cache.deleteMany("page", "stock");

const stats = await client.stats();
console.log(`\nServer: memcached ${stats.version}, ${stats.curr_items} items, ${stats.curr_connections} connections.`);
await client.deleteMany(["greeting", "n", "user", "bytes", "tricky", "long", ...keys]);
console.log("Done.");
