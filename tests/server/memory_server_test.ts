/**
 * MemoryServer (testing.ts): what the differential test cannot show against
 * a real memcached — the clock, eviction, the transport and TCP listener,
 * hostile input, closing — on every runtime.
 */
import assert from "node:assert/strict";
import { execFileSync, spawn } from "node:child_process";
import { describe, it } from "../_support/_harness.ts";
import { within } from "../suites/_suite.ts";
import {
  Client,
  HashClient,
  MemcacheConnectionError,
  MemcachedCache,
  MemcacheError,
  MemcacheServerError,
  PooledClient,
  RetryingClient,
  type Transport,
} from "../../mod.ts";
import { MemoryServer } from "../../testing.ts";
import { addressName, type TransportSocket } from "../../src/connection/transport.ts";
import { MemorySession } from "../../src/server/_session.ts";
import { MemoryStore } from "../../src/server/_store.ts";
import net from "node:net";
import process from "node:process";
import { harnessSeed, Rng, withSeed } from "../hostile/_hostile.ts";

const encoder = new TextEncoder();
const havePython = (() => {
  try {
    execFileSync("python3", ["--version"], { stdio: "ignore" });
    return true;
  } catch {
    return false;
  }
})();
const latin1 = (bytes: Uint8Array) => String.fromCharCode(...bytes);

/** A raw connection through the server's transport: write bytes, read until the reply ends with `end`. */
async function raw(server: MemoryServer) {
  let received = "";
  let closed = false;
  let wake: (() => void) | undefined;
  const socket: TransportSocket = await server.transport().connect({ host: "memory", port: 1 }, {}, {
    onData: (chunk) => {
      received += latin1(chunk);
      wake?.();
    },
    onClose: () => {
      closed = true;
      wake?.();
    },
  });
  return {
    get closed() {
      return closed;
    },
    /** Sends `text` and resolves with everything answered up to `end` (by default the MN of an mn it appends). */
    async send(text: string, end = "MN\r\n"): Promise<string> {
      received = "";
      socket.write(encoder.encode(end === "MN\r\n" ? text + "mn\r\n" : text));
      while (!received.endsWith(end) && !closed) await new Promise<void>((resolve) => (wake = resolve));
      return received;
    },
    /** Sends `text`; resolves once the server hung up. */
    async sendUntilClosed(text: string | Uint8Array): Promise<string> {
      received = "";
      socket.write(typeof text === "string" ? encoder.encode(text) : text);
      while (!closed) await new Promise<void>((resolve) => (wake = resolve));
      return received;
    },
    close: () => socket.close(),
  };
}

