/**
 * PickleSerde: reading what Python pickles (every protocol, 0 to 5; the
 * table tests/data/pickles_python.json was written by Python itself, see
 * tests/tools/gen_pickles_python.py), refusing what would run code, the
 * writer's round trips, the flags each Python client uses, and compression.
 */
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { describe, it } from "../_support/_harness.ts";
import { comparable, fromHex, untag } from "../interop/_python_tags.ts";
import { CompressedSerde, MemcacheError, MemcachePickleError, PickleSerde } from "../../mod.ts";
import { unpickle } from "../../src/values/_pickle_read.ts";
import { OPCODES, TEXT_OPCODES } from "../../src/values/_pickle_ops.ts";
import { pickle } from "../../src/values/_pickle_write.ts";

const data = JSON.parse(readFileSync(new URL("../data/pickles_python.json", import.meta.url), "utf8"));
const bytes = (...parts: (number | string)[]) =>
  new Uint8Array(parts.flatMap((p) => typeof p === "number" ? [p] : [...p].map((c) => c.charCodeAt(0))));
const text = (s: string) => new TextEncoder().encode(s);

/** deepEqual, except that arrays, sets and map keys holding tuples compare by content (a Set of arrays cannot). */
function same(actual: unknown, expected: unknown): void {
  assert.deepStrictEqual(comparable(actual, true), comparable(expected, false));
}

function refuses(pickled: Uint8Array, needle: RegExp): void {
  assert.throws(() => unpickle(pickled), (e: unknown) => {
    assert.ok(e instanceof MemcachePickleError, `not a MemcachePickleError: ${e}`);
    assert.ok(e instanceof MemcacheError);
    assert.match((e as Error).message, needle);
    return true;
  });
}

