/**
 * A script that forgets `close()`, for tests/features/lifecycle_test.ts: it makes a
 * client, does its work, prints what it got and ends without closing or
 * calling `process.exit`. The process must exit by itself once that work is
 * done, and not before.
 *
 *   <runtime> _lifecycle_child.(ts|js) <kind> <server> [node]
 *
 * kind: `client`, `pooled`, `hash` (a set, a noreply set and two gets, then
 * the script ends), `pooled-idle` (`pooled` with a 60 s `poolIdleTimeout`:
 * its timer to close idle connections must not hold the process), `discover` (`hash` over `HashClient.discover(<server>)`,
 * a configuration endpoint, which keeps reading the node list every 50 ms
 * until closed), or `wait`, against a server that answers only the first
 * request of a connection: one get (answered; the connection then idles a
 * moment), then a second get on the same connection that is never answered,
 * timeout 1.5 s: the script must still be there to see it time out. `node`
 * uses NodeTransport instead of the runtime's default (on Deno).
 */
import process from "node:process";
import { Client, HashClient, PooledClient } from "../../mod.ts";
import { NodeTransport } from "../../transports/node.ts";

const [kind, server, transportName] = process.argv.slice(2);
const transport = transportName === "node" ? new NodeTransport() : undefined;
const options = { transport, timeout: kind === "wait" ? 1500 : 5000 };
const client = kind === "pooled"
  ? new PooledClient(server, { ...options, maxPoolSize: 2 })
  : kind === "pooled-idle"
  ? new PooledClient(server, { ...options, maxPoolSize: 2, poolIdleTimeout: 60_000 })
  : kind === "hash"
  ? new HashClient([server], options)
  : kind === "discover"
  ? await HashClient.discover(server, { ...options, discoveryInterval: 50 })
  : new Client(server, options);

if (kind === "wait") {
  await client.get("lifecycle-answered");
  await new Promise((resolve) => setTimeout(resolve, 100));
  try {
    await client.get("lifecycle-unanswered");
    process.stdout.write("answered\n");
  } catch (error) {
    process.stdout.write(`${(error as Error).name}\n`);
  }
} else {
  const key = `lifecycle-${kind}-${process.pid}`;
  await client.set(key, "forgot close", { expire: 60 });
  await client.set(`${key}-quiet`, "noreply", { expire: 60, noreply: true });
  const values = await Promise.all([client.get(key), client.get(`${key}-quiet`)]);
  process.stdout.write(`${values.join(",")}\n`);
}
// No close(): the idle connection must not keep the process alive.
