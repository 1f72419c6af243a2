/**
 * Large values without copies or fresh memory: a value read straight into
 * its buffer (TransportHandlers.readInto) and a send buffer reused once the
 * transport reports it written (TransportSocket.write's `done`).
 */
import assert from "node:assert/strict";
import { describe, it } from "../_support/_harness.ts";
import {
  Client,
  type ServerAddress,
  type Transport,
  type TransportConnectOptions,
  type TransportHandlers,
  type TransportSocket,
} from "../../mod.ts";
import { defaultTransport } from "../../src/connection/_default_transport.ts";
import { encodeStore } from "../../src/protocol/_text_commands.ts";
import { EXPECT_VALUES, type Reply, ReplyParser } from "../../src/protocol/_reply_parser.ts";
import { Outbox } from "../../src/protocol/_outbox.ts";
import { Rng } from "../hostile/_hostile.ts";
import { startMemcached } from "../_support/_memcached.ts";

const encoder = new TextEncoder();

function equalBytes(a: Uint8Array, b: Uint8Array): boolean {
  return a.length === b.length && a.every((x, i) => x === b[i]);
}

function pattern(n: number, seed: number): Uint8Array {
  const out = new Uint8Array(n);
  for (let i = 0; i < n; i++) out[i] = (i * 131 + seed * 17 + (i >> 8)) & 255;
  return out;
}

/** Bytes of a retrieval reply with one value per key. */
function reply(values: [string, Uint8Array][]): Uint8Array {
  const parts: Uint8Array[] = [];
  for (const [key, value] of values) {
    parts.push(encoder.encode(`VALUE ${key} 0 ${value.length}\r\n`), value, encoder.encode("\r\n"));
  }
  parts.push(encoder.encode("END\r\n"));
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let at = 0;
  for (const p of parts) {
    out.set(p, at);
    at += p.length;
  }
  return out;
}

describe("a value read straight into its buffer (readTarget / readInto)", () => {
  it("arrives exact whatever the read sizes, and a target never reaches past the value", () => {
    for (let seed = 1; seed <= 40; seed++) {
      const rng = new Rng(seed);
      const values: [string, Uint8Array][] = Array.from(
        { length: 3 },
        (_, i) => [`k${i}`, pattern(rng.range(1, 200_000), seed * 3 + i)],
      );
      const wire = reply(values);
      const replies: Reply[] = [];
      const parser = new ReplyParser(() => ({ expect: EXPECT_VALUES }), (r) => replies.push(r));
      const own = new Uint8Array(4096);
      let pos = 0;
      let direct = 0;
      while (pos < wire.length) {
        // As a transport does: ask for a target, read at most its length into it.
        const target = parser.readTarget(rng.range(1, 5000)) ?? own;
        const n = Math.min(target.length, wire.length - pos, rng.range(1, 70_000));
        target.set(wire.subarray(pos, pos + n));
        if (target !== own) {
          direct += n;
          // Only value bytes: the target ends where the value does, at its CRLF.
          assert.deepEqual([wire[pos + target.length], wire[pos + target.length + 1]], [13, 10]);
        }
        parser.feed(target.subarray(0, n));
        pos += n;
      }
      assert.ok(parser.idle);
      assert.equal(replies.length, 1);
      const items = (replies[0] as { items: { key: string; value: Uint8Array }[] }).items;
      assert.deepEqual(items.map((i) => i.key), values.map(([k]) => k));
      for (let i = 0; i < values.length; i++) assert.ok(equalBytes(items[i].value, values[i][1]), `seed ${seed}`);
      assert.ok(direct > 0, `seed ${seed}: no byte was read into a value`);
    }
  });

  it("offers nothing between values, and only the rest of the value being filled", () => {
    const parser = new ReplyParser(() => ({ expect: EXPECT_VALUES }), () => {});
    assert.equal(parser.readTarget(1), undefined);
    const wire = reply([["k", pattern(100_000, 1)]]);
    parser.feed(wire.subarray(0, 5000));
    const target = parser.readTarget(1)!;
    assert.equal(target.length, 100_000 - (5000 - "VALUE k 0 100000\r\n".length));
    assert.equal(parser.readTarget(target.length + 1), undefined); // less owed than asked for
  });
});

/** An in-process transport answering each acknowledged `set` with STORED; it holds each write until `release` is called. */
class HoldingTransport implements Transport {
  readonly name = "holding";
  /** Writes not yet reported done, with their `done`. */
  held: { data: Uint8Array; copy: Uint8Array; done?: () => void }[] = [];

  connect(_a: ServerAddress, _o: TransportConnectOptions, handlers: TransportHandlers): Promise<TransportSocket> {
    return Promise.resolve({
      write: (data, done) => {
        this.held.push({ data, copy: data.slice(), done });
        const text = new TextDecoder("latin1").decode(data);
        const sets = (text.match(/^set [^\r]*\r\n/gm) ?? []).filter((line) => !line.includes("noreply")).length;
        queueMicrotask(() => handlers.onData(encoder.encode("STORED\r\n".repeat(sets))));
      },
      close: () => Promise.resolve(handlers.onClose()),
    });
  }

