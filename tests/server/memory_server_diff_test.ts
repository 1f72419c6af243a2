/**
 * Differential test: a seeded generator writes the same stream of commands
 * (text and meta, every flag, noreply and quiet mode, bad input, oversized
 * values, binary keys) to a spawned memcached 1.6.18 and to `MemoryServer`
 * over TCP, batch by batch, and the replies must be byte-identical.
 *
 * Keys come from a small pool so commands collide. cas values are compared
 * as they are (MemoryServer hands out the same sequence), and the generator
 * reuses the cas values memcached returned. Normalised before comparing,
 * because they depend on the second each server's clock ticks or on
 * memcached's internals:
 * - mg/ma `t` (TTL left) and mg `l` (seconds since access), unless `t-1`,
 *   also where a `k` flag's raw CR LF key puts them on the next line;
 * - `me`'s `exp=`, `la=` and `cls=` (slab class);
 * - `stats` values, except the command counters both must agree on
 *   (cmd_get, get_hits, ..., total_items); the stat names are compared.
 * Left out of the stream, being timing-dependent in memcached: delayed
 * flush_all (its background crawler decides what a later flush revives),
 * TTLs close to `R` windows, eviction (memcached evicts per slab class),
 * incr/decr/ma on items fetched earlier (memcached rewrites a result in
 * place only while no other thread holds the item: see `fresh`). Left out
 * as memcached bugs MemoryServer does not copy (see testing.ts): a delayed
 * `flush_all` serving items an earlier flush covered until the allocator
 * reclaims them, and incr/decr on a value of whitespace only or of 2^63
 * and more (strtoull, or the strchr after it, reads past the item into
 * memcached's memory). Over-long lines after other
 * commands make memcached hang up with an RST that may lose replies, so a
 * large data block starts its batch; commands may follow it. memcached reads
 * 16 KiB at a time, a data block to its exact end, and writes its answers
 * whenever its buffer holds no whole command; MemoryServer follows that
 * buffer (and the flushing after 20 commands per read, after get and mn),
 * which decides what an error may drop and which items mg still holds.
 * Batches of small commands stay below 16 KiB so that the socket hands
 * memcached each batch in one read.
 *
 * Seeds: each run replays the project's seed and the seeds random runs once
 * failed on (REGRESSION_SEEDS), then two random ones, a different pair each
 * run; each is printed in its test's name. `MEMKIT_SEED=<n>` runs that one
 * seed only (`random` for one random seed), `MEMKIT_DIFF_COUNT` sets the
 * commands per seed (20,000). A seed that fails joins REGRESSION_SEEDS with
 * its fix. A few fixed streams (`cases`) run first.
 */
import assert from "node:assert/strict";
import net from "node:net";
import process from "node:process";
import { Buffer } from "node:buffer";
import { describe, it } from "../_support/_harness.ts";
import { Rng } from "../hostile/_hostile.ts";
import { haveMemcached, startMemcached } from "../_support/_memcached.ts";
import { MemoryServer } from "../../testing.ts";
import { base64Decode } from "../../src/server/_codec.ts"; // only to track which key a `b` key names

const PROJECT_SEED = 20261203;
/**
 * Random seeds that found a difference (each fixed since): an ME line's
 * fields after a CR LF key (1180580596), an mg header's `t` after one
 * (1500876819 at command 22,477 of 100,000; 4228179699 at 47,493 with
 * flags between the key and `t`; 2538977170 with `HD k`, the key first).
 * They showed only when the two servers' clocks ticked between their
 * replies; they stay as more streams.
 * (3218629373 found, at command 95,944, a line split by the runtime's read
 * after a 1 MiB block: now one of the fixed `cases`.)
 */
const REGRESSION_SEEDS = [1180580596, 1500876819, 4228179699, 2538977170];
const randomSeed = () => (Math.random() * 2 ** 32) >>> 0;
const seedText = process.env.MEMKIT_SEED ?? process.env.MEMKIT_DIFF_SEED;
const SEEDS = seedText === undefined
  ? [PROJECT_SEED, ...REGRESSION_SEEDS, randomSeed(), randomSeed()]
  : [seedText === "random" ? randomSeed() : Number(seedText)];
const COUNT = Number(process.env.MEMKIT_DIFF_COUNT ?? 20_000);

