/**
 * The pickle reader's opcode table and the calls it allows: every opcode of
 * protocols 0 to 5 with its name and the kind of argument that follows it
 * (the machine in src/values/_pickle_read.ts dispatches on the bytes; this table
 * names them in errors and lists the text opcodes for the tests), which
 * ones are refused, and the globals `REDUCE` may call with what they return.
 *
 * @module
 */

import { fail, show } from "./_pickle_args.ts";

/**
 * What follows an opcode: nothing, a line of text (`"line"`; GLOBAL and
 * INST take two), a fixed number of bytes, or a length then that many bytes.
 */
export type ArgumentKind = "none" | "line" | "fixed" | "length";

/** One opcode: its name in Python's `pickletools`, its argument, and whether this reader refuses it. */
export interface Opcode {
  readonly name: string;
  readonly argument: ArgumentKind;
  /** Refused: it builds objects or reaches outside the pickle. */
  readonly refused: boolean;
}

const table: [string, number, ArgumentKind, boolean?][] = [
  // stack and framing
  ["MARK", 0x28, "none"],
  ["STOP", 0x2e, "none"],
  ["POP", 0x30, "none"],
  ["POP_MARK", 0x31, "none"],
  ["DUP", 0x32, "none"],
  ["PROTO", 0x80, "fixed"],
  ["FRAME", 0x95, "fixed"],
  // scalars
  ["NONE", 0x4e, "none"],
  ["NEWTRUE", 0x88, "none"],
  ["NEWFALSE", 0x89, "none"],
  ["INT", 0x49, "line"],
  ["BININT", 0x4a, "fixed"],
  ["BININT1", 0x4b, "fixed"],
  ["BININT2", 0x4d, "fixed"],
  ["LONG", 0x4c, "line"],
  ["LONG1", 0x8a, "length"],
  ["LONG4", 0x8b, "length"],
  ["FLOAT", 0x46, "line"],
  ["BINFLOAT", 0x47, "fixed"],
  // strings and bytes
  ["STRING", 0x53, "line"],
  ["BINSTRING", 0x54, "length"],
  ["SHORT_BINSTRING", 0x55, "length"],
  ["UNICODE", 0x56, "line"],
  ["BINUNICODE", 0x58, "length"],
  ["SHORT_BINUNICODE", 0x8c, "length"],
  ["BINUNICODE8", 0x8d, "length"],
  ["BINBYTES", 0x42, "length"],
  ["SHORT_BINBYTES", 0x43, "length"],
  ["BINBYTES8", 0x8e, "length"],
  ["BYTEARRAY8", 0x96, "length"],
  // containers
  ["EMPTY_TUPLE", 0x29, "none"],
  ["TUPLE", 0x74, "none"],
  ["TUPLE1", 0x85, "none"],
  ["TUPLE2", 0x86, "none"],
  ["TUPLE3", 0x87, "none"],
  ["EMPTY_LIST", 0x5d, "none"],
  ["LIST", 0x6c, "none"],
  ["APPEND", 0x61, "none"],
  ["APPENDS", 0x65, "none"],
  ["EMPTY_DICT", 0x7d, "none"],
  ["DICT", 0x64, "none"],
  ["SETITEM", 0x73, "none"],
  ["SETITEMS", 0x75, "none"],
  ["EMPTY_SET", 0x8f, "none"],
  ["ADDITEMS", 0x90, "none"],
  ["FROZENSET", 0x91, "none"],
  // the memo
  ["PUT", 0x70, "line"],
  ["BINPUT", 0x71, "fixed"],
  ["LONG_BINPUT", 0x72, "fixed"],
  ["MEMOIZE", 0x94, "none"],
  ["GET", 0x67, "line"],
  ["BINGET", 0x68, "fixed"],
  ["LONG_BINGET", 0x6a, "fixed"],
  // calls (only of the allowed globals)
  ["GLOBAL", 0x63, "line"],
  ["STACK_GLOBAL", 0x93, "none"],
  ["REDUCE", 0x52, "none"],
  // refused: they build objects or reach outside the pickle
  ["PERSID", 0x50, "line", true],
  ["BINPERSID", 0x51, "none", true],
  ["BUILD", 0x62, "none", true],
  ["INST", 0x69, "line", true],
  ["OBJ", 0x6f, "none", true],
  ["NEWOBJ", 0x81, "none", true],
  ["EXT1", 0x82, "fixed", true],
  ["EXT2", 0x83, "fixed", true],
  ["EXT4", 0x84, "fixed", true],
  ["NEWOBJ_EX", 0x92, "none", true],
  ["NEXT_BUFFER", 0x97, "none", true],
  ["READONLY_BUFFER", 0x98, "none", true],
];

