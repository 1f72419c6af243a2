/**
 * The `observer` option (issue 19): command events with hits, misses and
 * bytes, connection events, HashClient servers leaving and rejoining the
 * ring, a throwing observer, and the same events on diagnostics_channel.
 */
import assert from "node:assert/strict";
import dc from "node:diagnostics_channel";
import { describe, it } from "../_support/_harness.ts";
import {
  Client,
  type CommandEvent,
  type ConnectionEvent,
  HashClient,
  MemcachedCache,
  MemcacheTimeoutError,
  MemcacheUnexpectedCloseError,
  type Observer,
  OBSERVER_CHANNELS,
  PooledClient,
  RetryingClient,
  type ServerEvent,
} from "../../mod.ts";
import { freePort, sleep, startFakeServer, startMemcached } from "../_support/_memcached.ts";
import { setChannelLoader } from "../../src/clients/_observe.ts";

/** An observer that records everything it is told; `onCommandStart` returns a handle checked at the end. */
function recorder() {
  const commands: CommandEvent[] = [];
  const connections: ConnectionEvent[] = [];
  const servers: ServerEvent[] = [];
  const handles: unknown[] = [];
  let n = 0;
  const observer: Observer<number> = {
    onCommandStart: (event) => {
      assert.equal(typeof event.command, "string");
      return ++n;
    },
    onCommand: (event, started) => {
      commands.push({ ...event });
      handles.push(started);
    },
    onConnection: (event) => void connections.push({ ...event }),
    onServer: (event) => void servers.push({ ...event }),
  };
  return { observer, commands, connections, servers, handles };
}

