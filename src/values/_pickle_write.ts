/**
 * A pickle writer for plain JavaScript data, in protocol 2 to 5 (default 3,
 * which every Python 3 reads):
 *
 * | JavaScript | Python |
 * |---|---|
 * | `null`, `undefined` | `None` |
 * | `boolean` | `bool` |
 * | safe integer `number`, `bigint` | `int` |
 * | other `number` (NaN and infinities too) | `float` |
 * | `string` | `str` (lone surrogates kept, as Python's "surrogatepass") |
 * | `Uint8Array`, `ArrayBuffer` | `bytes` |
 * | array | `list` (`tuple` where Python needs something hashable: dict keys, set items) |
 * | plain object (own enumerable string keys) | `dict` |
 * | `Map` | `dict` |
 * | `Set` | `set` (`frozenset` inside a set or as a key) |
 *
 * Shared references and cycles through arrays, objects and `Map`s are kept
 * (memo). Anything else (functions, symbols, class instances, `Date`, typed
 * arrays other than `Uint8Array`) is a `TypeError`, as is nesting deeper
 * than 1000 levels (Python's own pickler stops near there too).
 *
 * @module
 */

const PROTO = 0x80;
const STOP = 0x2e;
const MARK = 0x28;
const NONE = 0x4e;
const NEWTRUE = 0x88;
const NEWFALSE = 0x89;
const BININT1 = 0x4b;
const BININT2 = 0x4d;
const BININT = 0x4a;
const LONG1 = 0x8a;
const LONG4 = 0x8b;
const BINFLOAT = 0x47;
const SHORT_BINUNICODE = 0x8c;
const BINUNICODE = 0x58;
const SHORT_BINBYTES = 0x43;
const BINBYTES = 0x42;
const EMPTY_LIST = 0x5d;
const APPENDS = 0x65;
const EMPTY_DICT = 0x7d;
const SETITEMS = 0x75;
const EMPTY_SET = 0x8f;
const ADDITEMS = 0x90;
const FROZENSET = 0x91;
const EMPTY_TUPLE = 0x29;
const TUPLE = 0x74;
const TUPLE1 = 0x85;
const BINPUT = 0x71;
const LONG_BINPUT = 0x72;
const BINGET = 0x68;
const LONG_BINGET = 0x6a;
const GLOBAL = 0x63;
const REDUCE = 0x52;

