// Runtime transports against a server that stops reading: after a request
// times out, close() still resolves and leaves no socket, write or timer
// behind (the harness runs every case with Deno's op and resource
// sanitizers). Runs under Deno only: the silent server is Deno.listen, and
// the TCP_NODELAY cases watch Deno.connect.
import assert from "node:assert/strict";
import { describe, it } from "../_support/_harness.ts";
import { startMemcached } from "../_support/_memcached.ts";
import { within } from "../suites/_suite.ts";
import {
  Client,
  MemcacheTimeoutError,
  type ServerAddress,
  type Transport,
  type TransportConnectOptions,
  type TransportHandlers,
  type TransportSocket,
} from "../../mod.ts";
import { DenoTransport } from "../../transports/deno.ts";
import { NodeTransport } from "../../transports/node.ts";

/** A loopback server that accepts connections and never reads from them. */
function startSilentServer(): { spec: string } & AsyncDisposable {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const conns: Deno.Conn[] = [];
  const accepting = (async () => {
    try {
      for await (const conn of listener) conns.push(conn);
    } catch { /* the listener was closed */ }
  })();
  return {
    spec: `127.0.0.1:${listener.addr.port}`,
    async [Symbol.asyncDispose]() {
      listener.close();
      await accepting;
      for (const conn of conns) conn.close();
    },
  };
}

/** Wraps a transport to keep what each of its sockets' close() returns. */
class WatchedTransport implements Transport {
  readonly name: string;
  readonly closes: Promise<void>[] = [];
  #inner: Transport;
  constructor(inner: Transport) {
    this.#inner = inner;
    this.name = inner.name;
  }
  async connect(
    address: ServerAddress,
    options: TransportConnectOptions,
    handlers: TransportHandlers,
  ): Promise<TransportSocket> {
    const socket = await this.#inner.connect(address, options, handlers);
    return {
      write: (data) => socket.write(data),
      close: () => {
        const closed = socket.close();
        this.closes.push(closed);
        return closed;
      },
    };
  }
}

/** Records every `setNoDelay` call on connections `Deno.connect` opens while `body` runs. */
async function watchNoDelay(body: () => Promise<void>): Promise<boolean[]> {
  const calls: boolean[] = [];
  const connect = Deno.connect;
  // deno-lint-ignore no-explicit-any
  (Deno as any).connect = async (options: Deno.ConnectOptions) => {
    const conn = await connect(options);
    const setNoDelay = conn.setNoDelay.bind(conn);
    conn.setNoDelay = (noDelay?: boolean) => {
      calls.push(noDelay ?? true);
      setNoDelay(noDelay);
    };
    return conn;
  };
  try {
    await body();
  } finally {
    // deno-lint-ignore no-explicit-any
    (Deno as any).connect = connect;
  }
  return calls;
}

// Larger than the kernel's loopback send and receive buffers together.
const STALLING_VALUE = 32 * 1024 * 1024;

const transports: [string, () => Transport][] = [
  ["DenoTransport", () => new DenoTransport()],
  ["NodeTransport", () => new NodeTransport()],
];

for (const [name, makeTransport] of transports) {
  describe(name, () => {
    it("closes the socket after a write to a server that never reads timed out", async () => {
      await using server = startSilentServer();
      const transport = new WatchedTransport(makeTransport());
      // Not `await using`: a close() that hangs must fail the test, not hang it.
      const client = new Client(server.spec, { transport, timeout: 300 });
      await assert.rejects(
        client.set("k", new Uint8Array(STALLING_VALUE), { noreply: false }),
        MemcacheTimeoutError,
      );
      await within(client.close(), 5000, "client.close()");
      // The core closes the socket after the timeout; that close must end
      // too, though the write is stuck, or the socket and its buffers leak.
      assert.equal(transport.closes.length, 1);
      await within(Promise.all(transport.closes), 5000, "the socket's close()");
    });
  });
}

describe("DenoTransport", () => {
  it("sets TCP_NODELAY unless noDelay is false", async () => {
    await using server = await startMemcached();
    const calls = await watchNoDelay(async () => {
      await using client = new Client(server.spec, { transport: new DenoTransport() });
      await client.version();
      await using nagle = new Client(server.spec, { transport: new DenoTransport(), noDelay: false });
      await nagle.version();
    });
    assert.deepEqual(calls, [true, false]);
  });

  it("sets TCP_NODELAY under TLS too", async () => {
    await using server = await startMemcached({ tls: true });
    const calls = await watchNoDelay(async () => {
      await using client = new Client(server.spec, {
        transport: new DenoTransport(),
        tls: { caCerts: [server.cert!] },
      });
      await client.set("k", "over TLS", { noreply: false });
      assert.equal(await client.get("k"), "over TLS");
    });
    assert.deepEqual(calls, [true]);
  });
});
