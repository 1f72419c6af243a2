/**
 * AWS ElastiCache auto discovery (`HashClient.discover`): the reply parser
 * on AWS's documented bytes, and the client against a scripted
 * configuration endpoint (tests/_support/_config_endpoint.ts) whose node list
 * changes while traffic runs against real memcached nodes, over the
 * runtime's default transport and NodeTransport.
 */
import assert from "node:assert/strict";
import { describe, it } from "../_support/_harness.ts";
import {
  Client,
  HashClient,
  MemcacheConnectionError,
  MemcacheError,
  MemcacheServerError,
  MemcacheUnknownError,
  type Transport,
} from "../../mod.ts";
import { MAX_CLUSTER_CONFIG_BYTES, MAX_CLUSTER_NODES, parseClusterConfig } from "../../src/clients/_discovery.ts";
import { Failover } from "../../src/placement/_failover.ts";
import { RendezvousHash } from "../../src/placement/_rendezvous.ts";
import { NodeTransport } from "../../transports/node.ts";
import { entriesReply, entryOf, startConfigEndpoint } from "../_support/_config_endpoint.ts";
import { sleep, startMemcached } from "../_support/_memcached.ts";

/** Waits until `done()` holds, checking every 5 ms, at most `ms`; fails the test otherwise. */
async function until(done: () => boolean, what: string, ms = 5000): Promise<void> {
  for (let waited = 0; !done(); waited += 5) {
    if (waited >= ms) assert.fail(`timed out waiting for ${what}`);
    await sleep(5);
  }
}

