#!/usr/bin/env bash
# The README's main command: the bundled per-customer example against real clusters.
#
#   scripts/demo.sh              start a local control plane (a management cluster and four
#                                workload clusters: etcd + kube-apiservers on loopback), run
#                                the Argosy controller against it, apply the example
#                                ApplicationSet, let the built-in sync engine deliver the
#                                Applications to the customers' clusters (gold customers
#                                sync by hand: the demo runs `argosy app sync` for them) and
#                                show the result. On a terminal it keeps running until
#                                Ctrl-C so you can try things; otherwise (CI, `< /dev/null`)
#                                it checks the result and stops at once.
#   scripts/demo.sh --no-wait    check and stop at once, even on a terminal
#   scripts/demo.sh --wait       keep running until Ctrl-C/SIGTERM, even without a terminal
#   scripts/demo.sh --offline [ARGS..]
#                                no clusters: render the example with
#                                `argosy generate --explain [ARGS..]`
#
# Exit status 0 only when the six Applications of the example appeared and are Synced.
# Everything lives under ${ARGOSY_CACHE:-$HOME/.cache/argosy}/demo and is recreated on
# each run; the first run builds kube-apiserver (scripts/install-control-plane.sh).
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
cache=${ARGOSY_CACHE:-$HOME/.cache/argosy}
export ARGOSY_CACHE=$cache
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-$cache/target}
demo="$cache/demo"
example="$root/examples/per-customer"
repo_url=https://git.example.com/platform/fleet.git
repo="$demo/fleet"
argosy="$CARGO_TARGET_DIR/release/argosy"
dev_cluster="$CARGO_TARGET_DIR/release/argosy-dev-cluster"
# name:customer:tier:workload cluster. The same Secrets as examples/per-customer/clusters,
# pointing at the local workload clusters; workload-4 is left for "add a customer".
customers=(acme-prod:acme:gold:1 globex-prod:globex:silver:2 initech-prod:initech:bronze:3)
expected_apps=(web-acme worker-acme web-globex worker-globex web-initech worker-initech)
apps_timeout=60
started=$(date +%s)

log() { printf '[demo] %s\n' "$*" >&2; }
die() {
    printf '[demo] ERROR: %s\n' "$*" >&2
    exit 1
}
elapsed() { echo "$(($(date +%s) - started))s"; }

usage() { sed -n '2,19s/^# \{0,1\}//p' "$0"; }

mode=auto
offline=false
while (($#)); do
    case $1 in
    --offline)
        offline=true
        shift
        break # the rest goes to `argosy generate`
        ;;
    --no-wait) mode='no-wait' ;;
    --wait) mode='wait' ;;
    -h | --help)
        usage
        exit 0
        ;;
    *) die "unknown argument '$1' (try --help)" ;;
    esac
    shift
done
if [[ $mode == auto ]]; then
    if [[ -t 0 ]]; then mode='wait'; else mode='no-wait'; fi
fi

# examples/per-customer/repo as a real Git repository (the generators read Git objects,
# not plain directories).
make_repo() { # dir
    local repo=$1
    rm -rf "$repo" && mkdir -p "$repo"
    cp -r "$example/repo/." "$repo/"
    git -C "$repo" init --quiet --initial-branch=main
    git -C "$repo" add --all
    git -C "$repo" -c user.name=argosy -c user.email=argosy@localhost commit --quiet -m "per-customer example"
    log "example repo at $repo ($(git -C "$repo" rev-parse --short HEAD)), served as $repo_url"
}

if $offline; then
    # Offline: render the example with `argosy generate --explain`, which shows which
    # cluster Secret and which Git directory produced each Application.
    log "offline: building argosy (release)"
    cargo build --release --quiet --manifest-path "$root/Cargo.toml" -p argosy --bin argosy
    # Its own copy: a live demo may be using $repo right now.
    offline_repo="$demo/fleet-offline"
    make_repo "$offline_repo"
    exec "$argosy" generate \
        -f "$example/appset.yaml" \
        --clusters "$example/clusters" \
        --repo "$repo_url=$offline_repo" \
        --explain "$@"
fi

# kubectl (and helm, for Helm sources) from scripts/install-tools.sh, first on PATH.
bash "$root/scripts/install-tools.sh" >&2
export PATH="$cache/tools/bin:$PATH"
command -v kubectl >/dev/null 2>&1 || die "kubectl is needed (scripts/install-tools.sh installs it); scripts/demo.sh --offline needs no cluster"