describe("observer: commands", () => {
  it("get, getMany and set report name, server, keys, hits, misses, bytes and duration", async () => {
    await using server = await startMemcached();
    const { observer, commands, handles } = recorder();
    await using client = new Client(server.spec, { observer, defaultNoreply: false });
    assert.equal(await client.set("a", "x"), true);
    assert.equal(await client.get("a"), "x");
    assert.equal(await client.get("nope", "fallback"), "fallback");
    const many = await client.getMany(new Set(["a", "b", "c"]));
    assert.deepEqual([...many], [["a", "x"]]);
    assert.deepEqual(await client.gets("nope", 1, "cas?"), [1, "cas?"]);
    assert.deepEqual(commands.map((e) => [e.command, e.keys, e.hits, e.misses]), [
      ["set", 1, 0, 0],
      ["get", 1, 1, 0],
      ["get", 1, 0, 1],
      ["getMany", 3, 1, 2],
      ["gets", 1, 0, 1],
    ]);
    for (const e of commands) {
      assert.equal(e.server, server.spec);
      assert.equal(e.error, undefined);
      assert.ok(e.durationMs >= 0);
    }
    // The bytes on the wire, with the flags the serde chose.
    const [, flags] = client.serde.serialize("a", "x") as [unknown, number];
    assert.equal(commands[0].bytesWritten, `set a ${flags} 0 1\r\nx\r\n`.length);
    assert.equal(commands[0].bytesRead, "STORED\r\n".length);
    assert.equal(commands[1].bytesWritten, "get a\r\n".length);
    assert.equal(commands[1].bytesRead, `VALUE a ${flags} 1\r\nx\r\nEND\r\n`.length);
    assert.equal(commands[2].bytesRead, 5); // END\r\n
    assert.deepEqual(handles, [1, 2, 3, 4, 5]);
  });

  it("calls pipelined together: each counts its own request bytes, and the reply bytes add up exactly", async () => {
    await using server = await startMemcached();
    const { observer, commands } = recorder();
    await using client = new Client(server.spec, { observer });
    await client.set("p", "v", { noreply: false });
    commands.length = 0;
    const keys = ["p", "q", "p", "r", "p"];
    await Promise.all(keys.map((k) => client.get(k)));
    const [, flags] = client.serde.serialize("p", "v") as [unknown, number];
    const hit = `VALUE p ${flags} 1\r\nv\r\nEND\r\n`.length;
    assert.deepEqual(commands.map((e) => e.bytesWritten), keys.map((k) => `get ${k}\r\n`.length));
    assert.equal(commands.reduce((n, e) => n + e.bytesRead, 0), 3 * hit + 2 * "END\r\n".length);
  });

  it("a stored value equal to the default is a hit; a miss returns the caller's default", async () => {
    await using server = await startMemcached();
    const { observer, commands } = recorder();
    await using client = new Client(server.spec, { observer });
    await client.set("n", null, { noreply: false });
    assert.equal(await client.get("n"), null);
    assert.equal(await client.get("m"), null);
    assert.equal(await client.gat("m", 10, 7), 7);
    assert.deepEqual(commands.slice(1).map((e) => [e.command, e.hits, e.misses]), [
      ["get", 1, 0],
      ["get", 0, 1],
      ["gat", 0, 1],
    ]);
  });

  it("one event per call: deleteMany's deletes and an alias's command are not reported twice", async () => {
    await using server = await startMemcached();
    const { observer, commands } = recorder();
    await using client = new Client(server.spec, { observer });
    await client.setMulti({ a: 1, b: 2 }, { noreply: false });
    await client.deleteMany(["a", "b", "c"], { noreply: false });
    await client.getMulti(["a"]);
    assert.deepEqual(commands.map((e) => [e.command, e.keys]), [["setMany", 2], ["deleteMany", 3], ["getMany", 1]]);
  });

  it("getOrSet is one event: the mg and ms it sends, after the loader and in a background refresh too, are not", async () => {
    await using server = await startMemcached();
    await using plain = new Client(server.spec);
    let loads = 0;
    const loader = async () => {
      await sleep(5);
      return `v${++loads}`;
    };
    /** Waits for the background refresh to store `value`. */
    const stored = async (key: string, value: string) => {
      for (let i = 0; i < 200 && (await plain.get(key)) !== value; i++) await sleep(10);
      assert.equal(await plain.get(key), value);
    };
    const { observer, commands } = recorder();
    await using client = new Client(server.spec, { observer });
    const retried = recorder();
    await using inner = new Client(server.spec);
    const retrying = new RetryingClient(inner, { observer: retried.observer });
    for (const [c, r, key] of [[client, commands, "g"], [retrying, retried.commands, "r"]] as const) {
      assert.equal(await c.getOrSet(key, loader, { ttl: 100 }), `v${loads}`); // a miss: mg, the loader, ms
      assert.equal(await c.getOrSet(key, loader, { ttl: 100 }), `v${loads}`); // a hit
      assert.equal(await c.invalidate(key), true);
      const stale = `v${loads}`;
      assert.equal(await c.getOrSet(key, loader, { ttl: 100 }), stale); // stale: refreshed in the background
      await stored(key, `v${loads + 1}`);
      assert.deepEqual(r.map((e) => [e.command, e.keys, e.error]), [
        ["getOrSet", 1, undefined],
        ["getOrSet", 1, undefined],
        ["invalidate", 1, undefined],
        ["getOrSet", 1, undefined],
      ]);
    }
    assert.equal(loads, 4);
    // The first mg is written inside the call: its bytes count to it.
    assert.ok(commands[0].bytesWritten >= "mg g".length, `bytesWritten ${commands[0].bytesWritten}`);
  });

  it("a timeout is reported with its error, and the connection's failure", async () => {
    await using fake = await startFakeServer(); // accepts, never answers
    const { observer, commands, connections } = recorder();
    const client = new Client(fake.spec, { observer, timeout: 100 });
    await assert.rejects(client.get("k"), MemcacheTimeoutError);
    await client.close();
    assert.equal(commands.length, 1);
    assert.equal(commands[0].command, "get");
    assert.ok(commands[0].error instanceof MemcacheTimeoutError);
    assert.equal(commands[0].hits + commands[0].misses, 0);
    assert.equal(commands[0].bytesWritten, 7);
    assert.deepEqual(connections.map((e) => e.type), ["open", "error", "close"]);
    assert.ok(connections[1].error instanceof MemcacheTimeoutError);
    assert.equal(connections[2].error, connections[1].error);
    assert.ok(connections.every((e) => e.server === fake.spec));
  });

  it("bad input is reported as the call's error, with nothing written", async () => {
    const { observer, commands } = recorder();
    const client = new Client("127.0.0.1:1", { observer });
    await assert.rejects(client.get("bad key"));
    assert.equal(commands.length, 1);
    assert.equal(commands[0].bytesWritten, 0);
    assert.ok(commands[0].error instanceof Error);
  });
});

