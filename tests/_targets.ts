/** Suite targets for this runtime: real memcached and fake servers from _memcached.ts. */
import { Client, type ClientOptions, type Transport } from "../mod.ts";
import type { SuiteTarget } from "./_suite.ts";
import { freePort, startFakeServer, startMemcached } from "./_memcached.ts";

/** A target running the suite on `Client` over `transport`. */
export function clientTarget(name: string, transport: Transport, skip?: Record<string, string>): SuiteTarget {
  return {
    name,
    makeClient: (spec: string, options?: ClientOptions) => new Client(spec, { transport, ...options }),
    startMemcached,
    startFakeServer,
    freePort,
    skip,
  };
}
