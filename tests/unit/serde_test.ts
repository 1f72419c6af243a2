// Serdes: pymemcache's flag numbers, zlib framing Python can read, and a
// bound on what a compressed value may inflate to (zlib bombs, also through
// a real memcached).
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { describe, it } from "../_support/_harness.ts";
import { haveMemcached, startMemcached } from "../_support/_memcached.ts";
import {
  Client,
  CompressedSerde,
  defaultSerde,
  FLAG_COMPRESSED,
  FLAG_JSON,
  FLAG_TEXT,
  MemcacheSerdeError,
  PickleSerde,
} from "../../mod.ts";

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

const MiB = 1024 * 1024;

/** A zlib stream of `size` zero bytes (about size/1000 bytes long): a zlib bomb. */
async function bomb(size: number): Promise<Uint8Array> {
  const [packed, flags] = await new CompressedSerde({ minCompressLen: 1 }).serialize("k", new Uint8Array(size));
  assert.equal(flags, FLAG_COMPRESSED);
  assert.ok((packed as Uint8Array).length < size / 500);
  return packed as Uint8Array;
}

function inflatesTooMuch(max: number): (e: unknown) => boolean {
  return (e: unknown) => {
    assert.ok(e instanceof MemcacheSerdeError, `not a MemcacheSerdeError: ${e}`);
    assert.match((e as Error).message, new RegExp(`more than maxValueSize \\(${max} bytes\\)`));
    return true;
  };
}

describe("maxValueSize: compressed values inflate to a bounded size", () => {
  it("CompressedSerde and PickleSerde stop at maxValueSize and reject with MemcacheSerdeError; up to it they read", async () => {
    const packed = await bomb(10 * MiB);
    for (const serde of [new CompressedSerde({ maxValueSize: MiB }), new PickleSerde({ maxValueSize: MiB })]) {
      assert.equal(serde.maxValueSize, MiB);
      await assert.rejects(Promise.resolve(serde.deserialize("k", packed, FLAG_COMPRESSED)), inflatesTooMuch(MiB));
      // exactly maxValueSize bytes is allowed; one more is not
      const exact = await bomb(MiB);
      const read = await serde.deserialize("k", exact, FLAG_COMPRESSED) as Uint8Array;
      assert.equal(read.length, MiB);
      assert.ok(read.every((b) => b === 0));
      await assert.rejects(
        Promise.resolve(serde.deserialize("k", await bomb(MiB + 1), FLAG_COMPRESSED)),
        inflatesTooMuch(MiB),
      );
      // a large limit reads the same stream in full
      const roomy = serde instanceof PickleSerde ? new PickleSerde({ maxValueSize: 10 * MiB }) : new CompressedSerde({
        maxValueSize: 10 * MiB,
      });
      assert.equal((await roomy.deserialize("k", packed, FLAG_COMPRESSED) as Uint8Array).length, 10 * MiB);
    }
  });

  it("the default is 64 MiB: a 65 MiB bomb rejects", async () => {
    assert.equal(new CompressedSerde().maxValueSize, 64 * MiB);
    assert.equal(new PickleSerde().maxValueSize, 64 * MiB);
    const packed = await bomb(65 * MiB);
    await assert.rejects(new CompressedSerde().deserialize("k", packed, FLAG_COMPRESSED), inflatesTooMuch(64 * MiB));
    await assert.rejects(
      Promise.resolve(new PickleSerde().deserialize("k", packed, FLAG_COMPRESSED)),
      inflatesTooMuch(64 * MiB),
    );
  });

  it("a stream that is not zlib rejects with MemcacheSerdeError; a bad maxValueSize is a TypeError", async () => {
    const garbage = new Uint8Array([0x78, 0x9c, 0xff, 0xff, 0xff, 0xff, 1, 2, 3]);
    await assert.rejects(new CompressedSerde().deserialize("k", garbage, FLAG_COMPRESSED), MemcacheSerdeError);
    for (const maxValueSize of [0, -1, 1.5, NaN, Infinity, "1"]) {
      assert.throws(() => new CompressedSerde({ maxValueSize: maxValueSize as number }), TypeError);
      assert.throws(() => new PickleSerde({ maxValueSize: maxValueSize as number }), TypeError);
    }
  });

  it(
    "through a real memcached: get of a bomb rejects with MemcacheSerdeError, the next get on the same connection works",
    async () => {
      await using server = await startMemcached();
      await using writer = new Client(server.spec); // writes the bytes as they are, with the flags given
      await writer.set("bomb", await bomb(10 * MiB), { flags: FLAG_COMPRESSED, noreply: false });
      await writer.set("fine", "still here", { noreply: false });
      for (const serde of [new CompressedSerde({ maxValueSize: MiB }), new PickleSerde({ maxValueSize: MiB })]) {
        await using client = new Client(server.spec, { serde });
        const before = Number((await client.stats()).total_connections);
        await assert.rejects(client.get("bomb"), (e: unknown) => {
          assert.ok(e instanceof MemcacheSerdeError, `not a MemcacheSerdeError: ${e}`);
          assert.match((e as Error).message, /maxValueSize/);
          return true;
        });
        assert.equal(await client.get("fine"), "still here");
        assert.equal(Number((await client.stats()).total_connections), before, "the client did not reconnect");
      }
    },
    { skip: haveMemcached() ? false : "memcached is not installed" },
  );
});
