// The codec on scripted bytes: no sockets. Replies are fed split at every
// byte position (and in one chunk each), and must parse identically.
import assert from "node:assert/strict";
import { describe, it } from "../_support/_harness.ts";
import { encodeArithmetic, encodeRetrieve, encodeStore } from "../../src/protocol/_text_commands.ts";
import {
  EXPECT_LINE,
  EXPECT_RAW,
  EXPECT_STATS,
  EXPECT_VALUES,
  type Expectation,
  type Reply,
  ReplyParser,
} from "../../src/protocol/_reply_parser.ts";
import { Outbox, utf8Length } from "../../src/protocol/_outbox.ts";
import { ProtocolError } from "../../src/protocol/_wire.ts";

const enc = new TextEncoder();
const dec = new TextDecoder();

/** Parses `stream` for the given expectations, fed as `chunks`. */
function parse(expects: Expectation[], chunks: Uint8Array[]): Reply[] {
  const queue = [...expects];
  const replies: Reply[] = [];
  const parser = new ReplyParser(() => queue[0], (reply) => {
    queue.shift();
    replies.push(reply);
  });
  for (const chunk of chunks) parser.feed(chunk);
  assert.equal(parser.idle, true, "parser left mid-reply");
  return replies;
}

function splits(bytes: Uint8Array): Uint8Array[][] {
  const out: Uint8Array[][] = [[bytes], [...bytes].map((b) => new Uint8Array([b]))];
  for (let i = 1; i < bytes.length; i++) out.push([bytes.slice(0, i), bytes.slice(i)]);
  for (let i = 1; i + 3 < bytes.length; i += 3) {
    out.push([bytes.slice(0, i), bytes.slice(i, i + 3), bytes.slice(i + 3)]);
  }
  return out;
}

const L = { expect: EXPECT_LINE };
const V = { expect: EXPECT_VALUES };
const S = { expect: EXPECT_STATS };

describe("ReplyParser", () => {
  const tricky = "VALUE x 0 5\r\n\r\nEND\r\n";
  const script = [
    "STORED\r\n",
    "NOT_STORED\r\n",
    `VALUE a 16 ${enc.encode(tricky).length}\r\n${tricky}\r\nVALUE b 0 0\r\n\r\nEND\r\n`,
    "END\r\n",
    "VALUE k 2 2 987654321\r\n42\r\nEND\r\n",
    "12345\r\n",
    "STAT pid 77\r\nSTAT version 1.6.18\r\nSTAT 1:chunk_size 96\r\nEND\r\n",
    "SERVER_ERROR object too large for cache\r\n",
    "VERSION 1.6.18\r\n",
    "ERROR\r\n",
    "RESET\r\n",
    "CLIENT_ERROR bad data chunk\r\n",
  ].join("");
  const expects = [L, L, V, V, V, L, S, L, L, L, S, L];
  const expected: Reply[] = [
    { type: "status", status: "STORED" },
    { type: "status", status: "NOT_STORED" },
    {
      type: "values",
      items: [
        { key: "a", flags: 16, value: enc.encode(tricky) },
        { key: "b", flags: 0, value: new Uint8Array(0) },
      ],
    },
    { type: "values", items: [] },
    { type: "values", items: [{ key: "k", flags: 2, value: enc.encode("42"), cas: "987654321" }] },
    { type: "line", text: "12345" },
    { type: "stats", entries: [["pid", "77"], ["version", "1.6.18"], ["1:chunk_size", "96"]] },
    { type: "error", kind: "SERVER_ERROR", message: "SERVER_ERROR object too large for cache" },
    { type: "line", text: "VERSION 1.6.18" },
    { type: "error", kind: "ERROR", message: "ERROR" },
    { type: "stats", entries: [] },
    { type: "error", kind: "CLIENT_ERROR", message: "CLIENT_ERROR bad data chunk" },
  ];

  it("parses a scripted stream identically however it is split", () => {
    const bytes = enc.encode(script);
    const all = splits(bytes);
    assert.ok(all.length > bytes.length);
    for (const chunks of all) assert.deepEqual(parse(expects, chunks), expected);
  });

  it("takes a value by its length even when it holds protocol text", () => {
    const value = "VALUE evil 0 3\r\nbad\r\nEND\r\n";
    const bytes = enc.encode(`VALUE good 0 ${value.length}\r\n${value}\r\nEND\r\n`);
    for (const chunks of splits(bytes)) {
      const [reply] = parse([V], chunks);
      assert.equal(reply.type, "values");
      const items = (reply as { items: { key: string; value: Uint8Array }[] }).items;
      assert.equal(items.length, 1);
      assert.equal(items[0].key, "good");
      assert.equal(dec.decode(items[0].value), value);
    }
  });

  it("copies values: a reused chunk buffer cannot change a parsed value", () => {
    const buf = enc.encode("VALUE a 0 3\r\nabc\r\nEND\r\n");
    const [reply] = parse([V], [buf]);
    buf.fill(0);
    assert.equal(dec.decode((reply as { items: { value: Uint8Array }[] }).items[0].value), "abc");
  });

  it("raw replies end at the end tokens, split anywhere", () => {
    const bytes = enc.encode("VALUE k 0 2\r\nhi\r\nEND\r\nSTORED\r\n");
    for (const chunks of splits(bytes)) {
      const replies = parse([{ expect: EXPECT_RAW, endTokens: enc.encode("END\r\n") }, L], chunks);
      assert.equal(replies[0].type, "raw");
      assert.equal(dec.decode((replies[0] as { bytes: Uint8Array }).bytes), "VALUE k 0 2\r\nhi\r\n");
      assert.deepEqual(replies[1], { type: "status", status: "STORED" });
    }
  });

  it("refuses garbage, unsolicited bytes, bad framing and endless lines", () => {
    const bad: [Expectation[], string][] = [
      [[V], "HELLO\r\n"],
      [[V], "VALUE a x 3\r\nabc\r\nEND\r\n"],
      [[V], "VALUE a 0 3\r\nabcd\r\nEND\r\n"],
      [[V], "VALUE a 0\r\n"],
      [[L], "STORED\n"],
      [[], "STORED\r\n"],
      [[S], "GARBAGE\r\n"],
    ];
    for (const [expects, text] of bad) {
      assert.throws(() => parse(expects, [enc.encode(text)]), ProtocolError, JSON.stringify(text));
    }
    assert.throws(() => parse([L], [new Uint8Array(70000).fill(65)]), ProtocolError);
  });
});

