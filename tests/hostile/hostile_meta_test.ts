// The scripted misbehaving server (tests/hostile/_hostile_server.ts) on the meta
// commands and getOrSet, against Client, PooledClient and HashClient: a
// `VA` to `ms`, `HD` with a foreign opaque, an `MN` before the hits of a
// quiet batch, garbage, a hang-up in the middle of a `VA` block, silence.
// What the script does not twist is answered by memcached in memory
// (tests/hostile/_hostile_meta.ts), byte for byte. Each case checks the ledger:
// every call settles within its timeout + 100 ms, with a MemcacheError or
// its own right value (values name their key), nothing queued behind a bad
// reply gets another's, and the client works again after.
import assert from "node:assert/strict";
import { describe, it } from "../_support/_harness.ts";
import { MemcacheError, MemcacheTimeoutError, MemcacheUnexpectedCloseError, type MetaResult } from "../../mod.ts";
import { readTag, taggedValue } from "./_hostile.ts";
import {
  type AnyClient,
  CLASSES,
  type ScriptedIo,
  type ScriptedRequest,
  type ScriptedServer,
  startScriptedServer,
} from "./_hostile_server.ts";
import { Invariants, unlessStarved } from "./_hostile_ledger.ts";
import { MemoryAnswers } from "./_hostile_meta.ts";

const TIMEOUT = 1000;
/** getOrSet is an `mg`, the loader and an `ms`: two requests, each with its timeout. */
const GET_OR_SET_TIMEOUT = 2 * TIMEOUT;

/** What is wrong with `value` as `key`'s (a miss is fine). */
function own(key: string, value: unknown): string | undefined {
  if (value === undefined || value === null) return undefined;
  const tag = readTag(value);
  return tag?.key === key ? undefined : `${key} got ${JSON.stringify(String(value).slice(0, 60))}`;
}

/**
 * A script: `twist` may answer a request wrongly (returning true), the
 * rest is answered correctly by `answers`.
 */
type Twist = (req: ScriptedRequest, io: ScriptedIo, answers: MemoryAnswers) => boolean;

/** The pipelined calls queued behind the bad reply: metaGet of m<i> and incr of c<i>, each its own or an error. */
function followers(inv: Invariants, c: AnyClient, n: number): Promise<unknown>[] {
  const calls: Promise<unknown>[] = [];
  for (let i = 0; i < n; i++) {
    const key = `m${i}`;
    calls.push(inv.call(`metaGet ${key}`, TIMEOUT, () => c.metaGet(key), (r) => own(key, r.value)));
    calls.push(inv.call(`incr c${i}`, TIMEOUT, () => c.incr(`c${i}`, 1), (v) => {
      return v === 1000 * i + 1 || v === null ? undefined : `incr c${i} gave ${String(v)}`;
    }));
  }
  return calls;
}

/** A fresh call works and gives its own value (tried again only when it timed out on a starved process). */
async function recovers(inv: Invariants, c: AnyClient, answers: MemoryAnswers): Promise<void> {
  answers.set("after", taggedValue("after", 1));
  const outcome = await unlessStarved(
    () =>
      inv.call(
        "metaGet after",
        TIMEOUT,
        () => c.metaGet("after"),
        (r) => own("after", r.value) ?? (r.hit ? undefined : "a miss"),
      ),
    (error) => error instanceof MemcacheTimeoutError,
  );
  assert.ok(outcome.ok, `the client did not recover: ${(outcome as { error?: unknown }).error}`);
}

function eachClass(
  name: string,
  script: () => Twist,
  body: (inv: Invariants, c: AnyClient, answers: MemoryAnswers, server: ScriptedServer) => Promise<void>,
): void {
  for (const cls of CLASSES) {
    it(`${cls.name}: ${name}`, async () => {
      const answers = new MemoryAnswers();
      for (let i = 0; i < 6; i++) answers.set(`m${i}`, taggedValue(`m${i}`, 1));
      for (let i = 0; i < 6; i++) answers.set(`c${i}`, String(1000 * i), 2);
      const twist = script();
      await using server = await startScriptedServer({
        onRequest(req, io) {
          if (!twist(req, io, answers)) answers.answer(req, io);
        },
      });
      const inv = new Invariants(`${cls.name}: ${name}`);
      const client = cls.make(server.spec, { timeout: TIMEOUT, connectTimeout: TIMEOUT });
      try {
        await body(inv, client, answers, server);
        await recovers(inv, client, answers);
      } finally {
        await client.close();
      }
      inv.assertClean();
    });
  }
}

/**
 * A script (made afresh for each class) that twists the first request
 * `match` accepts: `send` replaces its reply (the store still applies the
 * request). With `silent`, that connection answers nothing more: a server
 * gone quiet, not one that skips a reply.
 */
