/** Assertions the behaviour suites share (no runtime module, so the workerd bundle takes it too). */
import assert from "node:assert/strict";

/** `promise` rejects with an instance of `cls` whose message matches `match`, if given. */
export async function rejectsWith(
  promise: Promise<unknown>,
  cls: new (...args: never[]) => Error,
  match?: RegExp,
): Promise<void> {
  await assert.rejects(promise, (error: unknown) => {
    assert.ok(
      error instanceof cls,
      `expected ${cls.name}, got ${(error as Error)?.name}: ${(error as Error)?.message}`,
    );
    if (match) assert.match((error as Error).message, match);
    return true;
  });
}
