// The meta protocol codec (src/protocol/_meta.ts) and its framing in the reply parser,
// on scripted bytes: no sockets. Replies are fed whole and split at every byte.
import assert from "node:assert/strict";
import { Buffer } from "node:buffer";
import { describe, it } from "../_support/_harness.ts";
import { MemcacheIllegalInputError } from "../../mod.ts";
import {
  binaryWireKey,
  checkOpaque,
  encodeBase64,
  encodeMeta,
  encodeMetaGetBatch,
  encodeMetaSet,
  META_MAX_TOKENS,
  metaArithmeticFlags,
  metaDeleteFlags,
  metaGetFlags,
  type MetaLine,
  metaSetPlan,
  newerOptions,
} from "../../src/protocol/_meta.ts";
import { parseCounterValue, parseMetaLine } from "../../src/protocol/_meta_reply.ts";
import {
  EXPECT_LINE,
  EXPECT_META,
  EXPECT_META_QUIET,
  type Expectation,
  type Reply,
  ReplyParser,
} from "../../src/protocol/_reply_parser.ts";
import { Outbox } from "../../src/protocol/_outbox.ts";
import { ProtocolError } from "../../src/protocol/_wire.ts";

const enc = new TextEncoder();
const dec = new TextDecoder();

function line(text: string): MetaLine | null {
  const bytes = enc.encode(text);
  return parseMetaLine(bytes, 0, bytes.length);
}

function encoded(write: (out: Outbox) => void): string {
  const out = new Outbox();
  write(out);
  return dec.decode(out.take());
}

/** Parses `chunks` for `expects`; the replies, with values as text. */
function parse(expects: Expectation[], chunks: Uint8Array[]): unknown[] {
  const queue = [...expects];
  const replies: Reply[] = [];
  const parser = new ReplyParser(() => queue[0], (reply) => {
    queue.shift();
    replies.push(reply);
  });
  for (const chunk of chunks) parser.feed(chunk);
  assert.equal(parser.idle, true, "parser left mid-reply");
  assert.equal(queue.length, 0, "a request got no reply");
  const show = (l: MetaLine) => {
    const { item, ...rest } = l;
    return item === undefined ? rest : { ...rest, value: dec.decode(item.value) };
  };
  return replies.map((r) => r.type === "meta" ? show(r) : r.type === "metaGroup" ? r.lines.map(show) : r);
}

function splits(bytes: Uint8Array): Uint8Array[][] {
  const out: Uint8Array[][] = [[bytes], [...bytes].map((b) => new Uint8Array([b]))];
  for (let i = 1; i < bytes.length; i++) out.push([bytes.slice(0, i), bytes.slice(i)]);
  return out;
}

/** The same replies however the bytes are split. */
function parseAllWays(expects: Expectation[], text: string): unknown[] {
  const bytes = enc.encode(text);
  const whole = parse(expects, [bytes]);
  for (const chunks of splits(bytes)) assert.deepEqual(parse(expects, chunks), whole, `split ${chunks.length}`);
  return whole;
}

const tokens = (flags: string, fixed: number) => fixed + flags.split(" ").filter(Boolean).length;
const noLease = { win: false, stale: false, winnerExists: false };

