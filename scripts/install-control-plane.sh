#!/usr/bin/env bash
# Make this machine able to run a real Kubernetes control plane for tests:
# etcd (Debian's etcd-server) and a kube-apiserver v1.20.2 built from Debian
# bookworm's `kubernetes` source package. See
# /work/shared/docs/real-kubernetes-for-tests.md for why it is done this way.
#
# Idempotent: when the cached kube-apiserver and etcd already work, it exits
# at once. Everything is cached outside the clone, under
# ${ARGOSY_CACHE:-$HOME/.cache/argosy}. A flock serialises concurrent runs so
# only one of them builds.
set -euo pipefail

ARGOSY_CACHE="${ARGOSY_CACHE:-$HOME/.cache/argosy}"
BIN_DIR="$ARGOSY_CACHE/bin"
APISERVER="$BIN_DIR/kube-apiserver"
K8S_SRC_VERSION="1.20.5+really1.20.2-1.1+deb12u1"
K8S_ORIG_TARBALL="kubernetes_1.20.5+really1.20.2.orig.tar.gz"
K8S_TREE="kubernetes-1.20.2"
DEB_SRC_FILE="/etc/apt/sources.list.d/argosy-deb-src.sources"
APT_PACKAGES=(golang-go rsync jq etcd-server golang-github-modern-go-reflect2-dev openssl)

log() { printf '[install-control-plane] %s\n' "$*"; }
die() {
    printf '[install-control-plane] ERROR: %s\n' "$*" >&2
    exit 1
}

# Both binaries present and runnable?
control_plane_ready() {
    [[ -x "$APISERVER" ]] || return 1
    "$APISERVER" --version >/dev/null 2>&1 || return 1
    command -v etcd >/dev/null 2>&1 || return 1
    etcd --version >/dev/null 2>&1 || return 1
    command -v openssl >/dev/null 2>&1 || return 1
}

if control_plane_ready; then
    log "ready: $("$APISERVER" --version) at $APISERVER, etcd at $(command -v etcd)"
    exit 0
fi

mkdir -p "$ARGOSY_CACHE" "$BIN_DIR"
LOCK_FILE="$ARGOSY_CACHE/install.lock"
exec 9>"$LOCK_FILE"
if ! flock -n 9; then
    log "another install is running (lock $LOCK_FILE); waiting for it"
    flock 9
fi

# Somebody else may have finished the job while we waited for the lock.
if control_plane_ready; then
    log "ready (installed by a concurrent run): $APISERVER"
    exit 0
fi

SUDO=()
if [[ $(id -u) -ne 0 ]]; then
    command -v sudo >/dev/null 2>&1 || die "not root and no sudo: cannot apt-get install ${APT_PACKAGES[*]}"
    SUDO=(sudo)
fi
export DEBIAN_FRONTEND=noninteractive

START=$(date +%s)

if [[ ! -f "$DEB_SRC_FILE" ]]; then
    log "adding Debian source repository ($DEB_SRC_FILE)"
    "${SUDO[@]}" tee "$DEB_SRC_FILE" >/dev/null <<'EOF'
Types: deb-src
URIs: http://deb.debian.org/debian
Suites: bookworm bookworm-updates
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg

Types: deb-src
URIs: http://deb.debian.org/debian-security
Suites: bookworm-security
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg
EOF
fi

log "apt-get update"
"${SUDO[@]}" apt-get update -qq || die "apt-get update failed"
log "apt-get install ${APT_PACKAGES[*]}"
"${SUDO[@]}" apt-get install -y -qq --no-install-recommends "${APT_PACKAGES[@]}" >/dev/null ||
    die "apt-get install ${APT_PACKAGES[*]} failed"
command -v etcd >/dev/null 2>&1 || die "etcd-server installed but etcd is not on PATH"
command -v go >/dev/null 2>&1 || die "golang-go installed but go is not on PATH"

if [[ -x "$APISERVER" ]] && "$APISERVER" --version >/dev/null 2>&1; then
    log "kube-apiserver already built: $APISERVER"
    exit 0
fi

REFLECT2_FIXED=/usr/share/gocode/src/github.com/modern-go/reflect2
[[ -d "$REFLECT2_FIXED" ]] || die "missing $REFLECT2_FIXED (golang-github-modern-go-reflect2-dev)"

SCRATCH="$ARGOSY_CACHE/build"
rm -rf "$SCRATCH"
mkdir -p "$SCRATCH"
cleanup() { rm -rf "$SCRATCH"; }
trap cleanup EXIT

cd "$SCRATCH"
log "fetching source kubernetes=$K8S_SRC_VERSION"
apt-get source --download-only "kubernetes=$K8S_SRC_VERSION" >apt-source.log 2>&1 || {
    cat apt-source.log >&2
    die "apt-get source kubernetes=$K8S_SRC_VERSION failed (is the deb-src entry in $DEB_SRC_FILE reachable?)"
}
[[ -f "$K8S_ORIG_TARBALL" ]] || die "apt-get source did not produce $K8S_ORIG_TARBALL"

log "unpacking $K8S_ORIG_TARBALL"
tar xzf "$K8S_ORIG_TARBALL"
[[ -d "$K8S_TREE/vendor" ]] || die "$K8S_TREE/vendor is missing: wrong source package version?"

# Kubernetes 1.20 vendors reflect2 v1.0.1, which is broken with Go >= 1.18:
# kube-apiserver dies with `fatal error: fault` under load. Use Debian's 1.0.2.
log "replacing vendored github.com/modern-go/reflect2 with Debian's fixed copy"
VENDORED_REFLECT2="$K8S_TREE/vendor/github.com/modern-go/reflect2"
[[ -d "$VENDORED_REFLECT2" ]] || die "$VENDORED_REFLECT2 not found in the source tree"
rm -rf "$VENDORED_REFLECT2"
mkdir -p "$VENDORED_REFLECT2"
cp -a "$REFLECT2_FIXED/." "$VENDORED_REFLECT2/"
rm -f "$VENDORED_REFLECT2/go.mod" "$VENDORED_REFLECT2/go.sum" "$VENDORED_REFLECT2/test.sh"
find "$VENDORED_REFLECT2" -name '*_test.go' -delete

cd "$K8S_TREE"
mkdir -p .go/src/k8s.io .home
ln -sfn ../../.. .go/src/k8s.io/kubernetes
log "building kube-apiserver with $(go version) (several minutes on 2 cores)"
BUILD_START=$(date +%s)
if ! env GOPATH="$PWD/.go" CGO_ENABLED=0 HOME="$PWD/.home" GOFLAGS= \
    make WHAT=cmd/kube-apiserver >"$ARGOSY_CACHE/build.log" 2>&1; then
    tail -n 40 "$ARGOSY_CACHE/build.log" >&2
    die "make WHAT=cmd/kube-apiserver failed; full log in $ARGOSY_CACHE/build.log"
fi
log "build finished in $(($(date +%s) - BUILD_START))s"

BUILT=_output/bin/kube-apiserver
[[ -x "$BUILT" ]] || die "build succeeded but $BUILT is missing"
# Copy to a temporary name then rename, so a half-copied binary is never used.
cp "$BUILT" "$APISERVER.tmp"
mv -f "$APISERVER.tmp" "$APISERVER"
"$APISERVER" --version >/dev/null 2>&1 || die "$APISERVER does not run"

log "installed $("$APISERVER" --version) at $APISERVER in $(($(date +%s) - START))s total"
