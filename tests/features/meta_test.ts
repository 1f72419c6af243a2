/**
 * The meta protocol on one `Client` connection against the memcached the
 * test spawns (Debian's 1.6.18): thousands of quiet and loud meta commands
 * pipelined with classic ones, error replies among them; the largest
 * commands the options can build; replies that do not belong to their
 * request. The behaviour cases every client class runs are in
 * tests/suites/_suite_meta.ts.
 */
import assert from "node:assert/strict";
import { describe, it } from "../_support/_harness.ts";
import { Client, MemcacheClientError, MemcacheServerError, MemcacheUnknownError, type MetaResult } from "../../mod.ts";
import { startFakeServer, startMemcached } from "../_support/_memcached.ts";

/** What a settled call gave: its value, or the name of its error. */
async function outcome(promise: Promise<unknown>): Promise<unknown> {
  try {
    return await promise;
  } catch (error) {
    return { error: (error as Error).name };
  }
}

const meta = (fields: Partial<MetaResult>) => ({ win: false, stale: false, winnerExists: false, ...fields });

describe("meta protocol on one connection", () => {
  it("thousands of quiet and loud meta commands, classic ones and error replies, pipelined: every result is its caller's", async () => {
    await using server = await startMemcached({ args: ["-I", "1m"] });
    await using client = new Client(server.spec, { timeout: 30_000 });
    await client.metaSet("text", "abc");
    await client.metaSet("count", 0);
    const rounds = 500;
    let expectedCount = 0;
    // Calls issued in a burst go out in order on the one connection, so each
    // can depend on the ones before it; every one is checked against what it
    // alone must get.
    const checks: Promise<void>[] = [];
    const expect = (what: string, call: Promise<unknown>, expected: unknown) =>
      checks.push(outcome(call).then((got) => assert.deepEqual(got, expected, what)));
    const burst = (r: number) => {
      const k = `r${r}`;
      const quiet = r % 2 === 0;
      expect(
        `${k} ms`,
        client.metaSet(k, `v${r}`, { noreply: quiet }),
        meta({ status: "HD", hit: true, stored: true }),
      );
      expect(
        `${k} add`,
        client.metaSet(k, "x", { mode: "add", noreply: !quiet }),
        meta({ status: "NS", hit: false, stored: false }),
      );
      expect(`${k} get`, client.get(k), `v${r}`);
      expect(
        `${k} mg`,
        client.metaGet(k, { returnKey: true, opaque: `o${r}` }).then((m) => [m.value, m.key, m.opaque]),
        [`v${r}`, k, `o${r}`],
      );
      expect(`${k} bad ma`, client.metaArithmetic("text", { noreply: quiet }), { error: "MemcacheClientError" });
      expectedCount++;
      expect(
        `${k} ma`,
        client.metaArithmetic("count", { noreply: quiet }).then((m) => m.value),
        quiet ? undefined : expectedCount,
      );
      expect(`${k} set`, client.set(`c${r}`, r, { noreply: r % 3 === 0 }), true);
      expect(
        `${k} mgm`,
        client.metaGetMany([k, `c${r}`, `none${r}`]).then((m) => [...m].map(([key, v]) => [key, v.value])),
        [
          [k, `v${r}`],
          [`c${r}`, r],
        ],
      );
      expect(
        `${k} md`,
        client.metaDelete(`c${r}`, { noreply: quiet }),
        meta({ status: "HD", hit: true, deleted: true }),
      );
      expect(
        `${k} md again`,
        client.metaDelete(`c${r}`, { noreply: !quiet }),
        meta({ status: "NF", hit: false, deleted: false }),
      );
      if (r % 50 === 0) {
        // A value over the item size limit: SERVER_ERROR after memcached swallowed it.
        expect(`${k} huge`, client.metaSet(`huge${r}`, new Uint8Array(1_100_000), { noreply: quiet }), {
          error: "MemcacheServerError",
        });
      }
      expect(`${k} getMany`, client.getMany([k, `c${r}`]).then((m) => [...m]), [[k, `v${r}`]]);
      expect(`${k} mn`, client.metaNoop(), true);
    };
    // Bursts of various sizes, some issued while earlier ones are in flight.
    for (let r = 0; r < rounds;) {
      const size = 1 + (r % 7);
      for (let i = 0; i < size && r < rounds; i++) burst(r++);
      if (r % 3 === 0) await new Promise((resolve) => setTimeout(resolve, 0));
    }
    await Promise.all(checks);
    assert.ok(checks.length > 6000, `${checks.length} calls`);
    assert.equal((await client.metaArithmetic("count", { delta: 0 })).value, expectedCount);
  });

  it("the most flags the options can put on mg, ms, md and ma are accepted by memcached", async () => {
    await using server = await startMemcached();
    await using client = new Client(server.spec);
    const binary = new Uint8Array(186).fill(255);
    const set = await client.metaSet(binary, "v", {
      mode: "add",
      expire: 100,
      flags: 16, // text
      returnCas: true,
      returnKey: true,
      opaque: "o".repeat(31),
    });
    assert.deepEqual([set.stored, set.key, set.opaque], [true, binary, "o".repeat(31)]);
    const got = await client.metaGet(binary, {
      returnCas: true,
      returnTtl: true,
      returnSize: true,
      returnLastAccess: true,
      returnHitBefore: true,
      returnKey: true,
      returnFlags: true,
      noLruBump: true,
      touch: 200,
      vivify: 30,
      recacheWithin: 1000,
      opaque: "p".repeat(31),
    });
    assert.deepEqual([got.value, got.flags, got.cas, got.size, got.win], ["v", 16, set.cas, 1, true]);
    const many = await client.metaGetMany([binary, "x"], {
      returnCas: true,
      returnTtl: true,
      returnSize: true,
      returnLastAccess: true,
      returnHitBefore: true,
      returnKey: true,
      noLruBump: true,
      touch: 200,
      vivify: 30,
      recacheWithin: 1000,
    });
    assert.equal(many.size, 2); // "x" vivified
    const counted = await client.metaArithmetic("n", {
      mode: "decr",
      vivify: 10,
      initial: 5,
      delta: 2,
      expire: 50,
      returnCas: true,
      returnTtl: true,
      returnKey: true,
      opaque: "q".repeat(31),
    });
    assert.deepEqual([counted.value, counted.key], [5, "n"]);
    const deleted = await client.metaDelete(binary, {
      invalidate: true,
      expire: 30,
      returnKey: true,
      opaque: "r".repeat(31),
    });
    assert.equal(deleted.deleted, true);
  });

  it("a reply carrying another request's opaque or key closes the connection; the next call reconnects", async () => {
    let connections = 0;
    await using fake = await startFakeServer((socket, text) => {
      if (text.startsWith("mg a")) socket.write("HD Oother\r\n");
      else if (text.startsWith("mg b")) socket.write("HD kc\r\n");
      else if (text.startsWith("mg c")) socket.write("VA 1 O9\r\nx\r\nMN\r\n"); // a batch of one key: O0 only
      else if (text.startsWith("mg d")) socket.write("NS\r\n"); // not an mg status
      else if (text.startsWith("version")) socket.write("VERSION 1.6.18\r\n");
    });
    await using client = new Client(fake.spec, { timeout: 5000 });
    for (
      const call of [
        () => client.metaGet("a", { opaque: "mine" }),
        () => client.metaGet("b", { returnKey: true }),
        () => client.metaGetMany(["c"]),
        () => client.metaGet("d"),
      ]
    ) {
      await assert.rejects(call(), MemcacheUnknownError);
      assert.equal(await client.version(), "1.6.18");
      connections++;
    }
    assert.equal(fake.connections(), connections + 1);
  });

  it("CLIENT_ERROR invalid flag keeps the connection only for an ms carrying E; any other error after a data block closes it", async () => {
    // A scripted server: `ms` lines answered by what they carry; the data block is never echoed back.
    await using fake = await startFakeServer((socket, text) => {
      for (const line of text.split("\r\n")) {
        if (line.startsWith("ms e ")) socket.write("CLIENT_ERROR invalid flag\r\n"); // what 1.6.18 answers to E
        else if (line.startsWith("ms plain ")) socket.write("CLIENT_ERROR invalid flag\r\n");
        else if (line.startsWith("ms chunk ")) socket.write("CLIENT_ERROR bad data chunk\r\n");
        else if (line === "version") socket.write("VERSION 1.6.18\r\n");
      }
    });
    await using client = new Client(fake.spec, { timeout: 5000 });
    assert.equal(await client.version(), "1.6.18");
    const refused = await outcome(client.metaSet("e", "v", { newCas: 5 }));
    assert.deepEqual(refused, { error: "MemcacheClientError" });
    assert.equal(await client.version(), "1.6.18");
    assert.equal(fake.connections(), 1); // kept
    // The same reply to an ms without E: where the server stopped reading is unknown.
    await assert.rejects(client.metaSet("plain", "v"), /invalid flag/);
    assert.equal(await client.version(), "1.6.18");
    assert.equal(fake.connections(), 2);
    // Another CLIENT_ERROR to an ms with E: closed too.
    await assert.rejects(client.metaSet("chunk", "v", { newCas: 5 }), /bad data chunk/);
    assert.equal(await client.version(), "1.6.18");
    assert.equal(fake.connections(), 3);
    // What an ms with E sends.
    assert.match(fake.received(), /ms e 1( F\d+)? E5\r\n/);
  });

  it("errors to quiet and loud ms (too large) and ma (not a number) keep the stream in step", async () => {
    await using server = await startMemcached({ args: ["-I", "1m"] });
    await using client = new Client(server.spec);
    const [big, after] = await Promise.allSettled([
      client.metaSet("big", new Uint8Array(1_100_000), { noreply: true }),
      client.metaGet("big"),
    ]);
    assert.ok(big.status === "rejected" && big.reason instanceof MemcacheServerError);
    assert.deepEqual(after, { status: "fulfilled", value: meta({ status: "EN", hit: false }) });
    await client.metaSet("text", "abc");
    const loud = await outcome(client.metaArithmetic("text"));
    assert.deepEqual(loud, { error: "MemcacheClientError" });
    await assert.rejects(client.metaArithmetic("text", { noreply: true }), MemcacheClientError);
    assert.equal((await client.metaGet("text")).value, "abc");
  });
});