/** One connection that sends a batch and reads until the batch's end marker (or the close). */
class Wire {
  #socket: net.Socket;
  #data = Buffer.alloc(0);
  #closed = false;
  #wake: (() => void) | undefined;
  #gone: Promise<void>;

  private constructor(socket: net.Socket) {
    this.#socket = socket;
    socket.on("data", (chunk: Buffer) => {
      this.#data = Buffer.concat([this.#data, chunk]);
      this.#wake?.();
    });
    socket.on("error", () => {});
    this.#gone = new Promise((resolve) =>
      socket.on("close", () => {
        this.#closed = true;
        this.#wake?.();
        resolve();
      })
    );
  }

  static open(port: number): Promise<Wire> {
    return new Promise((resolve, reject) => {
      const socket = net.connect(port, "127.0.0.1", () => {
        socket.off("error", reject);
        resolve(new Wire(socket));
      });
      socket.on("error", reject);
    });
  }

  /** Writes `bytes`; resolves with what came back once it ends with `end` (if given) or the server hung up. */
  async exchange(bytes: Uint8Array, end: string | undefined): Promise<{ reply: string; closed: boolean }> {
    this.#data = Buffer.alloc(0);
    this.#socket.write(bytes);
    const deadline = Date.now() + 15_000;
    const tail = end === undefined ? undefined : Buffer.from(end, "latin1");
    while (!this.#closed && !(tail && this.#data.subarray(-tail.length).equals(tail))) {
      if (Date.now() > deadline) return { reply: this.#data.toString("latin1") + "[TIMEOUT]", closed: false };
      let timer: ReturnType<typeof setTimeout> | undefined;
      await new Promise<void>((resolve) => {
        this.#wake = resolve;
        timer = setTimeout(resolve, 100);
      });
      clearTimeout(timer);
    }
    this.#wake = undefined;
    return { reply: this.#data.toString("latin1"), closed: this.#closed };
  }

  get closed(): boolean {
    return this.#closed;
  }

  async close(): Promise<void> {
    this.#socket.destroy();
    await this.#gone;
  }
}

/** Stats both servers must agree on exactly; other values depend on timing or memcached's machinery. */
const EXACT_STATS = new Set([
  "version",
  "cmd_get",
  "cmd_set",
  "cmd_flush",
  "cmd_touch",
  "get_hits",
  "get_misses",
  "delete_misses",
  "delete_hits",
  "incr_misses",
  "incr_hits",
  "decr_misses",
  "decr_hits",
  "cas_misses",
  "cas_hits",
  "cas_badval",
  "touch_hits",
  "touch_misses",
  "store_too_large",
  "total_items",
]);

function normalise(reply: string): string {
  return reply
    .replace(/^STAT (\S+) ([^\r\n]*)\r$/gm, (line, name) => (EXACT_STATS.has(name) ? line : `STAT ${name} *\r`))
    // A `k` flag echoes a binary key raw (memcached 1.6.18): a key of CR LF
    // puts the flags after it on the next "line", which is part of the header.
    .replace(
      /^(?:VA|HD|EN|NF|NS|EX)(?=[ \r])(?:[^\r\n]* k\r\n)?[^\r\n]*/gm,
      (line) => line.replace(/ t\d+/g, " t*").replace(/ l\d+/g, " l*"),
    )
    // The key of an ME line is printed raw: a binary key may hold CR LF, so the fields may sit on a later "line".
    .replace(
      /^ME [\s\S]*? exp=-?\d+ la=-?\d+ cas=\d+ fetch=\w+ cls=\d+ size=\d+\r$/gm,
      (line) => line.replace(/ (exp|la|cls)=-?\d+(?= )/g, " $1=*"),
    );
}

/** A value memcached's strtoull reads as 2^63 or more (leading spaces skipped, as strtoull does). */
function atLeast2To63(value: string): boolean {
  const digits = value.replace(/^[ \t]+/, "").replace(/^\+/, "");
  if (!/^\d+$/.test(digits)) return false;
  const n = digits.replace(/^0+(?=\d)/, "");
  return n.length > 19 || (n.length === 19 && n >= "9223372036854775808");
}

/**
 * The command stream: batches of commands, each ending with `mg __end__ O<n>`
 * (a miss whose `EN O<n>` marks the end of the replies) unless it closes the
 * connection; a CRLF before it absorbs a byte a short data block may take.
 */
class Generator {
  readonly random: () => number;
  /** cas values memcached returned lately. */
  readonly cas: string[] = ["1", "2"];
  readonly now = Math.floor(Date.now() / 1000);
  /**
   * Keys incr/decr/ma may use in the current batch: stored anew by a
   * well-formed set, deleted or flushed in this batch, and not fetched since.
   * memcached rewrites an incr/decr result in place only while nothing else
   * holds the item, and its LRU maintainer thread holds fetched items for a
   * while (asynchronous bumps): on any other key the padding of the result,
   * total_items and later `h` flags would depend on that thread's timing.
   */
  readonly fresh = new Set<string>();
  /**
   * Fresh keys that may hold a number of 2^63 or more: memcached's
   * safe_strtoull then looks for a '-' with strchr, which reads on past the
   * item into memcached's memory until a NUL, and answers "non-numeric" when
   * it meets one there. Not defined, so not sent: incr/decr/ma skip these.
   */
  readonly big = new Set<string>();

  constructor(seed: number) {
    const rng = new Rng(seed);
    this.random = () => rng.next();
  }

  int(n: number): number {
    return Math.floor(this.random() * n);
  }
  pick<T>(items: readonly T[]): T {
    return items[this.int(items.length)];
  }
  chance(p: number): boolean {
    return this.random() < p;
  }

  key(): string {
    if (this.chance(0.01)) return "x".repeat(251); // too long
    if (this.chance(0.01)) return "y".repeat(250); // longest allowed
    return this.pick(["a", "b", "c", "d", "n1", "n2", "k:with:colons", "ünï", "tab\tkey"]);
  }

  /** A key for the `b` flag: base64 of a pool key or of raw bytes, sometimes malformed. */
  binaryKey(): string {
    const raw = this.pick(["a", "b", "n1", "\x00\x01 \xff", "k y", "\r\n"]);
    const encoded = btoa(raw);
    if (this.chance(0.05)) return this.pick(["!!!", "a", "A===", "====", "YQ", "Y Q==".replace(" ", "*")]);
    return encoded;
  }

  value(): string {
    const roll = this.random();
    if (roll < 0.3) {
      return this.pick([
        "0",
        "1",
        "5",
        "42",
        "99",
        "100",
        "18446744073709551615",
        "18446744073709551614",
        "-1",
        " 12",
        "12abc",
        "007",
        "9999999999",
        "",
        "12 34",
        "+5",
      ]);
    }
    const alphabet = "abcdefghijklmnopqrstuvwxyz0123456789 \r\n\t";
    const length = this.pick([0, 1, 2, 3, 8, 20, 100, 1000, 5000]);
    let s = "";
    for (let i = 0; i < length; i++) s += alphabet[this.int(alphabet.length)];
    // A value of whitespace only makes incr read on past it into memcached's memory (strtoull skips
    // whitespace, the CRLF included): what it finds there is not defined.
    return /^\s+$/.test(s) ? s + "w" : s;
  }

  exptime(): string {
    return this.pick([
      "0",
      "0",
      "0",
      "100",
      "1000",
      "-1",
      String(this.now + 2000),
      "1000000000",
      "2592001",
      "abc",
      "4294967296",
    ]);
  }

  flags(): string {
    return this.pick(["0", "0", "1", "16", "65535", "4294967295", "4294967296", "-1", "x", "007"]);
  }

  noreply(): string {
    return this.chance(0.15) ? " noreply" : "";
  }

  casValue(): string {
    if (this.chance(0.7) && this.cas.length) return this.pick(this.cas.slice(-8));
    return this.pick(["0", "1", "999999", "18446744073709551615", "abc", "-1"]);
  }

  storage(): string {
    const cmd = this.pick(["set", "set", "add", "replace", "append", "prepend", "cas"]);
    const value = this.value();
    let declared = value.length;
    let data = value;
    const roll = this.random();
    if (roll < 0.03) declared += 1; // data shorter than declared: reads into the next line
    else if (roll < 0.06) declared = Math.max(0, declared - 1);
    else if (roll < 0.07) return `${cmd} ${this.key()} 0 0 -1\r\n`;
    else if (roll < 0.08) {
      declared = this.pick([1048515, 1048516, 1048576, 2_000_000]); // around the item size limit
      data = "z".repeat(declared);
    }
    const cas = cmd === "cas" ? ` ${this.casValue()}` : "";
    const key = declared > 8000 ? this.pick(["a", "b", "tab\tkey"]) : this.key();
    // A large block after a refused command line would be read as one over-long line, and memcached
    // hangs up on that with an RST that may take its last replies with it: large blocks get valid lines.
    const large = declared > 8000;
    const flags = large ? "0" : this.flags();
    const exptime = large ? "0" : this.exptime();
    if (
      cmd === "set" && declared === value.length && data === value && /^\d+$/.test(flags) && /^-?\d+$/.test(exptime)
    ) {
      this.fresh.add(key);
      if (atLeast2To63(value)) this.big.add(key);
      else this.big.delete(key);
    }
    return `${cmd} ${key} ${flags} ${exptime} ${declared}${cas}${this.noreply()}\r\n${data}\r\n`;
  }

  fetched(key: string | undefined): void {
    if (key !== undefined) this.fresh.delete(key);
  }

  /** A key safe for incr/decr/ma (see `fresh` and `big`), or undefined. */
  arithmeticKey(key: string): string | undefined {
    return this.fresh.has(key) && !this.big.has(key) ? key : undefined;
  }

  /** A key that incr/decr/ma left (or may have left) holding 2^63 or more (see `big`). */
  madeBig(key: string | undefined, args: string): void {
    if (key !== undefined && args.includes("18446744073709551615")) this.big.add(key);
  }

  /** A key deleted or flushed: a later incr finds no number at all. */
  emptied(key: string): void {
    this.fresh.add(key);
    this.big.delete(key);
  }

  /** The key memcached decodes from a `b` key (its decoder skips what is not base64). */
  decoded(key: string): string | undefined {
    return base64Decode(key);
  }

  retrieval(): string {
    const cmd = this.pick(["get", "get", "gets", "gat", "gats"]);
    const list = Array.from({ length: 1 + this.int(4) }, () => this.key());
    list.forEach((key) => this.fetched(key));
    const keys = list.join(" ");
    const touch = cmd.startsWith("gat") ? ` ${this.exptime()}` : "";
    return `${cmd}${touch} ${keys}\r\n`;
  }

  metaFlags(pool: string[], extra: () => string[]): string[] {
    const flags: string[] = [];
    const add = (flag: string) => {
      if (!flags.some((f) => f[0] === flag[0])) flags.push(flag);
    };
    const n = this.int(6);
    for (let i = 0; i < n; i++) add(this.pick(pool));
    for (const flag of extra()) add(flag);
    if (this.chance(0.02) && flags.length) flags.push(this.pick(flags)); // a duplicate
    if (this.chance(0.02)) flags.push(this.pick(["E5", "x", "z", "\x7f", "P", "L"])); // unknown to 1.6.18, or ignored
    // shuffled: flags apply in the order sent
    for (let i = flags.length - 1; i > 0; i--) {
      const j = this.int(i + 1);
      [flags[i], flags[j]] = [flags[j], flags[i]];
    }
    return flags;
  }

  opaque(): string {
    return this.chance(0.03) ? "O" + "o".repeat(40) : `O${this.int(1000)}`;
  }

  meta(): string {
    const useBinary = this.chance(0.1);
    const key = useBinary ? this.binaryKey() : this.key();
    const b = useBinary ? ["b"] : [];
    const q = () => (this.chance(0.2) ? ["q"] : []);
    switch (this.pick(["mg", "mg", "mg", "ms", "ms", "md", "ma", "me"])) {
      case "mg": {
        const flags = this.metaFlags(
          ["v", "c", "f", "s", "t", "k", "h", "l", "u", "v", "c"],
          () => [
            ...b,
            ...q(),
            ...(this.chance(0.3) ? [this.opaque()] : []),
            ...(this.chance(0.15) ? [`N${this.pick(["0", "30", "1000", "-1", "x"])}`] : []),
            ...(this.chance(0.15) ? [`R${this.pick(["30", "500", "5000", ""])}`] : []),
            ...(this.chance(0.1) ? [`T${this.pick(["0", "100", "1000", "-1"])}`] : []),
          ],
        );
        this.fetched(useBinary ? this.decoded(key) : key);
        return `mg ${key}${flags.map((f) => " " + f).join("")}\r\n`;
      }
      case "ms": {
        const value = this.value();
        let declared = String(value.length);
        if (this.chance(0.03)) declared = this.pick(["-1", "x", String(value.length + 1)]);
        if (this.chance(0.02)) return `ms ${key}\r\n`;
        const flags = this.metaFlags(["c", "k", "c", "I"], () => [
          ...b,
          ...q(),
          ...(this.chance(0.3) ? [this.opaque()] : []),
          ...(this.chance(0.3) ? [`T${this.pick(["0", "100", "1000", "-1", "x"])}`] : []),
          ...(this.chance(0.3) ? [`F${this.flags()}`] : []),
          ...(this.chance(0.2) ? [`C${this.casValue()}`] : []),
          ...(this.chance(0.3) ? [`M${this.pick(["S", "E", "A", "P", "R", "X", "SS", ""])}`] : []),
        ]);
        return `ms ${key} ${declared}${flags.map((f) => " " + f).join("")}\r\n${value}\r\n`;
      }
      case "md": {
        const flags = this.metaFlags(["k", "I"], () => [
          ...b,
          ...q(),
          ...(this.chance(0.3) ? [this.opaque()] : []),
          ...(this.chance(0.2) ? [`C${this.casValue()}`] : []),
          ...(this.chance(0.2) ? [`T${this.pick(["100", "-1", "x"])}`] : []),
        ]);
        return `md ${key}${flags.map((f) => " " + f).join("")}\r\n`;
      }
      case "ma": {
        const target = (useBinary ? this.decoded(key) : key) ?? "";
        if (this.arithmeticKey(target) === undefined) return "version\r\n";
        const flags = this.metaFlags(["v", "c", "t", "k"], () => [
          ...b,
          ...q(),
          ...(this.chance(0.3) ? [this.opaque()] : []),
          ...(this.chance(0.2) ? [`N${this.pick(["0", "100", "-1"])}`] : []),
          ...(this.chance(0.2) ? [`J${this.pick(["0", "10", "18446744073709551615", "x"])}`] : []),
          ...(this.chance(0.3) ? [`D${this.pick(["1", "5", "18446744073709551615", "0", "x"])}`] : []),
          ...(this.chance(0.2) ? [`M${this.pick(["I", "+", "D", "-", "X"])}`] : []),
          ...(this.chance(0.1) ? [`C${this.casValue()}`] : []),
          ...(this.chance(0.1) ? [`T${this.pick(["100", "-1"])}`] : []),
        ]);
        this.madeBig(target, flags.join(" "));
        return `ma ${key}${flags.map((f) => " " + f).join("")}\r\n`;
      }
      default:
        return useBinary ? `me ${key} b\r\n` : `me ${key}\r\n`;
    }
  }

  other(): string {
    return this.pick([
      () => {
        const key = this.arithmeticKey(this.key());
        const delta = this.pick(["1", "5", "0", "100", "18446744073709551615", "-1", "x", "99999999999"]);
        if (!key) return "version\r\n";
        const command = this.pick(["incr", "decr"]);
        if (command === "incr") this.madeBig(key, delta);
        return `${command} ${key} ${delta}${this.noreply()}\r\n`;
      },
      () => {
        const key = this.key();
        this.fetched(key);
        return `touch ${key} ${this.exptime()}${this.noreply()}\r\n`;
      },
      () => {
        const key = this.key();
        const tail = this.pick(["", "", " 0", " noreply", " 0 noreply", " 5", " x y"]);
        if (tail !== " 5" && tail !== " x y") this.emptied(key);
        return `delete ${key}${tail}\r\n`;
      },
      () => {
        const tail = this.pick(["", " 0", " noreply", " 0 noreply", " x", " -1"]);
        if (tail !== " x") {
          for (const key of ["a", "b", "c", "d", "n1", "n2", "k:with:colons", "ünï", "tab\tkey"]) this.emptied(key);
        }
        return `flush_all${tail}\r\n`;
      },
      () => `verbosity ${this.pick(["0", "1", "x"])}${this.noreply()}\r\n`,
      () => "version\r\n",
      () => this.pick(["stats\r\n", "stats\r\n", "stats bogus\r\n", "stats detail\r\n", "stats reset\r\n"]),
      () => `cache_memlimit ${this.pick(["64", "100", "5", "x", "2000000000"])}\r\n`,
      () => "mn\r\n",
      () =>
        this.pick([
          "bogus\r\n",
          "\r\n",
          "x\r\n",
          "get\r\n",
          "gets\r\n",
          "set k\r\n",
          "set k 0 0\r\n",
          "incr\r\n",
          "   \r\n",
          "get a\x00b\r\n",
          "mg\r\n",
          "ms\r\n",
          "md\r\n",
          "ma\r\n",
          "mz a\r\n",
          "me\r\n",
          "delete\r\n",
          "touch a\r\n",
          "shutdown\r\n",
          "GET\r\n",
          "\n",
          "get " + "n1 ".repeat(30) + "\r\n",
          "mg a " + "v ".repeat(25) + "\r\n",
          "flush_all 1 2 3\r\n",
          "verbosity\r\n",
          "cas a 0 0 1\r\nx\r\n",
        ]),
    ])();
  }

  #batches = 0;

  /**
   * A batch: its bytes, the reply's last line if the connection is expected
   * to survive it, and how many generated commands it holds (the end marker
   * not counted).
   */
  batch(): [string, string | undefined, number] {
    const id = this.#batches++;
    this.fresh.clear();
    this.big.clear();
    const end = `mg __end__ O${id}\r\n`;
    const roll = this.random();
    if (roll < 0.004) return ["quit\r\n", undefined, 1];
    if (roll < 0.006) return [this.pick(["GET / HTTP/1.1\r\n", "x".repeat(3000)]), undefined, 1];
    if (roll < 0.01) return [`get ${this.pick(["a", "b"])} ${"q".repeat(251)} c\r\n${end}`, `EN O${id}\r\n`, 1];
    // memcached reads 16 KiB at a time and answers per read: batches stay below that, but for a
    // large value, which ends its batch.
    const n = 1 + this.int(6);
    let text = "";
    let count = 0;
    let large = 0; // the length of a large block's command, when one starts the batch
    for (let i = 0; i < n && text.length - large < 8000; i++) {
      const kind = this.random();
      const command = kind < 0.3
        ? this.storage()
        : kind < 0.5
        ? this.retrieval()
        : kind < 0.8
        ? this.meta()
        : this.other();
      // A large block starts its batch: after a command that took a byte too many it would be one
      // over-long line, on which memcached hangs up with an RST that takes the replies with it.
      // Commands may follow it: memcached reads the block to its end, then the next 16 KiB.
      if (command.length > 8000) {
        if (text !== "") break;
        text = command;
        large = command.length;
        count = 1;
        continue;
      }
      text += command;
      count++;
    }
    return [`${text}\r\n${end}`, `EN O${id}\r\n`, count];
  }

  /** Remembers the cas values memcached returned. */
  learn(reply: string): void {
    for (const m of reply.matchAll(/^VALUE \S+ \d+ \d+ (\d+)\r$/gm)) this.cas.push(m[1]);
    for (const m of reply.matchAll(/ c(\d+)/g)) this.cas.push(m[1]);
    if (this.cas.length > 64) this.cas.splice(0, this.cas.length - 64);
  }
}

const latin1 = (s: string) => Buffer.from(s, "latin1");

/** Opens a connection to each server; `exchange` sends the same bytes to both and compares what comes back. */
async function pair(realPort: number, ourPort: number) {
  let [real, ours] = await Promise.all([Wire.open(realPort), Wire.open(ourPort)]);
  return {
    /** Sends `text` to both; the replies (normalised) and whether each hung up. */
    async exchange(text: string, end: string | undefined) {
      const bytes = latin1(text);
      const [a, b] = await Promise.all([real.exchange(bytes, end), ours.exchange(bytes, end)]);
      if (a.closed) {
        await Promise.all([real.close(), ours.close()]);
        [real, ours] = await Promise.all([Wire.open(realPort), Wire.open(ourPort)]);
      }
      return { a, b };
    },
    close: () => Promise.all([real.close(), ours.close()]),
  };
}

/**
 * Fixed streams, each sent in one write: where memcached's 16 KiB read
 * buffer shows (a data block longer than the buffer is read to its end and
 * the replies before it are written out, so a later error cannot drop
 * them), and over-long lines.
 */
const cases: [string, string, string | undefined][] = [
  ...[16000, 17000, 20000].map((n): [string, string, string | undefined] => [
    `set, a ${n}-byte block, then a get of a 251-byte key`,
    `set a 0 0 ${n}\r\n${"v".repeat(n)}\r\nget ${"k".repeat(251)}\r\nmg __end__ Oe\r\n`,
    "EN Oe\r\n",
  ]),
  // A line that may run past the end of one of the runtime's reads (64 KiB
  // on Node) right after a block: memcached reads the block to its end, then
  // the whole rest at once, so the get's error still drops the mg's answer.
  // Seed 3218629373 split it there; whether a run does depends on its reads.
  [
    "set, a 1,048,516-byte block, then an mg and a get of a 300-byte key across the 1 MiB mark",
    `set a 0 0 1048516 noreply\r\n${"z".repeat(1048516)}\r\nmg c c\r\nget ${"x".repeat(300)}\r\n` +
    "mg __end__ Oe\r\n",
    "EN Oe\r\n",
  ],
  [
    "ms with a bad mode: its 20,000-byte block swallowed, then a get of a 251-byte key",
    `ms a 20000 MZ\r\n${"v".repeat(20000)}\r\nget ${"k".repeat(251)}\r\nmg __end__ Oe\r\n`,
    "EN Oe\r\n",
  ],
  [
    "ms too large: its block swallowed, then a get of a 251-byte key",
    `ms a 2000000 T0\r\n${"v".repeat(2000000)}\r\nget ${"k".repeat(251)}\r\nmg __end__ Oe\r\n`,
    "EN Oe\r\n",
  ],
  [
    "set too large: answered after its block, then a version",
    `set a 0 0 2000000\r\n${"v".repeat(2000000)}\r\nversion\r\nmg __end__ Oe\r\n`,
    "EN Oe\r\n",
  ],
  [
    "a 20,000-byte block, then 40 gets and a get of a 251-byte key",
    `set a 0 0 20000\r\n${"v".repeat(20000)}\r\n${"get b\r\n".repeat(40)}get ${"k".repeat(251)}\r\n` +
    "mg __end__ Oe\r\n",
    "EN Oe\r\n",
  ],
  ["a 20,000-byte line (not a get) with its newline, in one write", `version ${"x".repeat(20000)}\r\n`, undefined],
  ["a 3,000-byte get line", `get ${"k ".repeat(1500)}\r\nmg __end__ Oe\r\n`, "EN Oe\r\n"],
  [
    "a 20,000-byte get line of hits",
    `set b 0 0 1\r\nb\r\nget ${"b ".repeat(10000)}\r\nmg __end__ Oe\r\n`,
    "EN Oe\r\n",
  ],
  [
    "a 20,000-byte get line with a 300-byte key near its end",
    `get ${"b ".repeat(10000)}${"k".repeat(300)} b\r\nmg __end__ Oe\r\n`,
    "EN Oe\r\n",
  ],
  ["a 30,000-byte key", `gets ${"k".repeat(30000)}\r\nmg __end__ Oe\r\n`, "EN Oe\r\n"],
];

describe("the differential's normaliser", () => {
  it("ignores clock fields after a raw CR LF key (mg header, me line) and still compares the rest", () => {
    // Replies a second apart on the two servers' clocks (seeds 1500876819, 4228179699 and 2538977170 met these).
    const a = "VA 0 O115 k\r\n c8092 t4294967232 W\r\n\r\nVA 0 k\r\n t4294967233 W\r\n\r\nHD t5 l3\r\n" +
      "HD k\r\n c12388 t4294967231 s0 W\r\nEND\r\n";
    const b = "VA 0 O115 k\r\n c8092 t4294967231 W\r\n\r\nVA 0 k\r\n t4294967232 W\r\n\r\nHD t6 l2\r\n" +
      "HD k\r\n c12388 t4294967230 s0 W\r\nEND\r\n";
    assert.equal(normalise(a), normalise(b));
    assert.notEqual(normalise(a), normalise(a.replace("c8092", "c8093")), "a cas after the key is still compared");
    assert.notEqual(normalise(a), normalise(a.replace(" W\r\n\r\nVA", " Z\r\n\r\nVA")), "flags are compared");
    const me = "ME \r\n exp=-1 la=3 cas=7 fetch=no cls=1 size=60\r\n";
    assert.equal(normalise(me), normalise(me.replace("exp=-1 la=3", "exp=-2 la=4").replace("cls=1", "cls=2")));
    assert.notEqual(normalise(me), normalise(me.replace("cas=7", "cas=8")));
  });
});

describe("MemoryServer: fixed streams against memcached 1.6.18", () => {
  it("large blocks and long lines: byte-identical replies, and the same hang-ups", async () => {
    await using memcached = await startMemcached();
    await using server = new MemoryServer();
    const wires = await pair(memcached.port, (await server.listen()).port);
    try {
      for (const [name, text, end] of cases) {
        const { a, b } = await wires.exchange(text, end);
        assert.equal(normalise(b.reply), normalise(a.reply), name);
        assert.equal(b.closed, a.closed, `${name}: hung up`);
      }
    } finally {
      await wires.close();
    }
  }, { skip: haveMemcached() ? false : "memcached is not installed" });
});

describe("MemoryServer: differential against memcached 1.6.18", () => {
  for (const SEED of SEEDS) {
    it(
      `${COUNT} generated commands, seed ${SEED} (MEMKIT_SEED=${SEED} replays it): byte-identical replies`,
      async () => {
        await using memcached = await startMemcached();
        await using server = new MemoryServer();
        const { port } = await server.listen();
        const generator = new Generator(SEED);
        let real = await Wire.open(memcached.port);
        let ours = await Wire.open(port);
        const history: string[] = [];
        let sent = 0;
        let batches = 0;
        try {
          while (sent < COUNT) {
            const [text, end, count] = generator.batch();
            const bytes = latin1(text);
            const [a, b] = await Promise.all([real.exchange(bytes, end), ours.exchange(bytes, end)]);
            history.push(JSON.stringify(text).slice(0, 600));
            if (history.length > 6) history.shift();
            const expected = normalise(a.reply);
            const actual = normalise(b.reply);
            if (expected !== actual || a.closed !== b.closed) {
              let at = 0;
              while (at < expected.length && expected[at] === actual[at]) at++;
              const around = (t: string) => JSON.stringify(t.slice(Math.max(0, at - 300), at + 300));
              assert.fail(
                `seed ${SEED}, batch ${batches}: first difference at ${at}:\nmemcached:     ${around(expected)}\n` +
                  `MemoryServer:  ${around(actual)}\nbatch: ${JSON.stringify(text).slice(0, 400)} ... ${
                    JSON.stringify(text).slice(-700)
                  }\n` +
                  `seed ${SEED}, batch ${batches} (after ${sent} commands) differs.\nlast batches:\n${
                    history.join("\n")
                  }\n` +
                  `memcached (${a.closed ? "closed" : "open"}): ${JSON.stringify(a.reply).slice(0, 3000)}\n` +
                  `MemoryServer (${b.closed ? "closed" : "open"}): ${JSON.stringify(b.reply).slice(0, 3000)}`,
              );
            }
            generator.learn(a.reply);
            if (process.env.MEMKIT_DIFF_DEBUG && !a.closed) {
              const probe = latin1("stats\r\nmg __end__ Oprobe\r\n");
              const [x, y] = await Promise.all([
                real.exchange(probe, "EN Oprobe\r\n"),
                ours.exchange(probe, "EN Oprobe\r\n"),
              ]);
              if (normalise(x.reply) !== normalise(y.reply)) {
                const xs = normalise(x.reply).split("\n"), ys = normalise(y.reply).split("\n");
                const diff = xs.map((l, i) => l === ys[i] ? "" : `${l} | ${ys[i]}`).filter(Boolean).join("\n");
                assert.fail(
                  `stats differ after batch ${batches}:\n${history.slice(-2).join("\n")}\n${diff}\n` +
                    `replies: ${JSON.stringify(a.reply)}\n${JSON.stringify(b.reply)}`,
                );
              }
            }
            sent += count;
            batches++;
            if (a.closed) {
              await Promise.all([real.close(), ours.close()]);
              [real, ours] = await Promise.all([Wire.open(memcached.port), Wire.open(port)]);
            }
          }
        } finally {
          await Promise.all([real.close(), ours.close()]);
        }
        assert.ok(sent >= COUNT);
      },
      { skip: haveMemcached() ? false : "memcached is not installed" },
    );
  }
});
