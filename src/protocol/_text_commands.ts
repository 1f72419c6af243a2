/**
 * The text protocol's commands, encoded into an {@linkcode Outbox}: storage
 * (values framed by their byte count), retrieval, and the rest. Keys arrive
 * validated (see _keys.ts); numbers are validated by the caller. Pure.
 *
 * @module
 */

import { type Outbox, utf8Length } from "./_outbox.ts";

const encoder = new TextEncoder();
const EMPTY = new Uint8Array(0);
const SP = 32;

const NOREPLY = " noreply\r\n";
const CRLF = "\r\n";

/** Strings up to this many code units are written straight into the outbox; longer ones encoded first. */
const DIRECT_TEXT_MAX = 16384;

/**
 * `set|add|replace|append|prepend|cas <key> <flags> <exptime> <bytes> [<cas>] [noreply]` + data.
 * A string value is sent UTF-8 encoded.
 */
export function encodeStore(
  out: Outbox,
  command: string,
  key: string,
  flags: number,
  exptime: number,
  data: Uint8Array | string,
  noreply: boolean,
  cas?: string,
): void {
  // A short string goes into the outbox as it is: no buffer of its own.
  const direct = typeof data === "string" && data.length <= DIRECT_TEXT_MAX;
  const value = typeof data !== "string" ? data : direct ? EMPTY : encoder.encode(data);
  // Piece by piece: no string is built per request.
  out.text(command);
  out.byte(SP);
  out.text(key);
  out.byte(SP);
  out.int(flags);
  out.byte(SP);
  out.int(exptime);
  out.byte(SP);
  out.int(direct ? utf8Length(data as string) : value.length);
  if (cas !== undefined) {
    out.byte(SP);
    out.text(cas);
  }
  out.text(noreply ? NOREPLY : CRLF);
  if (direct) out.text(data as string);
  else out.bytes(value);
  out.text(CRLF);
}

/** `get|gets <key>*` and `gat|gats <exptime> <key>*` */
export function encodeRetrieve(out: Outbox, command: string, keys: readonly string[], exptime?: number): void {
  out.text(command);
  if (exptime !== undefined) {
    out.byte(SP);
    out.int(exptime);
  }
  for (let i = 0; i < keys.length; i++) {
    out.byte(SP);
    out.text(keys[i]);
  }
  out.text(CRLF);
}

/** `delete <key> [noreply]` */
export function encodeDelete(out: Outbox, key: string, noreply: boolean): void {
  out.text(`delete ${key}${noreply ? NOREPLY : CRLF}`);
}

/** `incr|decr <key> <value> [noreply]` */
export function encodeArithmetic(
  out: Outbox,
  command: "incr" | "decr",
  key: string,
  delta: string,
  noreply: boolean,
): void {
  out.text(`${command} ${key} ${delta}${noreply ? NOREPLY : CRLF}`);
}

/** `touch <key> <exptime> [noreply]` */
export function encodeTouch(out: Outbox, key: string, exptime: number, noreply: boolean): void {
  out.text(`touch ${key} ${exptime}${noreply ? NOREPLY : CRLF}`);
}

/** `stats [<args>]` */
export function encodeStats(out: Outbox, args: readonly string[]): void {
  out.text(args.length ? `stats ${args.join(" ")}\r\n` : "stats\r\n");
}

/** `version` */
export function encodeVersion(out: Outbox): void {
  out.text("version\r\n");
}

/** `flush_all [<delay>] [noreply]` */
export function encodeFlushAll(out: Outbox, delay: number, noreply: boolean): void {
  out.text(`flush_all ${delay}${noreply ? NOREPLY : CRLF}`);
}

/** `cache_memlimit <megabytes> [noreply]` */
export function encodeCacheMemlimit(out: Outbox, megabytes: number, noreply: boolean): void {
  out.text(`cache_memlimit ${megabytes}${noreply ? NOREPLY : CRLF}`);
}

/** `verbosity <level> [noreply]` */
export function encodeVerbosity(out: Outbox, level: number, noreply: boolean): void {
  out.text(`verbosity ${level}${noreply ? NOREPLY : CRLF}`);
}

/** `shutdown [graceful]` */
export function encodeShutdown(out: Outbox, graceful: boolean): void {
  out.text(graceful ? "shutdown graceful\r\n" : "shutdown\r\n");
}

/** `quit` */
export function encodeQuit(out: Outbox): void {
  out.text("quit\r\n");
}

/** A caller-given command line, sent as is plus `\r\n`. */
export function encodeRaw(out: Outbox, command: Uint8Array): void {
  out.bytes(command);
  out.text(CRLF);
}
