// A TypeScript consumer of the installed package: scripts/stages/40-npm.sh
// runs `tsc --noEmit` on it under tsconfig.nodenext.json and
// tsconfig.bundler.json (skipLibCheck false, so the shipped .d.ts are checked
// too). Every `@ts-expect-error` proves a type is precise, not `any`.
import {
  Client,
  type ClientOptions,
  CompressedSerde,
  HashClient,
  type MemcacheError,
  MemcacheServerError,
  parseServerSpec,
  PooledClient,
  type Serde,
  type ServerAddress,
  type ServerSpec,
  type Transport,
} from "@memkit/memcache";
import { CloudflareTransport } from "@memkit/memcache/cloudflare";
import { DenoTransport } from "@memkit/memcache/deno";
import { NodeTransport } from "@memkit/memcache/node";

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
  const pool = new PooledClient(spec, { maxPoolSize: 4, poolBlocking: true });
  const ring = new HashClient([spec, "10.0.0.2:11211"], { hasher: "ketama", usePooling: true });
  const pooled: boolean = await pool.add("k", 1);
  const spread: Map<string, unknown> = await ring.getMany(["a", "b"]);
  await Promise.all([pool.close(), ring.close()]);
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
  ]);
}