/** Every opcode of protocols 0 to 5, by its byte. */
export const OPCODES: ReadonlyMap<number, Opcode> = new Map(
  table.map(([name, byte, argument, refused = false]) => [byte, { name, argument, refused }]),
);

/** The bytes of the opcodes this reader runs whose argument is a line of text (INT, FLOAT, STRING, GLOBAL, ...). */
export const TEXT_OPCODES: readonly number[] = [...OPCODES].filter(([, o]) => o.argument === "line" && !o.refused)
  .map(([byte]) => byte);

/** The error for an opcode the machine has no case for: refused by name, or unknown. */
export function unsupported(op: number, offset: number): never {
  const known = OPCODES.get(op);
  if (known?.refused) {
    fail(`opcode ${known.name} at offset ${offset} is not supported (it builds objects or reaches outside the pickle)`);
  }
  return fail(`unknown opcode 0x${op.toString(16).padStart(2, "0")} at offset ${offset}`);
}

// ---------------------------------------------------------------- globals

/** A global a pickle named; only ever a callable for REDUCE, never a value. */
export class PyGlobal {
  constructor(readonly name: string) {}
}

const ALLOWED_GLOBALS = new Set([
  "_codecs.encode",
  "builtins.set",
  "builtins.frozenset",
  "builtins.bytes",
  "builtins.bytearray",
]);

/** A global the pickle names, if allowed; `__builtin__` is Python 2's `builtins`. */
export function global(module: string, name: string): PyGlobal {
  const full = `${module === "__builtin__" ? "builtins" : module}.${name}`;
  if (!ALLOWED_GLOBALS.has(full)) {
    const named = `${module}.${name}`;
    const cut = named.length > 80 ? named.slice(0, 80) + "…" : named; // names can be megabytes long
    fail(`global ${cut} is not allowed (only plain data is unpickled; no classes, no code)`);
  }
  return new PyGlobal(full);
}

/** How many items or bytes a call's arguments hold (what the call copies). */
export function sizeOf(args: unknown): number {
  if (!Array.isArray(args)) return 1;
  let n = 1;
  for (const a of args) {
    n += Array.isArray(a) || a instanceof Uint8Array || typeof a === "string"
      ? a.length
      : a instanceof Set
      ? a.size
      : 1;
  }
  return n;
}

/** Python's value for a call of an allowed global. */
export function callGlobal(name: string, args: unknown): unknown {
  if (!Array.isArray(args)) fail(`REDUCE of ${name} got arguments that are not a tuple`);
  switch (name) {
    case "_codecs.encode": {
      const [text, encoding] = args;
      if (args.length !== 2 || typeof text !== "string" || typeof encoding !== "string") {
        fail("REDUCE of _codecs.encode takes (str, encoding)");
      }
      return encodeText(text, encoding, name);
    }
    case "builtins.bytes":
    case "builtins.bytearray": {
      if (args.length === 0) return new Uint8Array(0);
      const [source, encoding] = args;
      if (args.length === 2 && typeof source === "string" && typeof encoding === "string") {
        return encodeText(source, encoding, name);
      }
      if (args.length === 1 && source instanceof Uint8Array) return source.slice();
      if (args.length === 1 && Array.isArray(source)) {
        const out = new Uint8Array(source.length);
        for (let i = 0; i < source.length; i++) {
          const b = source[i];
          if (typeof b !== "number" || !Number.isInteger(b) || b < 0 || b > 255) {
            fail(`REDUCE of ${name}: a byte must be an integer in 0..255`);
          }
          out[i] = b;
        }
        return out;
      }
      return fail(`REDUCE of ${name} with these arguments is not supported`);
    }
    case "builtins.set":
    case "builtins.frozenset": {
      if (args.length === 0) return new Set();
      const [items] = args;
      if (args.length === 1 && (Array.isArray(items) || items instanceof Set)) return new Set(items);
      return fail(`REDUCE of ${name} takes one list, tuple or set`);
    }
  }
  return fail(`REDUCE of ${name} is not supported`);
}

function encodeText(text: string, encoding: string, name: string): Uint8Array {
  const enc = encoding.length > 20 ? "" : encoding.toLowerCase().replace(/[-_ ]/g, "");
  if (enc === "latin1" || enc === "iso88591" || enc === "l1" || enc === "ascii") {
    const limit = enc === "ascii" ? 0x80 : 0x100;
    const out = new Uint8Array(text.length);
    for (let i = 0; i < text.length; i++) {
      const c = text.charCodeAt(i);
      if (c >= limit) fail(`REDUCE of ${name}: character U+${c.toString(16)} is not ${encoding}`);
      out[i] = c;
    }
    return out;
  }
  if (enc === "utf8") return new TextEncoder().encode(text);
  return fail(`REDUCE of ${name} with encoding ${show(encoding)} is not supported`);
}
