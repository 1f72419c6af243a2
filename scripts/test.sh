#!/usr/bin/env bash
# The whole test suite: `npm test` (README). Installs what is missing, then
# runs every stage in scripts/stages/ in order. Each stage prints a last line
# "N passed, N failed"; this script adds them up and prints the total last.
set -uo pipefail
cd "$(dirname "$0")/.."
bash scripts/ensure_deps.sh || exit 1
export PATH="$PWD/node_modules/.bin:$PATH"
export DENO="$PWD/node_modules/deno/deno"

passed=0; failed=0; broken=(); failures=$(mktemp)
for stage in scripts/stages/*.sh; do
  name=$(basename "$stage" .sh)
  echo "==> stage $name"
  log=$(mktemp)
  bash "$stage" 2>&1 | tee "$log"
  code=${PIPESTATUS[0]}
  line=$(grep -aE '^[0-9]+ passed, [0-9]+ failed' "$log" | tail -n 1)
  # The names of failed tests, in each runner's words (Bun "(fail)", TAP
  # "not ok", Deno's "name => file:line", vitest "FAIL"/"×"), kept for the
  # end so that the last screen of a long run says what failed.
  sed -E 's/\x1b\[[0-9;]*m//g' "$log" \
    | grep -aE '^\(fail\) |^ *not ok |^[^ ].* => \./?tests/.*:[0-9]+:[0-9]+$| FAIL |^ +× ' \
    | grep -avE '# (SKIP|TODO)' | awk '!seen[$0]++' | head -n 40 | sed "s/^/  [$name] /" >> "$failures"
  rm -f "$log"
  if [ -z "$line" ]; then
    echo "stage $name printed no 'N passed, N failed' line (exit $code)"
    failed=$((failed + 1)); broken+=("$name"); continue
  fi
  p=$(echo "$line" | sed -E 's/^([0-9]+) passed, ([0-9]+) failed.*/\1/')
  f=$(echo "$line" | sed -E 's/^([0-9]+) passed, ([0-9]+) failed.*/\2/')
  passed=$((passed + p)); failed=$((failed + f))
  if [ "$code" != 0 ] && [ "$f" = 0 ]; then failed=$((failed + 1)); fi
  if [ "$code" != 0 ] || [ "$f" != 0 ]; then broken+=("$name"); fi
done
if [ -s "$failures" ]; then
  echo "failed tests:"
  cat "$failures"
fi
rm -f "$failures"
[ ${#broken[@]} -gt 0 ] && echo "failing stages: ${broken[*]}"
echo "$passed passed, $failed failed"
[ "$failed" = 0 ]
