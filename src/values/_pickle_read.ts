/**
 * A pickle reader that builds data and never runs code: protocols 0 to 5,
 * for the values Python's memcached clients store (`None`, `bool`, `int`,
 * `float`, `str`, `bytes`, `bytearray`, `list`, `tuple`, `dict`, `set`,
 * `frozenset`).
 *
 * Pickles are programs for a small stack machine; this one runs only the
 * opcodes that push or assemble those values. The only callables `REDUCE`
 * may call are the ones Python's own pickler uses for these types:
 * `_codecs.encode` (bytes in protocols 0–2) and `bytes`, `bytearray`, `set`,
 * `frozenset` under `builtins` or `__builtin__`. Every other global, and the
 * opcodes that build objects or reach outside the pickle (`BUILD`, `INST`,
 * `OBJ`, `NEWOBJ`, `NEWOBJ_EX`, persistent ids, extension codes,
 * out-of-band buffers), fail with {@linkcode MemcachePickleError} naming it.
 *
 * Bounds, for hostile input: the machine is a loop, not a recursion (nesting
 * depth costs no stack); every length is checked against the bytes left
 * before anything is allocated; text integers are limited to 4300 digits as
 * Python's `int()` is; memo indexes that were never stored fail. Work and
 * memory are linear in the pickle's length n: each opcode allocates in
 * proportion to the bytes it reads, except the copies `REDUCE` makes
 * (`set(list)`, `bytes(...)`, `_codecs.encode(str)`), which a memo `GET`
 * could repeat for two bytes each; those are limited to 2n + 1024 items in
 * all (a pickle Python writes copies at most n). Each opcode's argument is
 * read in one pass over its bytes (src/values/_pickle_args.ts: no backtracking
 * regular expression, no per-character string building), and every text
 * argument ends at the first newline, which the reader then moves past, so
 * no byte is scanned more than twice.
 *
 * This file is the machine (the loop, the stack, the memo); the argument
 * decoders are in src/values/_pickle_args.ts, the opcode table and the calls
 * `REDUCE` may make in src/values/_pickle_ops.ts.
 *
 * @module
 */

import {
  ascii,
  decimal,
  eol,
  fail,
  floatArg,
  longBytes,
  MemcachePickleError,
  quotedString,
  rawUnicodeEscape,
  smallDecimal,
  utf8,
} from "./_pickle_args.ts";
import { callGlobal, global, PyGlobal, sizeOf, unsupported } from "./_pickle_ops.ts";

export { MemcachePickleError };

function isDict(x: unknown): x is Record<string, unknown> {
  return typeof x === "object" && x !== null && Object.getPrototypeOf(x) === null;
}

/**
 * Reads one pickle: `None` → `null`, `bool` → `boolean`, `int` → `number`
 * (`bigint` beyond 2^53−1), `float` → `number`, `str` → `string`, `bytes`
 * and `bytearray` → `Uint8Array` (a copy), `list` and `tuple` → arrays,
 * `dict` → an object with no prototype when every key is a string, else a
 * `Map`, `set` and `frozenset` → `Set`. Bytes after the STOP opcode are
 * ignored, as Python's `pickle.loads` does.
 *
 * @throws {MemcachePickleError} for anything else.
 */