function once(
  match: (req: ScriptedRequest) => boolean,
  send: (io: ScriptedIo) => void,
  options: { silent?: boolean } = {},
): () => Twist {
  return () => {
    let done = false;
    let quiet = -1;
    return (req, io, answers) => {
      if (io.id === quiet) return true;
      if (done || !match(req)) return false;
      done = true;
      answers.reply(req, io.id);
      send(io);
      if (options.silent) quiet = io.id;
      return true;
    };
  };
}

const isMeta = (command: string, key: string) => (req: ScriptedRequest) =>
  req.command === command && req.args[0] === key;

/** A call that must fail with a MemcacheError (and settle in time). */
async function mustFail(inv: Invariants, what: string, timeout: number, run: () => Promise<unknown>): Promise<void> {
  const outcome = await inv.call(what, timeout, run, (v) => `${what} resolved with ${JSON.stringify(v)}`);
  if (!outcome.ok) assert.ok(outcome.error instanceof MemcacheError, `${what}: ${String(outcome.error)}`);
}

describe("hostile server: meta replies that do not fit their request", () => {
  eachClass(
    "a VA block to ms: the metaSet fails, nothing behind it takes another's reply",
    once(
      isMeta("ms", "x"),
      (io) => io.send("VA 4 t-1\r\nm1m1\r\n"),
    ),
    async (inv, c) => {
      await Promise.all([
        mustFail(inv, "metaSet x", TIMEOUT, () => c.metaSet("x", taggedValue("x", 2))),
        ...followers(inv, c, 4),
      ]);
    },
  );

  eachClass(
    "HD with a foreign opaque to mg",
    once(isMeta("mg", "m0"), (io) => io.send("HD O999\r\n")),
    async (inv, c) => {
      const get = inv.call("metaGet m0 O1", TIMEOUT, () => c.metaGet("m0", { opaque: "1" }), (r: MetaResult) => {
        return r.opaque === "1" ? own("m0", r.value) : `metaGet m0 O1 resolved with opaque ${r.opaque}`;
      });
      await Promise.all([get, ...followers(inv, c, 4)]);
    },
  );

  eachClass(
    "a quiet batch's hit tagged with an opaque out of its range",
    once(
      (req) => req.command === "mg" && req.args[0] === "m0" && req.args.includes("q"),
      (io) => io.send(`VA ${taggedValue("m5", 1).length} O7\r\n${taggedValue("m5", 1)}\r\n`),
    ),
    async (inv, c) => {
      await Promise.all([
        mustFail(inv, "metaGetMany m0 m1 m2", TIMEOUT, () => c.metaGetMany(["m0", "m1", "m2"])),
        ...followers(inv, c, 4),
      ]);
    },
  );

  eachClass(
    "MN before a quiet batch's hits: the hits that follow are nobody's",
    once(
      (req) => req.command === "mg" && req.args[0] === "m0" && req.args.includes("q"),
      (io) => io.send(`MN\r\nVA ${taggedValue("m0", 1).length} O0\r\n${taggedValue("m0", 1)}\r\n`),
    ),
    async (inv, c) => {
      const many = inv.call("metaGetMany m0 m1", TIMEOUT, () => c.metaGetMany(["m0", "m1"]), (found) => {
        for (const [k, r] of found) if (own(String(k), r.value)) return own(String(k), r.value);
        return undefined;
      });
      await Promise.all([many, ...followers(inv, c, 4)]);
    },
  );

  eachClass(
    "garbage to mg",
    once(
      isMeta("mg", "m0"),
      (io) => io.send(Uint8Array.from({ length: 300 }, (_, i) => (i * 7919 + 13) % 256)),
    ),
    async (inv, c) => {
      await Promise.all([mustFail(inv, "metaGet m0", TIMEOUT, () => c.metaGet("m0")), ...followers(inv, c, 3)]);
    },
  );

  eachClass("a VA block to md", once(isMeta("md", "m0"), (io) => io.send("VA 2\r\nzz\r\n")), async (inv, c) => {
    await Promise.all([mustFail(inv, "metaDelete m0", TIMEOUT, () => c.metaDelete("m0")), ...followers(inv, c, 3)]);
  });

  eachClass(
    "EN to ma, then the counter's reply",
    once(isMeta("ma", "c0"), (io) => io.send("EN\r\nHD\r\n")),
    async (inv, c) => {
      const ma = inv.call("metaArithmetic c0", TIMEOUT, () => c.metaArithmetic("c0", { delta: 1 }), (r) => {
        return r.value === undefined || r.value === 1 ? undefined : `metaArithmetic c0 gave ${String(r.value)}`;
      });
      await Promise.all([ma, ...followers(inv, c, 3)]);
    },
  );
});

