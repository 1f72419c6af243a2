#!/usr/bin/env bash
# Stage: the Keyv adapter (keyv.ts) under Keyv's own adapter test suite,
# @keyv/test-suite, which runs on vitest: tests/keyv/*.vitest.ts on Node with
# keyv 5.6, against memcached spawned on loopback by the test file
# (tests/_support/_memcached.ts). The adapter's other tests (tests/keyv/keyv_test.ts: namespaces,
# TTL, keys, clients, cacheable, cache-manager) run in the Deno, Node and Bun
# stages. Last line: "N passed, N failed".
set -uo pipefail
cd "$(dirname "$0")/../.."
out=.tmp/keyv
mkdir -p "$out"
version() { node -p "JSON.parse(require('fs').readFileSync('node_modules/$1/package.json', 'utf8')).version"; }
echo "# node $(node --version), vitest $(version vitest), keyv $(version keyv), @keyv/test-suite $(version @keyv/test-suite)"
rm -f "$out/report.json"
timeout 600 node_modules/.bin/vitest run --config tests/keyv/vitest.config.ts \
  --reporter=default --reporter=json --outputFile.json="$out/report.json"
code=$?
if [ ! -s "$out/report.json" ]; then
  echo "0 passed, 1 failed (vitest wrote no report, exit $code)"
  exit 1
fi
read -r p f < <(node -e '
  const r = require(process.argv[1]);
  // A file that fails to load fails no test: count it then.
  console.log(r.numPassedTests, r.numFailedTests || r.numFailedTestSuites || (r.success ? 0 : 1));
' "$PWD/$out/report.json")
[ "$code" != 0 ] && [ "$f" = 0 ] && f=1
echo "$p passed, $f failed"
[ "$code" = 0 ] && [ "$f" = 0 ]
