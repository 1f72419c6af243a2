/**
 * The Client behaviour suite: one set of test bodies, run against every
 * client class and transport (STYLE.md rule 12). It imports no runtime
 * module itself: the target supplies the clients and the servers.
 */
import assert from "node:assert/strict";
import { rejectsWith } from "../_support/_assert.ts";
import { describe, it } from "../_support/_harness.ts";
import {
  type ClientOptions,
  MemcacheClientError,
  MemcacheConnectionError,
  MemcacheError,
  MemcacheIllegalInputError,
  MemcacheServerError,
  MemcacheTimeoutError,
  MemcacheUnexpectedCloseError,
  MemcacheUnknownCommandError,
  MemcacheUnknownError,
} from "../../mod.ts";
import type { Client } from "../../src/clients/client.ts";
import { trustSuite } from "./_suite_trust.ts";

/** `promise`, or a rejection naming `what` if it has not settled after `ms`: a hang fails the test instead. */
export async function within<T>(promise: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const expired = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${what} did not settle within ${ms} ms`)), ms);
  });
  try {
    return await Promise.race([promise, expired]);
  } finally {
    clearTimeout(timer);
  }
}

/** Client's public surface (what PooledClient and HashClient share). */
export type ClientLike = { [K in keyof Client]: Client[K] };

/** A running memcached, as the suite sees it. */
export interface SuiteServer extends AsyncDisposable {
  readonly spec: string;
  readonly cert?: string;
  stop(): Promise<void>;
  restart(): Promise<void>;
  /** Stops the process from running (SIGSTOP) until `resume`, where the target can. */
  pause?(): void;
  resume?(): void;
}

/** The socket side a fake server's script sees. */
export interface FakeSocket {
  write(data: string): void;
  destroy(): void;
}

/** A fake server, as the suite sees it. */
export interface SuiteFake extends AsyncDisposable {
  readonly spec: string;
  received(): string;
  connections(): number;
}

/** What the suite runs against. */
export interface SuiteTarget {
  /** Shown in test names, e.g. "Client/deno". */
  name: string;
  makeClient(spec: string, options?: ClientOptions): ClientLike;
  startMemcached(options?: { args?: string[]; unix?: boolean; tls?: boolean }): Promise<SuiteServer>;
  startFakeServer(onData?: (socket: FakeSocket, text: string, all: string) => void): Promise<SuiteFake>;
  /** A loopback port nothing listens on. */
  freePort(): Promise<number>;
  /** Cases this target cannot run, by name, with the reason. */
  skip?: Record<string, string>;
}

const bytes = (s: string) => new TextEncoder().encode(s);
const text = (b: Uint8Array) => new TextDecoder().decode(b);

/** Registers the whole behaviour suite for `target`. */
export function clientSuite(target: SuiteTarget): void {
  const { makeClient } = target;
  const test = (name: string, body: () => Promise<void>) => it(name, body, { skip: target.skip?.[name] ?? false });

  describe(`${target.name}: storage and retrieval`, () => {
    test("large values sent back to back, awaited, pipelined and noreply, are stored exactly", async () => {
      await using server = await target.startMemcached();
      await using client = makeClient(server.spec, { timeout: 5000 }); // garbled framing fails, not hangs
      const make = (size: number, fill: number) => {
        const value = new Uint8Array(size).fill(fill);
        value[0] = fill ^ 0xff; // ends differ from the middle
        value[size - 1] = fill ^ 0x0f;
        return value;
      };
      // More than the kernel buffers for a paused server (below), in sizes that could reuse a buffer.
      const sizes = [70_000, 300_000, 900_000, 900_000, 200_000, 900_000, 900_000, 900_000, 900_000, 900_000, 100_000];
      // Awaited one by one: the client may reuse its buffer for large commands between them.
      for (let i = 0; i < sizes.length; i++) {
        const value = make(sizes[i], i + 1);
        assert.equal(await client.set(`seq${i}`, value, { noreply: false }), true);
        value.fill(0); // changing it afterwards changes nothing stored
      }
      // Pipelined, each in a tick (a write) of its own while earlier ones may
      // still be on their way, with noreply ones between; then a reply-less tail.
      // A paused server reads nothing, so most of these wait in the client.
      const pipelined: Promise<boolean>[] = [];
      server.pause?.();
      try {
        for (let i = 0; i < sizes.length; i++) {
          pipelined.push(client.set(`pipe${i}`, make(sizes[i], 100 + i), { noreply: i % 2 === 1 }));
          await new Promise((resolve) => setTimeout(resolve, 0));
        }
      } finally {
        server.resume?.();
      }
      await Promise.all(pipelined);
      await client.set("tail", make(150_000, 250), { noreply: true });
      for (let i = 0; i < sizes.length; i++) {
        assert.deepEqual(await client.get(`seq${i}`), make(sizes[i], i + 1), `seq${i}`);
        assert.deepEqual(await client.get(`pipe${i}`), make(sizes[i], 100 + i), `pipe${i}`);
      }
      assert.deepEqual(await client.get("tail"), make(150_000, 250));
    });

    test("byte values stay intact while later replies reuse read buffers and value slabs", async () => {
      await using server = await target.startMemcached();
      await using client = makeClient(server.spec);
      // Sizes around the 4 KiB slab limit and the 64 KiB read size, bytes that look like protocol.
      const sizes = [0, 1, 2, 100, 4095, 4096, 4097, 8191, 65535, 65536, 70000, 200_000];
      const stored = new Map<string, Uint8Array>();
      let seed = 7;
      for (let i = 0; i < 120; i++) {
        const value = new Uint8Array(sizes[i % sizes.length]);
        for (let j = 0; j < value.length; j++) value[j] = (seed = (seed * 1103515245 + 12345) >>> 0) >>> 24;
        if (value.length >= 4) value.set([13, 10], value.length >> 1);
        stored.set(`bin${i}`, value);
      }
      await client.setMany(stored, { noreply: false });
      const keys = [...stored.keys()];
      // Singles and multi-gets in flight together, then more traffic through the same buffers.
      const singles = await Promise.all(keys.map((k) => client.get(k)));
      const many = await client.getMany(keys);
      await Promise.all(keys.map((k) => client.get(k)));
      await client.getMany(keys.slice().reverse());
      keys.forEach((k, i) => {
        assert.deepEqual(singles[i], stored.get(k), `get ${k}`);
        assert.deepEqual(many.get(k), stored.get(k), `getMany ${k}`);
      });
      // Writing into one returned value changes no other.
      for (const v of singles) (v as Uint8Array).fill(0xee);
      for (const [k, v] of stored) assert.deepEqual(many.get(k), v, `after writes: ${k}`);
    });

    test("set/get round-trips every default-serde type, reply and noreply", async () => {
      await using server = await target.startMemcached();
      await using client = makeClient(server.spec);
      const values: [string, unknown][] = [
        ["str", "héllo wörld ✓"],
        ["bytes", new Uint8Array([0, 1, 2, 255])],
        ["int", 42],
        ["neg", -7],
        ["big", 2n ** 64n + 5n],
        ["json", { a: [1, 2, { b: null }], c: "d" }],
        ["float", 1.5],
        ["bool", true],
      ];
      for (const noreply of [false, true]) {
        for (const [key, value] of values) {
          assert.equal(await client.set(`${key}-${noreply}`, value, { noreply }), true);
        }
        for (const [key, value] of values) {
          assert.deepEqual(await client.get(`${key}-${noreply}`), value, key);
        }
      }
    });

    test("get of a missing key gives null or the default", async () => {
      await using server = await target.startMemcached();
      await using client = makeClient(server.spec);
      assert.equal(await client.get("nope"), null);
      assert.equal(await client.get("nope", "dflt"), "dflt");
      assert.deepEqual(await client.gets("nope"), [null, null]);
      assert.deepEqual(await client.gets("nope", 1, "0"), [1, "0"]);
    });

    test("values framed by length: protocol text inside values round-trips", async () => {
      await using server = await target.startMemcached();
      await using client = makeClient(server.spec);
      const tricky = [
        "\r\nEND\r\n",
        "VALUE x 0 5\r\nhello\r\nEND\r\n",
        "STORED\r\n",
        "\r\n",
        "\n",
        "\r",
        "SERVER_ERROR oops\r\n",
      ];
      for (const [i, v] of tricky.entries()) await client.set(`t${i}`, bytes(v), { noreply: false });
      for (const [i, v] of tricky.entries()) assert.equal(text(await client.get(`t${i}`)), v);
      const many = await client.getMany(tricky.map((_, i) => `t${i}`));
      assert.deepEqual([...many.values()].map(text), tricky);
    });

    test("0-byte, all-byte-values and ~1 MB values round-trip", async () => {
      await using server = await target.startMemcached({ args: ["-I", "2m"] });
      await using client = makeClient(server.spec);
      const all = new Uint8Array(256).map((_, i) => i);
      const big = new Uint8Array(1_000_000).map((_, i) => (i * 7919) % 251);
      await client.set("empty", new Uint8Array(0));
      await client.set("emptystr", "");
      await client.set("all", all);
      await client.set("big", big, { noreply: false });
      assert.deepEqual(await client.get("empty"), new Uint8Array(0));
      assert.equal(await client.get("emptystr"), "");
      assert.deepEqual(await client.get("all"), all);
      assert.deepEqual(await client.get("big"), big);
      const both = await client.getMany(["big", "all", "empty"]);
      assert.deepEqual(both.get("big"), big);
      assert.deepEqual(both.get("empty"), new Uint8Array(0));
    });

    test("add / replace / append / prepend, reply and noreply", async () => {
      await using server = await target.startMemcached();
      await using client = makeClient(server.spec, { defaultNoreply: false });
      assert.equal(await client.add("k", "a"), true);
      assert.equal(await client.add("k", "b"), false);
      assert.equal(await client.add("k", "b", { noreply: true }), true);
      assert.equal(await client.get("k"), "a");
      assert.equal(await client.replace("missing", "x"), false);
      assert.equal(await client.replace("k", "c"), true);
      assert.equal(await client.append("k", "d"), true);
      assert.equal(await client.prepend("k", "<"), true);
      assert.equal(await client.get("k"), "<cd");
      assert.equal(await client.append("missing", "x"), false);
      assert.equal(await client.prepend("missing", "x"), false);
      assert.equal(await client.append("missing", "x", { noreply: true }), true);
      assert.equal(await client.get("missing"), null);
    });

    test("cas: stored, exists, not found, noreply", async () => {
      await using server = await target.startMemcached();
      await using client = makeClient(server.spec);
      assert.equal(await client.cas("none", "v", "1"), null);
      await client.set("k", "v1");
      const [value, token] = await client.gets("k");
      assert.equal(value, "v1");
      assert.match(token!, /^\d+$/);
      assert.equal(await client.cas("k", "v2", token!), true);
      assert.equal(await client.cas("k", "v3", token!), false);
      assert.equal(await client.get("k"), "v2");
      const [, token2] = await client.gets("k");
      assert.equal(await client.cas("k", "v4", BigInt(token2!), { noreply: true }), true);
      assert.equal(await client.get("k"), "v4");
    });

    test("setMany returns failed keys; getMany keyed as passed, without the prefix", async () => {
      await using server = await target.startMemcached();
      await using client = makeClient(server.spec, { keyPrefix: "app:" });
      assert.deepEqual(await client.setMany({ a: 1, b: "two" }), []);
      assert.deepEqual(await client.setMany(new Map([["c", 3]]), { noreply: false }), []);
      assert.deepEqual(await client.setMulti([["d", 4]]), []);
      const got = await client.getMany(["a", "b", "c", "d", "missing", "a"]);
      assert.deepEqual([...got.entries()].sort(), [["a", 1], ["b", "two"], ["c", 3], ["d", 4]]);
      assert.deepEqual(await client.getMulti([]), new Map());
      await using plain = makeClient(server.spec);
      assert.equal(await plain.get("app:a"), 1);
      assert.equal(await plain.get("a"), null);
    });

    test("setMany with a value over the item size throws, and stores the rest", async () => {
      await using server = await target.startMemcached({ args: ["-I", "1m"] });
      await using client = makeClient(server.spec);
      // As pymemcache: a SERVER_ERROR raises; the other keys are still stored.
      await rejectsWith(
        client.setMany({ ok: "x", huge: new Uint8Array(2 * 1024 * 1024) }, { noreply: false }),
        MemcacheServerError,
      );
      assert.equal(await client.get("ok"), "x");
    });

    test("getsMany and many keys split into several commands", async () => {
      await using server = await target.startMemcached();
      await using client = makeClient(server.spec);
      const keys = Array.from({ length: 300 }, (_, i) => `key-${i}-${"x".repeat(200)}`);
      await client.setMany(Object.fromEntries(keys.map((k, i) => [k, i])));
      const got = await client.getsMany(keys);
      assert.equal(got.size, 300);
      keys.forEach((k, i) => {
        assert.equal(got.get(k)![0], i);
        assert.match(got.get(k)![1], /^\d+$/);
      });
    });

    test("gat / gats return the value and set the expiry", async () => {
      await using server = await target.startMemcached();
      await using client = makeClient(server.spec);
      await client.set("k", "v");
      assert.equal(await client.gat("k", 100), "v");
      const [value, cas] = await client.gats("k", 100);
      assert.equal(value, "v");
      assert.match(cas!, /^\d+$/);
      assert.equal(await client.gat("missing", 0, "d"), "d");
      assert.deepEqual(await client.gats("missing", 0, "d", "c"), ["d", "c"]);
      assert.equal(await client.gat("k", -1), "v"); // a negative expiry expires it now
      assert.equal(await client.get("k"), null);
    });
  });

  describe(`${target.name}: other commands`, () => {
    test("delete and deleteMany, reply and noreply", async () => {
      await using server = await target.startMemcached();
      await using client = makeClient(server.spec);
      await client.setMany({ a: 1, b: 2, c: 3, d: 4 });
      assert.equal(await client.delete("a", { noreply: false }), true);
      assert.equal(await client.delete("a", { noreply: false }), false);
      assert.equal(await client.delete("a"), true);
      assert.equal(await client.deleteMany(["b", "c", "zz"], { noreply: false }), true);
      assert.equal(await client.deleteMulti(["d"]), true);
      assert.deepEqual(await client.getMany(["a", "b", "c", "d"]), new Map());
    });

    test("incr / decr: values, misses, noreply, floor at 0, bigint beyond 2^53-1, wrap at 2^64", async () => {
      await using server = await target.startMemcached();
      await using client = makeClient(server.spec);
      assert.equal(await client.incr("n", 1), null);
      await client.set("n", 10);
      assert.equal(await client.incr("n", 5), 15);
      assert.equal(await client.decr("n", 3), 12);
      assert.equal(await client.decr("n", 100), 0);
      assert.equal(await client.incr("n", 7, { noreply: true }), null);
      assert.equal(await client.get("n"), 7);
      await client.set("big", 2 ** 53 - 1);
      assert.equal(await client.incr("big", 1), 2n ** 53n);
      assert.equal(await client.incr("big", 2n ** 60n), 2n ** 53n + 2n ** 60n);
      await client.set("max", 2n ** 64n - 1n);
      assert.equal(await client.incr("max", 1), 0); // memcached wraps at 2^64
      assert.equal(await client.decr("missing", 1), null);
    });

    test("touch: true, false, noreply, expiry applied", async () => {
      await using server = await target.startMemcached();
      await using client = makeClient(server.spec);
      await client.set("k", "v");
      assert.equal(await client.touch("k", 100, { noreply: false }), true);
      assert.equal(await client.touch("missing", 100, { noreply: false }), false);
      assert.equal(await client.touch("missing", 100), true);
      assert.equal(await client.touch("k", -1, { noreply: false }), true);
      assert.equal(await client.get("k"), null);
    });

    test("stats converted as pymemcache's STAT_TYPES", async () => {
      await using server = await target.startMemcached();
      await using client = makeClient(server.spec);
      const stats = await client.stats();
      assert.equal(typeof stats.pid, "number");
      assert.equal(typeof stats.version, "string");
      assert.match(stats.version as string, /^\d+\.\d+/);
      assert.equal(typeof stats.rusage_user, "number");
      assert.equal(typeof stats.curr_connections, "number");
      const settings = await client.stats("settings");
      assert.equal(settings.growth_factor, 1.25);
      assert.equal(settings.cas_enabled, "yes"); // pymemcache's int parse fails on "yes": kept as text
      assert.equal(stats.hash_is_expanding, false); // "0" → boolean
      assert.equal(typeof settings.maxbytes, "number");
      assert.equal(typeof settings.evictions, "string"); // "on": not an integer, kept as text
      assert.equal(typeof await client.stats("slabs"), "object");
      assert.deepEqual(await client.stats("reset"), {});
      await rejectsWith(client.stats("bad arg"), MemcacheIllegalInputError);
    });

    test("version, cacheMemlimit, verbosity, flushAll", async () => {
      await using server = await target.startMemcached();
      await using client = makeClient(server.spec);
      assert.match(await client.version(), /^\d+\.\d+\.\d+/);
      assert.equal(await client.cacheMemlimit(100), true);
      assert.equal((await client.stats("settings")).maxbytes, 100 * 1024 * 1024);
      assert.equal(await client.verbosity(0, { noreply: false }), true);
      assert.equal(await client.verbosity(0), true);
      await client.set("k", "v");
      assert.equal(await client.flushAll(0, { noreply: false }), true);
      assert.equal(await client.get("k"), null);
      await client.set("k", "v");
      assert.equal(await client.flushAll(), true);
      assert.equal(await client.get("k"), null);
    });

    test("rawCommand returns bytes before the end tokens; errors throw", async () => {
      await using server = await target.startMemcached();
      await using client = makeClient(server.spec);
      await client.set("k", "hello");
      assert.equal(text(await client.rawCommand("get k", "END\r\n")), "VALUE k 16 5\r\nhello\r\n");
      assert.match(text(await client.rawCommand("version")), /^VERSION \d/);
      await rejectsWith(client.rawCommand("bogus_command"), MemcacheUnknownCommandError);
      assert.equal(await client.get("k"), "hello"); // the main connection is untouched
    });

    test("quit and close leave the client reusable; asyncDispose closes", async () => {
      await using server = await target.startMemcached();
      const client = makeClient(server.spec);
      await client.set("k", "v");
      await client.quit();
      assert.equal(await client.get("k"), "v");
      await client.close();
      await client.close();
      assert.equal(await client.get("k"), "v");
      await client[Symbol.asyncDispose]();
      await client.quit();
    });

    test("close() and quit() finish while new calls are made, which reconnect", async () => {
      await using server = await target.startMemcached();
      const client = makeClient(server.spec);
      await client.set("k", "v", { noreply: false });
      for (const stop of ["close", "quit"] as const) {
        const stopping = client[stop]();
        const during = [client.get("k"), client.set("k2", stop, { noreply: false })];
        await within(stopping, 10_000, `${stop}()`);
        assert.deepEqual(await Promise.all(during), ["v", true]);
        assert.equal(await client.get("k2"), stop);
      }
      await client.close();
    });

    test("noreply writes queued before close() still reach the server", async () => {
      await using server = await target.startMemcached();
      const client = makeClient(server.spec);
      for (let i = 0; i < 100; i++) void client.set(`k${i}`, i);
      await client.close();
      await using reader = makeClient(server.spec);
      // memcached serves 20 requests per event per connection, so the reader
      // may overtake the writer's tail: poll until every write has landed.
      let got = 0;
      for (let i = 0; i < 100 && got < 100; i++) {
        got = (await reader.getMany(Array.from({ length: 100 }, (_, i) => `k${i}`))).size;
        if (got < 100) await new Promise((r) => setTimeout(r, 10));
      }
      assert.equal(got, 100);
    });
  });

  describe(`${target.name}: keys and input checks`, () => {
    test("bad keys are refused before anything is written", async () => {
      await using fake = await target.startFakeServer();
      await using client = makeClient(fake.spec);
      const bad: [string, RegExp][] = [
        ["a b", /whitespace/],
        ["a\r\nflush_all", /whitespace/],
        ["tab\tkey", /whitespace/],
        ["nul\0", /null/],
        ["bell\x07", /control/],
        ["del\x7f", /control/],
        ["é", /Non-ASCII/],
        ["x".repeat(251), /too long/],
        ["", /empty/],
      ];
      // Like every error, an input error names the command, and the server where there is one.
      const where = target.name.startsWith("HashClient") ? /\(command get\)$/ : /\(server [^,]+, command get\)$/;
      await rejectsWith(client.get("a b"), MemcacheIllegalInputError, where);
      await rejectsWith(client.getMany(["a", "a b"]), MemcacheIllegalInputError, /command get\)$/);
      await rejectsWith(client.set("k", "v", { expire: -0.5 }), MemcacheIllegalInputError, /command set\)$/);
      await rejectsWith(client.incr("a b", 1), MemcacheIllegalInputError, /command incr\)$/);
      for (const [key, why] of bad) {
        await rejectsWith(client.get(key), MemcacheIllegalInputError, why);
        await rejectsWith(client.set(key, "v"), MemcacheIllegalInputError, why);
        await rejectsWith(client.delete(key), MemcacheIllegalInputError, why);
        await rejectsWith(client.incr(key, 1), MemcacheIllegalInputError, why);
        await rejectsWith(client.touch(key), MemcacheIllegalInputError, why);
        await rejectsWith(client.getMany(["fine", key]), MemcacheIllegalInputError, why);
        await rejectsWith(client.deleteMany(["fine", key]), MemcacheIllegalInputError, why);
        await rejectsWith(client.setMany([["fine", "v"], [key, "v"]]), MemcacheIllegalInputError, why);
        assert.throws(() => client.checkKey(key), MemcacheIllegalInputError);
      }
      assert.equal(fake.received(), "");
      assert.equal(fake.connections(), 0);
    });

    test("setMany with one bad pair writes none of them", async () => {
      await using fake = await target.startFakeServer((socket, _text, all) => {
        if (all.endsWith("version\r\n")) socket.write("VERSION 1.6.0\r\n");
      });
      await using client = makeClient(fake.spec);
      const calls: [string, Promise<unknown>][] = [
        ["bad key last", client.setMany([["a", "v"], ["b", "v"], ["bad key", "v"]])],
        ["bad value last", client.setMany([["a", "v"], ["b", Symbol("no serde for this")]])],
        ["bad expire", client.setMany({ a: "v" }, { expire: -1.5 })],
      ];
      for (const [name, call] of calls) await assert.rejects(call, Error, name);
      // A request behind them: whatever they had queued would reach the server first.
      await client.version();
      assert.equal(fake.received(), "version\r\n");
    });

    test("the prefix counts toward 250 bytes; checkKey returns the wire bytes", async () => {
      await using server = await target.startMemcached();
      await using client = makeClient(server.spec, { keyPrefix: "p:" });
      assert.deepEqual(client.checkKey("abc"), bytes("p:abc"));
      assert.throws(() => client.checkKey("x".repeat(249)), /too long/);
      await client.set("x".repeat(248), "fits");
      assert.equal(await client.get("x".repeat(248)), "fits");
    });

    test("unicode keys with allowUnicodeKeys", async () => {
      await using server = await target.startMemcached();
      await using client = makeClient(server.spec, { allowUnicodeKeys: true });
      await client.set("ключ", "значение");
      assert.equal(await client.get("ключ"), "значение");
      assert.deepEqual([...(await client.getMany(["ключ", "键"])).keys()], ["ключ"]);
      assert.deepEqual(client.checkKey("é"), bytes("é"));
      assert.throws(() => client.checkKey("é".repeat(126)), /too long/); // 252 bytes
      assert.throws(() => client.checkKey("a\ud800b"), /well-formed/); // would be stored as U+FFFD
    });

    test("bad arguments are refused without breaking the connection", async () => {
      await using server = await target.startMemcached();
      await using client = makeClient(server.spec);
      await client.set("n", 1);
      const connectionsBefore = (await client.stats()).total_connections;
      await rejectsWith(client.set("k", "v", { expire: 1.5 }), MemcacheIllegalInputError, /expire/);
      await rejectsWith(client.set("k", "v", { flags: -1 }), MemcacheIllegalInputError, /flags/);
      await rejectsWith(client.cas("k", "v", "12a"), MemcacheIllegalInputError, /cas/);
      await rejectsWith(client.incr("n", -1), MemcacheIllegalInputError);
      await rejectsWith(client.incr("n", 1.5), MemcacheIllegalInputError);
      await rejectsWith(client.set("k", Symbol("x")), Error);
      await rejectsWith(client.set("k", NaN), Error);
      assert.equal(await client.incr("n", 1), 2);
      assert.equal((await client.stats()).total_connections, connectionsBefore); // same connection throughout
    });

    test("per-call flags override the serde's flags", async () => {
      await using server = await target.startMemcached();
      await using client = makeClient(server.spec);
      await client.set("k", "123", { flags: 2, noreply: false });
      assert.equal(await client.get("k"), 123); // read back as FLAG_INTEGER
      await client.set("raw", "text", { flags: 77 });
      assert.deepEqual(await client.get("raw"), bytes("text")); // unknown flags: raw bytes
    });
  });

  describe(`${target.name}: errors and recovery`, () => {
    test("a value over the item size is a MemcacheServerError; pipelined requests behind it succeed", async () => {
      await using server = await target.startMemcached({ args: ["-I", "1m"] });
      await using client = makeClient(server.spec);
      await client.set("small", "ok", { noreply: false });
      const huge = client.set("huge", new Uint8Array(1_200_000), { noreply: false });
      const after = client.get("small");
      await rejectsWith(huge, MemcacheServerError, /SERVER_ERROR.*too large.*server 127\.0\.0\.1:\d+, command set/);
      assert.equal(await after, "ok");
      assert.equal(await client.get("small"), "ok");
    });

    test("a server that never answers gives MemcacheTimeoutError, then a new connection", async () => {
      await using fake = await target.startFakeServer();
      await using client = makeClient(fake.spec, { timeout: 150 });
      const first = client.get("a");
      const second = client.get("b");
      await rejectsWith(first, MemcacheTimeoutError, /Timed out after 150 ms.*command get/);
      await rejectsWith(second, MemcacheError);
      await rejectsWith(client.set("c", "v", { noreply: false }), MemcacheTimeoutError);
      assert.equal(fake.connections(), 2);
      assert.equal(await client.set("d", "v"), true); // noreply: written, nothing to wait for
    });

    test("connection refused is a MemcacheConnectionError naming the server", async () => {
      const port = await target.freePort();
      await using client = makeClient(`127.0.0.1:${port}`);
      await rejectsWith(client.get("k"), MemcacheConnectionError, new RegExp(`127\\.0\\.0\\.1:${port}`));
      await rejectsWith(client.set("k", "v"), MemcacheConnectionError);
    });

    test("kill memcached and restart it on the same port: the client recovers", async () => {
      await using server = await target.startMemcached();
      await using client = makeClient(server.spec, { timeout: 2000 });
      await client.set("k", "v", { noreply: false });
      await server.stop();
      await rejectsWith(client.get("k"), MemcacheError);
      await server.restart();
      assert.equal(await client.get("k"), null); // a fresh server
      await client.set("k", "again");
      assert.equal(await client.get("k"), "again");
    });

    test("an unparseable reply closes the connection and rejects every waiting request", async () => {
      await using fake = await target.startFakeServer((socket, _text, all) => {
        if (all.includes("\n")) socket.write("HELLO THERE\r\n");
      });
      await using client = makeClient(fake.spec);
      const a = client.get("a");
      const b = client.get("b");
      await rejectsWith(a, MemcacheUnknownError, /Unparseable reply/);
      await rejectsWith(b, MemcacheError);
      await rejectsWith(client.get("c"), MemcacheUnknownError);
      assert.equal(fake.connections(), 2);
    });

    test("a reply naming another key is refused: a get never resolves with another key's value", async () => {
      await using fake = await target.startFakeServer((socket, text) => {
        if (text.startsWith("get")) socket.write("VALUE other 0 3\r\nbad\r\nEND\r\n");
      });
      await using client = makeClient(fake.spec);
      await rejectsWith(client.get("mine"), MemcacheUnknownError);
    });

    test("the server closing mid-reply is a MemcacheUnexpectedCloseError", async () => {
      await using fake = await target.startFakeServer((socket) => {
        socket.write("VALUE a 0 10\r\nabc");
        setTimeout(() => socket.destroy(), 10);
      });
      await using client = makeClient(fake.spec);
      await rejectsWith(client.get("a"), MemcacheUnexpectedCloseError, /server 127\.0\.0\.1/);
    });

    test("CLIENT_ERROR rejects with MemcacheClientError and the next call reconnects", async () => {
      await using fake = await target.startFakeServer((socket, text) => {
        if (text.includes("set")) socket.write("CLIENT_ERROR bad data chunk\r\n");
        else if (text.includes("version")) socket.write("VERSION 9.9.9\r\n");
      });
      await using client = makeClient(fake.spec);
      await rejectsWith(client.set("k", "v", { noreply: false }), MemcacheClientError, /bad data chunk/);
      assert.equal(await client.version(), "9.9.9");
      assert.equal(fake.connections(), 2);
    });

    test("CLIENT_ERROR to a one-line command keeps the connection: incr of a non-number", async () => {
      await using server = await target.startMemcached();
      await using client = makeClient(server.spec);
      await client.set("text", "abc", { noreply: false });
      // The get and decr are pipelined behind the failing incr: a closed
      // connection would reject them with MemcacheConnectionError.
      const results = await Promise.allSettled([client.incr("text", 1), client.get("text"), client.decr("text", 1)]);
      assert.ok((results[0] as PromiseRejectedResult).reason instanceof MemcacheClientError);
      assert.match((results[0] as PromiseRejectedResult).reason.message, /non-numeric/);
      assert.deepEqual(results[1], { status: "fulfilled", value: "abc" });
      assert.ok((results[2] as PromiseRejectedResult).reason instanceof MemcacheClientError);
    });

    test("ignoreExc turns get-family errors into misses", async () => {
      const port = await target.freePort();
      await using client = makeClient(`127.0.0.1:${port}`, { ignoreExc: true });
      assert.equal(await client.get("k"), null);
      assert.equal(await client.get("k", "d"), "d");
      assert.deepEqual(await client.getMany(["a", "b"]), new Map());
      assert.deepEqual(await client.gets("k"), [null, null]);
      assert.equal(await client.gat("k"), null);
      await rejectsWith(client.set("k", "v"), MemcacheConnectionError); // only the get family
      await rejectsWith(client.get("bad key"), MemcacheIllegalInputError); // input errors still throw
    });
  });

  describe(`${target.name}: pipelining and transports`, () => {
    test("1,000+ concurrent mixed requests all resolve with their own results", async () => {
      await using server = await target.startMemcached();
      await using client = makeClient(server.spec);
      const n = 1200;
      const ops: Promise<unknown>[] = [];
      for (let i = 0; i < n; i++) {
        ops.push(client.set(`k${i}`, `v${i}`, { noreply: i % 2 === 0 }));
        ops.push(client.set(`c${i}`, i));
      }
      await Promise.all(ops);
      const checks: Promise<void>[] = [];
      for (let i = 0; i < n; i++) {
        checks.push(client.get(`k${i}`).then((v) => assert.equal(v, `v${i}`)));
        checks.push(client.incr(`c${i}`, 1).then((v) => assert.equal(v, i + 1)));
        checks.push(client.gets(`k${i}`).then(([v]) => assert.equal(v, `v${i}`)));
        if (i % 10 === 0) {
          const keys = [`k${i}`, `nope${i}`, `k${(i + 1) % n}`];
          checks.push(
            client.getMany(keys).then((m) => {
              assert.equal(m.get(`k${i}`), `v${i}`);
              assert.equal(m.get(`k${(i + 1) % n}`), `v${(i + 1) % n}`);
              assert.equal(m.has(`nope${i}`), false);
            }),
          );
        }
        if (i % 7 === 0) checks.push(client.get(`missing${i}`).then((v) => assert.equal(v, null)));
      }
      await Promise.all(checks);
    });

    test("requests in flight when the server dies settle: their own value or a MemcacheError", async () => {
      await using server = await target.startMemcached();
      await using client = makeClient(server.spec, { timeout: 3000 });
      await client.setMany(Object.fromEntries(Array.from({ length: 500 }, (_, i) => [`k${i}`, i])), { noreply: false });
      const inFlight = Array.from({ length: 3000 }, (_, i) => client.get(`k${i % 500}`));
      const killed = server.stop();
      const settled = await Promise.allSettled(inFlight);
      await killed;
      settled.forEach((r, i) => {
        if (r.status === "fulfilled") assert.equal(r.value, i % 500);
        else assert.ok(r.reason instanceof MemcacheError, String(r.reason));
      });
      await server.restart();
      assert.equal(await client.get("k1"), null); // reconnected to the new, empty server
    });

    test("quit() lets pipelined requests finish first", async () => {
      await using server = await target.startMemcached();
      await using client = makeClient(server.spec);
      await client.set("k", "v", { noreply: false });
      const gets = Array.from({ length: 200 }, () => client.get("k"));
      await client.quit();
      assert.deepEqual(await Promise.all(gets), Array(200).fill("v"));
      assert.equal(await client.get("k"), "v");
    });

    test("unix socket connections", async () => {
      await using server = await target.startMemcached({ unix: true });
      assert.match(server.spec, /^unix:\//);
      await using client = makeClient(server.spec);
      await client.set("k", "over a unix socket");
      assert.equal(await client.get("k"), "over a unix socket");
      assert.deepEqual(await client.getMany(["k"]), new Map([["k", "over a unix socket"]]));
    });

    test("TLS against memcached -Z with a self-signed certificate", async () => {
      await using server = await target.startMemcached({ tls: true });
      await using client = makeClient(server.spec, { tls: { caCerts: [server.cert!] } });
      await client.set("k", "secret", { noreply: false });
      assert.equal(await client.get("k"), "secret");
      const big = new Uint8Array(300_000).fill(7);
      await client.set("big", big);
      assert.deepEqual(await client.get("big"), big);
      await using untrusting = makeClient(server.spec, { tls: true, timeout: 3000 });
      // A certificate that fails verification is a connect error that says why.
      await rejectsWith(untrusting.get("k"), MemcacheConnectionError, /certificate|cert|issuer/i);
    });
  });

  trustSuite(target);
}
