// Transport.allocUnsafe may hand the core memory that holds old bytes: the
// core must overwrite every byte it sends or returns. Here the transport's
// buffers come pre-filled with a marker that must never reach memcached or
// a caller.
import assert from "node:assert/strict";
import { describe, it } from "../_support/_harness.ts";
import { Client } from "../../mod.ts";
import { NodeTransport } from "../../transports/node.ts";
import { startMemcached } from "../_support/_memcached.ts";

const MARK = 0xa5;

class DirtyTransport extends NodeTransport {
  asked: number[] = [];
  allocUnsafe(size: number): Uint8Array {
    this.asked.push(size);
    return new Uint8Array(size).fill(MARK);
  }
}

describe("Transport.allocUnsafe", () => {
  it("large values and commands use it, and none of its old bytes is ever sent or returned", async () => {
    await using server = await startMemcached({ args: ["-I", "2m"] });
    const transport = new DirtyTransport();
    await using client = new Client(server.spec, { transport });
    await using plain = new Client(server.spec);
    const sizes = [65_535, 65_536, 100_000, 524_288, 1_500_000];
    for (const size of sizes) {
      const value = new Uint8Array(size);
      for (let i = 0; i < size; i++) value[i] = i % 251; // never MARK-only runs
      assert.equal(await client.set(`big${size}`, value, { noreply: false }), true);
      // What memcached holds, read by a client without the dirty transport.
      assert.deepEqual(await plain.get(`big${size}`), value, `stored ${size}`);
      // What the dirty client returns, read in one piece and spread over many reads.
      const got = (await client.get(`big${size}`)) as Uint8Array;
      assert.deepEqual(got, value, `returned ${size}`);
      assert.equal(got.byteOffset, 0);
      assert.equal(got.buffer.byteLength, size, "a large value owns its whole buffer");
    }
    assert.ok(transport.asked.some((n) => n >= 524_288), "asked for large buffers");
  });
});