describe("observer: connections", () => {
  it("open and close, without an error, for a connection the client closes", async () => {
    await using server = await startMemcached();
    const { observer, connections } = recorder();
    const client = new Client(server.spec, { observer });
    await client.version();
    await client.close();
    await client.version();
    await client.quit();
    assert.deepEqual(connections, [
      { type: "open", server: server.spec },
      { type: "close", server: server.spec },
      { type: "open", server: server.spec },
      { type: "close", server: server.spec },
    ]);
  });

  it("a server hanging up mid-call is an error and a close, with the call's error", async () => {
    await using fake = await startFakeServer((socket) => socket.destroy());
    const { observer, connections, commands } = recorder();
    const client = new Client(fake.spec, { observer });
    await assert.rejects(client.get("k"), MemcacheUnexpectedCloseError);
    await client.close();
    assert.deepEqual(connections.map((e) => e.type), ["open", "error", "close"]);
    assert.ok(connections[1].error instanceof MemcacheUnexpectedCloseError);
    assert.ok(commands[0].error instanceof MemcacheUnexpectedCloseError);
  });

  it("a refused connect is one error event, with its cause", async () => {
    const port = await freePort(); // nothing listens there
    const { observer, connections, commands } = recorder();
    const client = new Client(`127.0.0.1:${port}`, { observer });
    await assert.rejects(client.get("k"));
    await client.close();
    assert.deepEqual(connections.map((e) => e.type), ["error"]);
    assert.ok(connections[0].error instanceof Error);
    assert.ok(commands[0].error instanceof Error);
  });
});

describe("observer: every class", () => {
  it("PooledClient and HashClient pass it to the clients they make; RetryingClient reports its own calls", async () => {
    await using server = await startMemcached();
    const pooled = recorder();
    await using pool = new PooledClient(server.spec, { observer: pooled.observer });
    await pool.set("k", "v", { noreply: false });
    assert.equal(await pool.get("k"), "v");
    assert.deepEqual(pooled.commands.map((e) => [e.command, e.server, e.hits]), [
      ["set", server.spec, 0],
      ["get", server.spec, 1],
    ]);
    assert.deepEqual(pooled.connections.map((e) => e.type), ["open"]);

    const hashed = recorder();
    await using hash = new HashClient([server.spec], { observer: hashed.observer });
    assert.deepEqual([...(await hash.getMany(["k", "x"]))], [["k", "v"]]);
    assert.deepEqual(hashed.commands.map((e) => [e.command, e.keys, e.hits, e.misses]), [["getMany", 2, 1, 1]]);

    const retried = recorder();
    await using inner = new Client(server.spec);
    const retrying = new RetryingClient(inner, { observer: retried.observer });
    assert.equal(await retrying.get("k"), "v");
    assert.equal(await retrying.get("x", 0), 0);
    assert.deepEqual(retried.commands.map((e) => [e.command, e.server, e.hits, e.misses, e.bytesWritten]), [
      ["get", server.spec, 1, 0, 0],
      ["get", server.spec, 0, 1, 0],
    ]);
  });

  it("MemcachedCache passes it to its client", async () => {
    await using server = await startMemcached();
    const { observer, commands } = recorder();
    const cache = new MemcachedCache([server.spec], { observer });
    try {
      assert.equal(await cache.set("k", "v"), true);
      assert.equal(await cache.get("k"), "v");
      assert.equal(await cache.get("missing"), null);
      const gets = commands.filter((e) => e.command === "get");
      assert.deepEqual(gets.map((e) => [e.hits, e.misses]), [[1, 0], [0, 1]]);
    } finally {
      await cache.client.close();
    }
  });

  it("HashClient reports a dead server leaving the ring and rejoining it after deadTimeout", async () => {
    await using a = await startMemcached();
    await using b = await startMemcached();
    const { observer, servers, connections } = recorder();
    await using client = new HashClient([a.spec, b.spec], {
      observer,
      retryAttempts: 0,
      retryTimeout: 0,
      deadTimeout: 300,
      timeout: 1000,
    });
    const keys = Array.from({ length: 100 }, (_, i) => `k${i}`);
    // A key on b: its call fails once b is stopped, and b leaves the ring at once (retryAttempts 0).
    const onB = keys.find((k) => client.serverFor(k) === b.spec)!;
    assert.ok(onB, "some key is on b");
    await client.set(onB, 1, { noreply: false });
    await b.stop();
    await assert.rejects(client.get(onB));
    assert.deepEqual(servers.map((e) => [e.type, e.server]), [["leave", b.spec]]);
    assert.ok(servers[0].error instanceof Error);
    assert.ok(connections.some((e) => e.type === "error" && e.server === b.spec));
    await sleep(350);
    assert.equal(client.serverFor(onB), b.spec); // placing a key revives b
    assert.deepEqual(servers.map((e) => [e.type, e.server]), [["leave", b.spec], ["rejoin", b.spec]]);
  });
});

