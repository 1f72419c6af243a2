/**
 * The tagged JSON the Python generators write (tests/tools/*.py) for values
 * JSON cannot hold, and how to read it back: one reading for every test
 * that compares with what Python wrote, and the comparable form both sides
 * are put in.
 */
import assert from "node:assert/strict";

/** Bytes from a hex string. */
export const fromHex = (hex: string): Uint8Array => new Uint8Array(hex.match(/../g)?.map((h) => parseInt(h, 16)) ?? []);

/** The value a tagged expectation (see the generator) stands for, as PickleSerde reads it. */
export function untag(v: unknown): unknown {
  if (Array.isArray(v)) return v.map(untag);
  if (v === null || typeof v !== "object") return v;
  const t = v as Record<string, unknown>;
  if ("$int" in t) return BigInt(t.$int as string);
  if ("$float" in t) return { nan: NaN, inf: Infinity, "-inf": -Infinity, "-0.0": -0 }[t.$float as string];
  if ("$bytes" in t) return fromHex(t.$bytes as string);
  if ("$set" in t) return new Set((t.$set as unknown[]).map(untag));
  if ("$dict" in t) {
    const entries = (t.$dict as [unknown, unknown][]).map(([k, x]) => [untag(k), untag(x)] as const);
    if (entries.every(([k]) => typeof k === "string")) {
      const o = Object.create(null);
      for (const [k, x] of entries) o[k as string] = x;
      return o;
    }
    return new Map(entries);
  }
  throw new Error(`bad tag ${JSON.stringify(v)}`);
}

/**
 * A comparable form of a value, for deepStrictEqual: sets and maps by
 * content (sorted), so that members and keys holding arrays (tuples)
 * compare; with `read` (a value the pickle reader built) dicts are checked
 * to have no prototype.
 */
export function comparable(v: unknown, read: boolean): unknown {
  const n = (x: unknown) => comparable(x, read);
  if (v instanceof Set) return { set: [...v].map(n).map((x) => JSON.stringify(x, exact)).sort() };
  if (v instanceof Map) return { map: [...v].map(([k, x]) => [JSON.stringify(n(k), exact), n(x)]).sort(byKey) };
  if (Array.isArray(v)) return v.map(n);
  if (v instanceof Uint8Array) return { bytes: [...v] };
  if (v !== null && typeof v === "object") {
    if (read) assert.equal(Object.getPrototypeOf(v), null, "a dict reads as an object without prototype");
    const o = Object.create(null);
    for (const k of Object.keys(v)) o[k] = n((v as Record<string, unknown>)[k]);
    return o;
  }
  return v;
}

const byKey = (x: unknown[], y: unknown[]) => (String(x[0]) < String(y[0]) ? -1 : String(x[0]) > String(y[0]) ? 1 : 0);

/** JSON that tells bigints and non-finite numbers apart (JSON.stringify makes both null or throws). */
function exact(_k: string, v: unknown): unknown {
  return typeof v === "bigint" ? `${v}n` : typeof v === "number" && !Number.isFinite(v) ? String(v) : v;
}
