// Pools stay below a runtime's connection limit by default (Workers allows 6
// per request); here a Node transport declares that limit.
import assert from "node:assert/strict";
import { describe, it } from "../_support/_harness.ts";
import { Client, HashClient, PooledClient } from "../../mod.ts";
import { NodeTransport } from "../../transports/node.ts";
import { startMemcached } from "../_support/_memcached.ts";

class LimitedTransport extends NodeTransport {
  readonly maxConnections = 6;
}

describe("pool limits", () => {
  it("PooledClient defaults to one below the transport's maxConnections; an explicit size wins", async () => {
    await using limited = new PooledClient("127.0.0.1:1", { transport: new LimitedTransport() });
    assert.equal(limited.maxPoolSize, 5);
    await using unlimited = new PooledClient("127.0.0.1:1", { transport: new NodeTransport() });
    assert.equal(unlimited.maxPoolSize, 10);
    await using explicit = new PooledClient("127.0.0.1:1", { transport: new LimitedTransport(), maxPoolSize: 8 });
    assert.equal(explicit.maxPoolSize, 8);
  });

  it("a pooled HashClient splits the limit between its servers", async () => {
    await using a = await startMemcached();
    await using b = await startMemcached();
    await using probeA = new Client(a.spec);
    await using probeB = new Client(b.spec);
    const before = [
      (await probeA.stats()).curr_connections as number,
      (await probeB.stats()).curr_connections as number,
    ];
    await using cluster = new HashClient([a.spec, b.spec], { usePooling: true, transport: new LimitedTransport() });
    const keys = Array.from({ length: 200 }, (_, i) => `k${i}`);
    await Promise.all(keys.map((k) => cluster.set(k, k, { noreply: false })));
    const got = await Promise.all(keys.map((k) => cluster.get(k)));
    assert.deepEqual(got, keys);
    const after = [
      (await probeA.stats()).curr_connections as number,
      (await probeB.stats()).curr_connections as number,
    ];
    assert.ok(after[0] - before[0] <= 2 && after[1] - before[1] <= 2, `opened ${after} over ${before}`);
    assert.ok(after[0] - before[0] >= 1 && after[1] - before[1] >= 1);
  });
});
