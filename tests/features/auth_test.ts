/**
 * ASCII authentication (`auth`, memcached `-Y <authfile>`) against real
 * memcached, over the runtime's default transport and NodeTransport (on
 * Deno: DenoTransport and NodeTransport), plain and over TLS: the login goes
 * first on every connection, a refused one rejects everything queued with
 * MemcacheAuthError and is not tried again in a loop, and the credentials
 * show in no error.
 */
import assert from "node:assert/strict";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, it } from "../_support/_harness.ts";
import {
  type AuthOptions,
  Client,
  type ClientOptions,
  HashClient,
  MemcacheAuthError,
  MemcacheClientError,
  MemcachedCache,
  type Observer,
  PooledClient,
  RetryingClient,
  type Transport,
} from "../../mod.ts";
import { NodeTransport } from "../../transports/node.ts";
import { type MemcachedServer, sleep, startFakeServer, startMemcached } from "../_support/_memcached.ts";

const USER = "alice";
const PASSWORD = "s3cret-Pa55";
const GOOD: AuthOptions = { username: USER, password: PASSWORD };

/** A memcached with `-Y`: an authfile in a temp dir (removed on dispose) holding alice's and bob's logins. */
async function authServer(tls = false): Promise<MemcachedServer & { dispose(): Promise<void> }> {
  const dir = mkdtempSync(join(tmpdir(), "memkit-auth-"));
  const file = join(dir, "authfile");
  writeFileSync(file, `${USER}:${PASSWORD}\nbob:hunter2\n`, { mode: 0o600 });
  const server = await startMemcached({ tls, args: ["-Y", file] });
  const stop = server[Symbol.asyncDispose].bind(server);
  const dispose = async () => {
    await stop();
    rmSync(dir, { recursive: true, force: true });
  };
  return Object.assign(server, { dispose, [Symbol.asyncDispose]: dispose });
}

/** total_connections of `server`, read over an authorized connection that stays open (it counts once). */
async function totalConnections(admin: Client): Promise<number> {
  return (await admin.stats())["total_connections"] as number;
}

/** No trace of the credentials in an error: message, stack, cause chain, own properties. */
function assertNoSecrets(error: unknown): void {
  let e: unknown = error;
  while (e instanceof Error) {
    const text = `${e.message}\n${e.stack}\n${JSON.stringify({ ...e })}\n${String(e)}`;
    assert.ok(!text.includes(PASSWORD), `password in ${text}`);
    assert.ok(!text.includes("wrong-pw"), `password in ${text}`);
    assert.ok(!text.includes(USER), `username in ${text}`);
    e = e.cause;
  }
}

const transports: [string, () => Transport | undefined][] = [
  ["default transport", () => undefined],
  ["NodeTransport", () => new NodeTransport()],
];

describe("auth: options checked before any I/O", () => {
  const bad: [string, unknown][] = [
    ["empty username", { username: "", password: "x" }],
    ["empty password", { username: "u", password: "" }],
    ["a space in the username", { username: "al ice", password: "x" }],
    ["a space in the password", { username: "u", password: "pass word" }],
    ["CR/LF in the password", { username: "u", password: "pw\r\nflush_all" }],
    ["a tab", { username: "u\t", password: "x" }],
    ["a NUL", { username: "u", password: "x\0" }],
    ["a non-string", { username: "u", password: 42 }],
    ["no password", { username: "u" }],
    ["not an object", "alice:secret"],
    ["null", null],
  ];
  for (const [what, auth] of bad) {
    it(`${what}: TypeError from every client class, the value not in the message`, async () => {
      await using server = await startFakeServer(); // must see no connection
      const options = { auth } as unknown as ClientOptions;
      const makers: [string, () => unknown][] = [
        ["Client", () => new Client(server.spec, options)],
        ["PooledClient", () => new PooledClient(server.spec, options)],
        ["HashClient", () => new HashClient([server.spec], options)],
        ["HashClient pooled", () => new HashClient([server.spec], { ...options, usePooling: true })],
        ["MemcachedCache", () => new MemcachedCache([server.spec], options as never)],
      ];
      for (const [name, make] of makers) {
        assert.throws(make, (error: unknown) => {
          assert.ok(error instanceof TypeError, `${name}: ${error}`);
          assert.match(error.message, /^auth/);
          for (const secret of ["secret", "pass word", "flush_all", "al ice"]) {
            assert.ok(!error.message.includes(secret), error.message);
          }
          return true;
        });
      }
      await sleep(20);
      assert.equal(server.connections(), 0);
    });
  }

  it("a client certificate without its key (or not PEM) is a TypeError at construction", () => {
    assert.throws(() => new Client("127.0.0.1:1", { tls: { cert: "-----BEGIN CERTIFICATE-----\n..." } }), TypeError);
    assert.throws(() => new Client("127.0.0.1:1", { tls: { key: "-----BEGIN PRIVATE KEY-----\n..." } }), TypeError);
    assert.throws(() => new Client("127.0.0.1:1", { tls: { cert: "not pem", key: "not pem" } }), /tls\.cert/);
    assert.throws(
      () => new HashClient(["127.0.0.1:1"], { tls: { cert: "-----BEGIN CERTIFICATE-----", key: "nope" } }),
      /tls\.key/,
    );
  });
});