describe("PickleSerde reads what Python pickles", () => {
  it("every value of the table, in every protocol 0 to 5", () => {
    let checked = 0;
    for (const { name, protocol, pickle: hex } of data.cases) {
      const expected = untag(JSON.parse(data.expect[name]));
      try {
        same(unpickle(fromHex(hex)), expected);
      } catch (error) {
        throw new Error(`${name}, protocol ${protocol}: ${(error as Error).message}`);
      }
      checked++;
    }
    assert.equal(checked, Object.keys(data.expect).length * 6);
  });

  it("integers beyond 2^53-1 are exact bigints, within it numbers", () => {
    const value = unpickle(
      fromHex(
        data.cases.find((c: { name: string; protocol: number }) => c.name === "beyond 2^53" && c.protocol === 5).pickle,
      ),
    ) as unknown[];
    assert.deepEqual(value, [2n ** 53n, -(2n ** 53n + 1n), 2n ** 63n, 2n ** 64n - 1n, 2n ** 64n, -(2n ** 64n)]);
    const edges = data.cases.find((c: { name: string; protocol: number }) =>
      c.name === "safe edges" && c.protocol === 0
    );
    assert.deepEqual(unpickle(fromHex(edges.pickle)), [2 ** 53 - 1, -(2 ** 53 - 1)]);
  });

  it("shared references stay shared, and a list holding itself reads as an array holding itself", () => {
    const shared = data.cases.find((c: { name: string; protocol: number }) =>
      c.name === "shared refs" && c.protocol === 2
    );
    const [a, b, d] = unpickle(fromHex(shared.pickle)) as [unknown[], unknown[], { s: unknown[] }];
    assert.equal(a, b);
    assert.equal(d.s, a);
    for (const hex of Object.values<string>(data["recursive list"])) {
      const list = unpickle(fromHex(hex)) as unknown[];
      assert.equal(list.length, 1);
      assert.equal(list[0], list);
    }
  });

  it('dict keys "__proto__" and "constructor" are own keys; Object.prototype is untouched', () => {
    const before = Object.getOwnPropertyNames(Object.prototype).sort();
    for (const c of data.cases.filter((c: { name: string }) => c.name === "proto keys")) {
      const d = unpickle(fromHex(c.pickle)) as Record<string, unknown>;
      assert.equal(Object.getPrototypeOf(d), null);
      assert.deepEqual(Object.keys(d), ["__proto__", "constructor", "toString", "hasOwnProperty"]);
      assert.equal(Object.getOwnPropertyDescriptor(d, "__proto__")?.value, 1);
      assert.equal(d.constructor, 2);
    }
    // A dict that turns into a Map (a key that is not a string) after a "__proto__" key.
    const mixed = unpickle(bytes(0x80, 4, "}", "(", 0x8c, 9, "__proto__", "K", 1, "K", 2, "K", 3, "u.")) as Map<
      unknown,
      unknown
    >;
    assert.deepEqual([...mixed], [["__proto__", 1], [2, 3]]);
    assert.deepEqual(Object.getOwnPropertyNames(Object.prototype).sort(), before);
    assert.equal(({} as Record<string, unknown>).polluted, undefined);
  });

  it("a dict with a key that is not a string is a Map, wherever it is referenced", () => {
    // {"a": d, "b": [d]} where d = {1: "x"} is memoized and its int key comes after both references.
    const pickled = bytes(
      0x80,
      4,
      "}",
      "(",
      0x8c,
      1,
      "a",
      "}",
      0x94, // memo 0 = d
      0x8c,
      1,
      "b",
      "]",
      "h",
      0,
      "a", // [d]
      "u",
      "h",
      0,
      "K",
      1,
      0x8c,
      1,
      "x",
      "s", // d[1] = "x"
      "0.", // pop d, STOP
    );
    const value = unpickle(pickled) as { a: Map<unknown, unknown>; b: Map<unknown, unknown>[] };
    assert.ok(value.a instanceof Map);
    assert.equal(value.b[0], value.a);
    assert.deepEqual([...value.a], [[1, "x"]]);
  });

  it("Python 2 forms: STRING, BINSTRING, SHORT_BINSTRING, text INT/LONG/FLOAT, __builtin__ globals", () => {
    assert.equal(unpickle(text("S'abc\\n\\x41\\'q'\np0\n.")), "abc\nA'q");
    assert.equal(unpickle(bytes("T", 3, 0, 0, 0, "abc.")), "abc");
    assert.equal(unpickle(bytes("U", 2, "hi.")), "hi");
    assert.equal(unpickle(text("I12345\n.")), 12345);
    assert.equal(unpickle(text("I01\n.")), true);
    assert.equal(unpickle(text("I00\n.")), false);
    assert.equal(unpickle(text("L123456789012345678901234567890L\n.")), 123456789012345678901234567890n);
    assert.equal(unpickle(text("F-2.5\n.")), -2.5);
    for (
      const [arg, value] of [["+.5", 0.5], ["5.", 5], ["1E+05", 1e5], ["-0.0", -0], ["inf", Infinity], ["-nan", NaN]]
    ) {
      assert.ok(Object.is(unpickle(text(`F${arg}\n.`)), value), `F${arg}`);
    }
    for (const arg of ["1e", ".", "1.2.3", "--1", "e5", "0x10", "", "1 2"]) refuses(text(`F${arg}\n.`), /not a number/);
    assert.deepEqual(unpickle(text("c__builtin__\nset\n((lI1\naI2\natR.")), new Set([1, 2]));
    assert.deepEqual(unpickle(text("c__builtin__\nfrozenset\n((ltR.")), new Set());
    assert.deepEqual(unpickle(text("c__builtin__\nbytearray\n(Vab\nVlatin-1\ntR.")), text("ab"));
    assert.deepEqual(unpickle(bytes("c_codecs\nencode\n(V", 0xff, "\nVlatin1\ntR.")), new Uint8Array([0xff]));
    refuses(bytes("U", 1, 0xe9, "."), /non-ASCII/);
  });

  it("refuses classes and code, naming the global or opcode (pickles Python wrote)", () => {
    assert.ok(data.refused.length >= 40);
    for (const { name, protocol, pickle: hex, error } of data.refused) {
      assert.throws(() => unpickle(fromHex(hex)), (e: unknown) => {
        assert.ok(e instanceof MemcachePickleError, `${name} p${protocol}: ${e}`);
        const message = (e as Error).message;
        assert.ok(
          (error as string[]).some((needle) => message.includes(needle)),
          `${name} p${protocol}: ${message} names none of ${error}`,
        );
        return true;
      });
    }
  });

  it("refuses each object-building and out-of-band opcode by name", () => {
    const cases: [Uint8Array, RegExp][] = [
      [bytes("N}b."), /BUILD/],
      [text("(i__main__\nPoint\n."), /INST/],
      [bytes("(N", "o."), /OBJ/],
      [bytes(0x80, 2, "N)", 0x81, "."), /NEWOBJ/],
      [bytes(0x80, 4, "N)}", 0x92, "."), /NEWOBJ_EX/],
      [text("P1\n."), /PERSID/],
      [bytes("NQ."), /BINPERSID/],
      [bytes(0x80, 2, 0x82, 1, "."), /EXT1/],
      [bytes(0x80, 2, 0x83, 1, 0, "."), /EXT2/],
      [bytes(0x80, 2, 0x84, 1, 0, 0, 0, "."), /EXT4/],
      [bytes(0x80, 5, 0x97, "."), /NEXT_BUFFER/],
      [bytes(0x80, 5, "N", 0x98, "."), /READONLY_BUFFER/],
      [text("cos\nsystem\n(Vls\ntR."), /os\.system/],
      [bytes(0x80, 4, 0x8c, 8, "builtins", 0x8c, 4, "eval", 0x93, "."), /builtins\.eval/],
      [text("c__builtin__\nset\n."), /builtins\.set is used as a value/],
      [text("c__builtin__\nbytes\n(I1000000000\ntR."), /bytes/],
      [bytes("N)R."), /not a global/],
      [bytes(0xff), /unknown opcode 0xff/],
    ];
    for (const [pickled, needle] of cases) refuses(pickled, needle);
  });

  it("fails cleanly on malformed input: truncation, huge lengths, memo misses, bad stacks", () => {
    const cases: [Uint8Array, RegExp][] = [
      [new Uint8Array(0), /without STOP/],
      [bytes(0x80, 5, "N"), /without STOP/],
      [bytes("."), /empty stack/],
      [bytes(0x80, 6, "N."), /protocol 6/],
      [bytes(0x8d, 0, 0, 0, 0, 0, 0, 0, 0x10, "."), /claims 1152921504606846976 bytes/], // 2^60
      [bytes(0x8e, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff), /claims/],
      [bytes("B", 0xff, 0xff, 0xff, 0xff, "."), /claims 4294967295 bytes/],
      [bytes("T", 0xff, 0xff, 0xff, 0xff, "."), /negative length/],
      [bytes(0x8b, 0, 0, 0, 0x80, "."), /negative length/],
      [bytes("h", 5, "."), /memo index 5/],
      [bytes("j", 0xff, 0xff, 0xff, 0xff, "."), /memo index 4294967295/],
      [text("g99999999999\n."), /memo index 99999999999/],
      [text("Np-1\n."), /negative memo index -1/],
      [bytes("NNa."), /not a list/],
      [bytes("NNNs."), /not a dict/],
      [bytes("Ne."), /no MARK/],
      [bytes("(N0N."), /STOP/], // POP at a mark pops the mark; N leaves one value: fine, then ...
      [bytes("(0."), /empty stack/],
      [bytes("(NNNd."), /odd number/],
      [text("I12a\n."), /not an integer/],
      [text(`I${"9".repeat(5000)}\n.`), /4300 digits/],
      [text("Fxyz\n."), /not a number/],
      [text("Vab\\u12\n."), /\\u escape/],
      [bytes("X", 2, 0, 0, 0, 0xc3, 0x28, "."), /invalid UTF-8/],
      [text("S'abc\n."), /not quoted/],
      [bytes(0x8c, 1, "a", 0x8c, 1, "b", 0x93, "."), /global a\.b is not allowed/],
      [bytes("K", 1, 0x93, "."), /empty stack|two strings/],
    ];
    for (const [pickled, needle] of cases) {
      if (needle.source === "STOP") {
        assert.equal(unpickle(pickled), null);
        continue;
      }
      refuses(pickled, needle);
    }
  });

  it("escapes in STRING and UNICODE read as Python reads them", () => {
    // Python 3.11: pickle.loads(...) of each
    assert.equal(unpickle(text("S'\\101\\1\\q\\x7a\\0101\\\\'\np0\n.")), "A\x01\\qz\x081\\");
    assert.equal(
      unpickle(text("V\\\\u0041\\\\\\u00e9\\U0001F600\\ud800z\n.")),
      "\\\\u0041\\\\é😀\ud800z",
    );
    refuses(text("S'\\x4'\n."), /bad \\x escape/);
    refuses(text("S'ab\\'\n."), /lone backslash/);
    refuses(bytes("S'", 0xe9, "'\n."), /non-ASCII/);
    refuses(text("S'\\xe9'\n."), /non-ASCII/);
    refuses(text("V\\U00110000\n."), /beyond U\+10FFFF/);
  });

  it("every text opcode refuses a megabyte-long hostile argument cleanly, in time linear in its length", () => {
    // The old FLOAT check backtracked: F + 100,000 digits + "x" took 4.5 s to reject, a megabyte half an hour.
    const N = 1 << 20;
    const digits = "1".repeat(N);
    const hostile: Record<string, string[]> = {
      INT: [digits + "x\n", digits + "\n", "-" + digits + "\n"],
      LONG: [digits + "xL\n", digits + "L\n", "+" + digits + "\n"],
      FLOAT: [digits + "x\n", digits + "e\n", digits + "." + digits + "e+\n", "1.".repeat(N / 2) + "\n"],
      STRING: ["'" + "a".repeat(N) + "\n", "'" + "\\1".repeat(N / 2) + "\\xff'\n", "'" + "\\".repeat(N - 1) + "'\n"],
      UNICODE: ["\\u00e9".repeat(N / 6) + "\\uZZZZ\n", "\\".repeat(N - 1) + "u12\n"],
      GLOBAL: ["a".repeat(N) + "\n" + "b".repeat(N) + "\n", "builtins\n" + "set".repeat(N / 3) + "\n"],
      PUT: [digits + "\n", digits + "x\n"],
      GET: [digits + "\n", "-" + digits + "\n"],
    };
    const names = TEXT_OPCODES.map((op) => OPCODES.get(op)!.name).sort();
    assert.deepEqual(Object.keys(hostile).sort(), names, "a hostile argument for every text opcode");
    for (const op of TEXT_OPCODES) {
      const name = OPCODES.get(op)!.name;
      const prefix = name === "PUT" ? "N" : "";
      for (const arg of [...hostile[name], digits]) { // the last: a megabyte with no end of line
        const pickled = text(prefix + String.fromCharCode(op) + arg + ".");
        assert.throws(() => unpickle(pickled), (e: unknown) => {
          assert.ok(e instanceof MemcachePickleError, `${name}: not a MemcachePickleError: ${e}`);
          assert.ok(e instanceof MemcacheError);
          assert.ok((e as Error).message.length < 300, `${name}: a ${(e as Error).message.length}-character message`);
          return true;
        });
      }
    }
  });

  it("a million levels of nesting read without recursion", () => {
    const depth = 1_000_000;
    const pickled = new Uint8Array(depth * 2 + 1);
    pickled.fill(0x5d, 0, depth); // EMPTY_LIST × depth
    pickled.fill(0x61, depth, depth * 2 - 1); // APPEND × (depth − 1)
    pickled[depth * 2 - 1] = 0x2e;
    let value = unpickle(pickled.subarray(0, depth * 2)) as unknown[];
    let levels = 1;
    while (value.length === 1) {
      value = value[0] as unknown[];
      levels++;
    }
    assert.equal(levels, depth);
    // Marks a million deep, never closed: an error, not a crash.
    refuses(new Uint8Array(depth).fill(0x28), /without STOP/);
  });

  it("reads zlib-compressed pickles (flag 9) that Python wrote", async () => {
    const serde = new PickleSerde();
    for (const { name, flags, value } of data.compressed) {
      same(await serde.deserialize("k", fromHex(value), flags), untag(JSON.parse(data.expect[name])));
    }
  });
});