export function unpickle(bytes: Uint8Array): unknown {
  const end = bytes.length;
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const stack: unknown[] = [];
  const marks: number[] = [];
  let fence = 0; // the stack may not be popped below the last mark
  const memo: unknown[] = [];
  let memoCount = 0;
  let bigMemo: Map<number, unknown> | null = null;
  let sawGlobal = false;
  let copies = 2 * end + 1024; // items REDUCE may still copy (see there)
  let swapped: Map<object, Map<unknown, unknown>> | null = null;
  let pos = 0;

  const need = (n: number, what: string): void => {
    if (n > end - pos) fail(`${what} at offset ${pos} claims ${n} bytes, only ${end - pos} left`);
  };
  const line = (what: string): string => {
    const nl = eol(bytes, pos);
    if (nl === -1) fail(`${what} at offset ${pos} has no end of line`);
    const s = ascii(bytes, pos, nl, what);
    pos = nl + 1;
    return s;
  };
  /** A text opcode's small non-negative integer argument (PUT, GET), or its line as a decimal. */
  const index = (what: string): number => {
    const nl = eol(bytes, pos);
    const v = nl === -1 ? -1 : smallDecimal(bytes, pos, nl);
    if (v < 0) return Number(decimal(line(what), what));
    pos = nl + 1;
    return v;
  };
  const u32 = (): number => {
    const v = view.getUint32(pos, true);
    pos += 4;
    return v;
  };
  const len8 = (what: string): number => {
    need(8, what);
    const lo = view.getUint32(pos, true);
    const hi = view.getUint32(pos + 4, true);
    if (hi >= 0x200000) fail(`${what} at offset ${pos} claims ${(BigInt(hi) << 32n) + BigInt(lo)} bytes`);
    pos += 8;
    return hi * 2 ** 32 + lo;
  };
  const pop = (what: string): unknown => {
    if (stack.length <= fence) fail(`${what} at offset ${pos - 1} pops an empty stack`);
    return stack.pop();
  };
  const top = (what: string): unknown => {
    if (stack.length <= fence) fail(`${what} at offset ${pos - 1} needs a value on the stack`);
    return stack[stack.length - 1];
  };
  const popMark = (what: string): number => {
    const mark = marks.pop();
    if (mark === undefined) fail(`${what} at offset ${pos - 1} has no MARK`);
    fence = marks.length > 0 ? marks[marks.length - 1] : 0;
    return mark;
  };
  const put = (index: number): void => {
    const value = top("PUT");
    if (index < 0) fail(`PUT at offset ${pos - 1} with the negative memo index ${index}`);
    if (index < memo.length) {
      memo[index] = value;
    } else if (index === memo.length) {
      memo.push(value);
      if (bigMemo?.delete(index) !== true) memoCount++;
    } else {
      bigMemo ??= new Map();
      if (!bigMemo.has(index)) memoCount++;
      bigMemo.set(index, value);
    }
  };
  const get = (index: number): void => {
    const value = index < memo.length ? memo[index] : bigMemo?.get(index);
    if (value === undefined) fail(`memo index ${index} at offset ${pos - 1} was never stored`);
    stack.push(value);
  };
  const setItem = (target: unknown, key: unknown, value: unknown): void => {
    if (swapped !== null && typeof target === "object" && target !== null) {
      const map = swapped.get(target);
      if (map !== undefined) target = map;
    }
    if (target instanceof Map) {
      target.set(key, value);
    } else if (isDict(target)) {
      if (typeof key === "string") {
        target[key] = value;
      } else {
        // A key that is not a string: this dict becomes a Map, everywhere it is referenced (see fixUp).
        const map = new Map<unknown, unknown>(Object.entries(target));
        map.set(key, value);
        swapped ??= new Map();
        swapped.set(target, map);
      }
    } else fail(`SETITEM at offset ${pos - 1} on something that is not a dict`);
  };
  const below = (mark: number, what: string): unknown => {
    if (mark <= fence) fail(`${what} at offset ${pos - 1} has nothing below its MARK`);
    return stack[mark - 1];
  };
  const list = (target: unknown, what: string): unknown[] => {
    if (!Array.isArray(target)) fail(`${what} at offset ${pos - 1} on something that is not a list`);
    return target;
  };

  while (pos < end) {
    const op = bytes[pos++];
    switch (op) {
      case 0x80: { // PROTO
        need(1, "PROTO");
        const version = bytes[pos++];
        if (version > 5) fail(`unsupported pickle protocol ${version}`);
        break;
      }
      case 0x95: // FRAME: the length of the opcodes that follow, inline
        need(len8("FRAME"), "FRAME");
        break;
      case 0x2e: { // STOP
        const result = pop("STOP");
        return sawGlobal || swapped !== null ? fixUp(result, swapped) : result;
      }
      case 0x28: // MARK
        marks.push(stack.length);
        fence = stack.length;
        break;
      case 0x30: // POP
        if (stack.length > fence) stack.pop();
        else popMark("POP");
        break;
      case 0x31: // POP_MARK
        stack.length = popMark("POP_MARK");
        break;
      case 0x32: // DUP
        stack.push(top("DUP"));
        break;
      case 0x4e: // NONE
        stack.push(null);
        break;
      case 0x88: // NEWTRUE
        stack.push(true);
        break;
      case 0x89: // NEWFALSE
        stack.push(false);
        break;
      case 0x4b: // BININT1
        need(1, "BININT1");
        stack.push(bytes[pos++]);
        break;
      case 0x4d: // BININT2
        need(2, "BININT2");
        stack.push(bytes[pos] | (bytes[pos + 1] << 8));
        pos += 2;
        break;
      case 0x4a: // BININT
        need(4, "BININT");
        stack.push(view.getInt32(pos, true));
        pos += 4;
        break;
      case 0x8a: { // LONG1
        need(1, "LONG1");
        const n = bytes[pos++];
        need(n, "LONG1");
        stack.push(longBytes(bytes, pos, n));
        pos += n;
        break;
      }
      case 0x8b: { // LONG4
        need(4, "LONG4");
        const n = view.getInt32(pos, true);
        pos += 4;
        if (n < 0) fail("LONG4 with a negative length");
        need(n, "LONG4");
        stack.push(longBytes(bytes, pos, n));
        pos += n;
        break;
      }
      case 0x49: { // INT (text; "01" and "00" are True and False)
        const nl = eol(bytes, pos);
        if (nl > pos && bytes[pos] !== 0x30) {
          const v = smallDecimal(bytes, pos, nl);
          if (v !== -1 || (nl - pos === 2 && bytes[pos] === 0x2d && bytes[pos + 1] === 0x31)) {
            stack.push(v);
            pos = nl + 1;
            break;
          }
        }
        const text = line("INT");
        if (text === "01") stack.push(true);
        else if (text === "00") stack.push(false);
        else stack.push(decimal(text, "INT"));
        break;
      }
      case 0x4c: { // LONG (text, with a trailing L)
        const text = line("LONG");
        stack.push(decimal(text.endsWith("L") ? text.slice(0, -1) : text, "LONG"));
        break;
      }
      case 0x46: { // FLOAT (text): validated in one pass (no backtracking regular expression), then Number
        const nl = eol(bytes, pos);
        if (nl === -1) fail(`FLOAT at offset ${pos} has no end of line`);
        stack.push(floatArg(bytes, pos, nl));
        pos = nl + 1;
        break;
      }
      case 0x47: // BINFLOAT
        need(8, "BINFLOAT");
        stack.push(view.getFloat64(pos, false));
        pos += 8;
        break;
      case 0x8c: { // SHORT_BINUNICODE
        need(1, "SHORT_BINUNICODE");
        const n = bytes[pos++];
        need(n, "SHORT_BINUNICODE");
        stack.push(utf8(bytes, pos, pos + n));
        pos += n;
        break;
      }
      case 0x58: { // BINUNICODE
        need(4, "BINUNICODE");
        const n = u32();
        need(n, "BINUNICODE");
        stack.push(utf8(bytes, pos, pos + n));
        pos += n;
        break;
      }
      case 0x8d: { // BINUNICODE8
        const n = len8("BINUNICODE8");
        need(n, "BINUNICODE8");
        stack.push(utf8(bytes, pos, pos + n));
        pos += n;
        break;
      }
      case 0x56: { // UNICODE (raw-unicode-escape, to the end of the line)
        const nl = eol(bytes, pos);
        if (nl === -1) fail(`UNICODE at offset ${pos} has no end of line`);
        stack.push(rawUnicodeEscape(bytes, pos, nl));
        pos = nl + 1;
        break;
      }
      case 0x53: { // STRING (Python 2 str, quoted)
        const nl = eol(bytes, pos);
        if (nl === -1) fail(`STRING at offset ${pos} has no end of line`);
        stack.push(quotedString(bytes, pos, nl));
        pos = nl + 1;
        break;
      }
      case 0x54: { // BINSTRING
        need(4, "BINSTRING");
        const n = view.getInt32(pos, true);
        pos += 4;
        if (n < 0) fail("BINSTRING with a negative length");
        need(n, "BINSTRING");
        stack.push(ascii(bytes, pos, pos + n, "BINSTRING"));
        pos += n;
        break;
      }
      case 0x55: { // SHORT_BINSTRING
        need(1, "SHORT_BINSTRING");
        const n = bytes[pos++];
        need(n, "SHORT_BINSTRING");
        stack.push(ascii(bytes, pos, pos + n, "SHORT_BINSTRING"));
        pos += n;
        break;
      }
      case 0x43: { // SHORT_BINBYTES
        need(1, "SHORT_BINBYTES");
        const n = bytes[pos++];
        need(n, "SHORT_BINBYTES");
        stack.push(bytes.slice(pos, pos + n));
        pos += n;
        break;
      }
      case 0x42: { // BINBYTES
        need(4, "BINBYTES");
        const n = u32();
        need(n, "BINBYTES");
        stack.push(bytes.slice(pos, pos + n));
        pos += n;
        break;
      }
      case 0x8e: // BINBYTES8
      case 0x96: { // BYTEARRAY8
        const what = op === 0x8e ? "BINBYTES8" : "BYTEARRAY8";
        const n = len8(what);
        need(n, what);
        stack.push(bytes.slice(pos, pos + n));
        pos += n;
        break;
      }
      case 0x29: // EMPTY_TUPLE
        stack.push([]);
        break;
      case 0x85: // TUPLE1
        stack.push([pop("TUPLE1")]);
        break;
      case 0x86: { // TUPLE2
        const b = pop("TUPLE2");
        const a = pop("TUPLE2");
        stack.push([a, b]);
        break;
      }
      case 0x87: { // TUPLE3
        const c = pop("TUPLE3");
        const b = pop("TUPLE3");
        const a = pop("TUPLE3");
        stack.push([a, b, c]);
        break;
      }
      case 0x74: // TUPLE
      case 0x6c: { // LIST
        const mark = popMark(op === 0x74 ? "TUPLE" : "LIST");
        const items = stack.slice(mark);
        stack.length = mark;
        stack.push(items);
        break;
      }
      case 0x5d: // EMPTY_LIST
        stack.push([]);
        break;
      case 0x61: { // APPEND
        const value = pop("APPEND");
        list(top("APPEND"), "APPEND").push(value);
        break;
      }
      case 0x65: { // APPENDS
        const mark = popMark("APPENDS");
        const target = list(below(mark, "APPENDS"), "APPENDS");
        for (let i = mark; i < stack.length; i++) target.push(stack[i]);
        stack.length = mark;
        break;
      }
      case 0x7d: // EMPTY_DICT
        stack.push(Object.create(null));
        break;
      case 0x64: { // DICT
        const mark = popMark("DICT");
        if ((stack.length - mark) % 2 !== 0) fail("DICT with an odd number of items");
        const dict = Object.create(null);
        for (let i = mark; i < stack.length; i += 2) setItem(dict, stack[i], stack[i + 1]);
        stack.length = mark;
        stack.push(dict);
        break;
      }
      case 0x73: { // SETITEM
        if (stack.length - 3 < fence) fail(`SETITEM at offset ${pos - 1} needs three values on the stack`);
        const value = stack.pop();
        const key = stack.pop();
        const target = stack[stack.length - 1];
        if (swapped === null && typeof key === "string" && isDict(target)) target[key] = value;
        else setItem(target, key, value);
        break;
      }
      case 0x75: { // SETITEMS
        const mark = popMark("SETITEMS");
        if ((stack.length - mark) % 2 !== 0) fail("SETITEMS with an odd number of items");
        const target = below(mark, "SETITEMS");
        let i = mark;
        if (swapped === null && isDict(target)) {
          // the common case: string keys into a dict, no checks per item
          for (; i < stack.length; i += 2) {
            const key = stack[i];
            if (typeof key !== "string") break;
            target[key] = stack[i + 1];
          }
        }
        for (; i < stack.length; i += 2) setItem(target, stack[i], stack[i + 1]);
        stack.length = mark;
        break;
      }
      case 0x8f: // EMPTY_SET
        stack.push(new Set());
        break;
      case 0x90: { // ADDITEMS
        const mark = popMark("ADDITEMS");
        const target = below(mark, "ADDITEMS");
        if (!(target instanceof Set)) fail(`ADDITEMS at offset ${pos - 1} on something that is not a set`);
        for (let i = mark; i < stack.length; i++) target.add(stack[i]);
        stack.length = mark;
        break;
      }
      case 0x91: { // FROZENSET
        const mark = popMark("FROZENSET");
        const set = new Set(stack.slice(mark));
        stack.length = mark;
        stack.push(set);
        break;
      }
      case 0x70: // PUT (text)
        put(index("PUT"));
        break;
      case 0x71: // BINPUT
        need(1, "BINPUT");
        put(bytes[pos++]);
        break;
      case 0x72: // LONG_BINPUT
        need(4, "LONG_BINPUT");
        put(u32());
        break;
      case 0x94: // MEMOIZE
        put(memoCount);
        break;
      case 0x67: // GET (text)
        get(index("GET"));
        break;
      case 0x68: // BINGET
        need(1, "BINGET");
        get(bytes[pos++]);
        break;
      case 0x6a: // LONG_BINGET
        need(4, "LONG_BINGET");
        get(u32());
        break;
      case 0x63: { // GLOBAL "module\nname\n"
        const module = line("GLOBAL");
        const name = line("GLOBAL");
        stack.push(global(module, name));
        sawGlobal = true;
        break;
      }
      case 0x93: { // STACK_GLOBAL
        const name = pop("STACK_GLOBAL");
        const module = pop("STACK_GLOBAL");
        if (typeof module !== "string" || typeof name !== "string") fail("STACK_GLOBAL needs two strings");
        stack.push(global(module, name));
        sawGlobal = true;
        break;
      }
      case 0x52: { // REDUCE
        const args = pop("REDUCE");
        const callable = pop("REDUCE");
        if (!(callable instanceof PyGlobal)) fail(`REDUCE at offset ${pos - 1} calls something that is not a global`);
        // A call copies its argument (set(list), bytes(...), _codecs.encode(str)); a memo GET makes a shared
        // argument cost two bytes, so copies could grow quadratically: they get a budget linear in the input.
        copies -= sizeOf(args);
        if (copies < 0) fail(`REDUCE at offset ${pos - 1}: the pickle copies more than ${2 * end + 1024} items`);
        stack.push(callGlobal(callable.name, args));
        break;
      }
      default:
        unsupported(op, pos - 1);
    }
  }
  return fail("the pickle ends without STOP (truncated?)");
}

