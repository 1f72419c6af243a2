// A TypeScript consumer of the installed package: scripts/stages/40-npm.sh
// runs `tsc --noEmit` on it under tsconfig.nodenext.json and
// tsconfig.bundler.json (skipLibCheck false, so the shipped .d.ts are checked
// too). Every `@ts-expect-error` proves a type is precise, not `any`.
import {
  type CacheClientLike,
  Client,
  type ClientOptions,
  CompressedSerde,
  HashClient,
  type HashClientOptions,
  MemcachedCache,
  type MemcachedCacheOptions,
  type MemcacheError,
  MemcacheIllegalInputError,
  MemcacheServerError,
  MemcacheUnexpectedCloseError,
  parseServerSpec,
  PooledClient,
  type PooledClientOptions,
  type RetryableClient,
  RetryingClient,
  type RetryingClientOptions,
  type Serde,
  type ServerAddress,
  type ServerSpec,
  type Transport,
} from "@memkit/memcache";
import { CloudflareTransport } from "@memkit/memcache/cloudflare";
import { DenoTransport } from "@memkit/memcache/deno";
import { NodeTransport } from "@memkit/memcache/node";
import { KeyvMemcache, type KeyvMemcacheOptions } from "@memkit/memcache/keyv";

const transports: Transport[] = [new NodeTransport(), new DenoTransport(), new CloudflareTransport()];
const serde: Serde = new CompressedSerde({ minCompressLen: 100 });
const options: ClientOptions = {
  connectTimeout: 1000,
  timeout: 500,
  keyPrefix: "app:",
  serde,
  transport: transports[0],
};
const spec: ServerSpec = { host: "127.0.0.1", port: 11211 };
const address: ServerAddress = parseServerSpec("[::1]:11211");

