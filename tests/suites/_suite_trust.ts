/**
 * Behaviour suite, trust cases: replies that do not fit their request,
 * error replies after a data block, bounded queues and handshakes, serde
 * failures. Each case scripts a fake server to answer wrongly (or a real
 * memcached where its own behaviour is tested) and checks that no call
 * resolves with another's reply, nothing hangs, and the client recovers.
 * Registered by `clientSuite` for every target.
 */
import assert from "node:assert/strict";
import { rejectsWith } from "../_support/_assert.ts";
import { describe, it } from "../_support/_harness.ts";
import {
  type ClientOptions,
  MemcacheConnectionError,
  MemcacheError,
  MemcacheIllegalInputError,
  MemcacheSerdeError,
  MemcacheTimeoutError,
  MemcacheUnknownCommandError,
  MemcacheUnknownError,
} from "../../mod.ts";
import type { FakeSocket, SuiteTarget } from "./_suite.ts";

/**
 * A fake server answering each command line with `answer(line)` (and
 * swallowing data blocks of storage commands): a script of wrong replies.
 * `answer` gets the connection number too, so a reconnect can be healthy.
 */
function scripted(
  target: SuiteTarget,
  answer: (line: string, connection: number) => string,
) {
  const state = new WeakMap<FakeSocket, { buffered: string; skip: number; n: number }>();
  let connections = 0;
  return target.startFakeServer((socket, text) => {
    let s = state.get(socket);
    if (s === undefined) state.set(socket, s = { buffered: "", skip: 0, n: ++connections });
    s.buffered += text;
    for (;;) {
      if (s.skip > 0) {
        const take = Math.min(s.skip, s.buffered.length);
        s.buffered = s.buffered.slice(take);
        s.skip -= take;
        if (s.skip > 0) return;
      }
      const nl = s.buffered.indexOf("\r\n");
      if (nl === -1) return;
      const line = s.buffered.slice(0, nl);
      s.buffered = s.buffered.slice(nl + 2);
      const storage = /^(set|add|replace|append|prepend|cas) \S+ \d+ -?\d+ (\d+)/.exec(line);
      if (storage) s.skip = Number(storage[2]) + 2;
      const reply = answer(line, s.n);
      if (reply !== "") socket.write(reply);
    }
  });
}