describe("encoders", () => {
  const take = (fn: (out: Outbox) => void) => {
    const out = new Outbox(8);
    fn(out);
    return dec.decode(out.take());
  };

  it("storage commands frame the value by its byte count", () => {
    const value = enc.encode("a\r\nb");
    assert.equal(take((o) => encodeStore(o, "set", "k", 16, 0, value, false)), "set k 16 0 4\r\na\r\nb\r\n");
    assert.equal(
      take((o) => encodeStore(o, "cas", "k", 0, 60, value, true, "99")),
      "cas k 0 60 4 99 noreply\r\na\r\nb\r\n",
    );
    assert.equal(take((o) => encodeStore(o, "set", "ключ", 0, 0, new Uint8Array(0), false)), "set ключ 0 0 0\r\n\r\n");
  });

  it("a string value is framed by its UTF-8 byte count, as TextEncoder encodes it", () => {
    const strings = ["", "plain", "é", "ключ", "😀x", "\ud800", "a\udc00b", "\ud83d\ud83d", "z".repeat(20_000) + "é"];
    for (const s of strings) {
      const bytes = enc.encode(s);
      const out = new Outbox(8);
      encodeStore(out, "set", "k", 16, 0, s, false);
      const wire = out.take();
      const header = enc.encode(`set k 16 0 ${bytes.length}\r\n`);
      assert.deepEqual(wire, new Uint8Array([...header, ...bytes, 13, 10]), JSON.stringify(s.slice(0, 10)));
      assert.equal(utf8Length(s), bytes.length);
    }
  });

  it("retrieval, arithmetic, and an outbox that grows and resets", () => {
    assert.equal(take((o) => encodeRetrieve(o, "get", ["a", "b"])), "get a b\r\n");
    assert.equal(take((o) => encodeRetrieve(o, "gats", ["a"], 30)), "gats 30 a\r\n");
    assert.equal(
      take((o) => encodeArithmetic(o, "incr", "n", "18446744073709551615", true)),
      "incr n 18446744073709551615 noreply\r\n",
    );
    const out = new Outbox(4);
    out.bytes(new Uint8Array(100_000).fill(1));
    assert.equal(out.take().length, 100_000);
    assert.equal(out.length, 0);
    out.text("x");
    assert.equal(dec.decode(out.take()), "x");
  });
});

