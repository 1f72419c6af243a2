#!/usr/bin/env bash
# Compiles the library and the runtime-neutral tests (every .ts under tests/
# but the Deno-only *_deno_test.ts, and the npm/, workerd/ and tools/ stages'
# own files) to JavaScript with tsc, for the Node and Bun stages:
#   bash scripts/compile_tests.sh <outdir>
# The output mirrors the sources (<outdir>/mod.js, src/, transports/, tests/),
# with "./x.ts" imports rewritten to "./x.js". Type checking is deno check's
# job; this is a plain transpile (noCheck), down to ES2022 (Node 20: `using`
# becomes try/finally over Symbol.asyncDispose).
set -euo pipefail
cd "$(dirname "$0")/.."
out=${1:?usage: compile_tests.sh <outdir>}
rm -rf "$out"
tests=$(find tests -name '*.ts' -not -path 'tests/npm/*' -not -path 'tests/workerd/*' -not -path 'tests/tools/*' \
  -not -name '*_deno_test.ts' -not -name '*.vitest.ts' -not -name 'vitest.config.ts' | sort)
node_modules/.bin/tsc --target es2022 --module esnext --moduleResolution bundler \
  --rewriteRelativeImportExtensions --allowImportingTsExtensions --verbatimModuleSyntax \
  --noCheck --skipLibCheck --types node --rootDir . --outDir "$out" \
  mod.ts transports/node.ts $tests
cp -r tests/data "$out/tests/"
printf '{ "type": "module" }\n' >"$out/package.json"