describe("meta codec: options to flags", () => {
  it("metaGet: the value and its flags by default; N first, then return flags, R before T", () => {
    assert.equal(metaGetFlags(undefined, false), " v f");
    assert.equal(metaGetFlags({}, false), " v f");
    assert.equal(metaGetFlags({ value: false }, false), "");
    assert.equal(metaGetFlags({ value: false, returnFlags: true }, false), " f");
    assert.equal(
      metaGetFlags({
        touch: 30,
        recacheWithin: 10,
        vivify: 5,
        returnCas: true,
        returnTtl: true,
        returnSize: true,
        returnHitBefore: true,
        returnLastAccess: true,
        returnKey: true,
        opaque: "op",
        noLruBump: true,
      }, false),
      " N5 v f c t s h l k Oop R10 T30 u",
    );
    // A binary key is never sent with k (1.6.18 returns it decoded, raw).
    assert.equal(metaGetFlags({ returnKey: true }, true), " v f");
  });

  it("metaSet, metaDelete, metaArithmetic", () => {
    assert.deepEqual(metaSetPlan(undefined, false), { tail: "", flags: undefined, quiet: false });
    assert.deepEqual(
      metaSetPlan(
        { mode: "append", expire: 10, cas: 18446744073709551615n, invalidate: true, returnCas: true, flags: 3 },
        false,
      ),
      { tail: " T10 C18446744073709551615 I MA c", flags: 3, quiet: false },
    );
    assert.equal(metaSetPlan({ mode: "add" }, false).tail, " ME");
    assert.equal(metaSetPlan({ mode: "replace" }, false).tail, " MR");
    assert.equal(metaSetPlan({ mode: "prepend", returnKey: true, opaque: "1" }, false).tail, " MP k O1");
    assert.equal(metaSetPlan({ mode: "set", noreply: true }, false).quiet, true);
    assert.equal(metaDeleteFlags(undefined, false), "");
    assert.equal(metaDeleteFlags({ cas: "5", invalidate: true, expire: 30, returnKey: true }, false), " C5 I T30 k");
    assert.equal(metaArithmeticFlags(undefined, false), " v");
    assert.equal(metaArithmeticFlags({ noreply: true }, false), "");
    assert.equal(
      metaArithmeticFlags(
        {
          vivify: 0,
          initial: 2n ** 63n,
          delta: 7,
          mode: "decr",
          cas: 9,
          expire: 60,
          returnTtl: true,
          returnCas: true,
          returnKey: true,
          opaque: "x",
        },
        false,
      ),
      " N0 J9223372036854775808 D7 MD C9 T60 v t c k Ox",
    );
  });

  it("memcached 1.6.38's options: newCas (E), removeValue (md x), returnSize (ms s)", () => {
    assert.equal(metaGetFlags({ vivify: 30, newCas: 44, value: false }, false), " N30 E44");
    assert.equal(metaGetFlags({ vivify: 30, newCas: "44" }, false, true), " N30 E44 v f");
    assert.equal(
      metaSetPlan({ newCas: 18446744073709551615n, returnSize: true, returnCas: true }, false).tail,
      " E18446744073709551615 s c",
    );
    assert.equal(metaSetPlan({ mode: "append", cas: 3, newCas: "9", returnSize: true }, false).tail, " C3 E9 MA s");
    assert.equal(metaSetPlan({ newCas: 7, noreply: true }, false).tail, " E7");
    assert.equal(metaDeleteFlags({ removeValue: true }, false), " x");
    assert.equal(metaDeleteFlags({ removeValue: true, expire: 50, newCas: 1, returnKey: true }, false), " x T50 E1 k");
    assert.equal(metaDeleteFlags({ invalidate: true, newCas: 555, noreply: true }, false), " I E555");
    assert.equal(metaArithmeticFlags({ vivify: 0, initial: 5, newCas: 46 }, false), " N0 J5 E46 v");
    // What a server before 1.6.38 refuses, named for its error.
    assert.equal(newerOptions(undefined), "");
    assert.equal(newerOptions({ returnSize: true, removeValue: false }), "");
    assert.equal(newerOptions({ newCas: 1 }), "newCas (E)");
    assert.equal(newerOptions({ newCas: 1, removeValue: true }), "newCas (E) and removeValue (md x)");
  });

  it(`no command built from options exceeds the server's ${META_MAX_TOKENS} tokens`, () => {
    const most = {
      touch: 1,
      recacheWithin: 1,
      vivify: 1,
      returnCas: true,
      returnTtl: true,
      returnSize: true,
      returnHitBefore: true,
      returnLastAccess: true,
      returnKey: true,
      returnFlags: true,
      noLruBump: true,
      newCas: 2n ** 64n - 1n,
    };
    // mg <key> [b] … plus a batch's O<i> q
    assert.ok(tokens(metaGetFlags({ ...most, opaque: "o" }, true), 3) <= META_MAX_TOKENS);
    assert.ok(tokens(metaGetFlags(most, true, true), 5) <= META_MAX_TOKENS);
    const set = metaSetPlan({
      mode: "add",
      expire: 1,
      cas: 1,
      invalidate: true,
      returnCas: true,
      returnKey: true,
      returnSize: true,
      newCas: 1,
      opaque: "o",
    }, false);
    assert.ok(tokens(set.tail, 5) <= META_MAX_TOKENS); // ms key datalen b F …
    const md = { cas: 1, invalidate: true, removeValue: true, expire: 1, newCas: 1, returnKey: true, opaque: "o" };
    assert.ok(tokens(metaDeleteFlags(md, true), 3) <= META_MAX_TOKENS);
    const ma = {
      vivify: 1,
      initial: 1,
      delta: 1,
      mode: "decr",
      cas: 1,
      expire: 1,
      returnTtl: true,
      returnCas: true,
      newCas: 1,
    } as const;
    assert.ok(tokens(metaArithmeticFlags({ ...ma, returnKey: true, opaque: "o" }, false), 3) <= META_MAX_TOKENS);
  });

  it("bad options throw MemcacheIllegalInputError", () => {
    const bad: [string, () => unknown][] = [
      ["mode incr on ms", () => metaSetPlan({ mode: "incr" as "set" }, false)],
      ["ms vivify", () => metaSetPlan({ vivify: 1 } as never, false)],
      ["invalidate without cas", () => metaSetPlan({ invalidate: true }, false)],
      ["noreply and returnCas", () => metaSetPlan({ noreply: true, returnCas: true }, false)],
      ["noreply and returnKey", () => metaDeleteFlags({ noreply: true, returnKey: true }, false)],
      ["noreply and opaque", () => metaDeleteFlags({ noreply: true, opaque: "1" }, false)],
      ["md expire without invalidate", () => metaDeleteFlags({ expire: 1 }, false)],
      ["negative touch", () => metaGetFlags({ touch: -1 }, false)],
      ["fractional touch", () => metaGetFlags({ touch: 0.5 }, false)],
      ["touch as text", () => metaGetFlags({ touch: "5" as unknown as number }, false)],
      ["huge TTL", () => metaGetFlags({ vivify: 2 ** 31 }, false)],
      ["unknown option", () => metaGetFlags({ ttl: 5 } as never, false)],
      ["opaque in a batch", () => metaGetFlags({ opaque: "1" }, false, true)],
      ["options not an object", () => metaGetFlags(5 as never, false)],
      ["decr as mode of ms", () => metaSetPlan({ mode: "decr" as "set" }, false)],
      ["initial without vivify", () => metaArithmeticFlags({ initial: 1 }, false)],
      ["fractional delta", () => metaArithmeticFlags({ delta: 1.5 }, false)],
      ["delta 2^64", () => metaArithmeticFlags({ delta: 2n ** 64n }, false)],
      ["noreply and value", () => metaArithmeticFlags({ noreply: true, value: true }, false)],
      ["noreply and returnTtl", () => metaArithmeticFlags({ noreply: true, returnTtl: true }, false)],
      ["cas with a space", () => metaDeleteFlags({ cas: "1 2" }, false)],
      ["flags above 2^32-1", () => metaSetPlan({ flags: 2 ** 32 }, false)],
      ["newCas 0 (memcached ignores it)", () => metaSetPlan({ newCas: 0 }, false)],
      ["newCas 2^64", () => metaArithmeticFlags({ newCas: 2n ** 64n }, false)],
      ["newCas negative", () => metaSetPlan({ newCas: -1 }, false)],
      ["newCas fractional", () => metaSetPlan({ newCas: 1.5 }, false)],
      ["newCas with a space", () => metaSetPlan({ newCas: "1 q" }, false)],
      ["newCas on mg without vivify (applies to a vivified item only)", () => metaGetFlags({ newCas: 5 }, false)],
      ["newCas on a plain md", () => metaDeleteFlags({ newCas: 5 }, false)],
      ["removeValue not a boolean", () => metaDeleteFlags({ removeValue: 1 as unknown as boolean }, false)],
      ["returnSize with noreply", () => metaSetPlan({ returnSize: true, noreply: true }, false)],
      ["removeValue on ms", () => metaSetPlan({ removeValue: true } as never, false)],
      ["returnSize on md", () => metaDeleteFlags({ returnSize: true } as never, false)],
      ["newCas in ms with a bad type", () => metaSetPlan({ newCas: true as unknown as number }, false)],
    ];
    for (const [what, call] of bad) assert.throws(call, MemcacheIllegalInputError, what);
  });

  it("opaque: 1 to 31 printable ASCII characters", () => {
    assert.equal(checkOpaque("a".repeat(31)), "a".repeat(31));
    assert.equal(checkOpaque("~!#"), "~!#");
    for (const bad of ["", "a".repeat(32), "a b", "a\r\n", "é", "a\tb", 5]) {
      assert.throws(() => checkOpaque(bad), MemcacheIllegalInputError, JSON.stringify(bad));
    }
  });
});