for (const [label, transportOf] of transports) {
  describe(`auth over memcached -Y (${label})`, () => {
    const opts = <T extends ClientOptions>(extra: T = {} as T): T => {
      const transport = transportOf();
      return transport ? { transport, ...extra } : extra;
    };

    it("good credentials: calls queued before the connection opens all succeed; the login went first", async () => {
      await using server = await authServer();
      await using client = new Client(server.spec, opts({ auth: GOOD, defaultNoreply: false }));
      // Issued in one tick, before the connection is open: the login must precede them on the wire.
      const results = await Promise.all([
        client.set("a", "1"),
        client.get("missing"),
        client.set("b", "2", { noreply: true }),
        client.add("a", "x"),
        client.getMany(["a", "b"]),
        client.incr("n", 1),
        client.version(),
      ]);
      assert.deepEqual(results.slice(0, 6), [true, null, true, false, new Map([["a", "1"], ["b", "2"]]), null]);
      assert.match(results[6] as string, /^1\.6/);
      // The server counted one login and no refusal.
      const stats = await client.stats();
      assert.equal(stats["auth_cmds"], 1);
      assert.equal(stats["auth_errors"], 0);
      // The login stored nothing.
      assert.equal(await client.get("_memkit_auth"), null);
    });

    it("each new connection logs in again (after close, and on a pooled client's every connection)", async () => {
      await using server = await authServer();
      await using client = new Client(server.spec, opts({ auth: GOOD }));
      assert.equal(await client.set("k", "v", { noreply: false }), true);
      await client.close();
      assert.equal(await client.get("k"), "v");
      await using pool = new PooledClient(server.spec, opts({ auth: { username: "bob", password: "hunter2" } }));
      const gets = await Promise.all(Array.from({ length: 8 }, () => pool.get("k")));
      assert.deepEqual(gets, Array(8).fill("v"));
      const stats = await client.stats();
      assert.ok((stats["auth_cmds"] as number) >= 3, `auth_cmds ${stats["auth_cmds"]}`);
      assert.equal(stats["auth_errors"], 0);
    });

    it("wrong password: every queued call rejects with MemcacheAuthError, credentials in no error", async () => {
      await using server = await authServer();
      await using client = new Client(server.spec, opts({ auth: { username: USER, password: "wrong-pw" } }));
      const calls = await Promise.allSettled([
        client.set("a", "1", { noreply: false }),
        client.set("b", "2", { noreply: true }),
        client.get("a"),
        client.getMany(["a", "b"]),
        client.incr("n", 1),
        client.version(),
        client.stats(),
      ]);
      for (const call of calls) {
        assert.equal(call.status, "rejected");
        const error = (call as PromiseRejectedResult).reason;
        assert.ok(error instanceof MemcacheAuthError, String(error));
        assert.ok(error instanceof MemcacheClientError);
        assert.equal(error.name, "MemcacheAuthError");
        assert.equal(error.server, server.spec);
        assert.match(error.message, /refused the login \(wrong username or password\)/);
        assertNoSecrets(error);
      }
      await using admin = new Client(server.spec, opts({ auth: GOOD }));
      assert.equal((await admin.stats())["auth_errors"], 1);
      assert.equal(await admin.get("a"), null, "nothing queued behind a refused login was applied");
    });

    it("an unknown user, and no auth against a -Y server, are MemcacheAuthError too", async () => {
      await using server = await authServer();
      await using stranger = new Client(server.spec, opts({ auth: { username: "mallory", password: "x" } }));
      await assert.rejects(stranger.get("k"), MemcacheAuthError);
      await using anonymous = new Client(server.spec, opts());
      await assert.rejects(anonymous.get("k"), (error: unknown) => {
        assert.ok(error instanceof MemcacheAuthError);
        assert.match(error.message, /requires a login/);
        return true;
      });
      await assert.rejects(anonymous.set("k", "v", { noreply: false }), MemcacheAuthError);
    });

    it("a refused login is not retried in a loop: Client, RetryingClient, PooledClient, HashClient", async () => {
      await using server = await authServer();
      await using admin = new Client(server.spec, opts({ auth: GOOD }));
      const wrong = { username: USER, password: "wrong-pw" };
      let before = await totalConnections(admin);

      // Client: the refusal, then 50 calls within the next second fail at once without connecting.
      await using client = new Client(server.spec, opts({ auth: wrong }));
      await assert.rejects(client.get("k"), MemcacheAuthError);
      for (let i = 0; i < 50; i++) await assert.rejects(client.get("k"), MemcacheAuthError);
      let after = await totalConnections(admin);
      assert.equal(after - before, 1, "one connection for 51 calls");

      // Each client below gets credentials of its own: refusals are remembered per auth object and server.
      // RetryingClient (5 attempts, retrying every error by default) does not retry it.
      before = after;
      await using retrying = new RetryingClient(new Client(server.spec, opts({ auth: { ...wrong } })), { attempts: 5 });
      await assert.rejects(retrying.get("k"), MemcacheAuthError);
      after = await totalConnections(admin);
      assert.equal(after - before, 1);

      // PooledClient: its clients are replaced after the failure, and share the refusal.
      before = after;
      await using pool = new PooledClient(server.spec, opts({ auth: { ...wrong }, maxPoolSize: 4 }));
      await assert.rejects(pool.get("k"), MemcacheAuthError);
      for (let i = 0; i < 20; i++) await assert.rejects(pool.get("k"), MemcacheAuthError);
      after = await totalConnections(admin);
      assert.equal(after - before, 1);

      // HashClient: the server is not a failing one (no failover, no dead marking): keys stay put.
      before = after;
      await using cluster = new HashClient([server.spec], opts({ auth: { ...wrong }, retryAttempts: 0 }));
      for (let i = 0; i < 10; i++) await assert.rejects(cluster.get("k"), MemcacheAuthError);
      assert.equal(cluster.serverFor("k"), server.spec);
      after = await totalConnections(admin);
      assert.equal(after - before, 1);
      assert.equal((await admin.stats())["auth_errors"], 4);
    });

    it("after the pause a call logs in again (a fixed authfile is picked up)", async () => {
      await using server = await authServer();
      await using client = new Client(server.spec, opts({ auth: { username: USER, password: "wrong-pw" } }));
      await assert.rejects(client.get("k"), MemcacheAuthError);
      await sleep(1100);
      await assert.rejects(client.get("k"), /refused the login \(wrong username or password\)/);
      await using admin = new Client(server.spec, opts({ auth: GOOD }));
      assert.equal((await admin.stats())["auth_errors"], 2);
    });

    it("observer events and their errors hold no credentials, for a good and a refused login", async () => {
      await using server = await authServer();
      const events: unknown[] = [];
      const observer: Observer = {
        onCommandStart: (event) => void events.push(event),
        onCommand: (event) => void events.push(event),
        onConnection: (event) => void events.push(event),
      };
      await using good = new Client(server.spec, opts({ auth: GOOD, observer, defaultNoreply: false }));
      await Promise.all([good.set("k", "v"), good.get("k")]);
      await using wrong = new Client(server.spec, opts({ auth: { username: USER, password: "wrong-pw" }, observer }));
      await Promise.allSettled([wrong.set("k", "v"), wrong.get("k")]);
      await wrong.close();
      assert.ok(events.length >= 6, `events: ${events.length}`);
      const errors = events.map((e) => (e as { error?: unknown }).error).filter((e) => e !== undefined);
      assert.ok(errors.some((e) => e instanceof MemcacheAuthError), "the refusal is reported");
      errors.forEach(assertNoSecrets);
      const text = JSON.stringify(events, (_, v) => v instanceof Error ? `${v.message} ${v.stack}` : v);
      for (const secret of [PASSWORD, "wrong-pw", `${USER} `]) assert.ok(!text.includes(secret), text);
    });

    it("over TLS: good credentials work, wrong ones are refused", async () => {
      await using server = await authServer(true);
      const tls = { caCerts: [server.cert!] };
      await using client = new Client(server.spec, opts({ auth: GOOD, tls }));
      const [stored, value] = await Promise.all([client.set("t", "tls", { noreply: false }), client.get("t")]);
      assert.equal(stored, true);
      assert.equal(value, "tls");
      await using wrong = new Client(server.spec, opts({ auth: { username: USER, password: "wrong-pw" }, tls }));
      const both = await Promise.allSettled([wrong.get("t"), wrong.set("t", "x")]);
      for (const r of both) {
        assert.ok(r.status === "rejected" && r.reason instanceof MemcacheAuthError);
        assertNoSecrets(r.reason);
      }
      assert.equal(await client.get("t"), "tls");
    });

    it("HashClient and MemcachedCache pass auth to every server", async () => {
      await using a = await authServer();
      await using b = await authServer();
      await using cluster = new HashClient([a.spec, b.spec], opts({ auth: GOOD }));
      const keys = Array.from({ length: 40 }, (_, i) => `key${i}`);
      await cluster.setMany(Object.fromEntries(keys.map((k) => [k, k])), { noreply: false });
      const got = await cluster.getMany(keys);
      assert.equal(got.size, 40);
      const stats = await cluster.stats();
      assert.equal(stats.size, 2);
      for (const s of stats.values()) assert.ok((s["curr_items"] as number) > 0);
      const transport = transportOf();
      await using cache = new MemcachedCache([a.spec, b.spec], {
        auth: GOOD,
        transport,
      });
      assert.equal(await cache.set("c", 1), true);
      assert.equal(await cache.get("c"), 1);
    });
  });
}

