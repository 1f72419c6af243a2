// The layout rules (scripts/check_layout.ts): no import cycle among the
// published files, imports between src/'s folders one way, no hand-written
// file over 800 lines. `deno task check` runs the same check.
import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { cycles, layoutProblems, moduleGraph, wrongWay } from "../../scripts/check_layout.ts";

describe("layout", () => {
  it("has no import cycle, no import against the folders' direction, no hand-written file over 800 lines", async () => {
    assert.deepEqual(await layoutProblems(), []);
  });

  it("the module graph reaches every published file, type-only imports included", async () => {
    const graph = await moduleGraph();
    assert.ok(graph.size > 40, `only ${graph.size} modules`);
    assert.ok([...graph.keys()].some((p) => p.startsWith("transports/")));
  });

  it("finds a cycle and a wrong-way import when there is one", () => {
    const graph = new Map([
      ["src/protocol/a.ts", new Set(["src/clients/b.ts"])],
      ["src/clients/b.ts", new Set(["src/protocol/a.ts"])],
      ["src/clients/c.ts", new Set(["src/clients/c.ts"])],
    ]);
    assert.deepEqual(cycles(graph), [["src/clients/b.ts", "src/protocol/a.ts"], ["src/clients/c.ts"]]);
    assert.deepEqual(wrongWay(graph), [
      "src/protocol/a.ts -> src/clients/b.ts: src/protocol/ may not import from src/clients/",
    ]);
  });
});