describe("meta codec: keys and encoding", () => {
  it("base64 as the standard encoder writes it", () => {
    for (let n = 0; n < 40; n++) {
      const bytes = Uint8Array.from({ length: n }, (_, i) => (i * 97 + n * 31) & 255);
      assert.equal(encodeBase64(bytes), Buffer.from(bytes).toString("base64"), `length ${n}`);
    }
  });

  it("binary keys: prefix bytes first; at most 250 characters of base64 (186 bytes)", () => {
    const key = new Uint8Array([0, 32, 10, 255]);
    assert.equal(binaryWireKey(key, ""), "ACAK/w==");
    assert.equal(binaryWireKey(key, "p:"), Buffer.from([112, 58, 0, 32, 10, 255]).toString("base64"));
    assert.equal(binaryWireKey(new Uint8Array(186), "").length, 248);
    assert.throws(() => binaryWireKey(new Uint8Array(187), ""), MemcacheIllegalInputError);
    assert.throws(() => binaryWireKey(new Uint8Array(185), "pp"), MemcacheIllegalInputError);
    assert.throws(() => binaryWireKey(new Uint8Array(0), ""), MemcacheIllegalInputError);
  });

  it("command bytes", () => {
    assert.equal(encoded((out) => encodeMeta(out, "mg", "k", false, " v f", false)), "mg k v f\r\n");
    assert.equal(encoded((out) => encodeMeta(out, "md", "AAE=", true, " I", true)), "md AAE= b I q\r\nmn\r\n");
    assert.equal(
      encoded((out) => encodeMetaSet(out, "k", false, enc.encode("a\r\nb"), 16, " T5", false)),
      "ms k 4 F16 T5\r\na\r\nb\r\n",
    );
    assert.equal(
      encoded((out) => encodeMetaSet(out, "AAE=", true, new Uint8Array(0), 0, "", true)),
      "ms AAE= 0 b q\r\n\r\nmn\r\n",
    );
    assert.equal(
      encoded((out) => encodeMetaGetBatch(out, ["a", "AAE=", "c"], [false, true, false], " v f k", " v f")),
      "mg a v f k q O0\r\nmg AAE= b v f q O1\r\nmg c v f k q O2\r\nmn\r\n",
    );
    assert.equal(encoded((out) => encodeMetaGetBatch(out, ["a"], undefined, "", "")), "mg a q O0\r\nmn\r\n");
  });

  it("ma values: decimal, bigint beyond 2^53-1", () => {
    assert.equal(parseCounterValue(enc.encode("0")), 0);
    assert.equal(parseCounterValue(enc.encode("9007199254740991")), 9007199254740991);
    assert.equal(parseCounterValue(enc.encode("9007199254740993")), 9007199254740993n);
    assert.equal(parseCounterValue(enc.encode("18446744073709551615")), 18446744073709551615n);
    assert.equal(parseCounterValue(enc.encode("12a")), undefined);
    assert.equal(parseCounterValue(enc.encode("")), undefined);
  });
});

