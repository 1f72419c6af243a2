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

/** Registers how to load the runtime's transport (done by mod.ts). */
export function setDefaultTransportLoader(load: () => Promise<Transport>): void {
  loader = load;
  loaded = undefined;
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
  loaded.catch(() => (loaded = undefined));
  return loaded;
}