describe("MemoryServer: clients through transport()", () => {
  it("any client class reaches it under any server name; values, flags, cas and stats as memcached keeps them", async () => {
    await using server = new MemoryServer();
    await using client = new Client("whatever:1", { transport: server.transport() });
    await client.set("greeting", "hello", { noreply: false });
    assert.equal(await client.get("greeting"), "hello");
    await client.set("n", 41);
    assert.equal(await client.incr("n", 1), 42);
    const [value, cas] = await client.gets("greeting");
    assert.equal(value, "hello");
    assert.equal(await client.cas("greeting", "again", cas!), true);
    assert.equal(await client.cas("greeting", "stale", cas!), false);
    assert.deepEqual([...(await client.getMany(["greeting", "n", "missing"])).keys()], ["greeting", "n"]);
    await using other = new Client("another-name", { transport: server.transport() });
    assert.equal(await other.get("greeting"), "again"); // one server, whatever the name
    const stats = await client.stats();
    assert.equal(stats.curr_items, 2);
    assert.equal(stats.curr_connections, 2);
    assert.equal(stats.get_hits, 5);
    assert.equal(stats.get_misses, 1);
    assert.match(await client.version(), /^1\.6\.18/);
  });

  it("PooledClient, HashClient over two servers, RetryingClient and MemcachedCache take its transport too", async () => {
    await using a = new MemoryServer();
    await using b = new MemoryServer();
    const byName = new Map([["a:1", a], ["b:1", b]]);
    const transport: Transport = {
      name: "memory",
      connect: (address, options, handlers) =>
        byName.get(addressName(address))!.transport().connect(address, options, handlers),
    };
    await using pooled = new PooledClient("a:1", { transport });
    await Promise.all(Array.from({ length: 20 }, (_, i) => pooled.set(`p${i}`, i, { noreply: false })));
    assert.equal(await pooled.get("p7"), 7);
    await using hashed = new HashClient(["a:1", "b:1"], { transport });
    await hashed.setMany(Object.fromEntries(Array.from({ length: 50 }, (_, i) => [`h${i}`, i])), { noreply: false });
    assert.equal((await hashed.getMany(Array.from({ length: 50 }, (_, i) => `h${i}`))).size, 50);
    const counts = [a, b].map(async (server) => {
      await using direct = new Client("x", { transport: server.transport() });
      return (await direct.stats()).curr_items as number;
    });
    const [onA, onB] = await Promise.all(counts);
    assert.ok(onB > 0 && onA > 20, `items spread over both: ${onA}, ${onB}`); // a also holds the 20 p-keys
    await using retrying = new RetryingClient(new Client("b:1", { transport }));
    assert.equal(await retrying.set("r", "v"), true);
    assert.equal(await retrying.get("r"), "v");
    await using cache = new MemcachedCache(["a:1", "b:1"], { transport });
    assert.equal(await cache.set("c", "cached", 30), true);
    assert.equal(await cache.get("c"), "cached");
  });

  it("a 1 MiB item limit by default (itemSizeMax), SERVER_ERROR beyond, and the connection goes on", async () => {
    await using server = new MemoryServer({ itemSizeMax: 64 * 1024 });
    await using client = new Client("memory", { transport: server.transport() });
    await assert.rejects(
      client.set("big", new Uint8Array(70_000), { noreply: false }),
      (e: unknown) => e instanceof MemcacheServerError && /object too large for cache/.test((e as Error).message),
    );
    assert.equal(await client.set("fits", new Uint8Array(60_000), { noreply: false }), true);
    assert.equal(((await client.get("fits")) as Uint8Array).length, 60_000);
    assert.equal((await client.stats()).store_too_large, 1);
  });

  it("evicts least recently used items to stay within maxBytes", async () => {
    await using server = new MemoryServer({ maxBytes: 20_000 });
    await using client = new Client("memory", { transport: server.transport() });
    const value = "x".repeat(900); // ~980 bytes an item as memcached counts it
    await client.set("keep", value, { noreply: false });
    for (let i = 0; i < 60; i++) {
      await client.set(`k${i}`, value, { noreply: false });
      assert.equal(await client.get("keep"), value); // used all along: never the least recently used
    }
    const stats = await client.stats();
    assert.ok((stats.bytes as number) <= 20_000, `bytes ${stats.bytes}`);
    assert.ok((stats.evictions as number) >= 40, `evictions ${stats.evictions}`);
    assert.equal(await client.get("k0"), null); // the oldest went first
    assert.equal(await client.get("k59"), value);
    assert.equal(await client.get("keep"), value);
  });

  it("close() hangs up on its clients and refuses new connections", async () => {
    const server = new MemoryServer();
    const connection = await raw(server);
    assert.equal(await connection.send("set k 0 0 1\r\nv\r\n"), "STORED\r\nMN\r\n");
    await server.close();
    assert.equal(connection.closed, true);
    await using client = new Client("memory", { transport: server.transport(), timeout: 1000 });
    await assert.rejects(client.get("k"), MemcacheConnectionError);
    await server.close(); // idempotent
  });

  it("quit answers what came before it, then closes", async () => {
    await using server = new MemoryServer();
    const connection = await raw(server);
    assert.equal(
      await connection.sendUntilClosed("set k 0 0 1\r\nv\r\nget k\r\nquit\r\nget k\r\n"),
      "STORED\r\nVALUE k 0 1\r\nv\r\nEND\r\n",
    );
  });

  it("options are checked", () => {
    assert.throws(() => new MemoryServer({ maxBytes: 0 }), RangeError);
    assert.throws(() => new MemoryServer({ itemSizeMax: 10 }), RangeError);
    assert.throws(() => new MemoryServer({ maxBytes: 1.5 }), RangeError);
    assert.throws(() => new MemoryServer().advance(-1), RangeError);
    assert.throws(() => new MemoryServer().advance(Number.NaN), RangeError);
  });
});

