/** Suite targets for this runtime: real memcached and fake servers from _memcached.ts. */
import { Client, type ClientOptions, type Transport } from "../../mod.ts";
import type { SuiteTarget } from "./_suite.ts";
import {
  freePort,
  type MemcachedVersion,
  type ProxyOptions,
  skipWithout1638,
  startFakeServer,
  startMemcached,
  startProxy,
} from "../_support/_memcached.ts";

/**
 * A target running the suite on `Client` over `transport`, against the
 * system's memcached (1.6.18) or the 1.6.38 build (its name then ends in
 * "@1.6.38"; without the build its cases fail, unless MEMKIT_SKIP_1638=1).
 */
export function clientTarget(
  name: string,
  transport: Transport,
  skip?: Record<string, string>,
  version?: MemcachedVersion,
): SuiteTarget {
  return {
    name: version === "1.6.38" ? `${name}@1.6.38` : name,
    makeClient: (spec: string, options?: ClientOptions) => new Client(spec, { transport, ...options }),
    startMemcached: version ? (options) => startMemcached({ ...options, version }) : startMemcached,
    startFakeServer,
    freePort,
    skip: version === "1.6.38" ? withEvery(skip, skipWithout1638()) : skip,
  };
}

/**
 * A target running the suite through a memcached 1.6.38 proxy (routelib, one
 * pool of three backends): each `startMemcached` starts three backends and
 * the proxy in front of them; the client only sees the proxy.
 */
export function proxyTarget(
  name: string,
  makeClient: SuiteTarget["makeClient"],
  skip: Record<string, string>,
  proxy: ProxyOptions = {},
): SuiteTarget {
  return {
    name,
    makeClient,
    startMemcached: (options) => startProxy({ ...proxy, ...options }),
    startFakeServer,
    freePort,
    skip: withEvery(skip, skipWithout1638()),
  };
}

/** `skip`, and every other case skipped with `all` when it is a reason (a Proxy: case names are not listed). */
function withEvery(skip: Record<string, string> | undefined, all: string | false): Record<string, string> | undefined {
  if (!all) return skip;
  return new Proxy({}, { get: (_, name) => typeof name === "string" ? (skip?.[name] ?? all) : undefined });
}
