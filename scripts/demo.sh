#!/usr/bin/env bash
# `npm run demo`: installs what is missing (npm toolchain, memcached), then runs the demo.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/ensure_deps.sh
exec node_modules/deno/deno run --allow-all scripts/demo.ts
