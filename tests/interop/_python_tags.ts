/**
 * The tagged JSON the Python generators write (tests/tools/*.py) for values
 * JSON cannot hold, and how to read it back: one reading for every test
 * that compares with what Python wrote.
 */

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
