#!/usr/bin/env bash
# The project's single test command: makes sure the real control plane
# (etcd + kube-apiserver, see scripts/install-control-plane.sh) and the browser of the
# dashboard tests (Chromium + ChromeDriver, scripts/install-browser.sh) and the real Git
# servers of the repository tests and the Helm chart repository of the chart tests (nginx,
# fcgiwrap, sshd: scripts/install-git-servers.sh) and the OCI registry of the Helm chart and
# image tests (docker-registry, htpasswd: scripts/install-registry.sh), buildah, podman and
# runc for the image test (scripts/install-image-tools.sh) and the rendering tools (helm,
# kubectl: scripts/install-tools.sh, first on PATH) are installed, then runs every test of
# the workspace. Extra arguments go to `cargo test`.
set -euo pipefail

cd "$(dirname "$0")/.."
export ARGOSY_CACHE="${ARGOSY_CACHE:-$HOME/.cache/argosy}"
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/argosy/target}"

bash scripts/install-control-plane.sh
bash scripts/install-browser.sh
bash scripts/install-git-servers.sh
bash scripts/install-registry.sh
bash scripts/install-image-tools.sh
bash scripts/install-tools.sh
export PATH="$ARGOSY_CACHE/tools/bin:$PATH"
cargo test --workspace --all-targets "$@"
