// A seeded fuzzer of AWS ElastiCache `config get cluster` replies (the
// reply src/_discovery.ts decodes):
//
// 1. parseClusterConfig on clean replies mutated once (and on structural
//    variants: duplicate, bad, too many nodes, extra lines): it returns a
//    config of valid `host:port` nodes, at most 1,000 of them, or throws an
//    Error; a clean reply parses to exactly what was listed;
// 2. HashClient.discover against a scripted endpoint serving such replies
//    (mutated, cut, reset or silent), nodes being scripted servers: every
//    refreshServers settles within its timeout + 100 ms with a boolean or a
//    MemcacheError; a refused config changes nothing; a clean config is
//    applied exactly; reads and writes through the ring settle with their
//    own values or a MemcacheError, and after a clean config all succeed.
//
// Sizes: MEMKIT_FUZZ_ITERATIONS (default 300) parses x5, a tenth of it in
// refreshes. Seed: MEMKIT_SEED (a number, or "random"); a failure prints it.
import assert from "node:assert/strict";
import { describe, it } from "../_support/_harness.ts";
import { HashClient, MemcacheError } from "../../mod.ts";
import { MAX_CLUSTER_NODES, parseClusterConfig } from "../../src/clients/_discovery.ts";
import { envInt, fromLatin1, harnessSeed, latin1, Rng, taggedValue, withSeed } from "./_hostile.ts";
import { Invariants } from "./_hostile_ledger.ts";
import { type Ending, lineBytesOf, mutate } from "./_hostile_mutate.ts";
import { type ScriptedServer, startScriptedServer } from "./_hostile_server.ts";
import { entriesReply, entryOf } from "../_support/_config_endpoint.ts";

const ITERATIONS = envInt("MEMKIT_FUZZ_ITERATIONS", 300);
const TIMEOUT = 1000;

/** A valid node as the client names it: a host or address and a port 1–65535. */
function validServer(server: string): boolean {
  const at = server.lastIndexOf(":");
  const port = Number(server.slice(at + 1));
  return at > 0 && Number.isInteger(port) && port >= 1 && port <= 65535 &&
    ![...server].some((c) => c <= " " || c === "|");
}

/** A reply for `version` listing `entries`, maybe with a structural twist; `clean` says if it lists exactly them. */
function configReply(rng: Rng, version: number, servers: string[]): { text: string; clean: boolean } {
  const entries = servers.map(entryOf);
  switch (rng.int(12)) {
    case 0:
      return { text: entriesReply(version, [...entries, ...entries]), clean: true }; // duplicates collapse
    case 1:
      return {
        text: entriesReply(version, [...entries, rng.pick(["a]b|a]b|1", "x|y", "h|1.2.3.4|0", "h||99999"])]),
        clean: false,
      };
    case 2: {
      const many = Array.from({ length: MAX_CLUSTER_NODES + 1 }, (_, i) => `n${i}|10.0.${i >> 8}.${i & 255}|11211`);
      return { text: entriesReply(version, many), clean: false };
    }
    case 3:
      return { text: entriesReply(version, entries).replace("\n", "\n\n"), clean: false };
    case 4:
      return { text: entriesReply(version, []), clean: false };
    default:
      return { text: entriesReply(version, entries), clean: true };
  }
}

describe("fuzz: parseClusterConfig", () => {
  const seed = harnessSeed(15_001);
  it(`${ITERATIONS * 5} cluster configurations, mutated once (seed ${seed})`, () =>
    withSeed(seed, () => {
      const rng = new Rng(seed);
      const problems: string[] = [];
      for (let i = 0; i < ITERATIONS * 5 && problems.length < 10; i++) {
        const servers = Array.from({ length: 1 + rng.int(6) }, () =>
          `10.1.${rng.int(256)}.${rng.int(256)}:${1 + rng.int(65535)}`);
        const version = rng.int(1e6);
        const { text, clean } = configReply(rng, version, servers);
        const stream = latin1(text);
        const { bytes, mutation } = mutate(rng, stream, lineBytesOf(stream));
        const reply = fromLatin1(bytes).replace(/\r\nEND\r\n$/, "\r\n");
        let parsed;
        try {
          parsed = parseClusterConfig(reply);
        } catch (error) {
          if (!(error instanceof Error) || error.constructor !== Error) {
            problems.push(`#${i}: threw ${String(error)}`);
          }
          if (clean && mutation.kind === "clean") {
            problems.push(`#${i}: a clean config did not parse: ${error}`);
          }
          continue;
        }
        const label = `#${i} (${mutation.kind})`;
        if (parsed.servers.length === 0 || parsed.servers.length > MAX_CLUSTER_NODES) {
          problems.push(`${label}: ${parsed.servers.length} servers`);
        }
        const bad = parsed.servers.filter((s) =>
          !validServer(s)
        );
        if (bad.length > 0) problems.push(`${label}: invalid servers ${JSON.stringify(bad.slice(0, 3))}`);
        if (new Set(parsed.servers).size !== parsed.servers.length) problems.push(`${label}: duplicate servers`);
        if (!Number.isSafeInteger(parsed.version)) problems.push(`${label}: version ${parsed.version}`);
        if (mutation.kind === "clean" && clean) {
          if (parsed.version !== version) problems.push(`${label}: version ${parsed.version}, sent ${version}`);
          assert.deepEqual(parsed.servers, [...new Set(servers)], label);
        }
      }
      assert.deepEqual(problems, []);
      return Promise.resolve();
    }));
});