describe("hostile server: meta hang-ups and silence", () => {
  eachClass(
    "a hang-up in the middle of a VA block",
    once(isMeta("mg", "m0"), (io) => {
      io.send("VA 100 f16\r\nv|m0|1|");
      io.hangUp();
    }),
    async (inv, c) => {
      await Promise.all([mustFail(inv, "metaGet m0", TIMEOUT, () => c.metaGet("m0")), ...followers(inv, c, 3)]);
    },
  );

  eachClass(
    "a reset in the middle of a quiet batch",
    once(
      (req) => req.command === "mg" && req.args.includes("q"),
      (io) => {
        io.send(`VA ${taggedValue("m0", 1).length} O0\r\n${taggedValue("m0", 1)}\r\n`);
        io.reset();
      },
    ),
    async (inv, c) => {
      await Promise.all([
        mustFail(inv, "metaGetMany m0 m1", TIMEOUT, () => c.metaGetMany(["m0", "m1"])),
        ...followers(inv, c, 3),
      ]);
    },
  );

  eachClass(
    "silence to mg: the calls time out in time",
    once(isMeta("mg", "m0"), () => {}, { silent: true }),
    async (inv, c) => {
      await Promise.all([mustFail(inv, "metaGet m0", TIMEOUT, () => c.metaGet("m0")), ...followers(inv, c, 2)]);
    },
  );
});

describe("hostile server: getOrSet answered wrongly", () => {
  /** getOrSet of `key`: its own loader's value (or the cached one) or a MemcacheError, in time. */
  const getOrSet = (inv: Invariants, c: AnyClient, key: string, lease: boolean) => {
    let loads = 0;
    return inv.call(
      `getOrSet ${key}`,
      GET_OR_SET_TIMEOUT,
      () =>
        c.getOrSet(key, (k) => (loads++, taggedValue(k, 100 + loads)), {
          ttl: 60,
          recacheWithin: 30,
          lease: lease ? { ttl: 5, wait: 100 } : false,
          onError: () => {},
        }),
      (v) => own(key, v) ?? (v === undefined || v === null ? `getOrSet ${key} gave ${String(v)}` : undefined),
    );
  };
  for (const lease of [false, true]) {
    const label = lease ? " (lease)" : "";
    eachClass(
      `garbage to getOrSet's mg${label}`,
      once(isMeta("mg", "g"), (io) => io.send("BOGUS 1 2 3\r\n")),
      async (inv, c) => {
        await Promise.all([getOrSet(inv, c, "g", lease), ...followers(inv, c, 3)]);
      },
    );
    eachClass(
      `a VA block to getOrSet's ms${label}`,
      once(isMeta("ms", "g"), (io) => io.send("VA 2\r\nzz\r\n")),
      async (inv, c) => {
        await Promise.all([getOrSet(inv, c, "g", lease), ...followers(inv, c, 3)]);
      },
    );
    eachClass(
      `another key's value to getOrSet's mg${label}`,
      once(isMeta("mg", "g"), (io) => {
        const value = taggedValue("m1", 1);
        io.send(`VA ${value.length} f16 t-1 c1 kbTE=\r\n${value}\r\n`);
      }),
      async (inv, c) => {
        await Promise.all([getOrSet(inv, c, "g", lease), ...followers(inv, c, 3)]);
      },
    );
    eachClass(
      `silence to getOrSet's mg${label}`,
      once(isMeta("mg", "g"), () => {}, { silent: true }),
      async (inv, c) => {
        await Promise.all([getOrSet(inv, c, "g", lease), ...followers(inv, c, 2)]);
      },
    );
    eachClass(
      `a hang-up mid-VA to getOrSet's mg${label}`,
      once(isMeta("mg", "g"), (io) => {
        io.send("VA 50 f16 t-1\r\nv|g|");
        io.hangUp();
      }),
      async (inv, c) => {
        await Promise.all([getOrSet(inv, c, "g", lease), ...followers(inv, c, 2)]);
      },
    );
  }
});

describe("hostile server: a server that answered meta closes on a meta command", () => {
  for (const cls of CLASSES) {
    it(`${cls.name}: the call fails as a lost connection, not as a server without meta (a restart, an outage behind a proxy)`, async () => {
      const answers = new MemoryAnswers();
      answers.set("m0", taggedValue("m0", 1));
      await using server = await startScriptedServer({
        onRequest(req, io) {
          // Connections after the first: the server is going away (or a proxy lost its backend) and hangs up.
          if (io.id >= 1 && req.command === "mg") return io.hangUp();
          answers.answer(req, io);
        },
      });
      const client = cls.make(server.spec, { timeout: TIMEOUT, connectTimeout: TIMEOUT });
      try {
        assert.equal((await client.metaGet("m0")).hit, true);
        await client.close(); // the next call opens a new connection
        const error = await client.metaGet("m0").then(() => null, (e: unknown) => e);
        assert.ok(error instanceof MemcacheUnexpectedCloseError, `${(error as Error)?.name}: ${error}`);
      } finally {
        await client.close();
      }
    });
  }
});
