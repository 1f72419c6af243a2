/**
 * The meta commands of `MemoryServer` (mg, ms, md, ma, me; mn is a line in
 * _memory_session.ts), as memcached 1.6.18's proto_text.c answers them:
 * flags are checked first (_meta_flag_preparse), then applied in the order
 * they were sent, so `t` before `T` shows the old TTL and after it the new.
 * 1.6.18 knows the flags b c f h k l O q s t u v N R T (mg), c C F I k O q
 * M T (ms), C I k O q T (md), c C D J k M N O q t T v (ma); any other is
 * `CLIENT_ERROR invalid flag` (`E` and `x` came in later versions).
 *
 * @module
 */
import { base64Decode, base64Encode } from "./_codec.ts";
import { parseI32, parseU32, parseU64 } from "./_codec.ts";
import { itemSize, type MemoryItem } from "./_store.ts";
import { Comm, type Session, Stored } from "./_types.ts";
import { addDelta, KEY_MAX, storeItem } from "./_text.ts";

/** memcached's MFLAG_MAX_OPT_LENGTH: tokens (with the terminal one) a meta command may have. */
const MAX_META_TOKENS = 20;
/** memcached's MFLAG_MAX_OPAQUE_LENGTH. */
const MAX_OPAQUE = 32;
const BAD_FORMAT = "CLIENT_ERROR bad command line format";
const EMPTY = "";

interface MetaFlags {
  key: string;
  keyBinary: boolean;
  locked: boolean;
  vivify: boolean;
  value: boolean;
  setStale: boolean;
  noUpdate: boolean;
  noReply: boolean;
  hasCas: boolean;
  newTtl: boolean;
  mode: string;
  exptime: number;
  autoviv: number;
  recache: number;
  clientFlags: number;
  reqCas: bigint;
  delta: bigint;
  initial: bigint;
}

/** memcached's _meta_flag_preparse: the flags, or the error text it ends with. */
function preparse(s: Session, tokens: string[], start: number, errstr: string): MetaFlags | string {
  const of: MetaFlags = {
    key: tokens[1],
    keyBinary: false,
    locked: false,
    vivify: false,
    value: false,
    setStale: false,
    noUpdate: false,
    noReply: false,
    hasCas: false,
    newTtl: false,
    mode: "",
    exptime: 0,
    autoviv: 0,
    recache: 0,
    clientFlags: 0,
    reqCas: 0n,
    delta: 1n,
    initial: 0n,
  };
  const seen = new Set<number>();
  let failed = false;
  const badToken = "CLIENT_ERROR bad token in command line format";
  for (let i = start; i < tokens.length; i++) {
    const token = tokens[i];
    const o = token.charCodeAt(0);
    if (o >= 127 || seen.has(o)) return "CLIENT_ERROR duplicate flag";
    seen.add(o);
    const arg = token.slice(1);
    switch (token[0]) {
      case "b": {
        const key = base64Decode(of.key);
        if (key === undefined) {
          errstr = "CLIENT_ERROR error decoding key";
          failed = true;
          of.key = "";
        } else of.key = key;
        of.keyBinary = true;
        break;
      }
      case "N":
      case "T":
      case "R": {
        of.locked = true;
        const t = parseI32(arg);
        if (t === undefined) {
          errstr = badToken;
          failed = true;
          break;
        }
        const when = s.store.realtime(t);
        if (token[0] === "N") {
          of.vivify = true;
          of.autoviv = when;
        } else if (token[0] === "T") {
          of.exptime = when;
          of.newTtl = true;
        } else of.recache = when;
        if (token[0] === "N") of.vivify = true;
        break;
      }
      case "l":
      case "h":
        of.locked = true;
        break;
      case "O":
      case "P":
      case "L":
      case "k":
      case "s":
      case "t":
      case "c":
      case "f":
        break;
      case "v":
        of.value = true;
        break;
      case "u":
        of.noUpdate = true;
        break;
      case "q":
        of.noReply = true;
        break;
      case "F": {
        const flags = parseU32(arg);
        if (flags === undefined) failed = true;
        else of.clientFlags = flags;
        break;
      }
      case "C": {
        const cas = parseU64(arg);
        if (cas === undefined) {
          errstr = badToken;
          failed = true;
        } else {
          of.reqCas = cas;
          of.hasCas = true;
        }
        break;
      }
      case "M":
        if (token.length !== 2) {
          errstr = "CLIENT_ERROR incorrect length for M token";
          failed = true;
        } else of.mode = token[1];
        break;
      case "J":
      case "D": {
        const n = parseU64(arg);
        if (n === undefined) {
          errstr = token[0] === "J"
            ? "CLIENT_ERROR invalid numeric initial value"
            : "CLIENT_ERROR invalid numeric delta value";
          failed = true;
        } else if (token[0] === "J") of.initial = n;
        else of.delta = n;
        break;
      }
      case "I":
        of.setStale = true;
        break;
      default:
        return "CLIENT_ERROR invalid flag";
    }
  }
  return failed ? errstr : of;
}

