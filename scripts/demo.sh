#!/usr/bin/env bash
# The README's main command: render the bundled per-customer example, offline.
#
# Turns examples/per-customer/repo into a real Git repository (the generators read Git
# objects, not plain directories), then runs `argosy generate` with --explain so you can
# see which cluster Secret and which Git directory produced each Application.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cache=${ARGOSY_CACHE:-$HOME/.cache/argosy}
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-$cache/target}

echo "[demo] building argosy (release)" >&2
cargo build --release --quiet --manifest-path "$root/Cargo.toml" -p argosy
argosy="$CARGO_TARGET_DIR/release/argosy"

example="$root/examples/per-customer"
repo="$cache/demo/fleet"
rm -rf "$repo" && mkdir -p "$repo"
cp -r "$example/repo/." "$repo/"
git -C "$repo" init --quiet --initial-branch=main
git -C "$repo" add --all
git -C "$repo" -c user.name=argosy -c user.email=argosy@localhost commit --quiet -m "per-customer example"
echo "[demo] example repo at $repo ($(git -C "$repo" rev-parse --short HEAD))" >&2

"$argosy" generate \
  -f "$example/appset.yaml" \
  --clusters "$example/clusters" \
  --repo "https://git.example.com/platform/fleet.git=$repo" \
  --explain "$@"