describe("observer: safety", () => {
  it("a throwing observer never breaks a call; its error is reported once", async () => {
    await using server = await startMemcached();
    const logged: unknown[][] = [];
    const original = console.error;
    console.error = (...args: unknown[]) => void logged.push(args);
    try {
      const observer: Observer = {
        onCommandStart: () => {
          throw new Error("start broke");
        },
        onCommand: () => {
          throw new Error("end broke");
        },
        onConnection: () => {
          throw new Error("connection broke");
        },
      };
      await using client = new Client(server.spec, { observer });
      await client.set("k", "v", { noreply: false });
      assert.equal(await client.get("k"), "v");
      assert.deepEqual([...(await client.getMany(["k"]))], [["k", "v"]]);
    } finally {
      console.error = original;
    }
    assert.equal(logged.length, 1);
    assert.match(String(logged[0][1]), /start broke/);
  });

  it("a callback getter that throws is a throwing callback: the call goes on, the error is reported once", async () => {
    await using server = await startMemcached();
    const logged: unknown[][] = [];
    const original = console.error;
    console.error = (...args: unknown[]) => void logged.push(args);
    const seen: string[] = [];
    try {
      const starting = {
        get onCommandStart(): never {
          throw new Error("start getter broke");
        },
        onCommand: (event: CommandEvent) => void seen.push(event.command),
      };
      await using a = new Client(server.spec, { observer: starting });
      assert.equal(await a.set("k", "v", { noreply: false }), true);
      assert.equal(await a.get("k"), "v");
      const ending = {
        get onCommand(): never {
          throw new Error("end getter broke");
        },
      };
      await using b = new Client(server.spec, { observer: ending });
      assert.equal(await b.get("k"), "v");
      assert.deepEqual([...(await b.getMany(["k"]))], [["k", "v"]]);
      const connecting = {
        get onConnection(): never {
          throw new Error("connection getter broke");
        },
      };
      await using c = new Client(server.spec, { observer: connecting });
      assert.equal(await c.get("k"), "v");
    } finally {
      console.error = original;
    }
    assert.deepEqual(seen, ["set", "get"]);
    assert.deepEqual(logged.map((args) => String(args[1])), [
      "Error: start getter broke",
      "Error: end getter broke",
      "Error: connection getter broke",
    ]);
  });

  it("calls made inside a callback are not reported to it: an onCommandStart that reads the cache does not recurse", async () => {
    await using server = await startMemcached();
    const { observer, commands } = recorder();
    const inner: Promise<unknown>[] = [];
    let starts = 0;
    const reading: Observer<number> = {
      onCommandStart(event) {
        starts++;
        // A cache read from inside the callback: not observed, so it cannot start itself again.
        inner.push(client.get("config"));
        return observer.onCommandStart!(event);
      },
      onCommand(event, started) {
        inner.push(client.set("last", event.command, { noreply: false }));
        observer.onCommand!(event, started);
      },
      onConnection: observer.onConnection,
    };
    const client = new Client(server.spec, { observer: reading });
    try {
      await client.set("config", "c", { noreply: false });
      assert.equal(await client.get("k", "none"), "none");
      assert.equal(await client.metaGet("config").then((r) => r.value), "c");
      // The first read went out before the set that started it.
      assert.deepEqual(await Promise.all(inner), [null, true, "c", true, "c", true]);
      assert.equal(await client.get("last"), "metaGet");
      assert.equal(inner.length, 8);
      await Promise.all(inner);
    } finally {
      await client.close();
    }
    assert.equal(starts, 4);
    assert.deepEqual(commands.map((e) => e.command), ["set", "get", "metaGet", "get"]);
  });

  it("with no observer and no diagnostics_channel nothing is installed: commands run as written", () => {
    setChannelLoader(() => undefined);
    try {
      assert.equal(Object.hasOwn(new Client("127.0.0.1:1"), "get"), false);
      assert.equal(Object.hasOwn(new Client("127.0.0.1:1", { observer: {} }), "get"), true);
    } finally {
      // What mod.ts registers.
      // deno-lint-ignore no-explicit-any
      setChannelLoader(() => (globalThis as any).process?.getBuiltinModule?.("node:diagnostics_channel"));
    }
    assert.equal(Object.hasOwn(new Client("127.0.0.1:1"), "get"), true); // diagnostics_channel: checked per call
  });

  it("an observer that is not an object is a TypeError", () => {
    assert.throws(() => new Client("127.0.0.1:1", { observer: 42 as unknown as Observer }), TypeError);
  });
});

