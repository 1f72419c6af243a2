/**
 * `describe` / `it` inside workerd: the bundler gives this file to
 * tests/suites/_suite.ts in place of tests/_support/_harness.ts. Cases are only registered
 * here; the Worker (worker.ts) runs one per request, when run.ts asks.
 */

/** A registered case. */
export interface Case {
  /** "describe > it", as Deno names it. */
  name: string;
  body: () => void | Promise<void>;
  /** The reason it is skipped, or false. */
  skip: string | false;
}

/** Every case, in registration order. */
export const cases: Case[] = [];
const prefix: string[] = [];

/** Groups cases; the name prefixes each case's name. */
export function describe(name: string, body: () => void): void {
  prefix.push(name);
  try {
    body();
  } finally {
    prefix.pop();
  }
}

/** Registers one case. `options.skip` skips it with the reason given. */
export function it(name: string, body: () => void | Promise<void>, options: { skip?: string | false } = {}): void {
  cases.push({ name: [...prefix, name].join(" > "), body, skip: options.skip || false });
}