export async function use(): Promise<string> {
  await using client = new Client(spec, options);
  const stored: true = await client.set("k", "v", { expire: 10, noreply: false });
  const added: boolean = await client.add("k", 1);
  const found: Map<string, unknown> = await client.getMany(["a", "b"]);
  const [value, cas] = await client.gets("k");
  const swapped: boolean | null = await client.cas("k", "v2", cas ?? "0");
  const counter: number | bigint | null = await client.incr("n", 1);
  const deleted: boolean = await client.delete("k", { noreply: false });
  const failed: string[] = await client.setMany({ a: 1, b: "two" });
  try {
    await client.get("k");
  } catch (error) {
    if (error instanceof MemcacheServerError) {
      const base: MemcacheError = error;
      return base.message;
    }
  }
  const poolOptions: PooledClientOptions = { ...options, maxPoolSize: 4, poolBlocking: true, poolIdleTimeout: 0 };
  const pool = new PooledClient(spec, poolOptions);
  const ringOptions: HashClientOptions = { hasher: "ketama", usePooling: true, retryAttempts: 2, deadTimeout: 1000 };
  const ring = new HashClient([spec, "10.0.0.2:11211"], ringOptions);
  const pooled: boolean = await pool.add("k", 1);
  const spread: Map<string, unknown> = await ring.getMany(["a", "b"]);
  const versions: Map<string, string> = await ring.version();
  const placed: string | null = ring.serverFor("k");
  const servers: readonly string[] = ring.servers;
  await Promise.all([pool.close(), ring.close()]);

  // MemcachedCache: cachelib's API, on its own HashClient or on a client passed in.
  const cacheOptions: MemcachedCacheOptions = {
    defaultTimeout: 300,
    keyPrefix: "app:",
    poolSize: 2,
    poolBlocking: true,
    transport: transports[0],
  };
  await using cache = new MemcachedCache([spec, "10.0.0.2:11211"], cacheOptions);
  const cacheSet: boolean = await cache.set("k", { a: 1 }, 60);
  const cacheAdded: boolean = await cache.add("k", 1, null);
  const cacheMany: unknown[] = await cache.getMany("a", "b");
  const cacheDict: Map<string, unknown> = await cache.getDict("a", "b");
  const cacheHas: boolean = await cache.has("k");
  const cacheStored: string[] = await cache.setMany({ a: 1, b: 2 }, 0);
  const cacheDeleted: string[] = await cache.deleteMany("a", "b");
  const cacheDelete: boolean = await cache.delete("k");
  const hits: number | bigint | null = await cache.inc("hits");
  const left: number | bigint | null = await cache.dec("stock", 2n);
  const cleared: boolean = await cache.clear();
  const preferred: HashClient = await cache.importPreferredMemcacheLib([spec]);
  const underlying: CacheClientLike = cache.client;
  const cacheSettings: [number, string, number, boolean] = [
    cache.defaultTimeout,
    cache.keyPrefix,
    cache.poolSize,
    cache.poolBlocking,
  ];
  // Any of the package's clients can back a cache.
  const backings: CacheClientLike[] = [client, pool, ring, preferred];
  const onClient = new MemcachedCache(client);
  const byDefault = new MemcachedCache();
  await Promise.all([onClient.close(), byDefault.close(), preferred.close()]);
  // @ts-expect-error getDict resolves to a Map, not an array
  const dictAsList: unknown[] = await cache.getDict("a");
  // @ts-expect-error inc may be a bigint or null, not only a number
  const hitsAsNumber: number = await cache.inc("hits", 1);
  // @ts-expect-error importPreferredMemcacheLib resolves to a HashClient (whose version() is a Map)
  const preferredAsClient: Client = await cache.importPreferredMemcacheLib([spec]);
  // @ts-expect-error a timeout is seconds, a number
  await cache.set("k", 1, "60");
  // @ts-expect-error getMany takes keys as arguments, not a list
  await cache.getMany(["a", "b"]);
  // @ts-expect-error not a MemcachedCache option
  new MemcachedCache([spec], { defaultTimout: 60 });
  // @ts-expect-error servers are a list of specs or a client
  new MemcachedCache("127.0.0.1:11211");

  // RetryingClient: the wrapped client's own result types.
  const retryOptions: RetryingClientOptions = {
    attempts: 3,
    retryDelay: 10,
    retryFor: [MemcacheUnexpectedCloseError],
    doNotRetryFor: [MemcacheIllegalInputError, TypeError],
  };
  await using retrying = new RetryingClient(new Client(spec, options), retryOptions);
  const inner: Client = retrying.client;
  const retriedSet: true = await retrying.set("k", "v", { noreply: false });
  const retriedGets: [unknown, string | null] = await retrying.gets("k");
  const retriedIncr: number | bigint | null = await retrying.incr("n", 1);
  const retriedVersion: string = await retrying.version();
  const retriedFailed: string[] = await retrying.setMany(new Map([["a", 1]]));
  const retryingRing = new RetryingClient(new HashClient([spec]), { attempts: 2 });
  const ringVersions: Map<string, string> = await retryingRing.version();
  const retryingPool: RetryingClient<PooledClient> = new RetryingClient(new PooledClient(spec));
  const wrapped: RetryableClient[] = [client, pool, ring];
  const retryCache = new MemcachedCache(retrying);
  await Promise.all([retryingRing.close(), retryingPool.close(), retryCache.close()]);
  // @ts-expect-error version() of a retried HashClient is its Map, not a string
  const ringVersion: string = await retryingRing.version();
  // @ts-expect-error retryFor holds error classes
  new RetryingClient(client, { retryFor: ["MemcacheUnexpectedCloseError"] });
  // @ts-expect-error attempts is a number
  new RetryingClient(client, { attempts: "3" });
  // @ts-expect-error the arguments are the wrapped client's: keys are strings
  await retrying.get(42);

  // @ts-expect-error hasher is "rendezvous" or "ketama"
  new HashClient([spec], { hasher: "md5" });
  // @ts-expect-error keys are strings
  await client.get(42);
  // @ts-expect-error expire is seconds, a number
  await client.set("k", "v", { expire: "10" });
  // @ts-expect-error not a client option
  new Client("127.0.0.1", { conectTimeout: 1 });
  // @ts-expect-error set resolves to true, never false
  const never: false = await client.set("k", 1);
  return JSON.stringify([
    stored,
    added,
    found,
    value,
    swapped,
    counter,
    deleted,
    failed,
    address,
    never,
    pooled,
    spread,
    versions,
    placed,
    servers,
    cacheSet,
    cacheAdded,
    cacheMany,
    cacheDict,
    cacheHas,
    cacheStored,
    cacheDeleted,
    cacheDelete,
    hits,
    left,
    cleared,
    underlying,
    cacheSettings,
    backings,
    dictAsList,
    hitsAsNumber,
    preferredAsClient,
    inner,
    retriedSet,
    retriedGets,
    retriedIncr,
    retriedVersion,
    retriedFailed,
    ringVersions,
    wrapped,
    ringVersion,
  ]);
}

// The Keyv store: any client or server specs; values typed by the caller, undefined on a miss.
const keyvOptions: KeyvMemcacheOptions = { namespace: "users", usePooling: true, timeout: 500 };
const keyvStores = [
  new KeyvMemcache("127.0.0.1:11211", keyvOptions),
  new KeyvMemcache([{ host: "10.0.0.1", port: 11211 }]),
  new KeyvMemcache(new PooledClient("127.0.0.1:11211")),
  new KeyvMemcache(new RetryingClient(new Client("127.0.0.1:11211"))),
];
export async function keyvUse(): Promise<string | undefined> {
  const store = keyvStores[0];
  store.on("error", (error: unknown) => console.error(error));
  const [first] = await store.getMany<string>(["a"]);
  // @ts-expect-error: a TTL is a number of ms
  await store.set("a", "1", "1h");
  await store.clear();
  await store.disconnect();
  return first ?? await store.get<string>("a");
}