describe("meta codec: reply lines", () => {
  it("flags are read by letter, in any order", () => {
    assert.deepEqual(line("VA 5 f7 c1 t99 s5 h1 l3 kfoo O123"), {
      type: "meta",
      status: "VA",
      dataLength: 5,
      ...noLease,
      flags: 7,
      cas: "1",
      ttl: 99,
      size: 5,
      hitBefore: true,
      lastAccess: 3,
      key: "foo",
      opaque: "123",
    });
    const reordered = line("VA 5 Z O123 t-1 X kfoo c18446744073709551615 W h0");
    assert.deepEqual(reordered, {
      type: "meta",
      status: "VA",
      dataLength: 5,
      win: true,
      stale: true,
      winnerExists: true,
      opaque: "123",
      ttl: -1,
      key: "foo",
      cas: "18446744073709551615",
      hitBefore: false,
    });
    assert.deepEqual(line("HD"), { type: "meta", status: "HD", dataLength: -1, ...noLease });
    assert.deepEqual(line("EN Oabc"), { type: "meta", status: "EN", dataLength: -1, ...noLease, opaque: "abc" });
    for (const status of ["NF", "NS", "EX", "MN"]) assert.equal(line(status)?.status, status);
    // Extra spaces (1.6.18 changed the spacing), a b flag, letters of later versions: tolerated.
    assert.deepEqual(line("HD  c5  b Qzz "), { type: "meta", status: "HD", dataLength: -1, ...noLease, cas: "5" });
  });

  it("lines that are not meta replies are null", () => {
    for (
      const bad of [
        "",
        "H",
        "HDX",
        "VA",
        "VA x",
        "VA -1",
        "XX",
        "END",
        "HD cx",
        "HD c",
        "HD c123456789012345678901",
        "HD t-2",
        "HD h2",
        "HD f4294967296",
        "VALUE k 0 1",
        "ERROR",
      ]
    ) {
      assert.equal(line(bad), null, bad);
    }
  });
});

