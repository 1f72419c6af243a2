/**
 * Regenerates tests/data/ketama_libmemcached.json: where libmemcached
 * itself places a fixed key set with weighted ketama, for several server
 * lists. Needs gcc and Debian's libmemcached-dev (not needed to run tests):
 *
 *   deno run --allow-all tests/tools/gen_ketama_table.ts
 *
 * It compiles tests/tools/ketama_table.c into a temporary directory, runs
 * it once per server list, and writes the table the tests read.
 */
import { execFileSync } from "node:child_process";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

const here = dirname(fileURLToPath(import.meta.url));

/** Server lists, in the HashClient spec syntax (unix sockets as "unix:/path"). */
const configs: Record<string, string[]> = {
  "one server": ["127.0.0.1:11211"],
  "two, default and other port": ["127.0.0.1:11211", "127.0.0.1:11212"],
  "three on 11211": ["10.0.0.1:11211", "10.0.0.2:11211", "10.0.0.3:11211"],
  "three on 11211 without the second": ["10.0.0.1:11211", "10.0.0.3:11211"],
  "five loopback ports": Array.from({ length: 5 }, (_, i) => `127.0.0.1:${20001 + i}`),
  "mixed names, IPv6 and a unix socket": [
    "cache-a.example:11211",
    "cache-b.example:11311",
    "[::1]:11211",
    "[fe80::1]:22122",
    "unix:/tmp/memcached.sock",
  ],
  "ten servers": Array.from({ length: 10 }, (_, i) => `192.168.1.${10 + i}:11211`),
  // 25 equal servers get 156 points each, not 160: libmemcached's float rounding
  "twenty-five servers (156 points each)": Array.from({ length: 25 }, (_, i) => `10.1.0.${i + 1}:${11211 + (i % 3)}`),
};

/** A deterministic key set: plain, long, punctuated and non-ASCII keys. */
function keys(): string[] {
  let seed = 12345;
  const next = () => (seed = (Math.imul(seed, 1103515245) + 12345) >>> 0);
  const alphabet = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789:_-./|#";
  const out: string[] = [];
  for (let i = 0; i < 1000; i++) out.push(`key${i}`);
  for (let i = 0; i < 700; i++) {
    const length = 1 + (next() % 60);
    out.push(Array.from({ length }, () => alphabet[next() % alphabet.length]).join(""));
  }
  for (let i = 0; i < 50; i++) out.push(`user:${i}:` + "x".repeat(200 + (i % 40)));
  const unicode = ["ключ", "键", "clé", "😀", "ü", "日本語キー", "Ελληνικά"];
  for (let i = 0; i < 250; i++) out.push(`${unicode[i % unicode.length]}-${i}`);
  return out;
}

/** The argument ketama_table takes for a spec: host:port (IPv6 unbracketed) or a path. */
function cArgument(spec: string): string {
  if (spec.startsWith("unix:")) return spec.slice(5);
  const bracket = /^\[(.+)\]:(\d+)$/.exec(spec);
  return bracket ? `${bracket[1]}:${bracket[2]}` : spec;
}

const dir = mkdtempSync(join(tmpdir(), "memkit-ketama-"));
try {
  const bin = join(dir, "ketama_table");
  const flags = execFileSync("pkg-config", ["--cflags", "--libs", "libmemcached"], { encoding: "utf8" }).trim().split(
    /\s+/,
  );
  execFileSync("gcc", ["-O2", "-Wall", "-o", bin, join(here, "ketama_table.c"), ...flags], { stdio: "inherit" });
  const version = execFileSync("pkg-config", ["--modversion", "libmemcached"], { encoding: "utf8" }).trim();
  const keyList = keys();
  const input = keyList.join("\n") + "\n";
  const placements: Record<string, { servers: string[]; server: string }> = {};
  for (const [name, servers] of Object.entries(configs)) {
    const output = execFileSync(bin, servers.map(cArgument), { input, encoding: "utf8" });
    const server = output.trim().split("\n").map(Number);
    if (server.length !== keyList.length) {
      throw new Error(`${name}: ${server.length} placements for ${keyList.length} keys`);
    }
    placements[name] = { servers, server: server.join(",") };
  }
  const table = {
    generator: "tests/tools/gen_ketama_table.ts + tests/tools/ketama_table.c",
    libmemcached: version,
    behavior: "MEMCACHED_BEHAVIOR_KETAMA_WEIGHTED",
    format:
      "keys: one string, keys joined by newlines; server: the index into servers of each key's server, comma-separated",
    keys: keyList.join("\n"),
    placements,
  };
  const out = join(here, "..", "data", "ketama_libmemcached.json");
  writeFileSync(out, JSON.stringify(table, null, 2) + "\n"); // the layout deno fmt keeps
  console.log(
    `wrote ${out}: ${Object.keys(configs).length} server lists x ${keyList.length} keys (libmemcached ${version})`,
  );
} finally {
  rmSync(dir, { recursive: true, force: true });
}
