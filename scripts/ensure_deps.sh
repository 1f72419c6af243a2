#!/usr/bin/env bash
# Installs what the demo and the tests need on a fresh machine that has only
# Node and npm: the npm toolchain (npm ci) and Debian packages (apt-get).
set -euo pipefail
cd "$(dirname "$0")/.."

# `npm ci`: exactly the committed lock (which lists every platform's deno and
# workerd binaries; npm installs this platform's).
if [ ! -x node_modules/deno/deno ] || [ package-lock.json -nt node_modules/.package-lock.json ]; then
  echo "==> npm ci (dev toolchain from package-lock.json: deno, bun, typescript, miniflare, ...)"
  npm ci --no-audit --no-fund --loglevel=error
  # deno's install script links node_modules/.bin/deno to the native binary,
  # which `deno task` would run as a JavaScript file if a task named a bare
  # `deno`: the tasks in deno.json and these scripts call node_modules/deno/deno.
fi

missing=()
while read -r pkg; do
  pkg="${pkg%%#*}"; pkg="${pkg// /}"
  [ -z "$pkg" ] && continue
  dpkg -s "$pkg" >/dev/null 2>&1 || missing+=("$pkg")
done < scripts/apt-packages.txt

if [ ${#missing[@]} -gt 0 ]; then
  if command -v apt-get >/dev/null 2>&1 && { [ "$(id -u)" = 0 ] || sudo -n true 2>/dev/null; }; then
    sudo=""; [ "$(id -u)" = 0 ] || sudo="sudo -n"
    echo "==> apt-get install ${missing[*]}"
    $sudo apt-get update -qq >/dev/null
    DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq "${missing[@]}" >/dev/null
  elif ! command -v memcached >/dev/null 2>&1; then
    echo "error: missing packages: ${missing[*]}" >&2
    echo "Install them yourself (Debian/Ubuntu: sudo apt-get install ${missing[*]};" >&2
    echo "macOS: brew install memcached), or point MEMCACHED_BIN at a memcached binary." >&2
    exit 1
  else
    echo "warning: not installed (no root for apt-get): ${missing[*]}; tests needing them may fail" >&2
  fi
fi

# memcached 1.6.38 with the proxy, built once from Debian 13's source package
# into node_modules/.cache/memkit/ (after `npm ci`, which may wipe it). The
# tests that need it fail with a clear message when it is missing, unless
# MEMKIT_SKIP_1638=1 (for machines without build tools).
if [ "${MEMKIT_SKIP_1638:-}" != 1 ]; then
  bash scripts/build_memcached.sh >/dev/null ||
    echo "warning: building memcached 1.6.38 failed (see above); its tests will fail (MEMKIT_SKIP_1638=1 skips them)" >&2
fi