mkdir -p "$demo"
# One live demo at a time (they would share $demo). The background processes inherit the
# lock, so it is held until they are gone too.
exec 9>"$demo/lock"
flock -n 9 || die "another scripts/demo.sh is running (lock $demo/lock); stop it first"

# --- cleanup: stop what this script started, by pid -------------------------------------
controller_pid=
cluster_pid=
# shellcheck disable=SC2317 # (called from the EXIT trap)
stop_pid() { # pid name seconds
    local pid=$1 name=$2 seconds=$3 i
    [[ -n $pid ]] && kill -0 "$pid" 2>/dev/null || return 0
    kill -TERM "$pid" 2>/dev/null || true
    for ((i = 0; i < seconds * 10; i++)); do
        kill -0 "$pid" 2>/dev/null || break
        sleep 0.1
    done
    if kill -0 "$pid" 2>/dev/null; then
        log "$name (pid $pid) did not stop in ${seconds}s; killing it"
        kill -KILL "$pid" 2>/dev/null || true
    fi
    wait "$pid" 2>/dev/null || true
}
# shellcheck disable=SC2317
cleanup() {
    local status=$?
    trap - EXIT INT TERM
    if [[ -n $controller_pid$cluster_pid ]]; then
        log "stopping the controller and the clusters"
        stop_pid "$controller_pid" "argosy run" 10
        stop_pid "$cluster_pid" "argosy-dev-cluster" 30
        log "stopped; logs kept in $demo/logs"
    fi
    exit "$status"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# Background processes get SIGTERM if this script dies without cleaning up (even SIGKILL).
pdeathsig=()
if command -v setpriv >/dev/null 2>&1; then pdeathsig=(setpriv --pdeathsig TERM --); fi

# --- 1. binaries --------------------------------------------------------------------------
bash "$root/scripts/install-control-plane.sh" >&2
log "building argosy and argosy-dev-cluster (release; the first build takes several minutes)"
cargo build --release --quiet --manifest-path "$root/Cargo.toml" \
    -p argosy -p argosy-tests --bin argosy --bin argosy-dev-cluster

# --- 2. clusters --------------------------------------------------------------------------
rm -rf "$demo/clusters" "$demo/secrets" "$demo/tmp" "$demo/logs" "$demo/repo-cache"
mkdir -p "$demo/clusters" "$demo/secrets" "$demo/tmp" "$demo/logs"
clusters_started=$(date +%s)
log "starting a management cluster and 4 workload clusters (etcd + kube-apiserver v1.20 on loopback)"
TMPDIR="$demo/tmp" "${pdeathsig[@]}" "$dev_cluster" --workloads 4 --dir "$demo/clusters" \
    </dev/null >"$demo/logs/dev-cluster.log" 2>&1 &
cluster_pid=$!
for ((i = 0; ; i++)); do
    [[ -f $demo/clusters/clusters.env ]] && break
    if ! kill -0 "$cluster_pid" 2>/dev/null; then
        tail -n 30 "$demo/logs/dev-cluster.log" >&2 || true
        cluster_pid=
        die "argosy-dev-cluster exited before the clusters were ready (log: $demo/logs/dev-cluster.log)"
    fi
    ((i < 2400)) || die "clusters not ready after 240s (log: $demo/logs/dev-cluster.log)"
    sleep 0.1
done
# shellcheck source=/dev/null
source "$demo/clusters/clusters.env"
log "clusters ready in $(($(date +%s) - clusters_started))s: mgmt at $MGMT_SERVER (kubeconfigs in $demo/clusters)"
export KUBECONFIG=$MGMT_KUBECONFIG

# Retries a command for up to 30 s: right after a CRD is established, discovery can lag.
retry() {
    local i
    for ((i = 1; ; i++)); do
        if "$@" >"$demo/logs/last-command.log" 2>&1; then return 0; fi
        if ((i >= 30)); then
            cat "$demo/logs/last-command.log" >&2
            die "failed 30 times: $*"
        fi
        sleep 1
    done
}

# --- 3. Argo CD's API on the management cluster --------------------------------------------
"$argosy" crds >"$demo/crds.yaml"
retry kubectl apply --server-side --force-conflicts -f "$demo/crds.yaml"
retry kubectl wait --for condition=Established --timeout=30s \
    crd/applications.argoproj.io crd/applicationsets.argoproj.io crd/appprojects.argoproj.io
cat >"$demo/argocd.yaml" <<'EOF'
apiVersion: v1
kind: Namespace
metadata:
  name: argocd
---
apiVersion: argoproj.io/v1alpha1
kind: AppProject
metadata:
  name: default
  namespace: argocd
spec:
  sourceRepos: ['*']
  destinations:
  - {server: '*', namespace: '*'}
EOF
retry kubectl apply --server-side -f "$demo/argocd.yaml"
log "CRDs, namespace argocd and AppProject default applied"

# --- 4. the customers' cluster Secrets -------------------------------------------------------
cluster_secret() { # name customer tier workload-number
    local server_var="WORKLOAD_$4_SERVER" config_var="WORKLOAD_$4_ARGOCD_CONFIG"
    cat <<EOF
apiVersion: v1
kind: Secret
metadata:
  name: $1
  namespace: argocd
  labels:
    argocd.argoproj.io/secret-type: cluster
    customer: $2
    tier: $3
type: Opaque
stringData:
  name: $1
  server: ${!server_var}
  config: '${!config_var}'
EOF
}
for c in "${customers[@]}"; do
    IFS=: read -r name customer tier n <<<"$c"
    cluster_secret "$name" "$customer" "$tier" "$n" >"$demo/secrets/$name.yaml"
    retry kubectl apply --server-side -f "$demo/secrets/$name.yaml"
    server_var="WORKLOAD_${n}_SERVER"
    log "cluster Secret $name (customer=$customer, tier=$tier) -> workload-$n at ${!server_var}"
done
# For the "add a customer" step, not applied.
cluster_secret umbrella-prod umbrella silver 4 >"$demo/secrets/umbrella-prod.yaml"

# --- 5. the controller -----------------------------------------------------------------------
make_repo "$repo"
listen=127.0.0.1:${ARGOSY_DEMO_PORT:-18080}
# The dashboard's read token: random per run, readable only by you.
(umask 077 && head -c 24 /dev/urandom | base64 | tr -d '/+=' >"$demo/dashboard-token")
log "starting argosy run with the built-in sync engine, serving http://$listen (log: $demo/logs/controller.log)"
ARGOSY_LOG=${ARGOSY_LOG:-info} "${pdeathsig[@]}" "$argosy" run \
    --namespace argocd \
    --repo "$repo_url=$repo" \
    --repo-cache "$demo/repo-cache" \
    --leader-election false \
    --listen "$listen" \
    --dashboard-token-file "$demo/dashboard-token" \
    </dev/null >"$demo/logs/controller.log" 2>&1 &
controller_pid=$!

# --- 6. the ApplicationSet ---------------------------------------------------------------------
retry kubectl apply --server-side -f "$example/appset.yaml"
appset_applied=$(date +%s)
log "applied examples/per-customer/appset.yaml; waiting up to ${apps_timeout}s for its 6 Applications"

missing_apps() {
    local have a
    have=" $(kubectl get applications -n argocd -o 'jsonpath={.items[*].metadata.name}' 2>/dev/null || true) "
    for a in "${expected_apps[@]}"; do
        [[ $have == *" $a "* ]] || printf '%s ' "$a"
    done
}
deadline=$(($(date +%s) + apps_timeout))
missing=$(missing_apps)
while [[ -n $missing ]] && (($(date +%s) < deadline)); do
    if ! kill -0 "$controller_pid" 2>/dev/null; then
        tail -n 30 "$demo/logs/controller.log" >&2 || true
        controller_pid=
        die "argosy run exited (log: $demo/logs/controller.log)"
    fi
    sleep 0.5
    missing=$(missing_apps)
done

conditions() {
    kubectl get applicationset customer-apps -n argocd -o \
        'jsonpath={range .status.conditions[*]}  {.type}={.status} ({.reason}): {.message}{"\n"}{end}'
}
# The status is written just after the Applications: give it a few seconds.
for ((i = 0; i < 20; i++)); do
    [[ -n $missing || -n $(conditions 2>/dev/null || true) ]] && break
    sleep 0.5
done

if [[ -n $missing ]]; then
    echo
    tail -n 20 "$demo/logs/controller.log" >&2 || true
    die "after ${apps_timeout}s these Applications are still missing: $missing(controller log: $demo/logs/controller.log)"
fi
log "all 6 Applications created in $(($(date +%s) - appset_applied))s"

# --- 7. delivery -----------------------------------------------------------------------------------
sync_of() { kubectl get application "$1" -n argocd -o 'jsonpath={.status.sync.status}' 2>/dev/null || true; }
wait_synced() { # app...
    local a deadline=$(($(date +%s) + apps_timeout))
    for a in "$@"; do
        while [[ $(sync_of "$a") != Synced ]]; do
            (($(date +%s) < deadline)) || die "$a is not Synced after ${apps_timeout}s (status: $(sync_of "$a"); controller log: $demo/logs/controller.log)"
            sleep 0.5
        done
    done
}
wait_synced web-globex worker-globex web-initech worker-initech
log "the automated apps (silver and bronze customers) are Synced; $(elapsed) since the start"
log "gold customer acme syncs by hand: argosy app sync web-acme / worker-acme"
for a in web-acme worker-acme; do
    "$argosy" app sync "$a" --wait --timeout 60 >"$demo/logs/sync-$a.log" 2>&1 ||
        die "argosy app sync $a failed: $(tail -n 3 "$demo/logs/sync-$a.log")"
done
wait_synced web-acme worker-acme

# --- 8. results ----------------------------------------------------------------------------------
echo
echo "== argosy app list"
"$argosy" app list
echo
echo "== argosy status --group-by customer"
"$argosy" status --group-by customer
echo
echo "== ApplicationSet customer-apps: conditions"
conditions
echo
echo "== on workload-2 (customer globex): kubectl get deployments,services -A"
kubectl --kubeconfig "$demo/clusters/workload-2.kubeconfig" get deployments,services -A \
    -l customer=globex
log "all 6 Applications delivered; $(elapsed) since the start of the demo"
echo "(The Deployments stay Progressing: these API servers run no Deployment controller.)"

if [[ $mode == no-wait ]]; then
    echo
    echo "Run scripts/demo.sh in a terminal to keep the clusters running and try changes."
    exit 0
fi

cat <<EOF

== The demo is running. In another terminal:

  export KUBECONFIG=$MGMT_KUBECONFIG
  kubectl get applications -n argocd -L customer,tier -w      # watch while you try:
  open http://$listen/    # the fleet dashboard: paste the token from $demo/dashboard-token
  curl -s http://$listen/readyz                        # ok once the caches are listed
  $argosy app list                                    # sync and health per app
  $argosy status --group-by customer                  # clusters, customers, ApplicationSets
  curl -s http://$listen/metrics | grep argosy_apps   # Prometheus metrics

  # 0. Drift: change a Deployment on a customer's cluster; self-heal reverts it in seconds.
  kubectl --kubeconfig $demo/clusters/workload-2.kubeconfig -n web scale deployment globex-web --replicas 7
  kubectl --kubeconfig $demo/clusters/workload-2.kubeconfig -n web get deployment globex-web -w

  # 1. Relabel a cluster: globex becomes gold, so its Applications lose automated sync.
  kubectl -n argocd label secret globex-prod tier=gold --overwrite
  kubectl -n argocd get application web-globex -o jsonpath='{.spec.syncPolicy}{"\n"}'

  # 2. Add a fourth customer (a cluster Secret for workload-4): two more Applications.
  kubectl apply -f $demo/secrets/umbrella-prod.yaml

  # 3. Break the template (missingkey=error, no label "region"): ErrorOccurred, nothing deleted.
  kubectl -n argocd patch applicationset customer-apps --type merge \\
    -p '{"spec":{"template":{"metadata":{"name":"{{.path.basename}}-{{.metadata.labels.region}}"}}}}'
  kubectl -n argocd get applicationset customer-apps \\
    -o jsonpath='{range .status.conditions[*]}{.type}={.status} {.message}{"\n"}{end}'
  kubectl get applications -n argocd          # still all there
  # ...and repair it:
  kubectl apply --server-side --force-conflicts -f $example/appset.yaml

  Controller log: tail -f $demo/logs/controller.log
  Workload clusters: kubectl --kubeconfig $demo/clusters/workload-1.kubeconfig get ns  (workload-1..4)

Press Ctrl-C to stop (the clusters and the controller are removed).
EOF

# From here on, Ctrl-C (or SIGTERM) is the normal way out.
trap 'exit 0' INT TERM

while kill -0 "$controller_pid" 2>/dev/null && kill -0 "$cluster_pid" 2>/dev/null; do
    sleep 1 &
    wait $! || true
done
if ! kill -0 "$controller_pid" 2>/dev/null; then
    tail -n 20 "$demo/logs/controller.log" >&2 || true
    die "argosy run exited (log: $demo/logs/controller.log)"
fi
die "argosy-dev-cluster exited (log: $demo/logs/dev-cluster.log)"
