#!/usr/bin/env bash
# Vendors the console's one JavaScript dependency, uPlot, into crates/server/console/vendor/.
# Pinned by version and by the registry's integrity hash; the tarball is fetched once with
# `npm pack` (npm's own cache, or $COFFER_VENDOR_CACHE), after which this runs offline. The
# files are copied as published: no build step, uPlot ships an ES module.
set -euo pipefail
cd "$(dirname "$0")/.."

NAME=uplot
VERSION=1.6.32
INTEGRITY="sha512-KIMVnG68zvu5XXUbC4LQEPnhwOxBuLyW1AHtpm6IKTXImkbLgkMy+jabjLgSLMasNuGGzQm/ep3tOkyTxpiQIw=="
CACHE="${COFFER_VENDOR_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/coffer-vendor}"
TARBALL="$CACHE/$NAME-$VERSION.tgz"
OUT=crates/server/console/vendor

mkdir -p "$CACHE" "$OUT"
if [ ! -f "$TARBALL" ]; then
  # `--prefer-offline`: npm's cache first, the registry only when the tarball is not in it.
  (cd "$CACHE" && npm pack --silent --prefer-offline "$NAME@$VERSION" >/dev/null)
fi
actual="sha512-$(openssl dgst -sha512 -binary "$TARBALL" | base64 -w0)"
if [ "$actual" != "$INTEGRITY" ]; then
  echo "integrity mismatch for $TARBALL: expected $INTEGRITY, got $actual" >&2
  exit 1
fi
tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT
tar -xzf "$TARBALL" -C "$tmp" package/dist/uPlot.esm.js package/dist/uPlot.min.css package/LICENSE
cp "$tmp/package/dist/uPlot.esm.js" "$tmp/package/dist/uPlot.min.css" "$OUT/"
cp "$tmp/package/LICENSE" "$OUT/uPlot.LICENSE"
printf '%s@%s %s\n' "$NAME" "$VERSION" "$INTEGRITY" > "$OUT/VERSIONS"
echo "vendored $NAME@$VERSION into $OUT"