describe("parseClusterConfig", () => {
  it("reads AWS's documented reply: version, then host|ip|port entries", () => {
    const data = "12\n" +
      "myCluster.pc4ldq.0001.use1.cache.amazonaws.com|10.82.235.120|11211 " +
      "myCluster.pc4ldq.0002.use1.cache.amazonaws.com|10.80.249.27|11211\n";
    const config = parseClusterConfig(`CONFIG cluster 0 ${data.length}\r\n${data}\r\n`);
    assert.deepEqual(config, {
      version: 12,
      servers: [
        "myCluster.pc4ldq.0001.use1.cache.amazonaws.com:11211",
        "myCluster.pc4ldq.0002.use1.cache.amazonaws.com:11211",
      ],
    });
  });

  it("the legacy get reply, an empty host (the IP is used), IPv6, duplicates once", () => {
    const data = "3\n|10.0.0.1|11211 a.example|10.0.0.2|11212 |::1|11213 a.example|10.0.0.2|11212\n";
    const config = parseClusterConfig(new TextEncoder().encode(`VALUE AmazonElastiCache:cluster 0 99\r\n${data}\r\n`));
    assert.deepEqual(config, { version: 3, servers: ["10.0.0.1:11211", "a.example:11212", "[::1]:11213"] });
  });

  it("refuses what does not parse, saying why", () => {
    const bad: [string, RegExp][] = [
      ["", /no header/],
      ["VERSION 1.6.18\r\n", /unexpected header/],
      ["CONFIG cluster 0 x\r\n1\na|b|1\n\r\n", /unexpected header/],
      ["CONFIG cluster 0 5\r\n1\n\r\n", /version line and a node line/],
      ["CONFIG cluster 0 5\r\nv1\na|1.2.3.4|11211\n\r\n", /bad version/],
      ["CONFIG cluster 0 5\r\n1\na|1.2.3.4\n\r\n", /want host\|ip\|port/],
      ["CONFIG cluster 0 5\r\n1\na|1.2.3.4|0\n\r\n", /bad node/],
      ["CONFIG cluster 0 5\r\n1\na|1.2.3.4|70000\n\r\n", /bad node/],
      ["CONFIG cluster 0 5\r\n1\n||11211\n\r\n", /bad node/],
      ["CONFIG cluster 0 5\r\n1\n \n\r\n", /version line and a node line|no nodes/],
      ["CONFIG cluster 0 5\r\n1\na|b|1\nextra\n\r\n", /got 3 lines/],
    ];
    for (const [reply, why] of bad) assert.throws(() => parseClusterConfig(reply), why, JSON.stringify(reply));
  });

  it("every node must be a host name or an IPv4/IPv6 address: one that is not refuses the whole reply", () => {
    const refused = [
      "a]b|10.0.0.1|11211",
      "foo:bar|10.0.0.1|11211",
      "a\x01b|10.0.0.1|11211",
      "a\x7fb|10.0.0.1|11211",
      "caf\u00e9.example|10.0.0.1|11211",
      "-a.example|10.0.0.1|11211",
      "a..example|10.0.0.1|11211",
      `${"a".repeat(64)}.example|10.0.0.1|11211`,
      `${"abcdefghi.".repeat(26)}com|10.0.0.1|11211`, // 263 chars
      "999.1.1.1|10.0.0.1|11211",
      "1.2.3|10.0.0.1|11211",
      "|10.0.0.256|11211",
      "|01.2.3.4|11211",
      "a.example|a.example|11211", // the IP field holds an address or nothing
      "|1::2::3|11211",
      "|1:2:3:4:5:6:7:8:9|11211",
      "|1:2:3:4:5:6:7|11211",
      "|fe80::1%eth0|11211",
      "|12345::1|11211",
      "|[::1]|11211",
      "a.example|10.0.0.1|+1",
      "a.example|10.0.0.1|011211x",
    ];
    for (const entry of refused) {
      const reply = entriesReply(5, ["good.example|10.0.0.1|11211", entry]).replace(/END\r\n$/, "");
      assert.throws(() => parseClusterConfig(reply), /bad node/, JSON.stringify(entry));
    }
    const accepted: [string, string][] = [
      ["my_cluster.0001.use1.cache.amazonaws.com|10.0.0.1|11211", "my_cluster.0001.use1.cache.amazonaws.com:11211"],
      ["localhost.|127.0.0.1|1", "localhost.:1"],
      ["|255.255.255.255|65535", "255.255.255.255:65535"],
      ["|::|11211", "[::]:11211"],
      ["|2001:DB8::8:800:200C:417A|11211", "[2001:DB8::8:800:200C:417A]:11211"],
      ["|::ffff:10.0.0.1|11211", "[::ffff:10.0.0.1]:11211"],
      ["|1:2:3:4:5:6:7:8|11211", "[1:2:3:4:5:6:7:8]:11211"],
      ["2001:db8::1|2001:db8::1|11211", "[2001:db8::1]:11211"],
    ];
    for (const [entry, server] of accepted) {
      const reply = entriesReply(5, [entry]).replace(/END\r\n$/, "");
      assert.deepEqual(parseClusterConfig(reply).servers, [server], entry);
    }
  });

  it(`more than ${MAX_CLUSTER_NODES} nodes (40,000 here) are refused at once; ${MAX_CLUSTER_NODES} are read`, () => {
    // The old decoder deduplicated with Array.includes: 40,000 nodes took it ~10 s (quadratic).
    const entries = (n: number) =>
      Array.from({ length: n }, (_, i) => `|10.${(i >> 16) & 255}.${(i >> 8) & 255}.${i & 255}|11211`);
    const many = entriesReply(9, entries(40_000)).replace(/END\r\n$/, "");
    assert.ok(many.length < MAX_CLUSTER_CONFIG_BYTES); // refused for its node count, not its size
    assert.throws(() => parseClusterConfig(many), new RegExp(`more than ${MAX_CLUSTER_NODES} nodes`));
    const most = parseClusterConfig(entriesReply(9, entries(MAX_CLUSTER_NODES)).replace(/END\r\n$/, ""));
    assert.equal(most.servers.length, MAX_CLUSTER_NODES);
    assert.equal(
      most.servers[MAX_CLUSTER_NODES - 1],
      `10.0.${(MAX_CLUSTER_NODES - 1) >> 8}.${(MAX_CLUSTER_NODES - 1) & 255}:11211`,
    );
    // A reply over the byte limit is refused before it is parsed.
    const huge = `CONFIG cluster 0 1\r\n1\n${"a.example|10.0.0.1|11211 ".repeat(MAX_CLUSTER_CONFIG_BYTES / 16)}\n\r\n`;
    assert.throws(() => parseClusterConfig(huge), /over the limit/);
  });
});

const transports: [string, () => Transport | undefined][] = [
  ["default transport", () => undefined],
  ["NodeTransport", () => new NodeTransport()],
];

