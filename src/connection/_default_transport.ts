/**
 * The transport used when a client is given none. `mod.ts` registers a
 * loader that picks the running runtime's transport; the core itself never
 * imports one.
 *
 * @module
 */

import type { Transport } from "./transport.ts";

let loader: (() => Promise<Transport>) | undefined;
let loaded: Promise<Transport> | undefined;
/** What `loaded` resolved to, once it has. */
let resolved: Transport | undefined;
let maxConnections: number | undefined;

/**
 * Registers how to load the runtime's transport (done by mod.ts), and the
 * runtime's limit on simultaneous connections, if it has one (Workers: 6),
 * known before the transport loads so pools can size themselves.
 */
export function setDefaultTransportLoader(
  load: () => Promise<Transport>,
  limits: { maxConnections?: number } = {},
): void {
  loader = load;
  loaded = undefined;
  resolved = undefined;
  maxConnections = limits.maxConnections;
}

/**
 * The most connections a pool should open by default over `transport`
 * (or the runtime's transport): one fewer than the runtime allows, leaving
 * room for a rawCommand or another client. `fallback` where there is no limit.
 */
export function defaultPoolLimit(transport: Transport | undefined, fallback: number): number {
  const limit = transport ? transport.maxConnections : maxConnections;
  return limit === undefined ? fallback : Math.max(1, Math.min(fallback, limit - 1));
}

/** The runtime's transport, loaded once. */
export function defaultTransport(): Promise<Transport> {
  if (loaded) return loaded;
  if (!loader) {
    return Promise.reject(
      new TypeError("No transport: import from @memkit/memcache (mod.ts) or pass options.transport"),
    );
  }
  loaded = loader();
  loaded.then((transport) => (resolved = transport), () => (loaded = undefined));
  return loaded;
}

/** The runtime's transport if it has been loaded already (a connection was opened with it), else undefined. */
export function loadedDefaultTransport(): Transport | undefined {
  return resolved;
}
