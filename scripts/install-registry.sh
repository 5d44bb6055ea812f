#!/usr/bin/env bash
# Make this machine able to run the OCI registry of the integration tests
# (tests/src/registry.rs): Debian's `docker-registry` (the CNCF Distribution registry,
# `docker-registry serve CONFIG`) and `htpasswd` (apache2-utils) for its bcrypt basic-auth
# file, plus the `openssl` CLI that makes the throwaway CA and server certificate.
#
# The tests start every registry themselves, on loopback, with their own configuration and
# storage in a temp dir: the package's system service (docker-registry.service, port 5000)
# is never started here (a policy-rc.d answering 101 while apt-get runs), and is stopped if
# a system without invoke-rc.d started it anyway.
#
# Idempotent: when everything is installed, it exits at once. A flock serialises
# concurrent runs.
set -euo pipefail

ARGOSY_CACHE="${ARGOSY_CACHE:-$HOME/.cache/argosy}"
APT_PACKAGES=(docker-registry apache2-utils openssl)
POLICY_RC_D=/usr/sbin/policy-rc.d
REGISTRY=/usr/bin/docker-registry

log() { printf '[install-registry] %s\n' "$*"; }
die() {
    printf '[install-registry] ERROR: %s\n' "$*" >&2
    exit 1
}

registry_ready() {
    [[ -x $REGISTRY ]] || return 1
    "$REGISTRY" --version >/dev/null 2>&1 || return 1
    command -v htpasswd >/dev/null 2>&1 || return 1
    openssl version >/dev/null 2>&1 || return 1
}

describe() {
    printf '%s, htpasswd (%s)' "$("$REGISTRY" --version 2>&1 | head -n1)" "$(command -v htpasswd)"
}

# The package's service, if anything started it: stopped, so nothing listens on :5000
# and the tests never depend on it.
stop_system_service() {
    local pid
    if command -v systemctl >/dev/null 2>&1 && systemctl is-active --quiet docker-registry 2>/dev/null; then
        log "stopping and disabling the system service docker-registry"
        "${SUDO[@]}" systemctl disable --now docker-registry >/dev/null 2>&1 || true
    fi
    for pid in $(pgrep -x docker-registry 2>/dev/null || true); do
        # Only the service's process (run as the package's user with the system
        # configuration), never a test's registry.
        if tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null | grep -q '/etc/docker/registry/config.yml'; then
            log "stopping the service the package started (pid $pid)"
            "${SUDO[@]}" kill "$pid" || true
        fi
    done
}

SUDO=()
if [[ $(id -u) -ne 0 ]]; then
    SUDO=(sudo)
fi

if registry_ready; then
    log "ready: $(describe)"
    exit 0
fi

mkdir -p "$ARGOSY_CACHE"
LOCK_FILE="$ARGOSY_CACHE/install-registry.lock"
exec 9>"$LOCK_FILE"
if ! flock -n 9; then
    log "another install is running (lock $LOCK_FILE); waiting for it"
    flock 9
fi
if registry_ready; then
    log "ready (installed by a concurrent run): $(describe)"
    exit 0
fi

if [[ ${#SUDO[@]} -gt 0 ]] && ! command -v sudo >/dev/null 2>&1; then
    die "not root and no sudo: cannot apt-get install ${APT_PACKAGES[*]}"
fi

# Keep the package's postinst from starting the registry service: invoke-rc.d asks
# policy-rc.d, and 101 means "action forbidden". Whatever policy-rc.d the machine had is
# put back afterwards.
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
printf '#!/bin/sh\n# install-registry.sh: no service starts while it installs packages.\nexit 101\n' |
    "${SUDO[@]}" tee "$POLICY_RC_D" >/dev/null
"${SUDO[@]}" chmod 755 "$POLICY_RC_D"

log "apt-get update"
"${SUDO[@]}" apt-get update -qq || die "apt-get update failed"
log "apt-get install ${APT_PACKAGES[*]}"
DEBIAN_FRONTEND=noninteractive "${SUDO[@]}" apt-get install -y -qq --no-install-recommends "${APT_PACKAGES[@]}" >/dev/null ||
    die "apt-get install ${APT_PACKAGES[*]} failed"
stop_system_service

registry_ready || die "docker-registry or htpasswd does not run after installing"
log "installed: $(describe)"
