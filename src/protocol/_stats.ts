/**
 * Converts `stats` values as pymemcache's `STAT_TYPES`: integers where they
 * parse, named ones to float, boolean or string; anything that does not
 * convert stays a string.
 *
 * @module
 */

const asString = (v: string) => v;
const asFloat = (v: string) => {
  if (!/^[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?$/.test(v)) throw new Error("not a float");
  return Number(v);
};
const asBoolInt = (v: string) => asInt(v) !== 0;

function asInt(v: string): number {
  if (!/^[+-]?\d+$/.test(v)) throw new Error("not an integer");
  const n = Number(v);
  if (!Number.isSafeInteger(n)) throw new Error("too large");
  return n;
}

const STAT_TYPES: Record<string, (v: string) => string | number | boolean> = {
  // general
  version: asString,
  rusage_user: (v) => asFloat(v.replace(":", ".")),
  rusage_system: (v) => asFloat(v.replace(":", ".")),
  hash_is_expanding: asBoolInt,
  slab_reassign_running: asBoolInt,
  // settings
  inter: asString,
  growth_factor: asFloat,
  stat_key_prefix: asString,
  umask: (v) => {
    if (!/^[0-7]+$/.test(v)) throw new Error("not octal");
    return parseInt(v, 8);
  },
  detail_enabled: asBoolInt,
  cas_enabled: asBoolInt,
  auth_enabled_sasl: (v) => v === "yes",
  maxconns_fast: asBoolInt,
  slab_reassign: asBoolInt,
  slab_automove: asBoolInt,
};

/** Converts raw `STAT name value` pairs into a record. */
export function convertStats(entries: [string, string][]): Record<string, string | number | boolean> {
  const out: Record<string, string | number | boolean> = {};
  for (const [name, value] of entries) {
    // Own names only: "constructor" or "toString" must not find Object.prototype's.
    const convert = Object.hasOwn(STAT_TYPES, name) ? STAT_TYPES[name] : asInt;
    let converted: string | number | boolean;
    try {
      converted = convert(value);
    } catch {
      converted = value;
    }
    // An own property whatever the name ("__proto__" included).
    Object.defineProperty(out, name, { value: converted, enumerable: true, writable: true, configurable: true });
  }
  return out;
}
