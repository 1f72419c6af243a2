/**
 * Meta replies as pure code: a reply line parsed by flag letter, never by
 * position (the server may reorder return flags), and the result a caller
 * gets from it. The commands and their options are in _meta.ts.
 *
 * @module
 */

import type { MetaKey, MetaLine, MetaResult, MetaStatus } from "./_meta.ts";

// ---- parsing

const SP = 32;
const MINUS = 45;
const code = (s: string) => (s.charCodeAt(0) << 8) | s.charCodeAt(1);
const HD = code("HD");
const VA = code("VA");
const EN = code("EN");
const NF = code("NF");
const NS = code("NS");
const EX = code("EX");
const MN = code("MN");

/** An unsigned decimal in `buf[start, end)`; -1 if it is not one (or over 15 digits). */
function uint(buf: Uint8Array, start: number, end: number): number {
  if (start >= end || end - start > 15) return -1;
  let n = 0;
  for (let i = start; i < end; i++) {
    const d = buf[i] - 48;
    if (d < 0 || d > 9) return -1;
    n = n * 10 + d;
  }
  return n;
}

const utf8 = new TextDecoder();

/** Token text: ASCII by hand, anything else (a UTF-8 key) decoded. */
function ascii(buf: Uint8Array, start: number, end: number): string {
  let s = "";
  for (let i = start; i < end; i++) {
    if (buf[i] > 127) return utf8.decode(buf.subarray(start, end));
    s += String.fromCharCode(buf[i]);
  }
  return s;
}

/**
 * Parses a meta reply line, `buf[start, end)` without its CRLF:
 * `<status>[ <datalen>]( <flag>)*`. Returns null for a line that is not a
 * well-formed meta reply (error lines included: the caller classifies those
 * first). Return flags are read by their letter; unknown letters are skipped.
 */
export function parseMetaLine(buf: Uint8Array, start: number, end: number): MetaLine | null {
  if (end - start < 2 || (end - start > 2 && buf[start + 2] !== SP)) return null;
  let status: MetaStatus;
  switch ((buf[start] << 8) | buf[start + 1]) {
    case VA:
      status = "VA";
      break;
    case HD:
      status = "HD";
      break;
    case EN:
      status = "EN";
      break;
    case NF:
      status = "NF";
      break;
    case NS:
      status = "NS";
      break;
    case EX:
      status = "EX";
      break;
    case MN:
      status = "MN";
      break;
    default:
      return null;
  }
  const line: MetaLine = { type: "meta", status, dataLength: -1, win: false, stale: false, winnerExists: false };
  let i = start + 2;
  let needLength = status === "VA";
  while (i < end) {
    if (buf[i] === SP) {
      i++;
      continue;
    }
    let j = i + 1;
    while (j < end && buf[j] !== SP) j++;
    if (needLength) {
      const n = uint(buf, i, j);
      if (n < 0) return null;
      line.dataLength = n;
      needLength = false;
      i = j;
      continue;
    }
    const t = i + 1; // the token after the letter
    switch (buf[i]) {
      case 99: { // c
        if (j - t < 1 || j - t > 20) return null;
        for (let p = t; p < j; p++) if (buf[p] < 48 || buf[p] > 57) return null;
        line.cas = ascii(buf, t, j);
        break;
      }
      case 102: { // f
        const n = uint(buf, t, j);
        if (n < 0 || n > 0xffffffff) return null;
        line.flags = n;
        break;
      }
      case 116: { // t
        const never = j - t === 2 && buf[t] === MINUS && buf[t + 1] === 49; // "-1": no expiry
        const n = never ? -1 : uint(buf, t, j);
        if (n < 0 && !never) return null;
        line.ttl = n;
        break;
      }
      case 115: { // s
        const n = uint(buf, t, j);
        if (n < 0) return null;
        line.size = n;
        break;
      }
      case 108: { // l
        const n = uint(buf, t, j);
        if (n < 0) return null;
        line.lastAccess = n;
        break;
      }
      case 104: { // h
        if (j - t !== 1 || (buf[t] !== 48 && buf[t] !== 49)) return null;
        line.hitBefore = buf[t] === 49;
        break;
      }
      case 79: // O
        line.opaque = ascii(buf, t, j);
        break;
      case 107: // k
        line.key = ascii(buf, t, j);
        break;
      case 87: // W
        line.win = true;
        break;
      case 88: // X
        line.stale = true;
        break;
      case 90: // Z
        line.winnerExists = true;
        break;
        // b (the returned key is base64) and letters of later versions: nothing to read.
    }
    i = j;
  }
  if (needLength) return null;
  return line;
}

// ---- results

/** A result with what `line` carries but the value (and `key` when the caller asked for it). */
export function metaResult(line: MetaLine, key: MetaKey | undefined): MetaResult {
  const status = line.status;
  const result: MetaResult = {
    status,
    hit: status === "HD" || status === "VA",
    win: line.win,
    stale: line.stale,
    winnerExists: line.winnerExists,
  };
  if (line.cas !== undefined) result.cas = line.cas;
  if (line.ttl !== undefined) result.ttl = line.ttl;
  if (line.size !== undefined) result.size = line.size;
  if (line.lastAccess !== undefined) result.lastAccess = line.lastAccess;
  if (line.hitBefore !== undefined) result.hitBefore = line.hitBefore;
  if (line.flags !== undefined) result.flags = line.flags;
  if (line.opaque !== undefined) result.opaque = line.opaque;
  if (key !== undefined) result.key = key;
  return result;
}

/** The line a quiet command's MN stands for when nothing else came: success. */
export const QUIET_SUCCESS: MetaLine = {
  type: "meta",
  status: "HD",
  dataLength: -1,
  win: false,
  stale: false,
  winnerExists: false,
};

/** An `ma` value: decimal digits, as `number` or, above 2^53-1, `bigint`; undefined if not digits. */
export function parseCounterValue(bytes: Uint8Array): number | bigint | undefined {
  if (bytes.length === 0 || bytes.length > 20) return undefined;
  for (let i = 0; i < bytes.length; i++) if (bytes[i] < 48 || bytes[i] > 57) return undefined;
  const text = ascii(bytes, 0, bytes.length);
  const n = Number(text);
  return Number.isSafeInteger(n) ? n : BigInt(text);
}
