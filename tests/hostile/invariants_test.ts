// The harness ledger's "late" rule (tests/hostile/_hostile_ledger.ts Invariants): a call
// past its timeout + 100 ms is late when the process had the CPU it needed,
// and excused when the OS simply did not run the process (a loaded machine),
// so a green suite stays green on a busy machine and a late client is still
// caught.
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import process from "node:process";
import { describe, it } from "../_support/_harness.ts";
import { delay } from "./_hostile.ts";
import { Invariants } from "./_hostile_ledger.ts";

/** Stops this process (SIGSTOP) for `seconds`, from a child shell; resolves once the child has resumed it and exited. */
function stopMe(seconds: number): Promise<number | null> {
  const child = spawn("sh", ["-c", `kill -STOP ${process.pid}; sleep ${seconds}; kill -CONT ${process.pid}`], {
    stdio: "ignore",
  });
  return new Promise((resolve) => child.once("close", resolve));
}

function cpuMs(): number {
  const { user, system } = process.cpuUsage();
  return (user + system) / 1000;
}

describe("Invariants: late calls", () => {
  it("a call that ignores its timeout while the process idles is late", async () => {
    const inv = new Invariants("idle");
    await inv.call("slow", 200, () => delay(1000));
    assert.equal(inv.report.late, 1, inv.summary());
    assert.equal(inv.report.excused, 0);
    assert.throws(() => inv.assertClean(), /1 late/);
  });

  it("a call that blocks the event loop itself is late: the process had the CPU", async () => {
    const inv = new Invariants("busy");
    await inv.call("spin", 100, async () => {
      await delay(20);
      // 500 ms of this process's CPU time (more wall time on a loaded machine), the loop held all along.
      const start = cpuMs();
      while (cpuMs() - start < 500) { /* the call holds the loop */ }
    });
    assert.equal(inv.report.late, 1, inv.summary());
    assert.equal(inv.report.excused, 0);
  });

  it("a call stretched only because the OS did not run the process is excused, not late", async () => {
    const inv = new Invariants("starved");
    const outcome = await inv.call("stopped", 1000, () => stopMe(2));
    assert.equal(outcome.ok && outcome.value, 0, "the stopper shell exited cleanly");
    assert.ok(outcome.ms > 2000, `the call took ${outcome.ms} ms`);
    assert.equal(inv.report.late, 0, inv.summary());
    assert.equal(inv.report.excused, 1, inv.summary());
    assert.ok(inv.report.maxStarvedMs > 1500, inv.summary());
    inv.assertClean();
  });

  it("calls on time are not late", async () => {
    const inv = new Invariants("on time");
    await Promise.all(Array.from({ length: 20 }, (_, i) => inv.call(`call ${i}`, 500, () => delay(5 + i))));
    assert.equal(inv.report.late, 0, inv.summary());
    inv.assertClean();
  });
});
