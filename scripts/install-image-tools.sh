#!/usr/bin/env bash
# Make this machine able to build and run Argosy's container image without Docker:
# Debian's `buildah` (builds the image from scratch, pushes it: scripts/build-image.sh),
# `podman` (runs it: tests/tests/image.rs) and `runc` (the OCI runtime podman is told to
# use), plus `binutils` (`strip`, for a lean copy of the release binary).
#
# Nothing system-wide is configured: the containers configuration the scripts and tests use
# is written to ${ARGOSY_CACHE:-$HOME/.cache/argosy}/containers/containers.conf, and they
# point CONTAINERS_CONF at it. It says:
#   * runtime = "runc": Debian's default OCI runtime, crun, fails on this kind of machine
#     (hybrid cgroup v1/v2 hierarchy) when it sets up the container's cgroup;
#   * cgroup_manager = "cgroupfs", events_logger = "file": there is no systemd (or
#     journald) to talk to in CI containers and VMs;
#   * default_ulimits = []: Debian's default (nofile=1048576) is more than an
#     unprivileged CI sandbox lets a process raise, and the container would not start.
# The package's system services (podman.socket, podman-restart) are not started (a
# policy-rc.d answering 101 while apt-get runs).
#
# Idempotent: when everything is installed and the configuration is current, it exits at
# once. A flock serialises concurrent runs.
set -euo pipefail

ARGOSY_CACHE="${ARGOSY_CACHE:-$HOME/.cache/argosy}"
APT_PACKAGES=(buildah podman runc binutils)
POLICY_RC_D=/usr/sbin/policy-rc.d
CONF_DIR="$ARGOSY_CACHE/containers"
CONF="$CONF_DIR/containers.conf"

log() { printf '[install-image-tools] %s\n' "$*"; }
die() {
    printf '[install-image-tools] ERROR: %s\n' "$*" >&2
    exit 1
}

conf_text() {
    cat <<'EOF'
# Written by scripts/install-image-tools.sh; used through CONTAINERS_CONF by
# scripts/build-image.sh and tests/tests/image.rs. See that script for why.
[containers]
default_ulimits = []

[engine]
runtime = "runc"
cgroup_manager = "cgroupfs"
events_logger = "file"
EOF
}

tools_ready() {
    command -v buildah >/dev/null 2>&1 || return 1
    command -v podman >/dev/null 2>&1 || return 1
    command -v runc >/dev/null 2>&1 || return 1
    command -v strip >/dev/null 2>&1 || return 1
    [[ -f $CONF && "$(cat "$CONF")" == "$(conf_text)" ]] || return 1
}

describe() {
    printf '%s, %s, %s; CONTAINERS_CONF=%s' "$(buildah --version)" "$(podman --version)" \
        "$(runc --version | head -n1)" "$CONF"
}

if tools_ready; then
    log "ready: $(describe)"
    exit 0
fi

mkdir -p "$ARGOSY_CACHE"
LOCK_FILE="$ARGOSY_CACHE/install-image-tools.lock"
exec 9>"$LOCK_FILE"
if ! flock -n 9; then
    log "another install is running (lock $LOCK_FILE); waiting for it"
    flock 9
fi
if tools_ready; then
    log "ready (installed by a concurrent run): $(describe)"
    exit 0
fi

missing=()
for tool in buildah podman runc strip; do
    command -v "$tool" >/dev/null 2>&1 || missing+=("$tool")
done
if ((${#missing[@]})); then
    SUDO=()
    if [[ $(id -u) -ne 0 ]]; then
        command -v sudo >/dev/null 2>&1 || die "not root and no sudo: cannot apt-get install ${APT_PACKAGES[*]}"
        SUDO=(sudo)
    fi
    POLICY_BACKUP=""
    if [[ -e "$POLICY_RC_D" ]]; then
        POLICY_BACKUP=$(mktemp)
        "${SUDO[@]}" cp -p "$POLICY_RC_D" "$POLICY_BACKUP"
    fi
    restore_policy() {
        if [[ -n "$POLICY_BACKUP" ]]; then
            "${SUDO[@]}" cp -p "$POLICY_BACKUP" "$POLICY_RC_D"
            rm -f "$POLICY_BACKUP"
        else
            "${SUDO[@]}" rm -f "$POLICY_RC_D"
        fi
    }
    trap restore_policy EXIT
    printf '#!/bin/sh\n# install-image-tools.sh: no service starts while it installs packages.\nexit 101\n' |
        "${SUDO[@]}" tee "$POLICY_RC_D" >/dev/null
    "${SUDO[@]}" chmod 755 "$POLICY_RC_D"

    log "apt-get update"
    "${SUDO[@]}" apt-get update -qq || die "apt-get update failed"
    log "apt-get install ${APT_PACKAGES[*]} (missing: ${missing[*]})"
    DEBIAN_FRONTEND=noninteractive "${SUDO[@]}" apt-get install -y -qq --no-install-recommends "${APT_PACKAGES[@]}" >/dev/null ||
        die "apt-get install ${APT_PACKAGES[*]} failed"
fi

mkdir -p "$CONF_DIR"
conf_text >"$CONF.new"
mv -f "$CONF.new" "$CONF"

tools_ready || die "buildah, podman, runc or strip missing after installing"
log "installed: $(describe)"
