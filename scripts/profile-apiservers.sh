#!/usr/bin/env bash
# CPU profiles of every kube-apiserver during the sync bench's cold sync.
#
#   scripts/profile-apiservers.sh [SECONDS]     (default 9)
#
# Runs the engine part of the sync bench (ARGOSY_BENCH_ENGINE_ONLY=1, BENCHMARKS.md untouched)
# with the API servers' /debug/pprof on (ARGOSY_APISERVER_PROFILING=1), and from the
# controller's spawn profiles each API server for SECONDS. Profiles land in
# $ARGOSY_CACHE/pprof (default ~/.cache/argosy/pprof) as <etcd-prefix-name>.pb.gz; read them
# with `go tool pprof -top -cum FILE` (Go comes with the kube-apiserver build).
# Profiling costs the API servers some CPU: compare runs with each other, not with BENCHMARKS.md.
set -euo pipefail
seconds=${1:-9}
cache=${ARGOSY_CACHE:-$HOME/.cache/argosy}
out=$cache/pprof
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-$cache/target}
rm -rf "$out" && mkdir -p "$out"
cd "$(dirname "$0")/.."

(
  # The controller is the bench binary run again without arguments.
  until pgrep -f 'deps/sync-[0-9a-f]+$' >/dev/null; do sleep 0.05; done
  for pid in $(pgrep -x kube-apiserver); do
    args=$(tr '\0' ' ' < "/proc/$pid/cmdline")
    port=$(grep -o -- '--secure-port=[0-9]*' <<<"$args" | cut -d= -f2)
    name=$(grep -o -- '--etcd-prefix=[^ ]*' <<<"$args" | sed 's#.*/##')
    curl -sk -H "Authorization: Bearer argosy-admin-token" \
      "https://127.0.0.1:$port/debug/pprof/profile?seconds=$seconds" -o "$out/$name.pb.gz" &
  done
  wait
) &
watcher=$!
ARGOSY_APISERVER_PROFILING=1 ARGOSY_BENCH_ENGINE_ONLY=1 cargo bench -p argosy-tests --bench sync
wait "$watcher"
ls -l "$out"