  release(i: number): void {
    this.held[i].done?.();
  }
}

describe("a reused send buffer (write's done)", () => {
  it("is never written while a write holds it, and is reused once given back", async () => {
    const transport = new HoldingTransport();
    await using client = new Client("127.0.0.1:1", { transport });
    await client.set("a", pattern(300_000, 1), { noreply: false });
    await client.set("b", pattern(300_000, 2), { noreply: false }); // a still held: b gets other memory
    assert.equal(transport.held.length, 2);
    assert.ok(transport.held[0].data.buffer !== transport.held[1].data.buffer);
    assert.ok(transport.held[0].done !== undefined);
    transport.release(0);
    await client.set("c", pattern(300_000, 3), { noreply: false }); // a's buffer, given back, is reused
    assert.ok(transport.held[2].data.buffer === transport.held[0].data.buffer);
    await client.set("d", pattern(300_000, 4), { noreply: false }); // b and c still held: new memory again
    for (const i of [1, 2, 3]) {
      assert.ok(equalBytes(transport.held[i].data, transport.held[i].copy), `write ${i} changed`);
    }
    assert.ok(transport.held[3].data.buffer !== transport.held[1].data.buffer);
    assert.ok(transport.held[3].data.buffer !== transport.held[2].data.buffer);
  });

  it("after a large value the Outbox goes back to its slab, past every byte it handed out", () => {
    const out = new Outbox();
    encodeStore(out, "set", "small", 0, 0, "v", false);
    const before = out.take();
    const copy = before.slice();
    encodeStore(out, "set", "pending", 0, 0, "w", false); // pending as the large value comes: moves with it
    encodeStore(out, "set", "k", 0, 0, pattern(100_000, 1), false);
    const large = out.take();
    assert.ok(large.buffer !== before.buffer);
    assert.ok(new TextDecoder().decode(large.subarray(0, 12)).startsWith("set pending"));
    encodeStore(out, "set", "after", 0, 0, "x".repeat(200), false);
    const after = out.take();
    assert.ok(after.buffer === before.buffer); // the same slab, no new one per large value
    assert.ok(after.byteOffset >= before.byteOffset + before.length);
    assert.ok(equalBytes(before, copy));
  });

  it("the Outbox keeps one spare and never takes the buffer it is filling", () => {
    const out = new Outbox();
    encodeStore(out, "set", "k", 0, 0, pattern(100_000, 1), false);
    assert.ok(out.grown);
    const first = out.take();
    assert.ok(!out.grown);
    encodeStore(out, "set", "k", 0, 0, pattern(100_000, 2), false);
    const second = out.take();
    assert.ok(second.buffer !== first.buffer); // first not given back yet
    out.giveBack(first);
    encodeStore(out, "set", "k", 0, 0, pattern(100_000, 3), false);
    const third = out.take();
    assert.ok(third.buffer === first.buffer);
    assert.ok(equalBytes(third.subarray(third.length - 100_002, third.length - 2), pattern(100_000, 3)));
  });
});

describe("large values over a real socket", () => {
  it("512 KiB values round-trip exact, back to back and pipelined, on the runtime's transport", async () => {
    await using server = await startMemcached({ args: ["-I", "2m"] });
    const inner = await defaultTransport();
    let readIntos = 0;
    let dones = 0;
    const counting: Transport = {
      name: "counting",
      allocUnsafe: inner.allocUnsafe?.bind(inner),
      async connect(address, options, handlers) {
        const socket = await inner.connect(address, options, {
          onData: (chunk) => handlers.onData(chunk),
          onClose: (error) => handlers.onClose(error),
          readInto: () => {
            const target = handlers.readInto?.();
            if (target !== undefined) readIntos++;
            return target;
          },
        });
        return {
          write: (data, done) => socket.write(data, done && (() => (dones++, done()))),
          close: () => socket.close(),
          destroy: socket.destroy && (() => socket.destroy!()),
        };
      },
    };
    await using client = new Client(server.spec, { transport: counting });
    for (let i = 0; i < 8; i++) {
      const value = pattern(512 * 1024 + i * 977, i);
      await client.set(`big${i}`, value);
      assert.ok(equalBytes((await client.get(`big${i}`)) as Uint8Array, value), `big${i}`);
    }
    const values = Array.from({ length: 6 }, (_, i) => pattern(300_000 + i, 100 + i));
    await Promise.all(values.map((v, i) => client.set(`p${i}`, v)));
    const got = await Promise.all(values.map((_, i) => client.get(`p${i}`)));
    got.forEach((v, i) => assert.ok(equalBytes(v as Uint8Array, values[i]), `p${i}`));
    const many = await client.getMany(values.map((_, i) => `p${i}`));
    values.forEach((v, i) => assert.ok(equalBytes(many.get(`p${i}`) as Uint8Array, v), `many p${i}`));
    assert.ok(readIntos > 0, "no read went straight into a value");
    assert.ok(dones > 0, "no write reported done");
  });
});
