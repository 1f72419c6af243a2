#!/usr/bin/env bash
# Stage: the same compiled tests as the Node stage, on Bun (NodeTransport; Bun
# from the npm package `bun`), with `bun test`, which runs node:test's
# describe/it. Last line: "N passed, N failed".
set -uo pipefail
cd "$(dirname "$0")/../.."
out=.tmp/runtime-bun
BUN=${BUN:-$PWD/node_modules/.bin/bun}
echo "# bun $("$BUN" --version)"
if ! bash scripts/compile_tests.sh "$out"; then
  echo "0 passed, 1 failed (tsc could not compile the tests)"
  exit 1
fi
log=$(mktemp)
(cd "$out" && timeout 900 "$BUN" test --timeout 60000 ./tests/) 2>&1 | tee "$log"
code=${PIPESTATUS[0]}
p=$(grep -aE '^ *[0-9]+ pass$' "$log" | tail -n 1 | grep -oE '[0-9]+')
f=$(grep -aE '^ *[0-9]+ fail$' "$log" | tail -n 1 | grep -oE '[0-9]+')
rm -f "$log"
[ -z "$p" ] && { p=0; f=$((${f:-0} + 1)); }
f=${f:-0}
[ "$code" != 0 ] && [ "$f" = 0 ] && f=1
echo "$p passed, $f failed"
[ "$code" = 0 ] && [ "$f" = 0 ]
