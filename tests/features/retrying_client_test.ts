/**
 * RetryingClient: attempts, retryFor / doNotRetryFor, wrapping every client
 * class. Connection failures come from a loopback server that hangs up on
 * its first connections (memcached itself never does).
 */
import assert from "node:assert/strict";
import { describe, it } from "../_support/_harness.ts";
import {
  Client,
  HashClient,
  MemcacheError,
  MemcacheIllegalInputError,
  MemcacheServerError,
  MemcacheTimeoutError,
  MemcacheUnexpectedCloseError,
  PooledClient,
  RetryingClient,
} from "../../mod.ts";
import { type FakeServer, startFakeServer, startMemcached } from "../_support/_memcached.ts";

/** A server that hangs up on its first `failures` connections, then answers get (a miss) and version. */
function flaky(failures: number): Promise<FakeServer> {
  const sockets: unknown[] = [];
  return startFakeServer((socket, _text, all) => {
    if (!sockets.includes(socket)) sockets.push(socket);
    if (sockets.indexOf(socket) < failures) return void socket.destroy();
    if (!all.endsWith("\r\n")) return;
    socket.write(all.startsWith("version") ? "VERSION 1.2.3\r\n" : "END\r\n");
  });
}

describe("RetryingClient", () => {
  it("retries a failed call: attempts 2 (default) survives one hang-up, not two", async () => {
    await using once = await flaky(1);
    await using retrying = new RetryingClient(new Client(once.spec));
    assert.equal(await retrying.get("k", "miss"), "miss");
    assert.equal(once.connections(), 2);

    await using twice = await flaky(2);
    await using retrying2 = new RetryingClient(new Client(twice.spec));
    await assert.rejects(retrying2.get("k"), MemcacheUnexpectedCloseError);
    assert.equal(twice.connections(), 2);
    assert.equal(await retrying2.version(), "1.2.3");
  });

  it("makes up to `attempts` calls, `retryDelay` ms apart", async () => {
    await using server = await flaky(3);
    await using retrying = new RetryingClient(new Client(server.spec), { attempts: 4, retryDelay: 20 });
    assert.equal(await retrying.version(), "1.2.3");
    assert.equal(server.connections(), 4);
    await using single = await flaky(1);
    await using once = new RetryingClient(new Client(single.spec), { attempts: 1 });
    await assert.rejects(once.version(), MemcacheUnexpectedCloseError);
    assert.equal(single.connections(), 1);
  });

  it("retryFor: only errors of those classes (or subclasses) are retried", async () => {
    await using a = await flaky(1);
    await using matching = new RetryingClient(new Client(a.spec), { retryFor: [MemcacheServerError] });
    assert.equal(await matching.version(), "1.2.3"); // MemcacheUnexpectedCloseError is a MemcacheServerError
    await using b = await flaky(1);
    await using other = new RetryingClient(new Client(b.spec), { retryFor: [MemcacheTimeoutError] });
    await assert.rejects(other.version(), MemcacheUnexpectedCloseError);
    assert.equal(b.connections(), 1);
  });

  it("doNotRetryFor: errors of those classes are thrown at once", async () => {
    await using a = await flaky(1);
    await using blocked = new RetryingClient(new Client(a.spec), { attempts: 5, doNotRetryFor: [MemcacheServerError] });
    await assert.rejects(blocked.get("k"), MemcacheUnexpectedCloseError);
    assert.equal(a.connections(), 1);
    await using b = await flaky(0);
    await using input = new RetryingClient(new Client(b.spec), { doNotRetryFor: [MemcacheIllegalInputError] });
    await assert.rejects(input.get("bad key"), MemcacheIllegalInputError);
    assert.equal(b.connections(), 0);
  });

  it("commands that would apply twice (replay: false) are not retried after an unexpected close", async () => {
    for (
      const [name, call] of [
        ["incr", (c: RetryingClient) => c.incr("n", 1)],
        ["append", (c: RetryingClient) => c.append("k", "x", { noreply: false })],
        ["rawCommand", (c: RetryingClient) => c.rawCommand("version")],
      ] as const
    ) {
      await using server = await flaky(1);
      await using retrying = new RetryingClient(new Client(server.spec), { attempts: 3 });
      await assert.rejects(call(retrying), MemcacheUnexpectedCloseError, name);
      assert.equal(server.connections(), 1, `${name} was sent again`);
    }
    // Those that may replay are retried after the same failure.
    await using server = await flaky(1);
    await using retrying = new RetryingClient(new Client(server.spec), { attempts: 3 });
    assert.equal(await retrying.get("k", "miss"), "miss");
    assert.equal(server.connections(), 2);
  });

  it("checks its options as pymemcache does", () => {
    const client = new Client("127.0.0.1:1");
    assert.throws(() => new RetryingClient(client, { attempts: 0 }), TypeError);
    assert.throws(() => new RetryingClient(client, { retryDelay: -1 }), TypeError);
    assert.throws(() => new RetryingClient(client, { retryDelay: Infinity }), TypeError); // a timer would fire at once
    assert.throws(() => new RetryingClient(client, { attempts: 1.5 }), TypeError);
    // deno-lint-ignore no-explicit-any
    assert.throws(() => new RetryingClient(client, { retryFor: [String as any] }), TypeError);
    assert.throws(
      () => new RetryingClient(client, { retryFor: [MemcacheError, TypeError], doNotRetryFor: [TypeError] }),
      /both retryFor and doNotRetryFor/,
    );
    assert.equal(new RetryingClient(client).attempts, 2);
    assert.equal(new RetryingClient(client).retryDelay, 0);
  });

  it("wraps Client, PooledClient and HashClient with their results; closing it closes them", async () => {
    await using server = await startMemcached();
    for (
      const inner of [
        new Client(server.spec),
        new PooledClient(server.spec, { maxPoolSize: 2 }),
        new HashClient([server.spec]),
      ]
    ) {
      await using retrying = new RetryingClient(inner);
      assert.equal(await retrying.set("k", { a: 1 }, { noreply: false }), true);
      assert.deepEqual(await retrying.get("k"), { a: 1 });
      assert.deepEqual(await retrying.getMany(["k", "x"]), new Map([["k", { a: 1 }]]));
      assert.equal(await retrying.incr("n", 1), null);
      assert.deepEqual(retrying.checkKey("k"), new TextEncoder().encode("k"));
      const stats = await retrying.stats();
      if (inner instanceof HashClient) assert.ok(stats instanceof Map && stats.size === 1);
      else assert.equal(typeof (stats as Record<string, unknown>).pid, "number");
    }
  });
});