describe("auth against a server without -Y", () => {
  it("the login is answered STORED and stores nothing readable", async () => {
    await using server = await startMemcached();
    await using client = new Client(server.spec, { auth: GOOD });
    assert.equal(await client.set("k", "v", { noreply: false }), true);
    assert.equal(await client.get("k"), "v");
    await using plain = new Client(server.spec);
    assert.equal(await plain.get("_memkit_auth"), null, "the credentials are not left in the cache");
  });

  it("the login's bytes on the wire: a set with exptime -1, ahead of the first call", async () => {
    await using server = await startFakeServer((socket, _text, all) => {
      if (all.endsWith("get k\r\n")) socket.write("STORED\r\nEND\r\n");
    });
    await using client = new Client(server.spec, { auth: GOOD });
    assert.equal(await client.get("k"), null);
    assert.equal(
      server.received(),
      `set _memkit_auth 0 -1 ${USER.length + 1 + PASSWORD.length}\r\n${USER} ${PASSWORD}\r\nget k\r\n`,
    );
  });

  it("a reply other than STORED to the login is a refusal", async () => {
    await using server = await startFakeServer((socket, _text, all) => {
      if (all.endsWith("get k\r\n")) socket.write("NOT_STORED\r\nEND\r\n");
    });
    await using client = new Client(server.spec, { auth: GOOD });
    await assert.rejects(client.get("k"), (error: unknown) => {
      assert.ok(error instanceof MemcacheAuthError, String(error));
      assertNoSecrets(error);
      return true;
    });
  });
});
