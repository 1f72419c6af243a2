// vitest's configuration for the Keyv stage (scripts/stages/25-keyv.sh): only the
// *.vitest.ts files here, which node:test, Deno and Bun never pick up.
import { defineConfig } from "vitest/config";

export default defineConfig({
  test: {
    include: ["tests/keyv/*.vitest.ts"],
    // One memcached per file; the suite's cases share it, so run them in order.
    fileParallelism: false,
    testTimeout: 20_000,
    hookTimeout: 20_000,
  },
});