describe("fuzz: HashClient discovery from a mutating configuration endpoint", () => {
  const seed = harnessSeed(15_002);
  const rounds = Math.max(20, Math.floor(ITERATIONS / 10));
  it(`${rounds} refreshes of mutated configurations keep the ring whole (seed ${seed})`, () =>
    withSeed(seed, async () => {
      const rng = new Rng(seed);
      const inv = new Invariants("fuzz/discovery");
      const nodes: ScriptedServer[] = [];
      let reply: { bytes: Uint8Array; ending: Ending } = { bytes: new Uint8Array(), ending: "none" };
      await using endpoint = await startScriptedServer({
        onRequest(req, io) {
          if (req.command !== "config") return io.answer(req);
          if (reply.bytes.length > 0) io.send(reply.bytes);
          if (reply.ending === "close") io.hangUp();
          else if (reply.ending === "reset") io.reset();
        },
      });
      try {
        for (let i = 0; i < 3; i++) nodes.push(await startScriptedServer());
        const specs = nodes.map((n) => n.spec);
        let version = 1;
        reply = { bytes: latin1(entriesReply(version, specs.map(entryOf))), ending: "none" };
        const client = await HashClient.discover(endpoint.spec, {
          discoveryInterval: 3_600_000,
          timeout: TIMEOUT,
          connectTimeout: TIMEOUT,
          onDiscoveryError: () => {},
        });
        try {
          assert.deepEqual([...client.servers], specs);
          let applied = 0;
          for (let round = 0; round < rounds; round++) {
            const listed = specs.filter(() => rng.chance(0.6));
            if (listed.length === 0) listed.push(rng.pick(specs));
            const { text, clean } = configReply(rng, ++version, listed);
            const stream = latin1(text);
            const m = mutate(rng, stream, lineBytesOf(stream));
            reply = { bytes: m.bytes, ending: m.mutation.ending };
            const exact = clean && m.mutation.kind === "clean";
            const before = { servers: [...client.servers], version: client.configVersion };
            const outcome = await inv.call(`refresh (${m.mutation.kind})`, TIMEOUT, () => client.refreshServers());
            const after = { servers: [...client.servers], version: client.configVersion };
            const where = `round ${round} (${m.mutation.kind})`;
            if (after.servers.length === 0 || !after.servers.every(validServer)) {
              inv.violation("wrong", `${where}: servers ${JSON.stringify(after.servers)}`);
            }
            if (outcome.ok && outcome.value === true) applied++;
            // Refused: nothing changes; resolved false: the servers did not (the version may).
            const kept = outcome.ok
              ? JSON.stringify(after.servers) === JSON.stringify(before.servers)
              : JSON.stringify(after) === JSON.stringify(before);
            if ((!outcome.ok || outcome.value === false) && !kept) {
              inv.violation(
                "wrong",
                `${where}: refresh (${outcome.ok ? "false" : "refused"}) changed ${JSON.stringify(before)} to ${
                  JSON.stringify(after)
                }`,
              );
            }
            if (exact && outcome.ok) {
              if (after.version !== version || JSON.stringify(after.servers) !== JSON.stringify(listed)) {
                inv.violation(
                  "wrong",
                  `${where}: clean config ${version} ${listed} applied as ${JSON.stringify(after)}`,
                );
              }
            }
            // Calls through the ring: their own values or a MemcacheError.
            const mustWork = exact && outcome.ok;
            for (let j = 0; j < 4; j++) {
              const key = `d${round}x${j}`;
              const value = taggedValue(key, inv.serial());
              inv.issued(key, Number(value.split("|")[2]));
              const set = await inv.call(`set ${key}`, TIMEOUT, () => client.set(key, value));
              const get = await inv.call(`get ${key}`, TIMEOUT, () => client.get(key), (v) => inv.checkRead(key, v));
              if (mustWork && (!set.ok || !get.ok || get.value !== value)) {
                inv.violation("wrong", `${where}: ${key} not served after a clean config (${JSON.stringify(after)})`);
              }
            }
            // A clean config after any damage is applied (a retry allowed: the first may meet a closed connection).
            if (!exact) {
              reply = { bytes: latin1(entriesReply(++version, specs.map(entryOf))), ending: "none" };
              let ok = false;
              for (let t = 0; t < 3 && !ok; t++) {
                const o = await inv.call(`refresh (clean, try ${t})`, TIMEOUT, () => client.refreshServers());
                ok = o.ok;
              }
              if (!ok || client.configVersion !== version || client.servers.length !== specs.length) {
                inv.violation("wrong", `${where}: a clean config after it was not applied (${client.configVersion})`);
              }
            }
          }
          console.log(`# ${inv.summary()}; ${applied} configurations applied`);
        } finally {
          await client.close();
        }
      } finally {
        for (const node of nodes) await node[Symbol.asyncDispose]();
      }
      inv.assertClean();
      assert.ok(inv.report.ok > inv.report.calls / 2);
    }));
});

// Every failure above must be one of these.
void MemcacheError;