for (const [label, transportOf] of transports) {
  describe(`HashClient.discover (${label})`, () => {
    const withTransport = <T extends object>(options: T): T => {
      const transport = transportOf();
      return transport ? { transport, ...options } : options;
    };

    it("builds the ring from the endpoint's node list; keys spread over the nodes", async () => {
      await using a = await startMemcached();
      await using b = await startMemcached();
      await using endpoint = await startConfigEndpoint(1, [a.spec, b.spec]);
      await using cluster = await HashClient.discover(endpoint.spec, withTransport({ defaultNoreply: false }));
      assert.deepEqual(cluster.servers, [a.spec, b.spec]);
      assert.equal(cluster.configVersion, 1);
      const keys = Array.from({ length: 60 }, (_, i) => `k${i}`);
      await cluster.setMany(Object.fromEntries(keys.map((k) => [k, k])));
      assert.equal((await cluster.getMany(keys)).size, 60);
      for (const server of [a, b]) {
        await using direct = new Client(server.spec);
        assert.ok(((await direct.stats())["curr_items"] as number) > 0, `no keys on ${server.spec}`);
      }
    });

    it("nodes join and leave while traffic runs: keys move, nothing in flight fails", async () => {
      await using a = await startMemcached();
      await using b = await startMemcached();
      await using c = await startMemcached();
      await using endpoint = await startConfigEndpoint(1, [a.spec, b.spec]);
      const errors: Error[] = [];
      await using cluster = await HashClient.discover(
        endpoint.spec,
        withTransport({ defaultNoreply: false, discoveryInterval: 20, onDiscoveryError: (e: Error) => errors.push(e) }),
      );
      const keys = Array.from({ length: 200 }, (_, i) => `key-${i}`);
      const before = new Map(keys.map((k) => [k, cluster.serverFor(k)]));

      // Traffic: pipelined sets and gets of every key, round after round, until told to stop.
      let running = true;
      let rounds = 0;
      const failures: unknown[] = [];
      const traffic = (async () => {
        while (running) {
          const calls = keys.flatMap((k) => [cluster.set(k, `${k}@${rounds}`), cluster.get(k)]);
          for (const outcome of await Promise.allSettled(calls)) {
            if (outcome.status === "rejected") failures.push(outcome.reason);
          }
          rounds++;
        }
      })();

      await until(() => rounds >= 2, "traffic");
      endpoint.set(2, [a.spec, b.spec, c.spec]);
      await until(() => cluster.servers.length === 3, "c to join");
      assert.equal(cluster.configVersion, 2);
      const roundsAt3 = rounds;
      await until(() => rounds >= roundsAt3 + 3, "traffic on three nodes");
      const onC = keys.filter((k) => cluster.serverFor(k) === c.spec);
      assert.ok(onC.length > 0, "some keys moved to the new node");
      assert.ok(onC.every((k) => before.get(k) !== c.spec));

      endpoint.set(3, [b.spec, c.spec]);
      await until(() => cluster.servers.length === 2, "a to leave");
      assert.deepEqual(cluster.servers, [b.spec, c.spec]);
      const roundsAt2 = rounds;
      await until(() => rounds >= roundsAt2 + 3, "traffic on two nodes");
      running = false;
      await traffic;

      assert.deepEqual(failures, [], "no call failed while the ring changed");
      assert.deepEqual(errors, []);
      assert.ok(keys.every((k) => cluster.serverFor(k) !== a.spec), "no key stays on the node that left");
      // Every key reads back what the last round wrote, wherever it lives now.
      const last = await cluster.getMany(keys);
      for (const k of keys) assert.equal(last.get(k), `${k}@${rounds - 1}`);
      // The keys on c are really there.
      await using direct = new Client(c.spec);
      assert.equal(await direct.get(onC[0]), `${onC[0]}@${rounds - 1}`);
    });

    it("a reply that does not parse (or an error) keeps the previous ring; polling goes on", async () => {
      await using a = await startMemcached();
      await using b = await startMemcached();
      await using endpoint = await startConfigEndpoint(1, [a.spec]);
      const errors: Error[] = [];
      await using cluster = await HashClient.discover(
        endpoint.spec,
        withTransport({ discoveryInterval: 10, onDiscoveryError: (e: Error) => errors.push(e) }),
      );
      for (const mode of ["garbage", "bad-node"] as const) {
        endpoint.mode = mode;
        await assert.rejects(cluster.refreshServers(), (error: unknown) => {
          assert.ok(error instanceof MemcacheUnknownError, String(error));
          assert.match(error.message, /Unparseable cluster configuration/);
          return true;
        });
        assert.deepEqual(cluster.servers, [a.spec]);
        assert.equal(cluster.configVersion, 1);
      }
      endpoint.mode = "error";
      await assert.rejects(cluster.refreshServers(), MemcacheServerError);
      // Scheduled reads report to onDiscoveryError and keep going.
      const seen = errors.length;
      await until(() => errors.length >= seen + 2, "scheduled reads to report");
      assert.ok(errors.every((e) => e instanceof MemcacheUnknownError || e instanceof MemcacheServerError));
      assert.equal(await cluster.set("k", "v"), true);
      // The endpoint recovers with a new node list: it is applied.
      endpoint.set(2, [a.spec, b.spec]);
      endpoint.mode = "config";
      await until(() => cluster.servers.length === 2, "the new list");
      assert.equal(cluster.configVersion, 2);
    });

    it("a config with one impossible node, or too many nodes, is refused whole: the ring stays, gets keep working", async () => {
      await using a = await startMemcached();
      await using b = await startMemcached();
      await using endpoint = await startConfigEndpoint(1, [a.spec]);
      const errors: Error[] = [];
      await using cluster = await HashClient.discover(
        endpoint.spec,
        withTransport({ discoveryInterval: 0, onDiscoveryError: (e: Error) => errors.push(e) }),
      );
      assert.equal(await cluster.set("kept", "v", { noreply: false }), true);
      const bad = ["a]b|10.0.0.9|11211", "foo:bar|10.0.0.9|11211", "bad\x01host|10.0.0.9|11211", "|10.0.0.9|0"];
      let version = 2;
      for (const entry of bad) {
        endpoint.setEntries(version++, [entryOf(b.spec), entry, entryOf(a.spec)]);
        await assert.rejects(cluster.refreshServers(), (error: unknown) => {
          assert.ok(error instanceof MemcacheUnknownError, String(error));
          assert.match(error.message, /bad node/);
          return true;
        }, JSON.stringify(entry));
        assert.deepEqual(cluster.servers, [a.spec], JSON.stringify(entry));
        assert.equal(cluster.configVersion, 1);
        assert.equal(await cluster.get("kept"), "v");
      }
      // 40,000 nodes: refused by the node limit, at once (the old decoder stalled the loop for seconds).
      const many = Array.from(
        { length: 40_000 },
        (_, i) => `|10.${(i >> 16) & 255}.${(i >> 8) & 255}.${i & 255}|11211`,
      );
      endpoint.setEntries(version++, many);
      await assert.rejects(cluster.refreshServers(), new RegExp(`more than ${MAX_CLUSTER_NODES} nodes`));
      assert.deepEqual(cluster.servers, [a.spec]);
      assert.equal(await cluster.get("kept"), "v");
      // A good list afterwards is applied.
      endpoint.set(version, [a.spec, b.spec]);
      assert.equal(await cluster.refreshServers(), true);
      assert.deepEqual(cluster.servers, [a.spec, b.spec]);
      assert.equal(cluster.configVersion, version);
      assert.deepEqual(errors, []); // refreshServers rejects; only scheduled reads report
    });

    it("a reply that runs past 1 MiB without its end is cut off there, not read on until the timeout", async () => {
      await using a = await startMemcached();
      await using endpoint = await startConfigEndpoint(1, [a.spec]);
      await using cluster = await HashClient.discover(
        endpoint.spec,
        withTransport({ discoveryInterval: 0, timeout: 30_000 }),
      );
      endpoint.mode = "endless"; // 4 MiB, then silence
      await assert.rejects(cluster.refreshServers(), (error: unknown) => {
        assert.ok(error instanceof MemcacheError, String(error));
        // Cut off by the size (the timeout, 30 s, would say "timed out" and take the test's time).
        assert.match(error.message, /exceeded \d+ bytes/);
        return true;
      });
      assert.deepEqual(cluster.servers, [a.spec]);
      assert.equal(await cluster.set("k", "v", { noreply: false }), true);
      endpoint.mode = "config";
      endpoint.set(2, [a.spec]);
      await cluster.refreshServers(); // the endpoint reads well again
      assert.equal(cluster.configVersion, 2);
    });

    it("the same version is not applied again; engines before 1.4.14 are read with get AmazonElastiCache:cluster", async () => {
      await using a = await startMemcached();
      await using b = await startMemcached();
      await using endpoint = await startConfigEndpoint(7, [a.spec]);
      endpoint.mode = "legacy";
      await using cluster = await HashClient.discover(endpoint.spec, withTransport({ discoveryInterval: 0 }));
      assert.deepEqual(cluster.servers, [a.spec]);
      endpoint.set(7, [a.spec, b.spec]); // a changed list under the same version: AWS bumps it on every change
      assert.equal(await cluster.refreshServers(), false);
      assert.deepEqual(cluster.servers, [a.spec]);
      endpoint.set(8, [b.spec]);
      assert.equal(await cluster.refreshServers(), true);
      assert.deepEqual(cluster.servers, [b.spec]);
    });

    it("close() stops polling (no timer or socket left behind); the client keeps its last ring", async () => {
      await using a = await startMemcached();
      await using endpoint = await startConfigEndpoint(1, [a.spec]);
      const cluster = await HashClient.discover(endpoint.spec, withTransport({ discoveryInterval: 10 }));
      await until(() => endpoint.requests() >= 3, "a few reads");
      await cluster.close();
      const requests = endpoint.requests();
      await sleep(60);
      assert.equal(endpoint.requests(), requests);
      assert.equal(await cluster.set("k", "after close", { noreply: false }), true);
      assert.equal(await cluster.get("k"), "after close");
      await cluster.close();
    });
  });
}

