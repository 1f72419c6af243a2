/**
 * `describe` / `it` for every runtime. On Node and Bun these are
 * `node:test`'s own. On Deno each `it` becomes a `Deno.test` named
 * "describe > it" with the op and resource sanitizers on, because Deno does
 * not sanitize `node:test` cases: a leaked socket or timer fails the test.
 */
import * as nodeTest from "node:test";

type Body = () => void | Promise<void>;

// deno-lint-ignore no-explicit-any
const deno = (globalThis as any).Deno;
const isDeno = typeof deno?.test === "function";
const prefix: string[] = [];

/** Groups tests; the name prefixes each test's name. */
export function describe(name: string, body: () => void): void {
  if (!isDeno) {
    nodeTest.describe(name, body);
    return;
  }
  prefix.push(name);
  try {
    body();
  } finally {
    prefix.pop();
  }
}

/** One test. `options.skip` skips it with the reason given. */
export function it(name: string, body: Body, options: { skip?: string | false } = {}): void {
  if (!isDeno) {
    nodeTest.it(name, { skip: options.skip || false }, body);
    return;
  }
  deno.test({
    name: [...prefix, name].join(" > "),
    ignore: Boolean(options.skip),
    sanitizeOps: true,
    sanitizeResources: true,
    fn: body,
  });
}
