/** PooledClient: connection limits, blocking, idle timeout, failed connections (real memcached). */
import assert from "node:assert/strict";
import * as net from "node:net";
import { describe, it } from "../_support/_harness.ts";
import {
  Client,
  MemcacheClientError,
  MemcacheError,
  MemcacheIllegalInputError,
  MemcacheServerError,
  MemcacheTimeoutError,
  MemcacheUnknownError,
  PooledClient,
  type ServerAddress,
  type Transport,
  type TransportConnectOptions,
  type TransportHandlers,
  type TransportSocket,
} from "../../mod.ts";
import { NodeTransport } from "../../transports/node.ts";
import { startFakeServer, startMemcached } from "../_support/_memcached.ts";

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** A server that accepts and then stops reading: writes to it stall once the socket buffers are full. */
async function stalledServer() {
  const sockets = new Set<net.Socket>();
  const server = net.createServer((socket) => {
    sockets.add(socket);
    socket.pause();
    socket.on("error", () => {});
    socket.on("close", () => sockets.delete(socket));
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  return {
    spec: `127.0.0.1:${(server.address() as net.AddressInfo).port}`,
    async [Symbol.asyncDispose]() {
      const closed = new Promise<void>((resolve) => server.close(() => resolve()));
      const gone = [...sockets].map((s) => new Promise<void>((r) => (s.once("close", () => r()), s.destroy())));
      await Promise.all([closed, ...gone]);
    },
  };
}

/**
 * A transport counting its sockets from connect until closed: how many
 * existed at once, at most. Closing takes `closeMs` more, as a socket
 * whose close waits for the network does.
 */
class CountingTransport implements Transport {
  readonly name = "counting";
  open = 0;
  most = 0;
  readonly #inner = new NodeTransport();
  constructor(readonly closeMs: number) {}

  async connect(
    address: ServerAddress,
    options: TransportConnectOptions,
    handlers: TransportHandlers,
  ): Promise<TransportSocket> {
    let gone = false;
    const closed = () => {
      if (!gone) this.open--;
      gone = true;
    };
    const slowly = (closing: Promise<void>): Promise<void> =>
      closing.then(() => sleep(this.closeMs)).then(() => {}).finally(closed);
    const socket = await this.#inner.connect(address, options, {
      onData: (chunk) => handlers.onData(chunk),
      onClose: (error) => handlers.onClose(error),
    });
    this.most = Math.max(this.most, ++this.open);
    return {
      write: (data) => socket.write(data),
      close: () => slowly(socket.close()),
      destroy: socket.destroy && (() => slowly(socket.destroy!())),
    };
  }
}

async function connections(probe: Client): Promise<number> {
  return (await probe.stats()).curr_connections as number;
}