describe("MemoryServer: the clock", () => {
  it("advance() expires relative and absolute TTLs, and touch/gat move them, without sleeping", async () => {
    await using server = new MemoryServer();
    await using client = new Client("memory", { transport: server.transport() });
    const now = Math.floor(Date.now() / 1000);
    await client.set("ten", 1, { expire: 10 });
    await client.set("hour", 2, { expire: 3600 });
    await client.set("absolute", 3, { expire: now + 100 * 24 * 3600 }); // a unix time: beyond 30 days
    await client.set("forever", 4);
    await client.set("touched", 5, { expire: 10 });
    assert.equal(await client.touch("touched", 100), true);
    server.advance(9);
    assert.equal(await client.get("ten"), 1);
    server.advance(1);
    assert.equal(await client.get("ten"), null); // TTL 10: gone at 10 s
    assert.equal(await client.gat("hour", 30), 2); // now expires 30 s from here
    server.advance(31);
    assert.equal(await client.get("hour"), null);
    assert.equal(await client.get("touched"), 5);
    server.advance(99 * 24 * 3600);
    assert.equal(await client.get("absolute"), 3);
    server.advance(24 * 3600);
    assert.equal(await client.get("absolute"), null);
    assert.equal(await client.get("forever"), 4);
  });

  it("flush_all with a delay takes effect when the clock gets there", async () => {
    await using server = new MemoryServer();
    await using client = new Client("memory", { transport: server.transport() });
    await client.set("k", "v");
    assert.equal(await client.flushAll(60, { noreply: false }), true);
    server.advance(30);
    assert.equal(await client.get("k"), "v");
    server.advance(30);
    assert.equal(await client.get("k"), null);
    await client.set("k", "after");
    server.advance(1);
    assert.equal(await client.get("k"), "after"); // only what was there before the flush time goes
  });

  it("incr on a value of whitespace only is refused as non-numeric (memcached's strtoull reads past the item)", async () => {
    await using server = new MemoryServer();
    const connection = await raw(server);
    assert.equal(
      await connection.send("set w 0 0 3\r\n \t \r\nincr w 1\r\n", "value\r\n"),
      "STORED\r\nCLIENT_ERROR cannot increment or decrement non-numeric value\r\n",
    );
    await connection.close();
  });

  it("a delayed flush_all does not bring back what an earlier flush removed (memcached's may, until it reclaims it)", async () => {
    await using server = new MemoryServer();
    const connection = await raw(server);
    assert.equal(
      await connection.send("set a 0 0 1\r\na\r\nflush_all\r\nflush_all 100\r\nget a\r\n", "END\r\n"),
      "STORED\r\nOK\r\nOK\r\nEND\r\n",
    );
    server.advance(1);
    assert.equal(
      await connection.send("set b 0 0 1\r\nb\r\nget a b\r\n", "END\r\n"),
      "STORED\r\nVALUE b 0 1\r\nb\r\nEND\r\n",
    );
    server.advance(100); // the delayed flush takes b too
    assert.equal(await connection.send("get a b\r\n", "END\r\n"), "END\r\n");
    await connection.close();
  });

  it("meta leases: N vivifies and wins once (W, then Z), R wins near expiry, md I makes it stale (X) for one winner", async () => {
    await using server = new MemoryServer();
    const c = await raw(server);
    assert.equal(await c.send("mg k v c N30\r\n"), "VA 0 c1 W\r\n\r\nMN\r\n"); // miss: an empty item, this caller wins
    assert.equal(await c.send("mg k v N30\r\n"), "VA 0 Z\r\n\r\nMN\r\n"); // others see a winner exists
    assert.equal(await c.send("ms k 3 T100 C1\r\nnew\r\n"), "HD\r\nMN\r\n");
    assert.equal(await c.send("mg k v t R30\r\n"), "VA 3 t100\r\nnew\r\nMN\r\n"); // 100 s left: no recache yet
    server.advance(75);
    assert.equal(await c.send("mg k v t R30\r\n"), "VA 3 t25 W\r\nnew\r\nMN\r\n"); // 25 s left < 30: one recache winner
    assert.equal(await c.send("mg k v t R30\r\n"), "VA 3 t25 Z\r\nnew\r\nMN\r\n");
    assert.equal(await c.send("md k I T30 q\r\n"), "MN\r\n"); // stale for 30 s
    assert.equal(await c.send("mg k v c\r\n"), "VA 3 c3 X W\r\nnew\r\nMN\r\n");
    assert.equal(await c.send("mg k v\r\n"), "VA 3 Z X\r\nnew\r\nMN\r\n");
    server.advance(30);
    assert.equal(await c.send("mg k v\r\n"), "EN\r\nMN\r\n");
    await c.close();
  });

  it("getOrSet's recacheWithin: the refresh near expiry runs at once when the clock is moved", async () => {
    await using server = new MemoryServer();
    await using client = new Client("memory", { transport: server.transport() });
    let loads = 0;
    const loader = () => Promise.resolve(`v${++loads}`);
    const options = { ttl: 100, recacheWithin: 30 };
    assert.equal(await client.getOrSet("page", loader, options), "v1");
    assert.equal(await client.getOrSet("page", loader, options), "v1");
    assert.equal(loads, 1);
    server.advance(80); // 20 s left: within 30
    assert.equal(await client.getOrSet("page", loader, options), "v1"); // the current value; one refresh starts
    await within(
      (async () => {
        while ((await client.get("page")) !== "v2") await new Promise((resolve) => setTimeout(resolve, 1));
      })(),
      5000,
      "the background refresh",
    );
    assert.equal(loads, 2);
    server.advance(90);
    assert.equal(await client.getOrSet("page", loader, options), "v2"); // the refreshed value has a new TTL
  });
});