/** Registers the trust cases for `target`. */
export function trustSuite(target: SuiteTarget): void {
  const { makeClient } = target;
  const test = (name: string, body: () => Promise<void>) => it(name, body, { skip: target.skip?.[name] ?? false });
  // A hang fails the case instead of the run; one connection, so that a
  // PooledClient pipelines these calls as a Client does.
  const options = { timeout: 5000, maxPoolSize: 1 } as ClientOptions;

  describe(`${target.name}: replies out of step`, () => {
    test("a one-line reply that does not fit its request closes the connection: no later request takes it", async () => {
      // The first connection answers `incr a` with STORED and then a's number,
      // as if one reply too many were on the wire; `incr b` would read 7.
      await using fake = await scripted(target, (line, n) => {
        if (n > 1) return line.startsWith("incr b") ? "9\r\n" : line === "version" ? "VERSION 1.6.18\r\n" : "";
        if (line.startsWith("incr a")) return "STORED\r\n7\r\n";
        if (line.startsWith("incr b")) return "8\r\n";
        return "";
      });
      await using client = makeClient(fake.spec, options);
      const a = client.incr("a", 1);
      const b = client.incr("b", 1);
      await rejectsWith(a, MemcacheUnknownError, /Unexpected reply "STORED".*command incr/);
      await rejectsWith(b, MemcacheError);
      // The next call reconnects and gets its own reply.
      assert.equal(await client.incr("b", 1), 9);
      assert.equal(fake.connections(), 2);
    });

    test("TOUCHED or a VALUE block in answer to incr, garbage in answer to version: each fails, with what was queued behind it", async () => {
      const wrong = ["TOUCHED\r\n", "VALUE x 0 1\r\nz\r\nEND\r\n", "HELLO\r\n", "18446744073709551616\r\n"];
      for (const reply of wrong) {
        await using fake = await scripted(target, (line) => {
          if (line.startsWith("incr") || line === "version") return reply;
          if (line.startsWith("get ")) return "VALUE other 0 1\r\nq\r\nEND\r\n";
          return "";
        });
        await using client = makeClient(fake.spec, options);
        const call = reply === "HELLO\r\n" ? client.version() : client.incr("n", 1);
        const behind = client.get("k");
        await rejectsWith(call, MemcacheUnknownError);
        await rejectsWith(behind, MemcacheError);
      }
    });

    test("a gets hit without a cas token, or a key returned that was not asked for (bytes, not lossy text), fails", async () => {
      await using fake = await scripted(target, (line) => {
        if (line === "gets k") return "VALUE k 0 1\r\nx\r\nEND\r\n";
        if (line.startsWith("get ")) return "VALUE k\xff 0 1\r\nx\r\nEND\r\n"; // latin1: the byte 0xff
        return "";
      });
      await using client = makeClient(fake.spec, { ...options, allowUnicodeKeys: true });
      await rejectsWith(client.gets("k"), MemcacheUnknownError, /cas/);
      await rejectsWith(client.getsMany(["k"]), MemcacheUnknownError, /cas/);
      // "k\uFFFD" is what lossy decoding of k\xff would give: it must not match.
      await rejectsWith(client.get("k\uFFFD"), MemcacheUnknownError);
    });

    test("ERROR to a storage command closes the connection: the data block may have been read as commands", async () => {
      await using fake = await scripted(target, (line, n) => {
        if (line.startsWith("set ")) return n === 1 ? "ERROR\r\n" : "STORED\r\n";
        if (line.startsWith("get ")) return n === 1 ? "VALUE k 16 5\r\nwrong\r\nEND\r\n" : "END\r\n";
        return "";
      });
      await using client = makeClient(fake.spec, options);
      const set = client.set("k", "v", { noreply: false });
      const get = client.get("k");
      await rejectsWith(set, MemcacheUnknownCommandError);
      await rejectsWith(get, MemcacheConnectionError, /ERROR to set/);
      assert.equal(await client.set("k", "v", { noreply: false }), true);
      assert.equal(await client.get("k"), null);
    });

    test("stats names are own properties, whatever they are called", async () => {
      await using fake = await scripted(
        target,
        (line) =>
          line === "stats"
            ? "STAT constructor 5\r\nSTAT toString abc\r\nSTAT __proto__ 1\r\nSTAT pid 9\r\nEND\r\n"
            : "",
      );
      await using client = makeClient(fake.spec, options);
      const stats = await client.stats();
      const record =
        (target.name.startsWith("HashClient")
          ? [...(stats as unknown as Map<string, Record<string, unknown>>).values()][0]
          : stats) as Record<string, unknown>;
      assert.equal(record.constructor, 5);
      assert.equal(record.toString, "abc");
      assert.ok(Object.hasOwn(record, "__proto__"));
      assert.equal(Object.getOwnPropertyDescriptor(record, "__proto__")?.value, 1);
      assert.equal(Object.getPrototypeOf(record), Object.prototype);
      assert.equal(record.pid, 9);
    });
  });

  describe(`${target.name}: values the serde cannot handle`, () => {
    test("an unserializable value is a MemcacheIllegalInputError, and nothing is sent", async () => {
      await using fake = await scripted(target, (line) => (line === "version" ? "VERSION 1.6.18\r\n" : ""));
      await using client = makeClient(fake.spec, options);
      const circular: Record<string, unknown> = {};
      circular.self = circular;
      for (const value of [{ big: 1n }, circular]) {
        await rejectsWith(client.set("k", value, { noreply: false }), MemcacheIllegalInputError, /"k"/);
        await rejectsWith(client.setMany({ ok: 1, k: value }), MemcacheIllegalInputError, /"k"/);
      }
      await client.version();
      assert.equal(fake.received(), "version\r\n");
    });

    test("a stored value the serde cannot read is a MemcacheSerdeError naming key and flags; the connection stays", async () => {
      await using server = await target.startMemcached();
      await using client = makeClient(server.spec, options);
      await client.set("bad", "{not json", { flags: 32, noreply: false });
      await client.set("good", "fine", { noreply: false });
      const bad = client.get("bad");
      const good = client.get("good");
      await assert.rejects(bad, (error: unknown) => {
        assert.ok(error instanceof MemcacheSerdeError, String(error));
        assert.match(error.message, /"bad" \(flags 32\)/);
        assert.ok(error.cause instanceof SyntaxError);
        return true;
      });
      assert.equal(await good, "fine");
      await rejectsWith(client.getMany(["good", "bad"]), MemcacheSerdeError);
      await using lenient = makeClient(server.spec, { ...options, ignoreExc: true });
      assert.equal(await lenient.get("bad", "fallback"), "fallback");
    });
  });

  describe(`${target.name}: order and bounds`, () => {
    test("setMany then get in the same tick: the get is written after the sets", async () => {
      await using server = await target.startMemcached();
      await using client = makeClient(server.spec, options);
      const sets = client.setMany({ a: "1", b: "2" }, { noreply: false });
      const got = client.get("b");
      assert.deepEqual(await sets, []);
      assert.equal(await got, "2");
    });

    test("maxQueue: past it a call fails at once; a multi-key call is admitted whole", async () => {
      await using fake = await target.startFakeServer(); // accepts and never answers
      // One connection (PooledClient would open one per waiting call).
      await using client = makeClient(fake.spec, { timeout: 10_000, maxQueue: 5, maxPoolSize: 1 } as ClientOptions);
      const waiting = Array.from({ length: 5 }, (_, i) => client.get(`k${i}`));
      for (const w of waiting) w.catch(() => {});
      await rejectsWith(client.get("one-too-many"), MemcacheError, /maxQueue 5/);
      await rejectsWith(client.set("k", "v", { noreply: true }), MemcacheError, /maxQueue 5/);
      await rejectsWith(client.setMany({ a: 1, b: 2 }), MemcacheError, /maxQueue 5/);
      await client.close();
      for (const w of waiting) await rejectsWith(w, MemcacheConnectionError);
      // An empty queue admits a setMany larger than maxQueue as one call.
      const pairs = Object.fromEntries(Array.from({ length: 20 }, (_, i) => [`m${i}`, i]));
      const many = client.setMany(pairs, { noreply: false });
      many.catch(() => {});
      await client.close();
      await rejectsWith(many, MemcacheConnectionError);
    });

    test("timeout and connectTimeout accept 0 and Infinity (no limit), and refuse negative or NaN", () => {
      for (const ms of [0, Infinity, 1, 5000]) {
        makeClient("127.0.0.1:1", { timeout: ms, connectTimeout: ms });
      }
      for (const bad of [-1, NaN]) {
        assert.throws(() => makeClient("127.0.0.1:1", { timeout: bad }), TypeError);
        assert.throws(() => makeClient("127.0.0.1:1", { connectTimeout: bad }), TypeError);
      }
      assert.throws(() => makeClient("127.0.0.1:1", { maxQueue: 0 }), TypeError);
      return Promise.resolve();
    });

    test("a TCP connect that hangs is cancelled at connectTimeout: nothing is left pending", async () => {
      // A stopped memcached with a backlog of 1 completes two handshakes;
      // the kernel drops SYNs after that, so later connects hang. Three
      // fillers, given time to start connecting (NodeTransport loads
      // node:net on first use), take both places before the client tries.
      await using server = await target.startMemcached({ args: ["-b", "1"] });
      if (!server.pause) return;
      server.pause();
      try {
        const fillers = [0, 1, 2].map(() => makeClient(server.spec, { timeout: 0, connectTimeout: 0 }));
        const stuck = fillers.map((c) => c.get("k").catch((e) => e));
        await new Promise((resolve) => setTimeout(resolve, 500));
        await using client = makeClient(server.spec, { connectTimeout: 200, timeout: 5000 });
        await rejectsWith(client.get("k"), MemcacheTimeoutError, /Connect timed out after 200 ms/);
        for (const c of fillers) await c.close();
        for (const s of await Promise.all(stuck)) assert.ok(s instanceof MemcacheConnectionError, String(s));
      } finally {
        server.resume?.();
      }
    });

    test("a TLS server that accepts TCP and stays silent: connectTimeout covers the handshake", async () => {
      await using fake = await target.startFakeServer(); // never answers the ClientHello
      // The request timeout is longer: the connect timeout must be what fires.
      await using client = makeClient(fake.spec, { tls: true, connectTimeout: 300, timeout: 2000 });
      await rejectsWith(client.get("k"), MemcacheTimeoutError, /Connect timed out/);
    });
  });
}
