#!/usr/bin/env bash
# Stage: the packages as users get them. JSR: deno check, deno doc --lint and
# deno publish --dry-run on deno.json's exports. npm: builds npm/ (deno task build:npm),
# packs it, installs the tarball into a fresh project (offline: the package
# has no dependencies), then against a memcached spawned on loopback runs
# tests/npm/integration.mjs in Node, Bun and Deno, bundles tests/npm/worker with
# wrangler (deploy --dry-run, minified; whole, and as the get/set Worker whose
# size is budgeted) and runs the whole bundle in workerd (miniflare), and
# type-checks tests/npm/consumer.ts with tsc under moduleResolution nodenext
# and bundler. Last line: "N passed, N failed".
set -uo pipefail
cd "$(dirname "$0")/../.."
ROOT=$PWD
export PATH="$ROOT/node_modules/.bin:$PATH"
DENO=${DENO:-$ROOT/node_modules/deno/deno}
export WRANGLER_SEND_METRICS=false NO_UPDATE_NOTIFIER=1 npm_config_update_notifier=false

passed=0; failed=0
ok() { passed=$((passed + 1)); echo "ok - $1"; }
ko() { failed=$((failed + 1)); echo "not ok - $1"; }
# step NAME CMD...: one case, passing when CMD exits 0.
step() { local name=$1; shift; if "$@"; then ok "$name"; else ko "$name"; return 1; fi; }
# suite NAME CMD...: a command printing its own "N passed, N failed" line.
suite() {
  local name=$1 out line p f code; shift
  out=$(mktemp)
  "$@" 2>&1 | tee "$out"; code=${PIPESTATUS[0]}
  line=$(grep -E '^[0-9]+ passed, [0-9]+ failed' "$out" | tail -n 1); rm -f "$out"
  if [ -z "$line" ]; then ko "$name (no summary, exit $code)"; return; fi
  p=${line%% passed*}; f=${line#*passed, }; f=${f%% failed*}
  passed=$((passed + p)); failed=$((failed + f))
  if [ "$code" != 0 ] && [ "$f" = 0 ]; then ko "$name (exit $code)"; fi
}
finish() { echo "$passed passed, $failed failed"; [ "$failed" = 0 ]; exit; }

tmp=$(mktemp -d "${TMPDIR:-/tmp}/memkit-npm-XXXXXX")
mc_pid=""
cleanup() { [ -n "$mc_pid" ] && kill "$mc_pid" 2>/dev/null && wait "$mc_pid" 2>/dev/null; rm -rf "$tmp"; }
trap cleanup EXIT

# JSR: what `deno publish` checks (slow types, the graph), documented exports, every entry type-checks.
entries=$(node -p 'Object.values(require("./deno.json").exports).join(" ")')
step "deno check every entry point ($entries)" "$DENO" check $entries
step "deno doc --lint $entries" "$DENO" doc --lint $entries
step "deno publish --dry-run" "$DENO" publish --dry-run --allow-dirty

# The command of `deno task build:npm`, run directly (see ensure_deps.sh).
step "build npm/ (scripts/build_npm.ts)" "$DENO" run --allow-all scripts/build_npm.ts || finish

app="$tmp/app"
mkdir -p "$app"
pack() {
  local name
  name=$(cd npm && npm pack --silent --ignore-scripts --pack-destination "$tmp") || return 1
  tarball="$tmp/$name"
  echo "# packed $(basename "$tarball"): $(stat -c %s "$tarball") bytes"
}
install() {
  printf '{ "name": "memkit-consumer", "private": true, "type": "module" }\n' >"$app/package.json"
  (cd "$app" && npm install --offline --no-audit --no-fund --loglevel=error "$tarball") || return 1
  # Nothing but the package itself may have been installed.
  local installed
  installed=$(cd "$app/node_modules" && find . -mindepth 1 -maxdepth 2 -type d ! -name .bin ! -name '@*' | sort | tr '\n' ' ')
  [ "$installed" = "./@memkit/memcache " ] || { echo "unexpected packages: $installed"; return 1; }
}
step "npm pack" pack || finish
step "npm install <tarball> into a fresh project, offline, no dependencies" install || finish
cp tests/npm/integration.mjs tests/npm/consumer.ts tests/npm/tsconfig.nodenext.json tests/npm/tsconfig.bundler.json "$app/"
cp -r tests/npm/worker/wrangler.toml tests/npm/worker/src "$app/"

port=$(node -e 'const s=require("net").createServer().listen(0,"127.0.0.1",()=>{console.log(s.address().port);s.close()})')
user=(); [ "$(id -u)" = 0 ] && user=(-u root)
"${MEMCACHED_BIN:-memcached}" -U 0 -t 1 -m 64 -l 127.0.0.1 -p "$port" "${user[@]}" &
mc_pid=$!
for _ in $(seq 100); do (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null && break; sleep 0.05; done
export MEMCACHED="127.0.0.1:$port"

suite "node integration" bash -c "cd '$app' && timeout 120 node integration.mjs"
suite "bun integration" bash -c "cd '$app' && timeout 120 bun integration.mjs"
suite "deno integration (the package from node_modules)" bash -c "cd '$app' && timeout 120 '$DENO' run -A integration.mjs"

# wrangler needs Node >= 22.12; this machine's Node is 20, so it runs on Bun.
# bundle OUTDIR [ARGS...]: the Worker as `wrangler deploy` would upload it.
bundle() {
  local out=$1; shift
  (cd "$app" && timeout 180 bun "$ROOT/node_modules/wrangler/bin/wrangler.js" deploy --dry-run --minify \
    --outdir "$out" "$@" 2>&1) | grep -vE '^\s*$' | tail -n 15
  [ -f "$app/$out/index.js" ]
}
# The whole Worker (Client routes and a MemcachedCache one) runs in workerd; the
# 72 KB budget is on the get/set Worker, the same file with the /cache route
# defined away (see tests/npm/worker/src/index.js).
if step "wrangler deploy --dry-run bundles a Worker importing @memkit/memcache" bundle dist &&
  step "wrangler deploy --dry-run bundles the get/set Worker (no MemcachedCache)" \
    bundle dist-getset --define globalThis.MEMKIT_CACHE_ROUTE:false; then
  suite "worker in workerd" timeout 120 node tests/npm/run_worker.mjs "$app/dist/index.js" "$MEMCACHED" \
    "$app/dist-getset/index.js"
fi

for mode in nodenext bundler; do
  step "tsc --noEmit consumer.ts (moduleResolution $mode, skipLibCheck false)" \
    bash -c "cd '$app' && tsc -p tsconfig.$mode.json --typeRoots '$ROOT/node_modules/@types'"
done
finish
