#!/usr/bin/env bash
# Stage: the behaviour suite and the unit tests on Node (NodeTransport), run on
# the JavaScript tsc compiles them to (scripts/compile_tests.sh), not on the
# TypeScript sources: every *_test.ts under tests/ but the Deno-only ones, the same
# test bodies Deno runs, under node:test. Last line: "N passed, N failed".
set -uo pipefail
cd "$(dirname "$0")/../.."
out=.tmp/runtime-node
echo "# node $(node --version)"
if ! bash scripts/compile_tests.sh "$out"; then
  echo "0 passed, 1 failed (tsc could not compile the tests)"
  exit 1
fi
log=$(mktemp)
(cd "$out" && timeout 900 node --test --test-reporter=tap $(cd "$out" && find tests -name '*_test.js' | sort)) 2>&1 | tee "$log"
code=${PIPESTATUS[0]}
p=$(grep -aE '^# pass [0-9]+' "$log" | tail -n 1 | grep -oE '[0-9]+')
f=$(grep -aE '^# fail [0-9]+' "$log" | tail -n 1 | grep -oE '[0-9]+')
c=$(grep -aE '^# cancelled [0-9]+' "$log" | tail -n 1 | grep -oE '[0-9]+')
rm -f "$log"
[ -z "$p" ] && { p=0; f=$((${f:-0} + 1)); }
f=$((${f:-0} + ${c:-0}))
[ "$code" != 0 ] && [ "$f" = 0 ] && f=1
echo "$p passed, $f failed"
[ "$code" = 0 ] && [ "$f" = 0 ]