/** Items per APPENDS/SETITEMS/ADDITEMS batch, as Python's pickler. */
const BATCH = 1000;
const MAX_DEPTH = 1000;
const encoder = new TextEncoder();
const LONE_SURROGATE = /[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/;

/** UTF-8 with lone surrogates encoded as themselves (Python's "surrogatepass"). */
function utf8(text: string): Uint8Array {
  if (!LONE_SURROGATE.test(text)) return encoder.encode(text);
  const out: number[] = [];
  for (const ch of text) {
    const cp = ch.codePointAt(0)!;
    if (cp < 0x80) out.push(cp);
    else if (cp < 0x800) out.push(0xc0 | (cp >> 6), 0x80 | (cp & 0x3f));
    else if (cp < 0x10000) out.push(0xe0 | (cp >> 12), 0x80 | ((cp >> 6) & 0x3f), 0x80 | (cp & 0x3f));
    else {
      out.push(0xf0 | (cp >> 18), 0x80 | ((cp >> 12) & 0x3f), 0x80 | ((cp >> 6) & 0x3f), 0x80 | (cp & 0x3f));
    }
  }
  return new Uint8Array(out);
}

function isPlainObject(value: object): value is Record<string, unknown> {
  const proto = Object.getPrototypeOf(value);
  return proto === null || proto === Object.prototype;
}

class Writer {
  #buf = new Uint8Array(256);
  #view = new DataView(this.#buf.buffer);
  #len = 0;
  readonly #protocol: number;
  readonly #memo = new Map<object, number>();
  #depth = 0;

  constructor(protocol: number) {
    this.#protocol = protocol;
  }

  #reserve(n: number): void {
    if (this.#len + n <= this.#buf.length) return;
    let size = this.#buf.length * 2;
    while (size < this.#len + n) size *= 2;
    const next = new Uint8Array(size);
    next.set(this.#buf.subarray(0, this.#len));
    this.#buf = next;
    this.#view = new DataView(next.buffer);
  }

  byte(b: number): void {
    this.#reserve(1);
    this.#buf[this.#len++] = b;
  }

  #u32(n: number): void {
    this.#reserve(4);
    this.#view.setUint32(this.#len, n, true);
    this.#len += 4;
  }

  #raw(bytes: Uint8Array): void {
    this.#reserve(bytes.length);
    this.#buf.set(bytes, this.#len);
    this.#len += bytes.length;
  }

  #ascii(text: string): void {
    this.#reserve(text.length);
    for (let i = 0; i < text.length; i++) this.#buf[this.#len++] = text.charCodeAt(i);
  }

  result(): Uint8Array {
    return this.#buf.slice(0, this.#len);
  }

  #int(n: number | bigint): void {
    if (typeof n === "number" && n >= 0 && n < 0x100) {
      this.byte(BININT1);
      this.byte(n);
    } else if (typeof n === "number" && n >= 0 && n < 0x10000) {
      this.byte(BININT2);
      this.byte(n & 0xff);
      this.byte(n >> 8);
    } else if (typeof n === "number" && n >= -0x80000000 && n <= 0x7fffffff) {
      this.byte(BININT);
      this.#reserve(4);
      this.#view.setInt32(this.#len, n, true);
      this.#len += 4;
    } else {
      // LONG1/LONG4: little-endian two's complement, as short as it goes.
      let v = BigInt(n);
      const bytes: number[] = [];
      for (;;) {
        const b = Number(v & 0xffn);
        bytes.push(b);
        v >>= 8n;
        if ((v === 0n && b < 0x80) || (v === -1n && b >= 0x80)) break;
      }
      if (bytes.length < 256) {
        this.byte(LONG1);
        this.byte(bytes.length);
      } else {
        this.byte(LONG4);
        this.#u32(bytes.length);
      }
      this.#raw(new Uint8Array(bytes));
    }
  }

  #string(text: string): void {
    const bytes = utf8(text);
    if (bytes.length < 256 && this.#protocol >= 4) {
      this.byte(SHORT_BINUNICODE);
      this.byte(bytes.length);
    } else {
      this.byte(BINUNICODE);
      this.#u32(bytes.length);
    }
    this.#raw(bytes);
  }

  #global(module: string, name: string): void {
    this.byte(GLOBAL);
    this.#ascii(`${this.#protocol < 3 && module === "builtins" ? "__builtin__" : module}\n${name}\n`);
  }

  #bytes(bytes: Uint8Array): void {
    if (this.#protocol >= 3) {
      if (bytes.length < 256) {
        this.byte(SHORT_BINBYTES);
        this.byte(bytes.length);
      } else {
        this.byte(BINBYTES);
        this.#u32(bytes.length);
      }
      this.#raw(bytes);
    } else if (bytes.length === 0) {
      // Protocol 2 as Python 3 writes bytes: bytes() and _codecs.encode(latin-1 text, "latin1").
      this.#global("builtins", "bytes");
      this.byte(EMPTY_TUPLE);
      this.byte(REDUCE);
    } else {
      this.#global("_codecs", "encode");
      let latin1 = "";
      for (let i = 0; i < bytes.length; i += 4096) {
        latin1 += String.fromCharCode(...bytes.subarray(i, i + 4096));
      }
      this.#string(latin1);
      this.#string("latin1");
      this.byte(0x86); // TUPLE2
      this.byte(REDUCE);
    }
  }

  /** Memoizes the container just written; returns false if it was already (then a GET was written). */
  #memoized(value: object): boolean {
    const index = this.#memo.get(value);
    if (index === undefined) return false;
    if (index < 256) {
      this.byte(BINGET);
      this.byte(index);
    } else {
      this.byte(LONG_BINGET);
      this.#u32(index);
    }
    return true;
  }

  #put(value: object): void {
    const index = this.#memo.size;
    this.#memo.set(value, index);
    if (index < 256) {
      this.byte(BINPUT);
      this.byte(index);
    } else {
      this.byte(LONG_BINPUT);
      this.#u32(index);
    }
  }

  #batches<T>(items: Iterable<T>, op: number, each: (item: T) => void): void {
    let n = 0;
    for (const item of items) {
      if (n === 0) this.byte(MARK);
      each(item);
      if (++n === BATCH) {
        this.byte(op);
        n = 0;
      }
    }
    if (n > 0) this.byte(op);
  }

  /** Writes `value`; `hashable`: as a dict key or set item (arrays become tuples, sets frozensets). */
  value(value: unknown, hashable = false): void {
    switch (typeof value) {
      case "undefined":
        this.byte(NONE);
        return;
      case "boolean":
        this.byte(value ? NEWTRUE : NEWFALSE);
        return;
      case "number":
        if (Number.isSafeInteger(value)) this.#int(value);
        else {
          this.byte(BINFLOAT);
          this.#reserve(8);
          this.#view.setFloat64(this.#len, value, false);
          this.#len += 8;
        }
        return;
      case "bigint":
        this.#int(value);
        return;
      case "string":
        this.#string(value);
        return;
      case "object":
        break;
      default:
        throw new TypeError(`Cannot pickle a value of type ${typeof value}`);
    }
    if (value === null) {
      this.byte(NONE);
      return;
    }
    if (value instanceof Uint8Array) {
      this.#bytes(value);
      return;
    }
    if (value instanceof ArrayBuffer) {
      this.#bytes(new Uint8Array(value));
      return;
    }
    if (++this.#depth > MAX_DEPTH) throw new TypeError(`Cannot pickle values nested deeper than ${MAX_DEPTH} levels`);
    try {
      this.#container(value, hashable);
    } finally {
      this.#depth--;
    }
  }

  #container(value: object, hashable: boolean): void {
    if (hashable) {
      if (Array.isArray(value)) {
        // a tuple
        if (value.length === 0) this.byte(EMPTY_TUPLE);
        else if (value.length === 1) {
          this.value(value[0], true);
          this.byte(TUPLE1);
        } else {
          this.byte(MARK);
          for (const item of value) this.value(item, true);
          this.byte(TUPLE);
        }
        return;
      }
      if (value instanceof Set) {
        if (this.#protocol >= 4) {
          this.byte(MARK);
          for (const item of value) this.value(item, true);
          this.byte(FROZENSET);
        } else {
          this.#global("builtins", "frozenset");
          this.byte(EMPTY_LIST);
          this.#batches(value, APPENDS, (item) => this.value(item, true));
          this.byte(TUPLE1);
          this.byte(REDUCE);
        }
        return;
      }
      throw new TypeError("Cannot pickle an object or Map as a dict key or set item (Python needs it hashable)");
    }
    if (this.#memoized(value)) return;
    if (Array.isArray(value)) {
      this.byte(EMPTY_LIST);
      this.#put(value);
      this.#batches(value, APPENDS, (item) => this.value(item));
    } else if (value instanceof Map) {
      this.byte(EMPTY_DICT);
      this.#put(value);
      this.#batches(value, SETITEMS, ([k, v]) => {
        this.value(k, true);
        this.value(v);
      });
    } else if (value instanceof Set) {
      if (this.#protocol >= 4) {
        this.byte(EMPTY_SET);
        this.#put(value);
        this.#batches(value, ADDITEMS, (item) => this.value(item, true));
      } else {
        // set([items]): items are hashable, so they cannot refer back to the set.
        this.#global("builtins", "set");
        this.byte(EMPTY_LIST);
        this.#batches(value, APPENDS, (item) => this.value(item, true));
        this.byte(TUPLE1);
        this.byte(REDUCE);
        this.#put(value);
      }
    } else if (isPlainObject(value)) {
      this.byte(EMPTY_DICT);
      this.#put(value);
      this.#batches(Object.keys(value), SETITEMS, (k) => {
        this.#string(k);
        this.value(value[k]);
      });
    } else {
      const name = (value as { constructor?: { name?: string } }).constructor?.name ?? "object";
      throw new TypeError(`Cannot pickle a ${name}: only plain data (objects, arrays, Map, Set, Uint8Array)`);
    }
  }
}

/**
 * Pickles `value` in `protocol` (2 to 5).
 *
 * @throws {TypeError} for a value with no Python counterpart.
 */
export function pickle(value: unknown, protocol = 3): Uint8Array {
  if (!(Number.isInteger(protocol) && protocol >= 2 && protocol <= 5)) {
    throw new TypeError(`pickle protocol must be 2, 3, 4 or 5, got ${String(protocol)}`);
  }
  const writer = new Writer(protocol);
  writer.byte(PROTO);
  writer.byte(protocol);
  writer.value(value);
  writer.byte(STOP);
  return writer.result();
}
