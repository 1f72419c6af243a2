/**
 * Interface uniformity (as cachelib's test_interface_uniformity): every
 * client class has every command of src/clients/commands.ts, with Client's
 * parameters; every Client method is a command (or lifecycle); each class
 * fits the `Commands` type.
 */
import assert from "node:assert/strict";
import { describe, it } from "../_support/_harness.ts";
import { Client, type Commands, HashClient, PooledClient, RetryingClient } from "../../mod.ts";
import { type CommandName, COMMANDS, LIFECYCLE, rowOf } from "../../src/clients/commands.ts";

// Compile-time: every class is a Commands, so MemcachedCache and RetryingClient take each of them.
const fits = (clients: Commands[]) => clients.length;
fits([
  new Client("127.0.0.1:1"),
  new PooledClient("127.0.0.1:1"),
  new HashClient(["127.0.0.1:1"]),
  new RetryingClient(new Client("127.0.0.1:1")),
  new RetryingClient(new HashClient(["127.0.0.1:1"])),
  new RetryingClient(new RetryingClient(new PooledClient("127.0.0.1:1"))),
]);

// deno-lint-ignore no-explicit-any
type AnyFunction = (...args: any[]) => unknown;

const CLASSES = { Client, PooledClient, HashClient, RetryingClient } as const;
const NAMES = [...Object.keys(COMMANDS), ...LIFECYCLE];

/** The parameter names of a function, from its source (`...rest` keeps its dots). */
function parameterNames(fn: AnyFunction): string[] {
  const source = fn.toString();
  const open = source.indexOf("(");
  let depth = 0;
  let end = open;
  for (let i = open; i < source.length; i++) {
    const c = source[i];
    if (c === "(" || c === "{" || c === "[") depth++;
    else if (c === ")" || c === "}" || c === "]") depth--;
    if (depth === 0) {
      end = i;
      break;
    }
  }
  const parts: string[] = [];
  let part = "";
  depth = 0;
  for (const c of source.slice(open + 1, end)) {
    if (c === "(" || c === "{" || c === "[") depth++;
    else if (c === ")" || c === "}" || c === "]") depth--;
    if (c === "," && depth === 0) {
      parts.push(part);
      part = "";
    } else part += c;
  }
  if (part.trim() !== "") parts.push(part);
  return parts.map((p) => p.split("=")[0].trim());
}

function method(cls: { prototype: unknown }, name: string): AnyFunction {
  return (cls.prototype as Record<string, AnyFunction>)[name];
}

describe("interface uniformity", () => {
  it("every public method of Client is a command of the table or a lifecycle method", () => {
    const own = Object.getOwnPropertyNames(Client.prototype).filter((name) =>
      name !== "constructor" && typeof method(Client, name) === "function"
    );
    assert.deepEqual(own.filter((name) => !NAMES.includes(name)), []);
    assert.deepEqual(NAMES.filter((name) => !own.includes(name)), []);
    assert.equal(typeof method(Client, Symbol.asyncDispose as unknown as string), "function");
  });

  for (const [className, cls] of Object.entries(CLASSES)) {
    it(`${className} has every command, with Client's parameter names and count`, () => {
      for (const name of NAMES) {
        const fn = method(cls, name);
        assert.equal(typeof fn, "function", `${className}.${name} is missing`);
        const reference = method(Client, name);
        assert.equal(fn.length, reference.length, `${className}.${name}.length`);
        assert.deepEqual(parameterNames(fn), parameterNames(reference), `${className}.${name} parameters`);
      }
      assert.equal(typeof (cls.prototype as unknown as Record<symbol, unknown>)[Symbol.asyncDispose], "function");
    });
  }

  it("the table's rows are consistent: aliases name commands, only server-wide commands have perServer or combine", () => {
    for (const [name, row] of Object.entries(COMMANDS)) {
      if ("alias" in row) {
        assert.ok(row.alias in COMMANDS && !("alias" in COMMANDS[row.alias]), `${name} aliases a command`);
        continue;
      }
      if (row.perServer || row.combine) assert.equal(row.route, "all", name);
      if (row.read) assert.notEqual(row.route, "all", name);
    }
  });

  it("RetryingClient passes every command's arguments through as given, defaults applied, and resolves its result", async () => {
    const calls: [string, unknown[]][] = [];
    const recorder = new Proxy({}, {
      get: (_, name) => (...args: unknown[]) => {
        calls.push([String(name), args]);
        return Promise.resolve(`result of ${String(name)}`);
      },
    }) as unknown as Commands;
    const retrying = new RetryingClient(recorder);
    for (const name of Object.keys(COMMANDS) as CommandName[]) {
      const row = rowOf(name);
      if (row.composed) continue; // runs over RetryingClient's own commands: tests/features/get_or_set_test.ts
      const target = "alias" in COMMANDS[name] ? (COMMANDS[name] as { alias: string }).alias : name;
      // The first argument as the route wants it; the others as sentinels.
      const first = row.route === "keys" ? ["a", "b"] : row.route === "pairs" ? new Map([["a", 1]]) : "k";
      const count = method(Client, name).length;
      const args = [first, ...Array.from({ length: Math.max(0, count - 1) }, (_, i) => ({ sentinel: i }))];
      if (row.route === "all") args.shift(); // stats, version, ...: no key
      calls.length = 0;
      const result = await (retrying[name] as AnyFunction)(...args.slice(0, count));
      assert.equal(result, `result of ${target}`, name);
      assert.equal(calls.length, 1, name);
      assert.equal(calls[0][0], target, name);
      // Defaults (e.g. get's defaultValue null) are applied as Client applies them.
      const sent = calls[0][1];
      for (let i = 0; i < Math.min(args.length, count); i++) {
        assert.deepEqual(sent[i], args[i], `${name} argument ${i}`);
      }
    }
  });

  it("each class's asyncDispose calls the object's own close(), so a subclass's or a patched close() runs", async () => {
    const objects = {
      Client: new Client("127.0.0.1:1"),
      PooledClient: new PooledClient("127.0.0.1:1"),
      HashClient: new HashClient(["127.0.0.1:1"]),
      RetryingClient: new RetryingClient(new Client("127.0.0.1:1")),
    };
    for (const [className, object] of Object.entries(objects)) {
      let closed = 0;
      Object.defineProperty(object, "close", { value: () => (closed++, Promise.resolve()) });
      await object[Symbol.asyncDispose]();
      assert.equal(closed, 1, className);
    }
  });
});