/** memcached's META_KEY: ` k<key>`, base64 and ` b` for binary keys. */
function metaKey(key: string, binary: boolean): string {
  return binary ? ` k${base64Encode(key)} b` : ` k${key}`;
}

function ttl(item: MemoryItem, now: number): string {
  return item.exptime === 0 ? "-1" : String((item.exptime - now) >>> 0);
}

/** The O and k flags every reply carries back; undefined after answering an over-long opaque. */
function opaqueAndKey(s: Session, tokens: string[], key: string, binary: boolean): string | undefined {
  let line = "";
  for (let i = 2; i < tokens.length; i++) {
    const token = tokens[i];
    if (token[0] === "O") {
      if (token.length > MAX_OPAQUE) {
        s.error("CLIENT_ERROR opaque token too long");
        return undefined;
      }
      line += " " + token;
    } else if (token[0] === "k") line += metaKey(key, binary);
  }
  return line;
}

/** mg: meta get. */
export function metaGet(s: Session, tokens: string[]): void {
  if (tokens[1].length > KEY_MAX) return s.error(BAD_FORMAT);
  if (tokens.length + 1 > MAX_META_TOKENS) return s.error("CLIENT_ERROR options flags are too long");
  const of = preparse(s, tokens, 2, BAD_FORMAT);
  if (typeof of === "string") return s.error(of);
  s.noreply = of.noReply;
  const store = s.store;
  const counters = store.counters;
  const key = of.key;
  let item = store.get(key, !of.locked && !of.noUpdate);
  let created = false;
  if (!item && of.vivify) {
    item = store.make(key, EMPTY, 0, 0); // not marked binary: memcached's vivify forgets the b flag
    if (store.link(item)) created = true;
    else item = undefined;
  }
  if (!item) {
    counters.get_misses++;
    counters.cmd_get++;
    const flags = opaqueAndKey(s, tokens, key, of.keyBinary);
    if (flags === undefined) return;
    return s.reply("EN" + flags);
  }
  const now = store.now();
  let line = of.value ? `VA ${item.value.length}` : "HD";
  let won = false;
  let ttlSet = false;
  for (let i = 2; i < tokens.length; i++) {
    const token = tokens[i];
    switch (token[0]) {
      case "T":
        ttlSet = true;
        item.exptime = of.exptime;
        break;
      case "N":
        if (created) {
          item.exptime = of.autoviv;
          won = true;
        }
        break;
      case "R":
        if (!item.tokenSent && !created && item.exptime !== 0 && item.exptime < of.recache) won = true;
        break;
      case "s":
        line += ` s${item.value.length}`;
        break;
      case "t":
        line += ` t${ttl(item, now)}`;
        break;
      case "c":
        line += ` c${item.cas}`;
        break;
      case "f":
        line += ` f${item.flags}`;
        break;
      case "l":
        line += ` l${(now - item.time) >>> 0}`;
        break;
      case "h":
        line += item.fetched ? " h1" : " h0";
        break;
      case "O":
        if (token.length > MAX_OPAQUE) return s.error("CLIENT_ERROR opaque token too long");
        line += " " + token;
        break;
      case "k":
        line += metaKey(item.key, item.keyBinary);
        break;
    }
  }
  if (item.tokenSent) line += " Z";
  if (item.stale) {
    line += " X";
    if (!item.tokenSent) won = true;
  }
  if (won) {
    line += " W";
    item.tokenSent = true;
  }
  const out = s.out;
  out.text(line);
  out.text("\r\n");
  if (of.value) {
    out.value(item.value);
    out.text("\r\n");
  }
  s.held.add(item);
  if (of.locked && !of.noUpdate) store.bump(item, now);
  if (ttlSet) {
    counters.cmd_touch++;
    counters.touch_hits++;
  } else {
    counters.get_hits++;
    counters.cmd_get++;
  }
}

