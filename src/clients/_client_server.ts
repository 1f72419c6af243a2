/**
 * {@linkcode Client}'s server commands over its {@linkcode ClientCore}:
 * stats, cache_memlimit, version, verbosity, flush_all, shutdown, and the
 * request of rawCommand.
 *
 * @module
 */

import type { Connection } from "../connection/_connection.ts";
import {
  encodeCacheMemlimit,
  encodeFlushAll,
  encodeRaw,
  encodeShutdown,
  encodeStats,
  encodeVerbosity,
  encodeVersion,
} from "../protocol/_text_commands.ts";
import { EXPECT_LINE, EXPECT_RAW, EXPECT_STATS, WITH_DATA } from "../protocol/_reply_parser.ts";
import { convertStats } from "../protocol/_stats.ts";
import { checkExpire, checkInt, checkToken } from "../protocol/_validate.ts";
import { MemcacheIllegalInputError, MemcacheUnexpectedCloseError } from "../errors.ts";
import { inputs, noreplyOf, unexpected } from "./_client_core.ts";
import { simple } from "./_client_store.ts";
import type { ClientCore } from "./_client_types.ts";

const encoder = new TextEncoder();

/** Client.stats: `stats` with `args`, converted as pymemcache's STAT_TYPES. */
export function stats(core: ClientCore, args: string[]): Promise<Record<string, string | number | boolean>> {
  inputs(core, "stats", () => args.forEach((a) => checkToken("stats argument", a)));
  return core.connection().request(
    "stats",
    EXPECT_STATS,
    (out) => encodeStats(out, args),
    undefined,
    undefined,
    (reply) => {
      if (reply.type !== "stats") throw unexpected(reply);
      return convertStats(reply.entries);
    },
  );
}

/** Client.cacheMemlimit. */
export async function cacheMemlimit(core: ClientCore, megabytes: number): Promise<true> {
  const mb = inputs(core, "cache_memlimit", () => checkInt("megabytes", megabytes, 0, 2147483647));
  await simple(core, "cache_memlimit", false, (out, nr) => encodeCacheMemlimit(out, mb, nr), "OK");
  return true;
}

/** Client.version. */
export function version(core: ClientCore): Promise<string> {
  return core.connection().request("version", EXPECT_LINE, encodeVersion, undefined, undefined, (reply) => {
    if (reply.type === "line" && reply.text.startsWith("VERSION ")) return reply.text.slice(8);
    throw unexpected(reply);
  });
}

/** Client.verbosity. */
export async function verbosity(core: ClientCore, level: number, options: { noreply?: boolean }): Promise<true> {
  const [lvl, noreply] = inputs(
    core,
    "verbosity",
    () => [checkInt("level", level, 0, 2147483647), noreplyOf(core, options.noreply)] as const,
  );
  await simple(core, "verbosity", noreply, (out, nr) => encodeVerbosity(out, lvl, nr), "OK");
  return true;
}

/** Client.flushAll. */
export function flushAll(core: ClientCore, delay: number, options: { noreply?: boolean }): Promise<boolean> {
  const [seconds, noreply] = inputs(
    core,
    "flush_all",
    () => [checkExpire(delay), noreplyOf(core, options.noreply)] as const,
  );
  return simple(core, "flush_all", noreply, (out, nr) => encodeFlushAll(out, seconds, nr), "OK");
}

/** Client.shutdown: resolves once the server closed the connection. */
export async function shutdown(core: ClientCore, graceful: boolean): Promise<void> {
  const conn = core.connection();
  try {
    await conn.request(
      "shutdown",
      EXPECT_LINE,
      (out) => encodeShutdown(out, graceful),
      undefined,
      undefined,
      (reply) => {
        throw unexpected(reply);
      },
    );
  } catch (error) {
    if (error instanceof MemcacheUnexpectedCloseError) return;
    throw error;
  }
}

/**
 * A smaller bound than rawCommand's 64 MiB for the raw replies of some
 * internal clients (auto discovery's endpoint): past it the read stops.
 */
export const rawReplyLimits: WeakMap<object, number> = new WeakMap();

/** Client.rawCommand, on a connection `open` makes for it alone, closed afterwards. */
export async function raw(
  core: ClientCore,
  open: () => Connection,
  command: string | Uint8Array,
  endTokens: string | Uint8Array,
  maxReply?: number,
): Promise<Uint8Array> {
  const line = typeof command === "string" ? encoder.encode(command) : command;
  const end = typeof endTokens === "string" ? encoder.encode(endTokens) : endTokens;
  if (end.length === 0) {
    throw new MemcacheIllegalInputError("endTokens must not be empty", { server: core.server, command: "raw" });
  }
  const conn = open();
  if (maxReply !== undefined) conn.maxRawReply = maxReply;
  try {
    return await conn.request(
      "raw",
      EXPECT_RAW | WITH_DATA,
      (out) => encodeRaw(out, line),
      undefined,
      end,
      (reply) => {
        if (reply.type !== "raw") throw unexpected(reply);
        return reply.bytes;
      },
    );
  } finally {
    await conn.close();
  }
}
