#!/usr/bin/env bash
# Make this machine able to run the real Git servers of the integration tests
# (tests/src/git_servers.rs): nginx + fcgiwrap in front of `git http-backend` (HTTPS with
# basic auth or a client certificate, plain HTTP), OpenSSH's sshd, `git daemon`, and the
# `openssl` / `ssh-keygen` CLIs that make their certificates and keys. The Helm chart
# repository of the chart tests (tests/src/helm_repo.rs) is the same nginx serving files,
# with the same certificates and htpasswd files (`openssl passwd -apr1`, no apache2-utils).
#
# The tests start every server themselves, on loopback, with their own configuration: the
# packages' system services are never started here (a policy-rc.d answering 101 while
# apt-get runs), so nothing listens on port 80 or 22 afterwards.
#
# Idempotent: when everything already runs, it exits at once. A flock serialises
# concurrent runs.
set -euo pipefail

ARGOSY_CACHE="${ARGOSY_CACHE:-$HOME/.cache/argosy}"
# Debian's `nginx` is the binary with the core modules the harness uses (ssl, auth_basic,
# fastcgi, access_log); bookworm's `nginx-light` is only `nginx` plus the echo module.
APT_PACKAGES=(nginx fcgiwrap openssh-server openssh-client openssl git)
POLICY_RC_D=/usr/sbin/policy-rc.d

log() { printf '[install-git-servers] %s\n' "$*"; }
die() {
    printf '[install-git-servers] ERROR: %s\n' "$*" >&2
    exit 1
}

# The `git http-backend` of the `git` on PATH: a git built into /usr/local has its own
# exec path, and the backend must speak the same protocol version as the client tests use.
http_backend() {
    local exec_path
    exec_path=$(git --exec-path 2>/dev/null) || return 1
    [[ -x "$exec_path/git-http-backend" ]] || return 1
    printf '%s\n' "$exec_path/git-http-backend"
}

servers_ready() {
    command -v git >/dev/null 2>&1 || return 1
    http_backend >/dev/null || return 1
    command -v nginx >/dev/null 2>&1 || [[ -x /usr/sbin/nginx ]] || return 1
    /usr/sbin/nginx -v >/dev/null 2>&1 || return 1
    [[ -x /usr/sbin/fcgiwrap ]] || return 1
    [[ -x /usr/sbin/sshd ]] || return 1
    command -v ssh >/dev/null 2>&1 || return 1
    command -v ssh-keygen >/dev/null 2>&1 || return 1
    openssl version >/dev/null 2>&1 || return 1
}

describe() {
    printf 'nginx %s, fcgiwrap, %s, %s, http-backend %s' \
        "$(/usr/sbin/nginx -v 2>&1 | sed 's/.*nginx\///')" \
        "$(ssh -V 2>&1 | cut -d, -f1)" "$(git --version)" "$(http_backend)"
}

if servers_ready; then
    log "ready: $(describe)"
    exit 0
fi

mkdir -p "$ARGOSY_CACHE"
LOCK_FILE="$ARGOSY_CACHE/install-git-servers.lock"
exec 9>"$LOCK_FILE"
if ! flock -n 9; then
    log "another install is running (lock $LOCK_FILE); waiting for it"
    flock 9
fi
if servers_ready; then
    log "ready (installed by a concurrent run): $(describe)"
    exit 0
fi

SUDO=()
if [[ $(id -u) -ne 0 ]]; then
    command -v sudo >/dev/null 2>&1 || die "not root and no sudo: cannot apt-get install ${APT_PACKAGES[*]}"
    SUDO=(sudo)
fi

# Keep the packages' postinst scripts from starting nginx (port 80) and sshd (port 22):
# invoke-rc.d asks policy-rc.d, and 101 means "action forbidden". Whatever policy-rc.d the
# machine had is put back afterwards.
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
printf '#!/bin/sh\n# install-git-servers.sh: no service starts while it installs packages.\nexit 101\n' |
    "${SUDO[@]}" tee "$POLICY_RC_D" >/dev/null
"${SUDO[@]}" chmod 755 "$POLICY_RC_D"

log "apt-get update"
"${SUDO[@]}" apt-get update -qq || die "apt-get update failed"
log "apt-get install ${APT_PACKAGES[*]}"
DEBIAN_FRONTEND=noninteractive "${SUDO[@]}" apt-get install -y -qq --no-install-recommends "${APT_PACKAGES[@]}" >/dev/null ||
    die "apt-get install ${APT_PACKAGES[*]} failed"

# A system without invoke-rc.d (or one that ignores policy-rc.d) may still have started
# the services: stop exactly those, by the pid files of the packages' own configuration.
for pidfile in /run/nginx.pid /run/sshd.pid; do
    if [[ -s "$pidfile" ]] && kill -0 "$(cat "$pidfile")" 2>/dev/null; then
        log "stopping the service the package started ($pidfile)"
        "${SUDO[@]}" kill "$(cat "$pidfile")" || true
    fi
done

servers_ready || die "the Git servers do not run after installing ($(http_backend || echo 'no git-http-backend in git --exec-path'))"
log "installed: $(describe)"