/** ms: meta set. */
export function metaSet(s: Session, tokens: string[]): void {
  const store = s.store;
  if (tokens[1].length > KEY_MAX) return s.error(BAD_FORMAT);
  if (tokens.length + 1 === 3) return s.error(BAD_FORMAT);
  if (tokens.length + 1 > MAX_META_TOKENS) return s.error("CLIENT_ERROR options flags too long");
  let length = parseI32(tokens[2]);
  if (length === undefined || length < 0 || length > 0x7fffffff - 2) return s.error(BAD_FORMAT);
  const fail = (errstr: string) => {
    s.error(errstr);
    s.swallow(length! + 2);
  };
  const of = preparse(s, tokens, 3, BAD_FORMAT);
  if (typeof of === "string") return fail(of);
  s.noreply = of.noReply;
  s.lastCas = 0;
  const back: string[] = [];
  let errstr: string | undefined;
  for (let i = 2; i < tokens.length; i++) {
    const token = tokens[i];
    if (token[0] === "O") {
      if (token.length > MAX_OPAQUE) errstr = "CLIENT_ERROR opaque token too long";
      else back.push(token);
    } else if (token[0] === "k" || token[0] === "c") back.push(token[0]);
  }
  let comm: Comm;
  switch (of.mode) {
    case "":
    case "S":
      comm = Comm.Set;
      break;
    case "E":
      comm = Comm.Add;
      break;
    case "A":
      comm = Comm.Append;
      break;
    case "P":
      comm = Comm.Prepend;
      break;
    case "R":
      comm = Comm.Replace;
      break;
    default:
      return fail("CLIENT_ERROR invalid mode for ms M token");
  }
  if (of.hasCas && (comm === Comm.Set || comm === Comm.Replace)) comm = Comm.Cas;
  if (errstr) return fail(errstr);
  const size = itemSize(of.key.length, of.clientFlags, length);
  // The item is allocated now (memcached's item_alloc): the block it waits for counts against the budget.
  if (!store.sizeOk(size) || !store.reserve(size)) {
    if (!store.sizeOk(size)) {
      store.counters.store_too_large++;
      errstr = "SERVER_ERROR object too large for cache";
    } else {
      store.counters.store_no_memory++;
      errstr = "SERVER_ERROR out of memory storing object";
    }
    const old = store.get(of.key, false);
    if (old) store.unlink(old);
    return fail(errstr);
  }
  length = length | 0;
  const item = store.make(of.key, EMPTY, of.clientFlags, of.exptime);
  item.size = size;
  item.keyBinary = of.keyBinary;
  const noReply = of.noReply;
  s.startNread({
    comm,
    item,
    reqCas: of.reqCas,
    setStale: of.setStale && comm === Comm.Cas,
    meta: {
      finish(s, item, result) {
        if (result === Stored.Stored && noReply) return;
        let line = result === Stored.Stored
          ? "HD"
          : result === Stored.Exists
          ? "EX"
          : result === Stored.NotFound
          ? "NF"
          : "NS";
        for (const flag of back) {
          if (flag === "k") line += metaKey(item.key, item.keyBinary);
          else if (flag === "c") line += ` c${s.lastCas}`;
          else line += " " + flag;
        }
        s.out.text(line);
        s.out.text("\r\n");
      },
    },
  }, length);
}

/** md: meta delete. */
export function metaDelete(s: Session, tokens: string[]): void {
  if (tokens[1].length > KEY_MAX) return s.reply(BAD_FORMAT);
  if (tokens.length + 1 > MAX_META_TOKENS) return s.reply("CLIENT_ERROR options flags too long");
  const of = preparse(s, tokens, 2, BAD_FORMAT);
  if (typeof of === "string") return s.error("CLIENT_ERROR invalid or duplicate flag");
  s.noreply = of.noReply;
  const store = s.store;
  const flags = opaqueAndKey(s, tokens, of.key, of.keyBinary);
  if (flags === undefined) return;
  const item = store.get(of.key, false);
  let code: string;
  if (!item) {
    store.counters.delete_misses++;
    code = "NF";
  } else if (of.hasCas && BigInt(item.cas) !== of.reqCas) {
    store.counters.delete_misses++;
    code = "EX";
  } else {
    if (of.setStale) {
      if (of.newTtl) item.exptime = of.exptime;
      item.stale = true;
      item.tokenSent = false;
      item.cas = store.nextCas();
    } else {
      store.counters.delete_hits++;
      store.unlink(item);
    }
    if (s.noreply) return;
    code = "HD";
  }
  s.out.text(code + flags + "\r\n");
}

