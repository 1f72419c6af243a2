#!/usr/bin/env bash
# `npm run demo`: installs what is missing (npm toolchain, memcached), then runs the demo.
# Without memcached (and no root to install it) the demo runs on MemoryServer.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/ensure_deps.sh || [ -x node_modules/deno/deno ]
exec node_modules/deno/deno run --allow-all scripts/demo.ts
