// Connection behaviour that needs a scripted transport rather than a server:
// how many writes a tick's requests take, and connect timeouts (a loopback
// server always accepts at once, so only a transport can refuse to connect).
import assert from "node:assert/strict";
import { describe, it } from "../_support/_harness.ts";
import {
  Client,
  MemcacheConnectionError,
  MemcacheTimeoutError,
  type ServerAddress,
  type Transport,
  type TransportConnectOptions,
  type TransportHandlers,
  type TransportSocket,
} from "../../mod.ts";

const enc = new TextEncoder();
const dec = new TextDecoder();

/** An in-memory "server" that answers `get`/`set` lines and records every write. */
class ScriptedTransport implements Transport {
  readonly name = "scripted";
  writes: string[] = [];
  connects = 0;
  constructor(private readonly reply: (line: string) => string = defaultReply) {}
  connect(_a: ServerAddress, _o: TransportConnectOptions, handlers: TransportHandlers): Promise<TransportSocket> {
    this.connects++;
    let closed = false;
    return Promise.resolve({
      write: (data: Uint8Array) => {
        const text = dec.decode(data);
        this.writes.push(text);
        let answer = "";
        for (const line of text.split("\r\n")) if (line) answer += this.reply(line);
        if (answer) queueMicrotask(() => !closed && handlers.onData(enc.encode(answer)));
      },
      close: () => {
        if (!closed) {
          closed = true;
          handlers.onClose();
        }
        return Promise.resolve();
      },
    });
  }
}

function defaultReply(line: string): string {
  const [command, ...args] = line.split(" ");
  if (command === "get") return args.map((k) => `VALUE ${k} 16 ${k.length}\r\n${k}\r\n`).join("") + "END\r\n";
  if (command === "set") return line.endsWith("noreply") ? "" : "STORED\r\n";
  return "";
}

/** A transport whose connect never completes unless aborted. */
class BlackholeTransport implements Transport {
  readonly name = "blackhole";
  aborted = 0;
  connect(_a: ServerAddress, options: TransportConnectOptions): Promise<TransportSocket> {
    return new Promise((_, reject) => {
      options.signal?.addEventListener("abort", () => {
        this.aborted++;
        reject(options.signal!.reason);
      }, { once: true });
    });
  }
}

describe("Connection", () => {
  it("requests issued in the same tick go out in one write", async () => {
    const transport = new ScriptedTransport();
    await using client = new Client("mem:11211", { transport });
    await client.get("warmup");
    transport.writes = [];
    const keys = Array.from({ length: 200 }, (_, i) => `key${i}`);
    const values = await Promise.all(keys.map((k) => client.get(k)));
    assert.deepEqual(values, keys);
    assert.equal(transport.writes.length, 1);
    assert.equal(transport.writes[0].split("\r\n").filter(Boolean).length, 200);
  });

  it("sets whose serde is synchronous go out in call order, in the same write as the gets", async () => {
    const transport = new ScriptedTransport();
    await using client = new Client("mem:11211", { transport });
    const done = Promise.all([client.set("a", "1"), client.get("a"), client.set("b", "2")]);
    await done;
    assert.equal(transport.writes.length, 1);
    assert.deepEqual(
      transport.writes[0].split("\r\n").filter((l) => /^(get|set)/.test(l)),
      ["set a 16 0 1 noreply", "get a", "set b 16 0 1 noreply"],
    );
  });

  it("connectTimeout expiring gives MemcacheTimeoutError and aborts the connect", async () => {
    const transport = new BlackholeTransport();
    await using client = new Client("mem:11211", { transport, connectTimeout: 50 });
    await assert.rejects(client.get("k"), (e: unknown) => {
      assert.ok(e instanceof MemcacheTimeoutError);
      assert.match((e as Error).message, /Connect timed out after 50 ms.*mem:11211/);
      return true;
    });
    assert.equal(transport.aborted, 1);
  });

  it("a request timeout also bounds connecting, for every queued request", async () => {
    const transport = new BlackholeTransport();
    await using client = new Client("mem:11211", { transport, timeout: 50 });
    const results = await Promise.allSettled([client.get("a"), client.set("b", "v"), client.delete("c")]);
    for (const r of results) {
      assert.equal(r.status, "rejected");
      assert.ok((r as PromiseRejectedResult).reason instanceof MemcacheTimeoutError);
    }
    assert.equal(transport.aborted, 1);
  });

  it("close() while connecting rejects waiting requests; the client reconnects after", async () => {
    const transport = new ScriptedTransport();
    const client = new Client("mem:11211", { transport });
    const pending = client.version();
    await client.close();
    await assert.rejects(pending, MemcacheConnectionError);
    assert.equal(await client.get("x"), "x");
    await client.close();
    assert.equal(transport.connects, 2);
  });
});
