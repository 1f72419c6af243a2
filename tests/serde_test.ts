// Serdes: pymemcache's flag numbers, and zlib framing Python can read.
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { describe, it } from "./_harness.ts";
import { CompressedSerde, defaultSerde, FLAG_COMPRESSED, FLAG_JSON, FLAG_TEXT } from "../mod.ts";

const enc = new TextEncoder();

function hasPython(): boolean {
  try {
    execFileSync("python3", ["-c", "import zlib"], { stdio: "ignore" });
    return true;
  } catch {
    return false;
  }
}

describe("defaultSerde", () => {
  it("uses pymemcache's flags", () => {
    const cases: [unknown, number, string][] = [
      [new Uint8Array([1, 2]), 0, "\x01\x02"],
      ["text ✓", 16, "text ✓"],
      [42, 2, "42"],
      [-0, 2, "0"],
      [2n ** 70n, 2, (2n ** 70n).toString()],
      [{ a: 1 }, 32, '{"a":1}'],
      [1.5, 32, "1.5"],
      [null, 32, "null"],
    ];
    for (const [value, flags, wire] of cases) {
      const [data, f] = defaultSerde.serialize("k", value) as [Uint8Array | string, number];
      assert.equal(f, flags);
      assert.equal(typeof data === "string" ? data : new TextDecoder("latin1").decode(data), wire);
    }
    assert.throws(() => defaultSerde.serialize("k", NaN), TypeError);
    assert.throws(() => defaultSerde.serialize("k", undefined), TypeError);
  });

  it("reads pymemcache's flags, long integers as bigint, unknown flags as bytes", () => {
    const read = (text: string, flags: number) => defaultSerde.deserialize("k", enc.encode(text), flags);
    assert.equal(read("123", 2), 123);
    assert.equal(read("123", 4), 123); // FLAG_LONG
    assert.equal(read("-9007199254740993", 2), -9007199254740993n);
    assert.equal(read("18446744073709551615", 2), 18446744073709551615n);
    assert.equal(read("héllo", 16), "héllo");
    assert.deepEqual(read('{"x":[1]}', 32), { x: [1] });
    assert.deepEqual(read("pickle", 1), enc.encode("pickle"));
    assert.deepEqual(read("abc", 0), enc.encode("abc"));
  });
});

describe("CompressedSerde", () => {
  it("compresses values over minCompressLen with flag 8 and round-trips", async () => {
    const serde = new CompressedSerde();
    const long = "memcached ".repeat(100);
    const [data, flags] = await serde.serialize("k", long);
    assert.equal(flags, FLAG_TEXT | FLAG_COMPRESSED);
    assert.ok((data as Uint8Array).length < 100);
    assert.equal(await serde.deserialize("k", data as Uint8Array, flags), long);
    const [small, smallFlags] = await serde.serialize("k", "short");
    assert.equal(smallFlags, FLAG_TEXT);
    assert.equal(await serde.deserialize("k", small as Uint8Array, smallFlags), "short");
    const obj = { list: Array.from({ length: 200 }, (_, i) => i) };
    const [packed, objFlags] = await serde.serialize("k", obj);
    assert.equal(objFlags, FLAG_JSON | FLAG_COMPRESSED);
    assert.deepEqual(await serde.deserialize("k", packed as Uint8Array, objFlags), obj);
  });

  it("keeps incompressible values as they are", async () => {
    const random = crypto.getRandomValues(new Uint8Array(1000));
    const [data, flags] = await new CompressedSerde().serialize("k", random);
    assert.equal(flags, 0);
    assert.deepEqual(data, random);
  });

  it("writes zlib streams that Python's zlib.decompress reads, and reads Python's", async () => {
    if (!hasPython()) return assert.ok(true, "python3 not installed: cross-check skipped");
    const text = "shared with python ".repeat(50);
    const [data] = await new CompressedSerde().serialize("k", text);
    const out = execFileSync("python3", [
      "-c",
      "import sys,zlib;sys.stdout.write(zlib.decompress(sys.stdin.buffer.read()).decode())",
    ], {
      input: data as Uint8Array,
    });
    assert.equal(out.toString(), text);
    const fromPython = execFileSync("python3", [
      "-c",
      "import sys,zlib;sys.stdout.buffer.write(zlib.compress(b'x'*1000))",
    ]);
    assert.equal(await new CompressedSerde().deserialize("k", new Uint8Array(fromPython), 16 | 8), "x".repeat(1000));
  });
});
