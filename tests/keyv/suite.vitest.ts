/**
 * Keyv's own adapter test suite (`@keyv/test-suite`, the one Keyv's official
 * adapters run: its API, value and namespace tests) against `KeyvMemcache`
 * on a real memcached, with keyv 5.6 on Node, for each way of giving the
 * adapter a client: `Client`, `PooledClient`, `HashClient` over two servers,
 * `RetryingClient`, and server specs (its own `HashClient`).
 */
import * as test from "vitest";
import Keyv from "keyv";
import keyvTestSuite from "@keyv/test-suite";
import { Client, HashClient, PooledClient, RetryingClient } from "../../mod.ts";
import { KeyvMemcache } from "../../keyv.ts";
import { type MemcachedServer, startMemcached } from "../_support/_memcached.ts";

const servers: MemcachedServer[] = [];
const closers: Array<() => Promise<void>> = [];

test.beforeAll(async () => {
  servers.push(await startMemcached(), await startMemcached());
});

test.afterAll(async () => {
  for (const close of closers) await close();
  for (const server of servers) await server.stop();
});

/** A client made on first use (the servers start in beforeAll) and closed after all. */
function shared<T extends { close(): Promise<void> }>(make: () => T): () => T {
  let client: T | undefined;
  return () => {
    if (client === undefined) {
      client = make();
      const made = client;
      closers.push(() => made.close());
    }
    return client;
  };
}

const targets: Array<[string, () => KeyvMemcache]> = [
  ["Client", ((c) => () => new KeyvMemcache(c()))(shared(() => new Client(servers[0].spec)))],
  ["PooledClient", ((c) => () => new KeyvMemcache(c()))(shared(() => new PooledClient(servers[0].spec)))],
  [
    "HashClient, two servers",
    ((c) => () => new KeyvMemcache(c()))(shared(() => new HashClient(servers.map((s) => s.spec)))),
  ],
  [
    "RetryingClient",
    ((c) => () => new KeyvMemcache(c()))(shared(() => new RetryingClient(new Client(servers[1].spec)))),
  ],
  [
    "server specs (its own HashClient)",
    () => {
      const store = new KeyvMemcache(servers.map((s) => s.spec));
      closers.push(() => store.disconnect());
      return store;
    },
  ],
];

for (const [name, store] of targets) {
  test.describe(name, () => {
    keyvTestSuite(test, Keyv, store);
  });
}