/** mulberry32. */
function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = Math.imul(a ^ (a >>> 15), a | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

describe("MemoryServer: bad input", () => {
  it("is answered as memcached answers it, and other clients carry on", async () => {
    await using server = new MemoryServer();
    const bad = await raw(server);
    assert.equal(
      await bad.send("bogus\r\n\r\nset k\r\nget\r\nincr k x\r\nset k 0 0 1\r\nxy\r\nmg k zz\r\n"),
      "ERROR\r\nERROR\r\nERROR\r\nERROR\r\nCLIENT_ERROR invalid numeric delta argument\r\n" +
        "CLIENT_ERROR bad data chunk\r\nERROR\r\nCLIENT_ERROR invalid flag\r\nMN\r\n",
    );
    assert.equal(await bad.sendUntilClosed("GET / HTTP/1.1\r\n"), ""); // memcached hangs up on HTTP
    const long = await raw(server);
    assert.equal(await long.sendUntilClosed("x".repeat(3000)), ""); // and on 2 KiB without a newline
    const get = await raw(server);
    assert.equal(await get.send("get " + "k ".repeat(2000) + "\r\n", "END\r\n"), "END\r\n"); // but for a get
    await get.close();
  });

  it("random bytes never throw in the host; the server keeps serving", async () => {
    await using server = new MemoryServer({ maxBytes: 1 << 20 });
    await using client = new Client("memory", { transport: server.transport() });
    const random = prng(17);
    const words = [
      "get ",
      "set ",
      "ms ",
      "mg ",
      "ma ",
      "md ",
      "incr ",
      "cas ",
      " 0",
      " 5",
      " noreply",
      " v",
      " q",
      " N5",
      " T-1",
      " b",
      "\r\n",
      "\n",
      " ",
      "\x00",
      "99999999999999999999",
    ];
    let connection = await raw(server);
    for (let round = 0; round < 300; round++) {
      const bytes: number[] = [];
      const n = 1 + Math.floor(random() * 200);
      for (let i = 0; i < n; i++) {
        if (random() < 0.5) bytes.push(Math.floor(random() * 256));
        else for (const c of words[Math.floor(random() * words.length)]) bytes.push(c.charCodeAt(0));
      }
      const reply = await within(connection.send(String.fromCharCode(...bytes) + "\r\n", "\r\n"), 5000, "a reply")
        .catch(() => "(still reading a data block)");
      assert.equal(typeof reply, "string");
      if (connection.closed || reply.startsWith("(")) {
        await connection.close();
        connection = await raw(server);
      }
      await client.set("alive", round, { noreply: false });
      assert.equal(await client.get("alive"), round);
    }
    await connection.close();
  });
});

describe("MemoryServer: listen()", () => {
  it("serves TCP on 127.0.0.1 to this process and to another (python3, raw sockets)", async () => {
    await using server = new MemoryServer();
    const address = await server.listen();
    assert.equal(address.host, "127.0.0.1");
    assert.deepEqual(await server.listen(), address); // again: the same
    await using tcp = new Client(`127.0.0.1:${address.port}`);
    await tcp.set("from_ts", "hello python", { noreply: false });
    const script = [
      "import socket, sys",
      `s = socket.create_connection(("127.0.0.1", ${address.port}))`,
      "def until(end):",
      "    data = b''",
      "    while not data.endswith(end):",
      "        chunk = s.recv(4096)",
      "        if not chunk: break",
      "        data += chunk",
      "    return data",
      "s.sendall(b'get from_ts\\r\\n')",
      "sys.stdout.write(until(b'END\\r\\n').decode())",
      "s.sendall(b'set from_py 0 0 12\\r\\nhello from 3\\r\\n')",
      "sys.stdout.write(until(b'\\r\\n').decode())",
      "s.sendall(b'quit\\r\\n')",
      "sys.stdout.write(repr(s.recv(10)))",
    ].join("\n");
    const child = spawn("python3", ["-c", script], { stdio: ["ignore", "pipe", "pipe"] });
    let out = "";
    let err = "";
    child.stdout!.on("data", (d) => (out += d));
    child.stderr!.on("data", (d) => (err += d));
    const code = await new Promise<number | null>((resolve) => child.on("close", resolve));
    assert.equal(code, 0, err);
    assert.equal(out, "VALUE from_ts 16 12\r\nhello python\r\nEND\r\nSTORED\r\nb''"); // quit: closed
    await using local = new Client("memory", { transport: server.transport() });
    const fromPython = await local.get("from_py"); // the same items over both ways in; flags 0: bytes
    assert.equal(new TextDecoder().decode(fromPython as Uint8Array), "hello from 3");
    assert.equal((await tcp.stats("settings")).tcpport, address.port);
  }, { skip: havePython ? false : "python3 is not installed" });

  it("close() stops the listener", async () => {
    const server = new MemoryServer();
    const { port } = await server.listen(0);
    await using client = new Client(`127.0.0.1:${port}`, { timeout: 2000 });
    assert.equal(await client.set("k", "v", { noreply: false }), true);
    await server.close();
    // The open connection is gone (the client may learn it only when it writes), and no new one opens.
    await assert.rejects(client.get("k"), MemcacheError);
    await assert.rejects(client.get("k"), MemcacheConnectionError);
  });
});

/** A raw TCP connection to a listening MemoryServer. */
async function tcp(port: number) {
  const socket = net.connect(port, "127.0.0.1");
  await new Promise<void>((resolve, reject) => {
    socket.once("connect", resolve);
    socket.once("error", reject);
  });
  socket.on("error", () => {});
  let received = "";
  let wake: (() => void) | undefined;
  socket.on("data", (chunk: Uint8Array) => {
    received += latin1(chunk);
    wake?.();
  });
  const gone = new Promise<void>((resolve) =>
    socket.on("close", () => {
      wake?.();
      resolve();
    })
  );
  return {
    socket,
    get closed() {
      return socket.destroyed;
    },
    get received() {
      return received;
    },
    write: (data: string | Uint8Array) => socket.write(typeof data === "string" ? encoder.encode(data) : data),
    /** What came back once it ends with `end` (or the server hung up), consumed. */
    async read(end: string): Promise<string> {
      while (!received.endsWith(end) && !socket.destroyed) await new Promise<void>((resolve) => (wake = resolve));
      const text = received;
      received = "";
      return text;
    },
    close: async () => {
      socket.destroy();
      await gone;
    },
  };
}

const tick = () => new Promise<void>((resolve) => setTimeout(resolve, 0));

describe("MemoryServer: input as memcached reads it", () => {
  it("a refused set or ms is answered once its block has been swallowed, not before", async () => {
    await using server = new MemoryServer();
    const connection = await raw(server);
    for (const command of ["set a 0 0 2000000\r\n", "ms a 2000000 T0\r\n", "set a 0 0 2000000 noreply\r\n"]) {
      const reply = connection.send(command + "v".repeat(1_000_000), "never");
      for (let i = 0; i < 5; i++) await tick();
      assert.equal(await Promise.race([reply, tick().then(() => "(nothing yet)")]), "(nothing yet)", command);
      assert.equal(
        await connection.send("v".repeat(1_000_000) + "\r\nversion\r\n", "VERSION 1.6.18\r\n"),
        // under noreply the refusal is silent, as in memcached
        (command.includes("noreply") ? "" : "SERVER_ERROR object too large for cache\r\n") + "VERSION 1.6.18\r\n",
      );
    }
    await connection.close();
  });

  it("a block longer than memcached's 16 KiB buffer: the answers before it are written out, an error after drops none", async () => {
    await using server = new MemoryServer();
    const connection = await raw(server);
    const tooLong = `get ${"k".repeat(251)}\r\n`;
    const bad = "CLIENT_ERROR bad command line format\r\n";
    for (const [n, expected] of [[16000, bad], [17000, "STORED\r\n" + bad], [20000, "STORED\r\n" + bad]] as const) {
      assert.equal(await connection.send(`set a 0 0 ${n}\r\n${"v".repeat(n)}\r\n${tooLong}`, bad), expected, `${n}`);
    }
    // The same bytes split anywhere answer the same: the buffer decides, not the chunks.
    const text = encoder.encode(`version\r\nset a 0 0 20000\r\n${"v".repeat(20000)}\r\n${tooLong}`);
    for (const size of [1, 7, 4096, 16384, 65536]) {
      const session = new MemorySession(new MemoryStore());
      for (let at = 0; at < text.length; at += size) session.feed(text.subarray(at, at + size));
      const reply = session.take(false).map(latin1).join("");
      assert.equal(reply, "VERSION 1.6.18\r\nSTORED\r\n" + bad, `chunks of ${size}`);
    }
    await connection.close();
  });

  it("an unfinished line is scanned and copied once, however many chunks it comes in", () => {
    const session = new MemorySession(new MemoryStore());
    const line = encoder.encode("get " + "k".repeat(4_000_000 - 6) + "\r\n");
    const { indexOf, set } = Uint8Array.prototype;
    let scanned = 0;
    let copied = 0;
    // Counts the work of the whole feed loop: every search and every copy of bytes.
    Uint8Array.prototype.indexOf = function (this: Uint8Array, value: number, from = 0) {
      scanned += this.length - from;
      return indexOf.call(this, value, from);
    };
    Uint8Array.prototype.set = function (this: Uint8Array, source: ArrayLike<number>, offset?: number) {
      copied += source.length;
      return set.call(this, source, offset);
    } as typeof set;
    try {
      for (let at = 0; at < line.length; at += 4096) session.feed(line.subarray(at, at + 4096));
    } finally {
      Uint8Array.prototype.indexOf = indexOf;
      Uint8Array.prototype.set = set;
    }
    assert.ok(scanned <= 3 * line.length, `scanned ${scanned} bytes for a line of ${line.length}`);
    assert.ok(copied <= 4 * line.length, `copied ${copied} bytes for a line of ${line.length}`);
    assert.equal(session.take(false).map(latin1).join(""), "CLIENT_ERROR bad command line format\r\n");
  });

  it("blocks being received count against a budget of maxBytes: past it, out of memory (once the block is in)", () => {
    const store = new MemoryStore({ maxBytes: 8 * 1024 * 1024 });
    const sessions = Array.from({ length: 20 }, () => new MemorySession(store));
    sessions.forEach((session, i) => session.feed(encoder.encode(`set k${i} 0 0 1000000\r\n${"v".repeat(1000)}`)));
    assert.ok(store.pendingBytes <= 8 * 1024 * 1024, `${store.pendingBytes} bytes held`);
    for (const session of sessions) assert.deepEqual(session.take(false), []); // all still waiting for their blocks
    const rest = encoder.encode("v".repeat(999_000) + "\r\n");
    const replies = sessions.map((session) => (session.feed(rest), session.take(false).map(latin1).join("")));
    // 1,000,062 bytes each (memcached's item size): 8 fit in 8 MiB.
    assert.equal(replies.filter((r) => r === "STORED\r\n").length, 8);
    assert.equal(replies.filter((r) => r === "SERVER_ERROR out of memory storing object\r\n").length, 12);
    assert.equal(store.pendingBytes, 0);
    // A connection that goes away with its block half read gives its share back.
    const quitter = new MemorySession(store);
    quitter.feed(encoder.encode("set q 0 0 1000000\r\nvvv"));
    assert.ok(store.pendingBytes > 1_000_000);
    quitter.dispose();
    assert.equal(store.pendingBytes, 0);
  });

  it("maxConnections: one more is answered as memcached answers it past -c, and closed", async () => {
    await using server = new MemoryServer({ maxConnections: 2 });
    const { port } = await server.listen();
    const first = await tcp(port);
    const second = await raw(server); // transport() connections count too
    const third = await tcp(port);
    assert.equal(await within(third.read("\r\n"), 5000, "the refusal"), "ERROR Too many open connections\r\n");
    await within(third.read("never"), 5000, "the hang-up");
    assert.ok(third.closed);
    let refused = "";
    let hungUp = false;
    await server.transport().connect({ host: "memory", port: 1 }, {}, {
      onData: (chunk) => (refused += latin1(chunk)),
      onClose: () => (hungUp = true),
    });
    await tick();
    assert.equal(refused, "ERROR Too many open connections\r\n");
    assert.ok(hungUp);
    await second.close();
    const again = await tcp(port); // room again
    again.write("stats\r\n");
    const stats = await again.read("END\r\n");
    assert.match(stats, /STAT max_connections 2\r\n/);
    assert.match(stats, /STAT rejected_connections 2\r\n/);
    assert.throws(() => new MemoryServer({ maxConnections: 0 }), RangeError);
    await Promise.all([first.close(), third.close(), again.close()]);
  });
});

describe("MemoryServer: listen() under hostile clients", () => {
  it("long lines, dribbled bytes, huge lengths, stalled blocks, fuzz and too many connections: another connection is answered within its timeout, memory stays bounded", async () => {
    const seed = harnessSeed(20261207);
    await withSeed(seed, async () => {
      const rng = new Rng(seed);
      await using server = new MemoryServer({ maxBytes: 8 * 1024 * 1024, maxConnections: 170 });
      const { port } = await server.listen();
      const held = () => process.memoryUsage().heapUsed + process.memoryUsage().external;
      const open: Awaited<ReturnType<typeof tcp>>[] = [];
      const connect = async () => {
        const connection = await tcp(port);
        open.push(connection);
        return connection;
      };
      const probe = await connect();
      const before = held();
      let attacking = true;
      let probes = 0;
      const probing = (async () => {
        while (attacking) {
          probe.write(`set p 0 0 ${String(probes).length}\r\n${probes}\r\nget p\r\n`);
          const reply = await within(probe.read("END\r\n"), 2000, `probe ${probes}`);
          assert.equal(reply, `STORED\r\nVALUE p 0 ${String(probes).length}\r\n${probes}\r\nEND\r\n`);
          probes++;
          await tick();
        }
      })();
      const attacks = [
        async () => { // a 4 MB get line in 4 KB writes, then a 20 KB line that is not a get
          const attacker = await connect();
          const line = encoder.encode("get " + "k".repeat(4_000_000) + "\r\n");
          for (let at = 0; at < line.length; at += 4096) {
            attacker.write(line.subarray(at, at + 4096));
            await new Promise<void>((resolve) => setImmediate(resolve));
          }
          assert.equal(
            await within(attacker.read("\r\n"), 30_000, "the long line's answer"),
            "CLIENT_ERROR bad command line format\r\n",
          );
          attacker.write("x".repeat(20_000));
          await within(attacker.read("never"), 5000, "the hang-up on a long line");
        },
        async () => { // commands one byte at a time
          const attacker = await connect();
          const text = "set d 0 0 5\r\nhello\r\nmg d v\r\nms e 2 T0\r\nhi\r\nget d e\r\n";
          for (const c of text) {
            attacker.write(c);
            await tick();
          }
          assert.equal(
            await within(attacker.read("END\r\n"), 5000, "the dribbled answers"),
            "STORED\r\nVA 5\r\nhello\r\nHD\r\nVALUE d 0 5\r\nhello\r\nVALUE e 0 2\r\nhi\r\nEND\r\n",
          );
        },
        async () => { // announced lengths far past any limit: refused, and the bytes that follow are swallowed
          for (
            const command of [
              "set h 0 0 2147483645",
              "ms h 2147483000 T0",
              "set h 0 0 1000000000",
              "append h 0 0 9999999",
            ]
          ) {
            const attacker = await connect();
            attacker.write(command + "\r\n" + "z".repeat(rng.int(100_000)));
          }
        },
        async () => { // 180 connections, each with half of a 1 MB block: some refused, the rest stall
          for (let i = 0; i < 180; i++) {
            const attacker = await connect();
            attacker.write(`set s${i} 0 0 1000000\r\n` + "v".repeat(2000));
          }
        },
        async () => { // random bytes from protocol words
          const words = [
            "get ",
            "set ",
            "ms ",
            "mg ",
            "gets ",
            " 0",
            " 99999999",
            " noreply",
            " v",
            "\r\n",
            "\n",
            " ",
            "\x00",
          ];
          let attacker = await connect();
          for (let round = 0; round < 100; round++) {
            let text = "";
            for (let n = rng.int(300); n > 0; n--) {
              text += rng.next() < 0.5 ? String.fromCharCode(rng.int(256)) : words[rng.int(words.length)];
            }
            attacker.write(Uint8Array.from(text, (c) => c.charCodeAt(0)));
            await tick();
            if (attacker.closed) attacker = await connect();
          }
        },
      ];
      try {
        await Promise.all(attacks.map((attack) => attack()));
        await tick();
        const grown = held() - before;
        // 180 half-sent 1 MB blocks would be 180 MB; the budget holds 8 MiB of them.
        assert.ok(grown < 64 * 1024 * 1024, `memory grew by ${grown} bytes`);
        attacking = false;
        await probing;
        assert.ok(probes > 0);
        const refused = open.filter((c) => c.received === "ERROR Too many open connections\r\n");
        assert.ok(refused.length > 0, "connections past maxConnections are refused");
      } finally {
        attacking = false;
        await probing.catch(() => {});
        await Promise.all(open.map((connection) => connection.close()));
      }
    });
  });
});
