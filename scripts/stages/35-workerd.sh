#!/usr/bin/env bash
# Stage: the Client behaviour suite inside workerd (CloudflareTransport), run by
# miniflare from Node: tests/workerd/run.ts bundles tests/workerd/worker.ts,
# runs each case in a fetch handler against memcached spawned on loopback,
# then many sequential and concurrent requests sharing a module-scope client.
# Last line: "N passed, N failed".
set -uo pipefail
cd "$(dirname "$0")/../.."
out=.tmp/workerd
mkdir -p "$out"
echo "# node $(node --version), miniflare $(node -p 'require("miniflare/package.json").version'), $(node_modules/.bin/workerd --version 2>/dev/null)"
if ! node_modules/.bin/esbuild tests/workerd/run.ts --bundle --platform=node --format=esm --target=node20 \
  --packages=external --outfile="$out/run.mjs" --log-level=warning; then
  echo "0 passed, 1 failed (esbuild could not build tests/workerd/run.ts)"
  exit 1
fi
timeout 900 node "$out/run.mjs" "$PWD" "$@"
code=$?
[ "$code" = 124 ] && echo "0 passed, 1 failed (timed out)"
exit "$code"