describe("PickleSerde writes what Python reads", () => {
  const values: unknown[] = [
    null,
    true,
    false,
    0,
    -1,
    255,
    256,
    65535,
    65536,
    2 ** 31 - 1,
    -(2 ** 31),
    2 ** 31,
    2 ** 53 - 1,
    2n ** 64n,
    -(2n ** 100n),
    2n ** 2100n,
    1.5,
    NaN,
    -Infinity,
    "",
    "héllo ✓ 😀",
    "x".repeat(300),
    "a\ud800b",
    new Uint8Array([0, 255]),
    new Uint8Array(300).fill(7),
    [],
    [1, [2, [3]]],
    Array.from({ length: 2500 }, (_, i) => i),
    new Set([1, "a"]),
    new Set(),
    new Map<unknown, unknown>([[1, "one"], ["two", 2]]),
  ];

  for (const protocol of [2, 3, 4, 5] as const) {
    it(`round trip through protocol ${protocol}`, () => {
      for (const value of values) same(unpickle(pickle(value, protocol)), value);
      const dict = { a: 1, b: { c: [null, 2.5] }, ["__proto__"]: 7 };
      Object.defineProperty(dict, "__proto__", { value: 7, enumerable: true, configurable: true, writable: true });
      const read = unpickle(pickle(dict, protocol)) as Record<string, unknown>;
      assert.equal(Object.getOwnPropertyDescriptor(read, "__proto__")?.value, 7);
      assert.deepEqual(Object.keys(read), ["a", "b", "__proto__"]);
      // Shared references and cycles survive.
      const shared = [1];
      const cyclic: unknown[] = [shared, shared];
      cyclic.push(cyclic);
      const back = unpickle(pickle(cyclic, protocol)) as unknown[];
      assert.equal(back[0], back[1]);
      assert.equal(back[2], back);
      // Arrays as set items and dict keys are written as tuples (Python needs them hashable).
      const set = unpickle(pickle(new Set([[1, 2]]), protocol)) as Set<unknown>;
      assert.deepEqual([...set], [[1, 2]]);
    });
  }

  it("refuses values Python has no type for", () => {
    for (const value of [() => 1, Symbol("s"), new Date(0), new Map([[{}, 1]]), new Float64Array(1)]) {
      assert.throws(() => pickle(value), TypeError);
    }
    let deep: unknown[] = [];
    for (let i = 0; i < 10_000; i++) deep = [deep];
    assert.throws(() => pickle(deep), /nested deeper/);
    assert.throws(() => pickle(1, 1), /protocol/);
  });
});

