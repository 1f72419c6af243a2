/**
 * `@memkit/memcache`: a memcached client for Deno, Node, Bun and
 * Cloudflare Workers, with pymemcache's `Client` API.
 *
 * Importing this module picks the running runtime's transport by itself;
 * pass `transport` in the client options to choose another.
 *
 * @example
 * ```ts ignore
 * import { Client } from "@memkit/memcache";
 * await using client = new Client("127.0.0.1:11211");
 * await client.set("answer", 42);
 * console.log(await client.get("answer")); // 42
 * ```
 *
 * @module
 */

import { setDefaultTransportLoader } from "./src/connection/_default_transport.ts";
import { setChannelLoader } from "./src/clients/_observe.ts";
import { type Transport, WORKERS_MAX_CONNECTIONS } from "./src/connection/transport.ts";

// deno-lint-ignore no-explicit-any
const inWorkers = (globalThis as any).navigator?.userAgent === "Cloudflare-Workers";

function runtimeTransport(): Promise<Transport> {
  // deno-lint-ignore no-explicit-any
  const g = globalThis as any;
  // Workers: `cloudflare:sockets` is only ever loaded here, so importing this
  // module elsewhere never touches it (and bundlers for Workers use the
  // "workerd" entry of the npm package, which has no other transport).
  if (inWorkers) {
    return import("./transports/cloudflare.ts").then((m) => new m.CloudflareTransport());
  }
  if (typeof g.Deno?.connect === "function") {
    return import("./transports/deno.ts").then((m) => new m.DenoTransport());
  }
  return import("./transports/node.ts").then((m) => new m.NodeTransport());
}

setDefaultTransportLoader(runtimeTransport, { maxConnections: inWorkers ? WORKERS_MAX_CONNECTIONS : undefined });
// Observer events go to diagnostics_channel where the runtime has it (Node, Bun, Deno; Workers only with
// nodejs_compat): got synchronously, when the first client is made, and never imported.
// deno-lint-ignore no-explicit-any
setChannelLoader(() => (globalThis as any).process?.getBuiltinModule?.("node:diagnostics_channel"));

export type {
  MetaArithmeticOptions,
  MetaCommonOptions,
  MetaDeleteOptions,
  MetaGetManyOptions,
  MetaGetOptions,
  MetaKey,
  MetaResult,
  MetaSetMode,
  MetaSetOptions,
  MetaStatus,
} from "./src/protocol/_meta.ts";
export { OBSERVER_CHANNELS } from "./src/clients/_observe.ts";
export type {
  CommandEvent,
  CommandStartEvent,
  ConnectionEvent,
  Observer,
  ServerEvent,
} from "./src/clients/_observe.ts";
export type {
  GetOrSetOptions,
  InvalidateOptions,
  LeaseOptions,
  Loader,
  StampedeErrorEvent,
} from "./src/clients/_get_or_set.ts";
export { Client } from "./src/clients/client.ts";
export type { AuthOptions, ClientOptions, Mapping, NoreplyOptions, StoreOptions, Value } from "./src/clients/client.ts";
export type { CommandMisses, Commands, PerServerCommand } from "./src/clients/commands.ts";
export {
  MemcacheAuthError,
  MemcacheClientError,
  MemcacheConnectionError,
  MemcacheError,
  MemcacheIllegalInputError,
  MemcacheSerdeError,
  MemcacheServerError,
  MemcacheTimeoutError,
  MemcacheUnexpectedCloseError,
  MemcacheUnknownCommandError,
  MemcacheUnknownError,
} from "./src/errors.ts";
export type { MemcacheErrorOptions } from "./src/errors.ts";
export { HashClient } from "./src/clients/hash_client.ts";
export type { DiscoveryOptions, HashClientOptions } from "./src/clients/_hash_core.ts";
export { MemcachedCache } from "./src/cache/memcached_cache.ts";
export type { CacheClientLike, MemcachedCacheOptions } from "./src/cache/memcached_cache.ts";
export { MemcachePickleError, PickleSerde } from "./src/values/pickle_serde.ts";
export type { PickleSerdeOptions, PythonClientName } from "./src/values/pickle_serde.ts";
export { PooledClient } from "./src/clients/pooled_client.ts";
export type { PooledClientOptions } from "./src/clients/_pooled_core.ts";
export { RetryingClient } from "./src/clients/retrying_client.ts";
export type { ErrorClass, RetryableClient, RetryingClientOptions } from "./src/clients/_retrying_core.ts";
export {
  CompressedSerde,
  defaultSerde,
  FLAG_BYTES,
  FLAG_COMPRESSED,
  FLAG_INTEGER,
  FLAG_JSON,
  FLAG_LONG,
  FLAG_PICKLE,
  FLAG_TEXT,
} from "./src/values/serde.ts";
export type { CompressedSerdeOptions, Serde } from "./src/values/serde.ts";
export { addressName, parseServerSpec } from "./src/connection/transport.ts";
export type {
  ServerAddress,
  ServerSpec,
  TcpAddress,
  TlsOptions,
  Transport,
  TransportConnectOptions,
  TransportHandlers,
  TransportSocket,
  UnixAddress,
} from "./src/connection/transport.ts";
