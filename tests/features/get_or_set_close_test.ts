/**
 * getOrSet's Wave 3 contract (API.md "Lifecycle"), against a real
 * memcached: close() ends the background refreshes getOrSet started (a
 * child process per class must exit by itself, print nothing to stderr and
 * open no connection after close()); an in-process flight whose loader
 * never settles holds up no later call; TTLs above 30 days are sent as unix
 * times; a throwing waitUntil changes no result; and the README's
 * "refreshes a value" snippet, as the README shows it.
 */
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { existsSync, readFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import process from "node:process";
import { describe, it } from "../_support/_harness.ts";
import { Client, MemcachedCache, RetryingClient } from "../../mod.ts";
import { MemoryServer } from "../../testing.ts";
import { sleep, startMemcached } from "../_support/_memcached.ts";
import type { StampedeErrorEvent } from "../../src/clients/_get_or_set.ts";

const CLASSES = ["Client", "PooledClient", "HashClient", "RetryingClient"];
const DAY = 86400;
/** How long a child may take to start, run and exit on a busy host before it counts as hung. */
const CHILD_LIMIT_MS = 40_000;

let unique = 0;
const freshKey = (name: string) => `gosc:${name}:${Date.now()}:${unique++}`;

/** A promise the test resolves. */
function gate(): { wait: Promise<void>; open: () => void } {
  let open!: () => void;
  const wait = new Promise<void>((resolve) => (open = resolve));
  return { wait, open };
}

/** `promise`'s value, or a rejection if it has not settled within `ms` (a bound, not a timing assert). */
async function settles<T>(promise: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const late = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${what} did not settle within ${ms} ms`)), ms);
  });
  try {
    return await Promise.race([promise, late]);
  } finally {
    clearTimeout(timer);
  }
}

interface ChildResult {
  code: number | null;
  hung: boolean;
  stdout: string;
  stderr: string;
}

/** Runs tests/_get_or_set_child in `close` mode on this test's runtime; kills it if it does not exit by itself. */
function closeChild(args: string[]): Promise<ChildResult> {
  const isDeno = typeof process.versions.deno === "string";
  const child =
    new URL(isDeno ? "../_support/_get_or_set_child.ts" : "../_support/_get_or_set_child.js", import.meta.url).pathname;
  const command = isDeno ? [process.execPath, "run", "--allow-all", child] : [process.execPath, child];
  const proc = spawn(command[0], [...command.slice(1), "close", ...args], { stdio: ["ignore", "pipe", "pipe"] });
  let stdout = "";
  let stderr = "";
  proc.stdout!.on("data", (d) => (stdout += d));
  proc.stderr!.on("data", (d) => (stderr += d));
  let hung = false;
  const timer = setTimeout(() => {
    hung = true;
    proc.kill("SIGKILL");
  }, CHILD_LIMIT_MS);
  return new Promise((resolve) => {
    proc.once("close", (code) => {
      clearTimeout(timer);
      resolve({ code, hung, stdout, stderr });
    });
  });
}

/**
 * For each class: the key stored with 10 s left (inside a 30 s recache
 * window), a child whose getOrSet wins its refresh and closes at once; it
 * must exit by itself, cleanly and silently, opening nothing after close().
 * Resolves to each class's value left in memcached.
 */
async function closeWithRefresh(loadMs: number, timeout: string): Promise<Map<string, unknown>> {
  await using server = await startMemcached();
  await using admin = new Client(server.spec);
  const keys = new Map(CLASSES.map((name) => [name, freshKey(`close-${name}`)]));
  for (const key of keys.values()) await admin.set(key, "v1", { expire: 10, noreply: false });
  const results = await Promise.all(
    CLASSES.map((name) => closeChild([server.spec, name, keys.get(name)!, String(loadMs), timeout])),
  );
  const left = new Map<string, unknown>();
  for (const [i, name] of CLASSES.entries()) {
    const r = results[i];
    assert.equal(r.hung, false, `${name}: the process exits by itself after close() (stdout ${r.stdout})`);
    assert.equal(r.stderr, "", `${name}: nothing printed to stderr`);
    assert.equal(r.code, 0, `${name}: exit code`);
    const report = JSON.parse(r.stdout);
    assert.deepEqual(report, { value: "v1", runs: 1, openedAfterClose: 0 }, name);
    left.set(name, await admin.get(keys.get(name)!));
  }
  return left;
}

describe("getOrSet and close()", () => {
  it("a refresh under way when close() is called finishes before close() resolves (timeout 5 s, loader 300 ms)", async () => {
    const left = await closeWithRefresh(300, "-");
    for (const name of CLASSES) assert.equal(left.get(name), "refreshed", `${name}: the refresh was stored`);
  });

  it("a refresh whose request is in flight when close() is called is let finish, silently (loader at once)", async () => {
    const left = await closeWithRefresh(0, "-");
    for (const name of CLASSES) assert.equal(left.get(name), "refreshed", `${name}: the refresh was stored`);
  });

  it("a refresh slower than timeout (800 ms; loader 1.5 s) is dropped: nothing sent or printed when its loader settles", async () => {
    const left = await closeWithRefresh(1500, "800");
    for (const name of CLASSES) assert.equal(left.get(name), "v1", `${name}: the dropped refresh stored nothing`);
  });

  it("no refresh starts once close() was called, though the call that wins it goes on (RetryingClient)", async () => {
    await using server = await startMemcached();
    await using admin = new Client(server.spec);
    let reads = 0;
    const observer = { onCommand: (e: { command: string }) => void (e.command === "metaGet" && reads++) };
    const client = new RetryingClient(new Client(server.spec, { observer }));
    try {
      const key = freshKey("no-start");
      // Another caller holds the lease: this call polls for its value.
      assert.equal((await admin.metaGet(key, { vivify: 10, value: false })).win, true);
      let loads = 0;
      let handed = 0;
      const events: StampedeErrorEvent[] = [];
      const call = client.getOrSet(key, () => `load ${++loads}`, {
        ttl: 60,
        recacheWithin: 30,
        lease: { ttl: 10, wait: 10_000 },
        waitUntil: () => void handed++,
        onError: (_, event) => events.push(event),
      });
      while (reads === 0) await sleep(5); // it saw the lease and polls
      await client.close(); // a read in flight is rejected and retried: the call goes on
      // Now a value with 10 s left, in the recache window: the call's next read wins its refresh.
      await admin.set(key, "v1", { expire: 10, noreply: false });
      assert.equal(await settles(call, 10_000, "the polling call"), "v1");
      await sleep(50);
      assert.equal(handed, 0, "no refresh was started");
      assert.equal(loads, 0);
      assert.deepEqual(events, []);
      assert.equal(await admin.get(key), "v1");
    } finally {
      await client.close(); // its polls reopened a connection: the client stays usable after close()
    }
  });

  it("close() with no refresh under way closes in the same tick: a call made right after goes on a new connection", async () => {
    await using server = await startMemcached();
    const client = new Client(server.spec);
    try {
      const key = freshKey("tick");
      await client.getOrSet(key, () => "v", { ttl: 60 });
      const closing = client.close();
      const after = client.getOrSet(key, () => "other", { ttl: 60 });
      await closing;
      assert.equal(await after, "v");
    } finally {
      await client.close();
    }
  });
});

describe("getOrSet in-process flights are bounded", () => {
  it("a loader that never settles: a joiner goes on at lease.wait and gets the value another client stored", async () => {
    await using server = await startMemcached();
    await using other = new Client(server.spec);
    const client = new Client(server.spec);
    const hung = gate();
    let first: Promise<unknown> | undefined;
    try {
      const key = freshKey("hung-stored");
      const options = { ttl: 60, lease: { ttl: 5, wait: 300 } };
      const loading = gate();
      first = client.getOrSet(key, async () => {
        loading.open();
        await hung.wait; // "never" settles: until the test ends
        return undefined;
      }, options);
      await loading.wait; // the first call won the lease and runs its loader
      const joiner = client.getOrSet(key, () => "mine", options);
      await other.set(key, "theirs", { noreply: false });
      assert.equal(await settles(joiner, 10_000, "the joiner"), "theirs");
      // After the flight's deadline a call starts a flight of its own.
      assert.equal(await settles(client.getOrSet(key, () => "mine", options), 10_000, "a later call"), "theirs");
    } finally {
      hung.open();
      await first;
      await client.close();
    }
  });

  it("a loader that never settles: a joiner with nothing stored runs its own loader at lease.wait", async () => {
    await using server = await startMemcached();
    const client = new Client(server.spec);
    const hung = gate();
    let first: Promise<unknown> | undefined;
    try {
      const key = freshKey("hung-alone");
      const options = { ttl: 60, lease: { ttl: 5, wait: 300 } };
      const loading = gate();
      first = client.getOrSet(key, async () => {
        loading.open();
        await hung.wait;
        return "late";
      }, options);
      await loading.wait;
      let mine = 0;
      const joiners = Array.from({ length: 3 }, () => client.getOrSet(key, () => `mine ${++mine}`, options));
      const values = await settles(Promise.all(joiners), 10_000, "the joiners");
      // The lease is still the hung loader's: each joiner loads for itself and stores nothing.
      assert.deepEqual(new Set(values), new Set(["mine 1", "mine 2", "mine 3"]));
      assert.equal((await client.metaGet(key, { returnSize: true })).size, 0, "only the lease's empty item");
      // With lease: false the default wait (11 s) bounds it alike; not waited for here.
    } finally {
      hung.open();
      assert.equal(await first, "late");
      await client.close();
    }
  });
});

describe("getOrSet seconds above 30 days", () => {
  it("ttl 40 days: three calls run the loader once, and the item lives 40 days", async () => {
    await using server = await startMemcached();
    await using client = new Client(server.spec);
    const key = freshKey("ttl40");
    let runs = 0;
    for (let i = 0; i < 3; i++) assert.equal(await client.getOrSet(key, () => `v${++runs}`, { ttl: 40 * DAY }), "v1");
    assert.equal(runs, 1);
    const { ttl } = await client.metaGet(key, { returnTtl: true });
    assert.ok(Math.abs(ttl! - 40 * DAY) <= 60, `40 days left, got ${ttl} s`);
  });

  it("lease.ttl 40 days: the lease's item lives while the loader runs; a joiner waits for it", async () => {
    await using server = await startMemcached();
    await using client = new Client(server.spec);
    await using other = new Client(server.spec);
    const key = freshKey("lease40");
    let lease: { hit: boolean; ttl?: number } | undefined;
    let runs = 0;
    const loader = async () => {
      runs++;
      lease = await other.metaGet(key, { returnTtl: true, value: false });
      await sleep(50);
      return "v";
    };
    // The joiner's wait (40 days and 1 s, in ms) is longer than a timer can take: it must still wait.
    const values = await Promise.all(
      [1, 2].map(() => client.getOrSet(key, loader, { ttl: 60, lease: { ttl: 40 * DAY } })),
    );
    assert.deepEqual(values, ["v", "v"]);
    assert.equal(runs, 1);
    assert.equal(lease?.hit, true, "the lease's item exists while its winner loads");
    assert.ok(lease.ttl! > 40 * DAY - 60, `the lease lives 40 days, got ${lease.ttl} s`);
  });

  it("recacheWithin 50 days on an item with 40 days left: the hit wins a refresh", async () => {
    await using server = await startMemcached();
    await using client = new Client(server.spec);
    const key = freshKey("recache50");
    await client.getOrSet(key, () => "v1", { ttl: 40 * DAY });
    const refreshes: Promise<unknown>[] = [];
    const options = { ttl: 60 * DAY, recacheWithin: 50 * DAY, waitUntil: (p: Promise<unknown>) => refreshes.push(p) };
    assert.equal(await client.getOrSet(key, () => "v2", options), "v1");
    assert.equal(refreshes.length, 1, "40 days left is within 50 days: one refresh");
    await Promise.all(refreshes);
    const r = await client.metaGet(key, { returnTtl: true });
    assert.equal(r.value, "v2");
    assert.ok(r.ttl! > 59 * DAY, `stored for 60 days, got ${r.ttl} s`);
  });

  it("invalidate staleFor 40 days: the stale item lives 40 days", async () => {
    await using server = await startMemcached();
    await using client = new Client(server.spec);
    const key = freshKey("stale40");
    await client.getOrSet(key, () => "v1", { ttl: 0 });
    assert.equal(await client.invalidate(key, { staleFor: 40 * DAY }), true);
    const r = await client.metaGet(key, { returnTtl: true });
    assert.equal(r.hit, true);
    assert.equal(r.stale, true);
    assert.ok(Math.abs(r.ttl! - 40 * DAY) <= 60, `40 days left, got ${r.ttl} s`);
  });

  it("MemcachedCache.getOrSet with a 40-day timeout: converted once, the item lives 40 days", async () => {
    await using server = await startMemcached();
    await using cache = new MemcachedCache([server.spec]);
    await using client = new Client(server.spec);
    const key = freshKey("cache40");
    let runs = 0;
    for (let i = 0; i < 3; i++) assert.equal(await cache.getOrSet(key, () => `v${++runs}`, 40 * DAY), "v1");
    assert.equal(runs, 1);
    const { ttl } = await client.metaGet(key, { returnTtl: true });
    assert.ok(Math.abs(ttl! - 40 * DAY) <= 60, `40 days left, got ${ttl} s`);
  });
});

describe("getOrSet waitUntil", () => {
  it("a waitUntil that throws changes nothing: the hit is served, the refresh runs, the throw goes to onError", async () => {
    await using server = await startMemcached();
    await using client = new Client(server.spec);
    const key = freshKey("waituntil");
    await client.set(key, "v1", { expire: 10, noreply: false });
    let refresh: Promise<unknown> | undefined;
    const events: [string, StampedeErrorEvent["stage"]][] = [];
    const value = await client.getOrSet(key, () => "v2", {
      ttl: 60,
      recacheWithin: 30,
      waitUntil: (p) => {
        refresh = p;
        throw new Error("waitUntil is not available here");
      },
      onError: (error, event) => events.push([(error as Error).message, event.stage]),
    });
    assert.equal(value, "v1");
    assert.deepEqual(events, [["waitUntil is not available here", "refresh"]]);
    await refresh;
    assert.equal(await client.get(key), "v2");
  });
});

// ---- the README's "Testing your code" snippet, as the README shows it (`test` is node:test's `it` here)

const test = it;

test("getOrSet refreshes a value that is about to expire, once", async () => {
  await using server = new MemoryServer();
  await using client = new Client("memory", { transport: server.transport() });
  let loads = 0;
  const load = () => `v${++loads}`;
  const refreshes: Promise<unknown>[] = [];
  const options = { ttl: 100, recacheWithin: 30, waitUntil: (p: Promise<unknown>) => refreshes.push(p) };
  assert.equal(await client.getOrSet("page", load, options), "v1");
  server.advance(80); // 20 s left: within recacheWithin
  assert.equal(await client.getOrSet("page", load, options), "v1"); // served at once, refreshed behind
  await Promise.all(refreshes); // waitUntil was given the refresh
  assert.equal(await client.getOrSet("page", load, options), "v2");
  assert.equal(loads, 2);
});

describe("README", () => {
  it('the "refreshes a value" snippet is the one this file runs', () => {
    // Tests run from tests/ (Deno) or a compiled copy under .tmp/ (Node, Bun): look upward for the sources.
    let dir = dirname(fileURLToPath(import.meta.url));
    while (
      !existsSync(join(dir, "README.md")) || !existsSync(join(dir, "tests", "features", "get_or_set_close_test.ts"))
    ) {
      const up = dirname(dir);
      assert.notEqual(up, dir, "README.md not found above the test");
      dir = up;
    }
    const snippet = (text: string) => {
      const lines = text.split("\n");
      const start = lines.findIndex((line) => line.startsWith('test("getOrSet refreshes a value'));
      assert.ok(start >= 0);
      const end = lines.findIndex((line, i) => i > start && line === "});");
      return lines.slice(start, end + 1).join("\n");
    };
    const readme = snippet(readFileSync(join(dir, "README.md"), "utf8"));
    assert.equal(readme, snippet(readFileSync(join(dir, "tests", "features", "get_or_set_close_test.ts"), "utf8")));
    assert.match(readme, /"v2"/, "the snippet checks the refresh");
  });
});