/**
 * The finished value with every dict that turned into a `Map` replaced by
 * that `Map`, checking that no global is left as a value. Iterative, so
 * deep nesting costs no stack; each container is visited once.
 */
function fixUp(root: unknown, swapped: Map<object, Map<unknown, unknown>> | null): unknown {
  const sub = (v: unknown): unknown => {
    if (v instanceof PyGlobal) fail(`global ${v.name} is used as a value, not called`);
    return swapped !== null && typeof v === "object" && v !== null ? (swapped.get(v) ?? v) : v;
  };
  const result = sub(root);
  const seen = new Set<unknown>();
  const todo: unknown[] = [result];
  while (todo.length > 0) {
    const v = todo.pop();
    if (typeof v !== "object" || v === null || seen.has(v) || v instanceof Uint8Array) continue;
    seen.add(v);
    if (Array.isArray(v)) {
      for (let i = 0; i < v.length; i++) todo.push(v[i] = sub(v[i]));
    } else if (v instanceof Map) {
      const entries = [...v];
      v.clear();
      for (const [k, x] of entries) {
        const key = sub(k);
        const value = sub(x);
        v.set(key, value);
        todo.push(key, value);
      }
    } else if (v instanceof Set) {
      const items = [...v];
      v.clear();
      for (const x of items) {
        const item = sub(x);
        v.add(item);
        todo.push(item);
      }
    } else {
      const dict = v as Record<string, unknown>;
      for (const key of Object.keys(dict)) todo.push(dict[key] = sub(dict[key]));
    }
  }
  return result;
}