describe("PooledClient", () => {
  it("10,000 concurrent operations with maxPoolSize 4: all correct, never more than 4 connections", async () => {
    await using server = await startMemcached({ args: ["-t", "4"] });
    await using probe = new Client(server.spec);
    await probe.setMany(Object.fromEntries(Array.from({ length: 2500 }, (_, j) => [`pre${j}`, j])), { noreply: false });
    const baseline = await connections(probe); // the probe's own connection and the listener included
    const acceptedBefore = (await probe.stats()).total_connections as number;
    await using pool = new PooledClient(server.spec, { maxPoolSize: 4 });
    let done = false;
    const samples: number[] = [];
    const sampling = (async () => {
      while (!done) samples.push((await connections(probe)) - baseline);
    })();
    sampling.catch(() => {}); // awaited below; a failing run must not leave it unhandled
    const ops: Promise<void>[] = [];
    for (let i = 0; i < 10_000; i++) {
      switch (i % 4) {
        case 0: // k0 ... k2499
          ops.push(pool.set(`k${i / 4}`, i / 4, { noreply: i % 8 === 0 }).then((r) => assert.equal(r, true)));
          break;
        case 1:
          ops.push(pool.add(`fresh${i}`, i).then((r) => assert.equal(r, true)));
          break;
        case 2:
          // keys stored before the run: concurrent calls may run on different connections
          ops.push(
            pool.getMany([`none${i}`, `pre${i >> 2}`]).then((m) =>
              assert.deepEqual([...m], [[`pre${i >> 2}`, i >> 2]])
            ),
          );
          break;
        case 3:
          ops.push(pool.incr(`missing${i}`, 1).then((r) => assert.equal(r, null)));
          break;
      }
      assert.ok(pool.size <= 4);
    }
    try {
      await Promise.all(ops);
    } finally {
      done = true;
      await sampling;
    }
    assert.equal(pool.size, 4);
    assert.equal((await connections(probe)) - baseline, 4); // all four stay open, idle
    assert.ok(samples.length > 0);
    assert.ok(Math.max(...samples) <= 4, `samples: ${samples.join(",")}`);
    // Sampling could miss a short-lived fifth connection; the server's count of accepted ones cannot.
    assert.equal((await probe.stats()).total_connections as number, acceptedBefore + 4);
    const values = await pool.getMany(Array.from({ length: 2500 }, (_, i) => `k${i}`));
    assert.equal(values.size, 2500);
    values.forEach((v, k) => assert.equal(v, Number(k.slice(1))));
  });

  it("small calls share one connection's pipeline; past 64 in flight, or beside a large value, another opens", async () => {
    await using server = await startMemcached();
    await using probe = new Client(server.spec);
    const before = (await probe.stats()).total_connections as number;
    await using pool = new PooledClient(server.spec, { maxPoolSize: 5 });
    await Promise.all([pool.set("a", 1), pool.set("b", 2), pool.set("c", 3)]);
    assert.equal(pool.size, 1); // one pipeline carries them
    const many = await Promise.all(Array.from({ length: 64 }, () => pool.get("a")));
    assert.deepEqual(many, Array(64).fill(1));
    assert.equal(pool.size, 1);
    await Promise.all(Array.from({ length: 65 }, () => pool.get("a")));
    assert.equal(pool.size, 2); // the 65th found the pipeline full
    for (let i = 0; i < 20; i++) assert.equal(await pool.get("a"), 1); // sequential: one idle connection serves all
    assert.equal(pool.size, 2);
    assert.equal((await probe.stats()).total_connections as number, before + 2);
    // Calls refused before they reach the wire give their place in the pipeline back: 100 of
    // them fill both pipelines once, yet 64 calls made after fit in one again.
    const refused = await Promise.allSettled([
      pool.get("a"),
      ...Array.from({ length: 100 }, () => pool.get("bad key")),
    ]);
    assert.ok(refused.slice(1).every((r) => r.status === "rejected" && r.reason instanceof MemcacheIllegalInputError));
    await Promise.all([pool.get("a"), ...Array.from({ length: 63 }, () => pool.get("a"))]);
    assert.equal(pool.size, 2);
    assert.equal((await probe.stats()).total_connections as number, before + 2);

    // A large value takes a connection of its own, and small calls stay off it.
    await using split = new PooledClient(server.spec, { maxPoolSize: 5 });
    const big = new Uint8Array(65536).fill(7);
    await Promise.all([split.set("big1", big), split.set("big2", big), split.get("a"), split.get("b")]);
    assert.equal(split.size, 3);
    assert.deepEqual(await split.get("big2"), big);
  });

  it("poolBlocking: false rejects when every connection is busy; true (default) queues", async () => {
    await using server = await startMemcached();
    await using strict = new PooledClient(server.spec, { maxPoolSize: 2, poolBlocking: false });
    const small = await Promise.allSettled(Array.from({ length: 129 }, (_, i) => strict.get(`k${i}`)));
    assert.ok(small.slice(0, 128).every((r) => r.status === "fulfilled")); // two pipelines of 64
    assert.equal(small[128].status, "rejected");
    const big = new Uint8Array(65536);
    const results = await Promise.allSettled([strict.set("a", big), strict.set("b", big), strict.set("c", big)]);
    assert.equal(results[0].status, "fulfilled");
    assert.equal(results[1].status, "fulfilled");
    assert.equal(results[2].status, "rejected");
    const reason = (results[2] as PromiseRejectedResult).reason;
    assert.ok(reason instanceof MemcacheError);
    assert.match(reason.message, /All 2 pooled connections are busy/);
    assert.equal(await strict.get("x", "free again"), "free again");

    await using blocking = new PooledClient(server.spec, { maxPoolSize: 2 });
    const all = await Promise.all(Array.from({ length: 200 }, (_, i) => blocking.set(`k${i}`, i, { noreply: false })));
    assert.deepEqual(all, Array(200).fill(true));
    assert.equal(blocking.size, 2);
  });

  it("poolIdleTimeout closes connections left idle that long; the next call opens a new one", async () => {
    await using server = await startMemcached();
    await using probe = new Client(server.spec);
    const baseline = await connections(probe);
    await using pool = new PooledClient(server.spec, { maxPoolSize: 3, poolIdleTimeout: 50 });
    const big = new Uint8Array(65536); // a large value each: a connection each
    await Promise.all([pool.set("k", "v"), pool.set("x", big), pool.set("y", big)]);
    assert.equal(pool.size, 3);
    for (let i = 0; i < 400 && pool.size > 0; i++) await sleep(10);
    assert.equal(pool.size, 0);
    for (let i = 0; i < 200 && (await connections(probe)) > baseline; i++) await sleep(10);
    assert.equal(await connections(probe), baseline); // memcached saw them close
    assert.equal(await pool.get("k"), "v");
    assert.equal(pool.size, 1);
  });

  it("a connection that failed is destroyed and never handed out again", async () => {
    const sockets: unknown[] = [];
    await using fake = await startFakeServer((socket, _text, all) => {
      if (!sockets.includes(socket)) sockets.push(socket);
      if (!all.endsWith("\r\n")) return;
      // The first connection answers garbage; later ones answer properly.
      socket.write(sockets.indexOf(socket) === 0 ? "HELLO THERE\r\n" : "VERSION 1.2.3\r\n");
    });
    await using pool = new PooledClient(fake.spec, { maxPoolSize: 1 });
    await assert.rejects(pool.version(), MemcacheUnknownError);
    assert.equal(pool.size, 0);
    assert.equal(await pool.version(), "1.2.3");
    assert.equal(await pool.version(), "1.2.3");
    assert.equal(fake.connections(), 2);
  });

  it("a server that stops reading: never more than maxPoolSize sockets, closing ones included", async () => {
    await using server = await stalledServer();
    const transport = new CountingTransport(100);
    await using pool = new PooledClient(server.spec, { maxPoolSize: 4, timeout: 300, transport });
    const big = new Uint8Array(4 << 20); // more than the socket buffers hold: the writes stall
    // Three rounds, and more while no socket has opened yet: on a loaded machine every connect of a round can take
    // longer than the 300 ms timeout (aborted, never counted), which would leave the bound below unexercised.
    for (let round = 0; round < 3 || (transport.most === 0 && round < 30); round++) {
      const calls = Array.from({ length: 12 }, (_, i) => pool.set(`k${round}-${i}`, big, { noreply: false }));
      const results = await Promise.allSettled(calls);
      for (const result of results) {
        assert.equal(result.status, "rejected");
        assert.ok((result as PromiseRejectedResult).reason instanceof MemcacheTimeoutError);
      }
    }
    assert.ok(transport.most >= 1);
    assert.ok(transport.most <= 4, `${transport.most} sockets existed at once with maxPoolSize 4`);
    await pool.close();
    assert.equal(transport.open, 0);
  });

  it("a well-framed SERVER_ERROR keeps the connection", async () => {
    await using server = await startMemcached({ args: ["-I", "1m"] });
    await using pool = new PooledClient(server.spec, { maxPoolSize: 1 });
    await pool.set("small", "ok", { noreply: false });
    const before = (await pool.stats()).total_connections;
    await assert.rejects(pool.set("huge", new Uint8Array(1_200_000), { noreply: false }), MemcacheServerError);
    assert.equal(await pool.get("small"), "ok");
    assert.equal((await pool.stats()).total_connections, before);
  });

  it("CLIENT_ERROR or ERROR to a one-line command keeps the connection, and the calls pipelined behind it", async () => {
    await using server = await startMemcached();
    await using pool = new PooledClient(server.spec, { maxPoolSize: 1 });
    await pool.set("text", "abc", { noreply: false });
    await pool.set("k", "v", { noreply: false });
    const before = (await pool.stats()).total_connections;
    const incr = pool.incr("text", 1); // CLIENT_ERROR cannot increment or decrement non-numeric value
    const meta = pool.metaArithmetic("text", { delta: 1 }); // CLIENT_ERROR too, as meta says it
    const behind = Array.from({ length: 20 }, () => pool.get("k"));
    await assert.rejects(incr, MemcacheClientError);
    await assert.rejects(meta, MemcacheError);
    assert.deepEqual(await Promise.all(behind), Array(20).fill("v"));
    assert.equal((await pool.stats()).total_connections, before);
  });

  it("kill memcached mid-run: failed connections are replaced after a restart", async () => {
    await using server = await startMemcached();
    await using pool = new PooledClient(server.spec, { maxPoolSize: 3 });
    await Promise.all(Array.from({ length: 150 }, (_, i) => pool.set(`k${i}`, i, { noreply: false })));
    assert.equal(pool.size, 3); // 64 + 64 + 22 in flight
    await server.stop();
    const failed = await Promise.allSettled(Array.from({ length: 150 }, (_, i) => pool.get(`k${i}`)));
    assert.ok(failed.every((r) => r.status === "rejected" && r.reason instanceof MemcacheError));
    assert.equal(pool.size, 0);
    await server.restart();
    const fresh = await Promise.all(Array.from({ length: 150 }, (_, i) => pool.get(`k${i}`, "miss")));
    assert.deepEqual(fresh, Array(150).fill("miss"));
    assert.equal(pool.size, 3);
  });

  it("close() closes every connection and the pool stays usable; options are checked", async () => {
    await using server = await startMemcached();
    await using probe = new Client(server.spec);
    const baseline = await connections(probe);
    const pool = new PooledClient(server.spec, { maxPoolSize: 4 });
    await Promise.all(Array.from({ length: 8 }, (_, i) => pool.set(`k${i}`, i)));
    await pool.close();
    assert.equal(pool.size, 0);
    for (let i = 0; i < 200 && (await connections(probe)) > baseline; i++) await sleep(10);
    assert.equal(await connections(probe), baseline);
    assert.equal(await pool.get("k3"), 3);
    await pool[Symbol.asyncDispose]();
    assert.throws(() => new PooledClient(server.spec, { maxPoolSize: 0 }), TypeError);
    assert.throws(() => new PooledClient(server.spec, { poolIdleTimeout: -1 }), TypeError);
    assert.throws(() => new PooledClient("bad spec:x"), TypeError);
  });
});