describe("PickleSerde flags", () => {
  it("pymemcache and python-memcached: bytes 0, str 16, int 2, everything else pickled (1)", () => {
    for (const name of ["pymemcache", "python-memcached"] as const) {
      const serde = new PickleSerde({ compatibleWith: name });
      assert.deepEqual(serde.serialize("k", new Uint8Array([1])), [new Uint8Array([1]), 0]);
      assert.deepEqual(serde.serialize("k", "hé"), [text("hé"), 16]);
      assert.deepEqual(serde.serialize("k", -42), [text("-42"), 2]);
      assert.deepEqual(serde.serialize("k", 2n ** 70n), [text("1180591620717411303424"), 2]);
      assert.deepEqual(serde.serialize("k", 1e21), [text("1000000000000000000000"), 2]);
      assert.deepEqual(serde.serialize("k", true), [pickle(true), 1]);
      assert.deepEqual(serde.serialize("k", 1.5), [pickle(1.5), 1]);
      assert.deepEqual(serde.serialize("k", { a: 1 }), [pickle({ a: 1 }), 1]);
    }
  });

  it("pylibmc: int 4, bool as 1/0 with flag 2 (as pylibmc writes True), the rest as the others", () => {
    const serde = new PickleSerde({ compatibleWith: "pylibmc" });
    assert.deepEqual(serde.serialize("k", 7), [text("7"), 4]);
    assert.deepEqual(serde.serialize("k", true), [text("1"), 2]);
    assert.deepEqual(serde.serialize("k", false), [text("0"), 2]);
    assert.deepEqual(serde.serialize("k", "s"), [text("s"), 16]);
    assert.deepEqual(serde.serialize("k", [1]), [pickle([1]), 1]);
    assert.equal(serde.deserialize("k", text("1"), 2), 1); // what pylibmc reads too
  });

  it("reads as the Python clients do, and JSON (flag 32) as defaultSerde", () => {
    const serde = new PickleSerde();
    assert.deepEqual(serde.deserialize("k", text("ab"), 0), text("ab"));
    assert.equal(serde.deserialize("k", text("hé"), 16), "hé");
    assert.equal(serde.deserialize("k", text("-5"), 2), -5);
    assert.equal(serde.deserialize("k", text("123456789012345678901234567890"), 4), 123456789012345678901234567890n);
    assert.deepEqual(serde.deserialize("k", text('{"a":1}'), 32), { a: 1 });
    assert.deepEqual(serde.deserialize("k", text("raw"), 64), text("raw"));
    assert.throws(() => serde.deserialize("k", bytes(0x80, 5, "cos\nsystem\n."), 1), MemcachePickleError);
    assert.throws(() => new PickleSerde({ compatibleWith: "libmc" as "pylibmc" }), TypeError);
    assert.throws(() => new PickleSerde({ protocol: 1 as 2 }), TypeError);
  });

  it("composes with CompressedSerde: flag 9, zlib, read back by PickleSerde alone too", async () => {
    const serde = new CompressedSerde({ serde: new PickleSerde(), minCompressLen: 10 });
    const value = { text: "abc".repeat(200), list: [1, 2, 3] };
    const [packed, flags] = await serde.serialize("k", value);
    assert.equal(flags, 9);
    assert.equal((packed as Uint8Array)[0], 0x78); // a zlib header, as Python's zlib.compress writes
    same(await serde.deserialize("k", packed as Uint8Array, flags), value);
    same(await new PickleSerde().deserialize("k", packed as Uint8Array, flags), value);
  });
});