describe("meta framing in ReplyParser", () => {
  const M = { expect: EXPECT_META };
  const Q = (keys: number) => ({ expect: EXPECT_META_QUIET, keys: Array.from({ length: keys }, (_, i) => `k${i}`) });

  it("loud replies: one line, or VA and its data block (any bytes, empty too)", () => {
    const tricky = "HD\r\nMN\r\nVA 1\r\n";
    const replies = parseAllWays(
      [M, M, M, M, M, { expect: EXPECT_LINE }, M],
      `HD c1\r\nVA ${tricky.length} f3\r\n${tricky}\r\nEN\r\nVA 0 W\r\n\r\nMN\r\nSTORED\r\nVA 2\r\nok\r\n`,
    );
    assert.deepEqual(replies, [
      { type: "meta", status: "HD", dataLength: -1, ...noLease, cas: "1" },
      { type: "meta", status: "VA", dataLength: tricky.length, ...noLease, flags: 3, value: tricky },
      { type: "meta", status: "EN", dataLength: -1, ...noLease },
      { type: "meta", status: "VA", dataLength: 0, ...noLease, win: true, value: "" },
      { type: "meta", status: "MN", dataLength: -1, ...noLease },
      { type: "status", status: "STORED" },
      { type: "meta", status: "VA", dataLength: 2, ...noLease, value: "ok" },
    ]);
  });

  it("quiet groups: every line up to MN, errors included and kept for the group", () => {
    const replies = parseAllWays(
      [Q(3), Q(0), M, Q(2), Q(1)],
      "VA 2 O0\r\nab\r\nHD O2 k\r\nMN\r\n" + // a batch: two hits
        "MN\r\n" + // an empty one
        "HD\r\n" +
        "CLIENT_ERROR bad\r\nNS\r\nMN\r\n" + // an error, then more lines, then MN
        "SERVER_ERROR out of memory\r\nMN\r\n",
    );
    assert.deepEqual(replies, [
      [
        { type: "meta", status: "VA", dataLength: 2, ...noLease, opaque: "0", value: "ab" },
        { type: "meta", status: "HD", dataLength: -1, ...noLease, opaque: "2", key: "" },
      ],
      [],
      { type: "meta", status: "HD", dataLength: -1, ...noLease },
      { type: "error", kind: "CLIENT_ERROR", message: "CLIENT_ERROR bad" },
      { type: "error", kind: "SERVER_ERROR", message: "SERVER_ERROR out of memory" },
    ]);
  });

  it("a server without meta: a group ends after one ERROR per command line (its mn included)", () => {
    const replies = parseAllWays(
      [M, Q(3), { expect: EXPECT_LINE }, Q(1)],
      "ERROR\r\n" + "ERROR\r\n".repeat(4) + "STORED\r\n" + "ERROR\r\nERROR\r\n",
    );
    assert.deepEqual(replies, [
      { type: "error", kind: "ERROR", message: "ERROR" },
      { type: "error", kind: "ERROR", message: "ERROR" },
      { type: "status", status: "STORED" },
      { type: "error", kind: "ERROR", message: "ERROR" },
    ]);
  });

  it("bytes that fit no meta reply are a ProtocolError", () => {
    for (const bad of ["VALUE k 0 1\r\nx\r\nEND\r\n", "STORED\r\n", "VA 2\r\nabc\r\n", "HD cx\r\n", "VA 1\r\nab\r\n"]) {
      assert.throws(() => parse([M, M], [enc.encode(bad)]), ProtocolError, bad);
    }
    assert.throws(() => parse([Q(1)], [enc.encode("END\r\nMN\r\n")]), ProtocolError);
  });
});
