#!/usr/bin/env bash
# Builds memcached 1.6.38 with the proxy (Debian 13 "trixie"'s version) from
# its Debian source package, once, into
#   node_modules/.cache/memkit/memcached-1.6.38/memcached
# Debian 12 ships 1.6.18 without the proxy, and trixie's prebuilt package needs
# a newer C library than Debian 12 has; its source builds here in ~20 s.
#
# The source comes through apt's own tools from the Debian mirror this machine
# already uses, with a private sources file, list directory and cache (all
# under the cache dir): the machine's apt configuration is left as it is.
# Idempotent: exits at once when the binary is there. Prints where it is.
set -euo pipefail
cd "$(dirname "$0")/.."

VERSION=1.6.38
CACHE="$PWD/node_modules/.cache/memkit"
OUT="$CACHE/memcached-$VERSION"
BIN="$OUT/memcached"

if [ -x "$BIN" ] && "$BIN" --version 2>/dev/null | grep -q "memcached $VERSION"; then
  echo "$BIN"
  exit 0
fi

# One build at a time (several checkouts may share node_modules): wait for
# another one, then use its binary.
mkdir -p "$OUT"
exec 9>"$OUT/.lock"
if command -v flock >/dev/null 2>&1; then flock 9; fi
if [ -x "$BIN" ] && "$BIN" --version 2>/dev/null | grep -q "memcached $VERSION"; then
  echo "$BIN"
  exit 0
fi

# The mirror: the first Debian (not -security) URI in the machine's own apt
# sources, deb822 (.sources) or one-line (.list) style.
mirror=""
for f in /etc/apt/sources.list.d/*.sources /etc/apt/sources.list /etc/apt/sources.list.d/*.list; do
  [ -f "$f" ] || continue
  mirror=$(grep -hoE '(https?|file)://[^ ]*/debian/?( |$)' "$f" | head -n 1 | tr -d ' ' || true)
  [ -n "$mirror" ] && break
done
mirror="${mirror%/}"
if [ -z "$mirror" ]; then
  echo "build_memcached: no Debian mirror found in /etc/apt/sources.list(.d)" >&2
  exit 1
fi

APT="$OUT/apt"
# A directory of its own: a build without the lock (an older copy of this script) cannot clash with it.
SRC="$OUT/src.$$"
trap 'rm -rf "$SRC"' EXIT
mkdir -p "$APT/etc/sources.list.d" "$APT/lists/partial" "$APT/cache/archives/partial" "$SRC"
keyring=/usr/share/keyrings/debian-archive-keyring.gpg
cat >"$APT/etc/sources.list" <<EOF
deb-src [signed-by=$keyring] $mirror trixie main
EOF
apt_opts=(
  -o "Dir::Etc::sourcelist=$APT/etc/sources.list"
  -o "Dir::Etc::sourceparts=$APT/etc/sources.list.d"
  -o "Dir::State::Lists=$APT/lists"
  -o "Dir::Cache=$APT/cache"
  -o "APT::Sandbox::User=root"
)

echo "==> memcached $VERSION: apt-get source from trixie (private apt dir $APT)" >&2
apt-get "${apt_opts[@]}" update -qq >&2
# --download-only then dpkg-source: the directory name does not depend on the
# Debian revision; dpkg-dev provides dpkg-source.
(cd "$SRC" && apt-get "${apt_opts[@]}" source --download-only -qq memcached/trixie >&2)
dsc=$(ls "$SRC"/memcached_"$VERSION"*.dsc | head -n 1)
(cd "$SRC" && dpkg-source --no-check -x "$(basename "$dsc")" build >/dev/null)

echo "==> memcached $VERSION: configure --enable-proxy --enable-tls --enable-sasl && make" >&2
(
  cd "$SRC/build"
  ./configure --enable-proxy --enable-tls --enable-sasl >"$OUT/configure.log" 2>&1 ||
    { tail -n 30 "$OUT/configure.log" >&2; exit 1; }
  make -j2 >"$OUT/make.log" 2>&1 || { tail -n 30 "$OUT/make.log" >&2; exit 1; }
)
cp "$SRC/build/memcached" "$BIN.tmp.$$"
mv "$BIN.tmp.$$" "$BIN"
# Keep the binary and the logs; the source tree and apt lists are ~60 MB.
rm -rf "$SRC" "$APT/lists" "$APT/cache"
"$BIN" --version >&2
echo "$BIN"
