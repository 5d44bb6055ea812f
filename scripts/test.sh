#!/usr/bin/env bash
# The project's single test command: makes sure the real control plane
# (etcd + kube-apiserver, see scripts/install-control-plane.sh) is installed,
# then runs every test of the workspace. Extra arguments go to `cargo test`.
set -euo pipefail

cd "$(dirname "$0")/.."
export ARGOSY_CACHE="${ARGOSY_CACHE:-$HOME/.cache/argosy}"
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/argosy/target}"

bash scripts/install-control-plane.sh
cargo test --workspace --all-targets "$@"