describe("buffers handed out", () => {
  it("small values of one multi-get share a slab but never each other's bytes; big ones own theirs", () => {
    const values = Array.from({ length: 200 }, (_, i) => "v".repeat(i % 97) + String(i));
    const big = "B".repeat(10_000);
    const text = values.map((v, i) => `VALUE k${i} 0 ${v.length}\r\n${v}\r\n`).join("") +
      `VALUE big 0 ${big.length}\r\n${big}\r\nEND\r\n`;
    const multi = { expect: EXPECT_VALUES, keys: [...values.map((_, i) => `k${i}`), "big"] };
    for (const chunks of [[enc.encode(text)], [enc.encode(text.slice(0, 777)), enc.encode(text.slice(777))]]) {
      const [reply] = parse([multi], chunks);
      assert.equal(reply.type, "values");
      const items = (reply as { items: { value: Uint8Array }[] }).items;
      assert.equal(items.length, 201);
      // Writing every byte of every value must leave every other value intact.
      for (const item of items) item.value.fill(0x21);
      for (const item of items) assert.ok(item.value.every((b) => b === 0x21));
      items.forEach((item, i) => assert.equal(item.value.length, i < 200 ? values[i].length : big.length));
      assert.equal(items[200].value.byteLength, items[200].value.buffer.byteLength, "a big value owns its buffer");
      // The chunks fed in are not aliased: changing them changes no value.
      for (const chunk of chunks) chunk.fill(0);
      assert.ok(items.every((item) => item.value.every((b) => b === 0x21)));
    }
  });

  it("values of different replies may share a slab, never each other's bytes", () => {
    const one = (key: string) => ({ expect: EXPECT_VALUES, keys: [key] });
    const two = (a: string, b: string) => ({ expect: EXPECT_VALUES, keys: [a, b] });
    const text = "VALUE a 0 3\r\naaa\r\nEND\r\nVALUE b 0 3\r\nbbb\r\nEND\r\n" +
      "VALUE c 0 3\r\nccc\r\nVALUE d 0 3\r\nddd\r\nEND\r\nVALUE e 0 3\r\neee\r\nEND\r\n";
    // Fed whole and byte by byte (values then span chunks).
    const bytes = enc.encode(text);
    for (const chunks of [[bytes], Array.from(bytes, (b) => Uint8Array.of(b))]) {
      const replies = parse([one("a"), one("b"), two("c", "d"), two("e", "f")], chunks);
      const values = replies.flatMap((r) => (r as { items: { value: Uint8Array }[] }).items.map((i) => i.value));
      assert.deepEqual(values.map((v) => dec.decode(v)), ["aaa", "bbb", "ccc", "ddd", "eee"]);
      assert.equal(new Set(values.map((v) => v.buffer)).size, 1, "small values share one slab");
      // Overwriting one value leaves every other intact.
      values[1].fill(0x21);
      assert.deepEqual(values.map((v) => dec.decode(v)), ["aaa", "!!!", "ccc", "ddd", "eee"]);
    }

    // Without slabs (Bun: small buffers are cheap there), every value owns its buffer.
    const queue = [two("c", "d")];
    let own: Reply | undefined;
    const parser = new ReplyParser(() => queue[0], (reply) => (own = reply));
    parser.slabs = false;
    parser.feed(enc.encode("VALUE c 0 3\r\nccc\r\nVALUE d 0 3\r\nddd\r\nEND\r\n"));
    const values = (own as { items: { value: Uint8Array }[] }).items.map((i) => i.value);
    assert.deepEqual(values.map((v) => dec.decode(v)), ["ccc", "ddd"]);
    assert.deepEqual(values.map((v) => v.buffer.byteLength), [3, 3]);
  });

  it("bytes taken from the outbox are never written again", () => {
    const out = new Outbox(64);
    const taken: [Uint8Array, string][] = [];
    for (let i = 0; i < 5000; i++) {
      const line = `get key-${i}\r\n`;
      encodeRetrieve(out, "get", [`key-${i}`]);
      if (i % 7 === 0) out.bytes(new Uint8Array(i * 50).fill(66)); // sometimes big enough to grow
      const bytes = out.take();
      taken.push([bytes, line]);
      assert.equal(dec.decode(bytes.subarray(0, line.length)), line);
      assert.equal(out.length, 0);
    }
    // The views handed out earlier still hold what they held.
    for (const [bytes, line] of taken) assert.equal(dec.decode(bytes.subarray(0, line.length)), line);
  });

  it("large values are copied in order: what the caller does to them later is not sent", () => {
    const out = new Outbox();
    const big = new Uint8Array(200_000).fill(7);
    const text = "t".repeat(40_000) + "é";
    encodeRetrieve(out, "get", ["a"]);
    encodeStore(out, "set", "b", 0, 0, big, false);
    encodeStore(out, "set", "c", 16, 0, text, true);
    encodeRetrieve(out, "get", ["d"]);
    big.fill(9); // after the call: must not change what is sent
    const expected = "get a\r\nset b 0 0 200000\r\n" + "\x07".repeat(200_000) + "\r\n" +
      `set c 16 0 ${enc.encode(text).length} noreply\r\n${text}\r\nget d\r\n`;
    assert.equal(out.length, enc.encode(expected).length);
    assert.equal(dec.decode(out.take()), expected);
  });

  it("a tick of many commands grows the buffer and keeps every byte in order", () => {
    const out = new Outbox();
    let expected = "";
    for (let i = 0; i < 3000; i++) {
      const value = "v".repeat(i % 300);
      encodeStore(out, "set", `key-${i}`, 0, 0, value, true);
      expected += `set key-${i} 0 0 ${value.length} noreply\r\n${value}\r\n`;
    }
    assert.equal(dec.decode(out.take()), expected);
    assert.equal(out.length, 0);
  });
});