describe("HashClient.discover: bad input", () => {
  it("bad options are a TypeError before any I/O", async () => {
    await using endpoint = await startConfigEndpoint(1, ["127.0.0.1:1"]);
    await assert.rejects(HashClient.discover(endpoint.spec, { discoveryInterval: -1 }), TypeError);
    await assert.rejects(HashClient.discover(endpoint.spec, { hasher: "nope" as "ketama" }), TypeError);
    await assert.rejects(HashClient.discover(endpoint.spec, { auth: { username: "a b", password: "x" } }), TypeError);
    await assert.rejects(HashClient.discover("bad host:1"), TypeError);
    assert.equal(endpoint.connections(), 0);
  });

  it("a first reply that does not parse rejects discover, leaving nothing open", async () => {
    await using endpoint = await startConfigEndpoint(1, ["127.0.0.1:1"]);
    endpoint.mode = "garbage";
    await assert.rejects(HashClient.discover(endpoint.spec), /Unparseable cluster configuration/);
    endpoint.mode = "silent";
    await assert.rejects(HashClient.discover(endpoint.spec, { timeout: 200 }), /Timed out/);
  });

  it("an endpoint that is plain memcached (no configuration) is a clear error", async () => {
    await using server = await startMemcached();
    await assert.rejects(HashClient.discover(server.spec), /no cluster configuration/);
  });
});