describe("observer: diagnostics_channel", () => {
  it("publishes commands on a tracing channel and connections on a channel while subscribed", async () => {
    await using server = await startMemcached();
    const seen: string[] = [];
    const ends: CommandEvent[] = [];
    const handlers = {
      start: (ctx: unknown) => void seen.push(`start ${(ctx as CommandEvent).command}`),
      end: () => {},
      asyncStart: () => {},
      asyncEnd: (ctx: unknown) => void ends.push({ ...(ctx as CommandEvent) }),
      error: (ctx: unknown) => void seen.push(`error ${(ctx as CommandEvent).command}`),
    };
    const connections: ConnectionEvent[] = [];
    const onConnection = (message: unknown) => void connections.push(message as ConnectionEvent);
    const tracing = dc.tracingChannel(OBSERVER_CHANNELS.command);
    await using client = new Client(server.spec); // no observer: the channels alone
    await client.set("k", "v", { noreply: false }); // nobody listens yet
    tracing.subscribe(handlers);
    dc.subscribe(OBSERVER_CHANNELS.connection, onConnection);
    try {
      assert.equal(await client.get("k"), "v");
      await client.close();
      assert.deepEqual(await client.getMany(["k", "x"]), new Map([["k", "v"]]));
      await assert.rejects(client.get("bad key"));
    } finally {
      tracing.unsubscribe(handlers);
      dc.unsubscribe(OBSERVER_CHANNELS.connection, onConnection);
    }
    await client.get("k"); // nobody listens any more
    assert.deepEqual(seen, ["start get", "start getMany", "start get", "error get"]);
    assert.deepEqual(ends.map((e) => [e.command, e.server, e.keys, e.hits, e.misses]), [
      ["get", server.spec, 1, 1, 0],
      ["getMany", server.spec, 2, 1, 1],
      ["get", server.spec, 1, 0, 0],
    ]);
    assert.ok(ends[0].bytesRead > 0 && ends[0].bytesWritten > 0);
    assert.deepEqual(connections.map((e) => e.type), ["close", "open"]);
  });
});