/** ma: meta arithmetic. */
export function metaArithmetic(s: Session, tokens: string[]): void {
  if (tokens[1].length > KEY_MAX) return s.reply(BAD_FORMAT);
  if (tokens.length + 1 > MAX_META_TOKENS) return s.reply("CLIENT_ERROR options flags too long");
  const of = preparse(s, tokens, 2, BAD_FORMAT);
  if (typeof of === "string") return s.error("CLIENT_ERROR invalid or duplicate flag");
  s.noreply = of.noReply;
  const store = s.store;
  let incr = true;
  switch (of.mode) {
    case "":
    case "I":
    case "+":
      break;
    case "D":
    case "-":
      incr = false;
      break;
    default:
      return s.error("CLIENT_ERROR invalid mode for ma M token");
  }
  const key = of.key;
  const result = addDelta(s, key, incr, of.delta, of.reqCas);
  let skip = false;
  let item: MemoryItem | undefined;
  let text = "";
  let line = "";
  let created = false;
  switch (result.kind) {
    case "ok":
      skip = s.noreply;
      item = result.item;
      text = result.text;
      break;
    case "non-numeric":
      return s.error("CLIENT_ERROR cannot increment or decrement non-numeric value");
    case "not-found":
      if (of.vivify) {
        text = of.initial.toString();
        const fresh = store.make(key, text, 0, 0);
        if (!store.sizeOk(fresh.size)) return s.error("SERVER_ERROR Out of memory allocating new item");
        if (storeItem(s, fresh, Comm.Add, 0n, false) === Stored.Stored) created = true;
        item = fresh;
      } else {
        if (incr) store.counters.incr_misses++;
        else store.counters.decr_misses++;
        line = "NF";
      }
      break;
    case "cas-mismatch":
      line = "EX";
      break;
  }
  if (item) {
    const now = store.now();
    line = of.value ? `VA ${text.length}` : "HD";
    for (let i = 2; i < tokens.length; i++) {
      const token = tokens[i];
      switch (token[0]) {
        case "c":
          line += ` c${item.cas}`;
          break;
        case "t":
          line += ` t${ttl(item, now)}`;
          break;
        case "T":
          item.exptime = of.exptime;
          break;
        case "N":
          if (created) item.exptime = of.autoviv;
          break;
        case "O":
          if (token.length > MAX_OPAQUE) return s.error("CLIENT_ERROR opaque token too long");
          line += " " + token;
          break;
        case "k":
          line += metaKey(key, of.keyBinary);
          break;
      }
    }
    if (of.value) line += "\r\n" + text;
  } else {
    const flags = opaqueAndKey(s, tokens, key, of.keyBinary);
    if (flags === undefined) return;
    line += flags;
  }
  if (!skip) s.out.text(line + "\r\n");
}

/** The slab class memcached would put an item of `size` bytes in (factor 1.25 from 96 bytes), for `me`. */
function slabClass(size: number): number {
  let chunk = 96;
  let id = 1;
  while (size > chunk && chunk < 524288) {
    chunk = Math.ceil((chunk * 1.25) / 8) * 8;
    id++;
  }
  return id;
}

/** me: meta debug. */
export function metaDebug(s: Session, tokens: string[]): void {
  if (tokens.length + 1 < 3 || tokens[1].length > KEY_MAX) return s.reply(BAD_FORMAT);
  let key = tokens[1];
  if (tokens.length + 1 >= 4 && tokens[2] === "b") {
    const decoded = base64Decode(key);
    if (decoded === undefined) return s.reply(BAD_FORMAT);
    key = decoded;
  }
  const store = s.store;
  const item = store.get(key, false);
  if (item) {
    const now = store.now();
    const shown = item.keyBinary ? base64Encode(item.key) : item.key;
    const exp = item.exptime === 0 ? -1 : (now - item.exptime) | 0;
    s.reply(
      `ME ${shown} exp=${exp} la=${(now - item.time) >>> 0} cas=${item.cas} fetch=${item.fetched ? "yes" : "no"} ` +
        `cls=${slabClass(item.size)} size=${item.size}`,
    );
  } else s.reply("EN");
  store.counters.cmd_meta++;
}