describe("Failover across a ring change", () => {
  it("a server marked dead by a call of the old ring leaves the new ring too", async () => {
    const client = (server: string) => ({ server, close: () => Promise.resolve() });
    const nodes = ["a:1", "b:1"].map((name) => ({
      name,
      client: client(name),
      failure: null,
      generation: 0,
      deadAt: null as number | null,
    }));
    const options = { retryAttempts: 0, retryTimeout: 0, deadTimeout: 60_000, ignoreExc: false };
    const old = new Failover(nodes, new RendezvousHash(["a:1", "b:1"]), options, () => {});
    const fresh = new Failover(nodes, new RendezvousHash(["a:1", "b:1"]), options, () => {}); // the list changed
    const keys = Array.from({ length: 50 }, (_, i) => `k${i}`);
    const onA = keys.filter((k) => fresh.route(k)?.name === "a:1");
    assert.ok(onA.length > 0);
    // A call that began on the old ring fails on the network: a is dead (retryAttempts 0).
    await assert.rejects(
      old.run(nodes[0], () => Promise.reject(new MemcacheConnectionError("refused"))),
      MemcacheConnectionError,
    );
    assert.notEqual(nodes[0].deadAt, null);
    for (const k of onA) assert.equal(fresh.route(k)?.name, "b:1");
    assert.deepEqual(fresh.live().map((n) => n.name), ["b:1"]);
  });
});
