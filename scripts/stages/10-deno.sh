#!/usr/bin/env bash
# Stage: the whole suite under Deno (DenoTransport and NodeTransport), sanitizers on.
set -uo pipefail
cd "$(dirname "$0")/../.."
out=$(mktemp)
# The same command as deno.json's "test" task (run directly: see ensure_deps.sh).
"${DENO:-node_modules/deno/deno}" test --allow-all --sanitize-ops --sanitize-resources tests/ 2>&1 | tee "$out"
code=${PIPESTATUS[0]}
summary=$(sed -E 's/\x1b\[[0-9;]*m//g' "$out" | grep -aE '^(ok|FAILED) \| ' | tail -n 1)
rm -f "$out"
p=$(echo "$summary" | grep -oE '[0-9]+ passed' | grep -oE '[0-9]+' || echo 0)
f=$(echo "$summary" | grep -oE '[0-9]+ failed' | grep -oE '[0-9]+' || echo 0)
[ -z "$summary" ] && f=1
echo "${p:-0} passed, ${f:-0} failed"
exit "$code"
