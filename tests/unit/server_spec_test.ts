import assert from "node:assert/strict";
import { describe, it } from "../_support/_harness.ts";
import { addressName, Client, parseServerSpec } from "../../mod.ts";

describe("server specs", () => {
  it("parses every documented form", () => {
    assert.deepEqual(parseServerSpec("cache.local:11212"), { host: "cache.local", port: 11212 });
    assert.deepEqual(parseServerSpec("cache.local"), { host: "cache.local", port: 11211 });
    assert.deepEqual(parseServerSpec("[::1]:11300"), { host: "::1", port: 11300 });
    assert.deepEqual(parseServerSpec("[::1]"), { host: "::1", port: 11211 });
    assert.deepEqual(parseServerSpec("::1"), { host: "::1", port: 11211 });
    assert.deepEqual(parseServerSpec("unix:/tmp/mc.sock"), { path: "/tmp/mc.sock" });
    assert.deepEqual(parseServerSpec("/tmp/mc.sock"), { path: "/tmp/mc.sock" });
    assert.deepEqual(parseServerSpec({ host: "h" }), { host: "h", port: 11211 });
    assert.deepEqual(parseServerSpec({ path: "/p" }), { path: "/p" });
    assert.equal(addressName({ host: "::1", port: 1 }), "[::1]:1");
  });

  it("throws TypeError naming the spec at construction", () => {
    for (const bad of ["", "host:", "host:0", "host:70000", "host:12x", " host", "unix:", "a b:1"]) {
      assert.throws(() => new Client(bad), (e: unknown) => {
        assert.ok(e instanceof TypeError);
        assert.ok((e as Error).message.includes(JSON.stringify(bad)), (e as Error).message);
        return true;
      });
    }
    assert.throws(() => new Client({ host: "h", port: -1 }), TypeError);
    assert.throws(() => new Client("h", { timeout: -5 }), TypeError);
  });
});
