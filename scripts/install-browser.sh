#!/usr/bin/env bash
# Make this machine able to run the dashboard's browser tests: Debian's Chromium and
# ChromeDriver (/usr/bin/chromium, /usr/bin/chromedriver). tests/tests/dashboard.rs drives
# them over WebDriver.
#
# Idempotent: when both already run, it exits at once. A flock serialises concurrent runs.
set -euo pipefail

ARGOSY_CACHE="${ARGOSY_CACHE:-$HOME/.cache/argosy}"
APT_PACKAGES=(chromium chromium-driver)

log() { printf '[install-browser] %s\n' "$*"; }
die() {
    printf '[install-browser] ERROR: %s\n' "$*" >&2
    exit 1
}

browser_ready() {
    chromium --version >/dev/null 2>&1 || return 1
    chromedriver --version >/dev/null 2>&1 || return 1
}

if browser_ready; then
    # (Debian's launcher script prints a harmless "[: unexpected operator" on some hosts.)
    log "ready: $(chromium --version 2>/dev/null), $(chromedriver --version | head -n1)"
    exit 0
fi

mkdir -p "$ARGOSY_CACHE"
LOCK_FILE="$ARGOSY_CACHE/install-browser.lock"
exec 9>"$LOCK_FILE"
if ! flock -n 9; then
    log "another install is running (lock $LOCK_FILE); waiting for it"
    flock 9
fi
if browser_ready; then
    log "ready (installed by a concurrent run)"
    exit 0
fi

SUDO=()
if [[ $(id -u) -ne 0 ]]; then
    command -v sudo >/dev/null 2>&1 || die "not root and no sudo: cannot apt-get install ${APT_PACKAGES[*]}"
    SUDO=(sudo)
fi
log "apt-get update"
"${SUDO[@]}" apt-get update -qq || die "apt-get update failed"
log "apt-get install ${APT_PACKAGES[*]}"
DEBIAN_FRONTEND=noninteractive "${SUDO[@]}" apt-get install -y -qq --no-install-recommends "${APT_PACKAGES[@]}" >/dev/null ||
    die "apt-get install ${APT_PACKAGES[*]} failed"
browser_ready || die "chromium or chromedriver does not run after installing"
log "installed: $(chromium --version), $(chromedriver --version | head -n1)"
