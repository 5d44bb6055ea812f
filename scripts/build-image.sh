#!/usr/bin/env bash
# Builds Argosy's container image with buildah, from scratch (no Dockerfile, no Docker, no
# base image), and optionally pushes it.
#
#   scripts/build-image.sh [--tag NAME[:TAG]] [--binary PATH]
#                          [--push REGISTRY/REPO:TAG [--cert-dir DIR] [--creds USER:PASSWORD]
#                           [--authfile FILE] [--tls-verify=false]]
#
#   --tag        local name of the image (default argosy:<version of fleet-controller>)
#   --binary     put this argosy binary in the image instead of building it
#                (default: cargo build --release, target dir $CARGO_TARGET_DIR or
#                ~/.cache/argosy/target)
#   --push       push the image there (buildah push docker://REF) and print its digest
#   --cert-dir   directory of the registry's CA (*.crt), as podman/buildah take it
#   --creds      USER:PASSWORD for the registry (or the environment variable
#                ARGOSY_PUSH_CREDS); logged in through --password-stdin into a throwaway
#                auth file, so the password is in no process's command line
#   --authfile   an existing auth file (`buildah login` / `podman login`); REGISTRY_AUTH_FILE
#                works too
#
# The image: /usr/local/bin/argosy (debug info stripped) with exactly the shared libraries
# `ldd` lists and the dynamic loader, helm and kubectl (static; scripts/install-tools.sh),
# OpenSSH's `ssh` with its libraries (Git over SSH runs `ssh` through `/bin/sh -c`, so dash
# is there as /bin/sh), Mozilla's CA certificates from Debian's ca-certificates package
# (never this machine's own additions), /etc/passwd and /etc/group with user and group
# 65532 (`argosy`, home /tmp: ssh refuses a uid without a passwd entry), and
# /etc/nsswitch.conf. USER 65532:65532, ENTRYPOINT ["/usr/local/bin/argosy"], CMD ["run"].
#
# Every write goes to /tmp or /var/cache/argosy (mount an emptyDir/tmpfs/volume on each; the
# root filesystem can be read-only): HOME=/tmp, TMPDIR=/tmp, ARGOSY_REPO_CACHE (the
# default of --repo-cache) =/var/cache/argosy/repos, HELM_CACHE_HOME/HELM_CONFIG_HOME/
# HELM_DATA_HOME under /tmp/helm, KUBECACHEDIR=/tmp/kube/cache. The chart mounts exactly
# these two (charts/argosy/templates/deployment.yaml).
#
# Quick when nothing changed: the image carries a fingerprint of everything that goes in
# (label io.argosy.image.inputs); when the image at --tag has the same one, nothing is
# rebuilt. A rebuilt image replaces the tag, and the image it replaced is removed when
# nothing else uses it. A flock serialises concurrent builds (and pushes).
#
# Prints the image id and size; with --push, the pushed reference with its digest.
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
export ARGOSY_CACHE="${ARGOSY_CACHE:-$HOME/.cache/argosy}"
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$ARGOSY_CACHE/target}"
export CONTAINERS_CONF="${CONTAINERS_CONF:-$ARGOSY_CACHE/containers/containers.conf}"
TOOLS_BIN="$ARGOSY_CACHE/tools/bin"
UID_GID=65532

log() { printf '[build-image] %s\n' "$*" >&2; }
die() {
    printf '[build-image] ERROR: %s\n' "$*" >&2
    exit 1
}
usage() { sed -n '2,/^set -euo/{/^set -euo/d;s/^# \{0,1\}//p}' "$0"; }

tag=""
binary=""
push=""
cert_dir=""
creds="${ARGOSY_PUSH_CREDS:-}"
authfile=""
tls_verify=""
while (($#)); do
    case $1 in
    --tag) tag=${2:?--tag needs a value}; shift ;;
    --tag=*) tag=${1#*=} ;;
    --binary) binary=${2:?--binary needs a path}; shift ;;
    --binary=*) binary=${1#*=} ;;
    --push) push=${2:?--push needs REGISTRY/REPO:TAG}; shift ;;
    --push=*) push=${1#*=} ;;
    --cert-dir) cert_dir=${2:?--cert-dir needs a directory}; shift ;;
    --cert-dir=*) cert_dir=${1#*=} ;;
    --creds) creds=${2:?--creds needs USER:PASSWORD}; shift ;;
    --creds=*) creds=${1#*=} ;;
    --authfile) authfile=${2:?--authfile needs a file}; shift ;;
    --authfile=*) authfile=${1#*=} ;;
    --tls-verify=*) tls_verify=${1#*=} ;;
    -h | --help)
        usage
        exit 0
        ;;
    *) die "unknown argument '$1' (try --help)" ;;
    esac
    shift
done
[[ -z $creds || $creds == *:* ]] || die "--creds (or ARGOSY_PUSH_CREDS) must be USER:PASSWORD"
[[ -n $push || (-z $cert_dir && -z $creds && -z $authfile) ]] ||
    die "--cert-dir, --creds and --authfile only go with --push"

# --- tools -----------------------------------------------------------------------------------
bash "$root/scripts/install-image-tools.sh" >&2
bash "$root/scripts/install-tools.sh" >&2
for tool in ldd strip sha256sum; do
    command -v "$tool" >/dev/null 2>&1 || die "$tool is needed"
done

version=$(cd "$root" && cargo pkgid -p argosy) || die "cargo pkgid -p argosy failed"
version=${version##*[@#]}
tag=${tag:-argosy:$version}
[[ $tag == *:* ]] || tag="$tag:latest"

mkdir -p "$ARGOSY_CACHE/image"
exec 8>"$ARGOSY_CACHE/image/build.lock"
if ! flock -n 8; then
    log "another build-image.sh is running; waiting for it"
    flock 8
fi
# What a killed run left behind (no other run can be using it while this one holds the lock):
# its staging directory, auth and digest files, and its buildah working container.
rm -rf "$ARGOSY_CACHE/image"/staging.* "$ARGOSY_CACHE/image"/auth.* "$ARGOSY_CACHE/image"/digest.*
WORKING_CONTAINER=argosy-build-image
buildah rm "$WORKING_CONTAINER" >/dev/null 2>&1 || true

# --- the binary --------------------------------------------------------------------------------
if [[ -z $binary ]]; then
    log "cargo build --release -p argosy (target dir $CARGO_TARGET_DIR)"
    build_started=$(date +%s)
    cargo build --release --locked --quiet --manifest-path "$root/Cargo.toml" -p argosy --bin argosy ||
        die "cargo build --release failed"
    log "release build done in $(($(date +%s) - build_started))s"
    binary="$CARGO_TARGET_DIR/release/argosy"
fi
[[ -x $binary ]] || die "no executable argosy at $binary"

# --- what goes in ------------------------------------------------------------------------------
# A program and the shared libraries it loads, by the paths `ldd` resolves.
libs_of() {
    ldd "$1" | awk '/=> \// {print $3} /^[ \t]*\/[^ ]+ \(/ {print $1}'
}
programs=("$binary" "$TOOLS_BIN/helm" "$TOOLS_BIN/kubectl" /usr/bin/ssh /usr/bin/dash)
for p in "${programs[@]}"; do [[ -x $p ]] || die "$p is missing"; done
libs=$(for p in "$binary" /usr/bin/ssh /usr/bin/dash; do libs_of "$p"; done | sort -u)
[[ -n $libs ]] || die "ldd found no libraries (and no loader) for $binary"
mapfile -t ca_files < <(find /usr/share/ca-certificates/mozilla -name '*.crt' | LC_ALL=C sort)
((${#ca_files[@]} > 50)) || die "Debian's ca-certificates (/usr/share/ca-certificates/mozilla) is missing"
revision=$(git -C "$root" rev-parse HEAD 2>/dev/null || echo unknown)
if [[ $revision != unknown && -n $(git -C "$root" status --porcelain --untracked-files=no 2>/dev/null) ]]; then
    revision="$revision-dirty"
fi
helm_version=$("$TOOLS_BIN/helm" version --template '{{.Version}}')
kubectl_version=$("$TOOLS_BIN/kubectl" version --client | sed -n 's/^Client Version: //p')
ssh_version=$(ssh -V 2>&1 | cut -d, -f1)

fingerprint=$(
    {
        sha256sum "$0"
        echo "$version $revision $helm_version $kubectl_version $ssh_version"
        sha256sum "${programs[@]}" | awk '{print $1}'
        # shellcheck disable=SC2086 # one path per word
        sha256sum $libs
        cat "${ca_files[@]}" | sha256sum
    } | sha256sum | cut -c1-32
)

image_label() { # image label
    buildah inspect --type image --format "{{index .OCIv1.Config.Labels \"$2\"}}" "$1" 2>/dev/null || true
}
report() { # image
    local id size
    id=$(buildah inspect --type image --format '{{.FromImageID}}' "$1")
    size=$(podman image inspect --format '{{.Size}}' "$1")
    log "image $tag: id ${id:0:12}, $((size / 1000000)) MB ($size bytes uncompressed)"
    printf 'image: %s\nimage-id: %s\nimage-size-bytes: %s\n' "$tag" "$id" "$size"
}

previous_id=$(buildah inspect --type image --format '{{.FromImageID}}' "$tag" 2>/dev/null || true)
if [[ -n $previous_id && $(image_label "$tag" io.argosy.image.inputs) == "$fingerprint" ]]; then
    log "up to date: $tag (inputs $fingerprint)"
else
    # --- the root filesystem -----------------------------------------------------------------
    work=$(mktemp -d "$ARGOSY_CACHE/image/staging.XXXXXX")
    container=""
    cleanup() {
        [[ -z $container ]] || buildah rm "$container" >/dev/null 2>&1 || true
        rm -rf "$work"
    }
    trap cleanup EXIT
    rootfs="$work/rootfs"
    log "staging the root filesystem in $rootfs"
    # Debian's merged /usr: /bin, /sbin, /lib, /lib64 are links into /usr, so every path
    # ldd prints (and the ELF interpreter /lib64/ld-linux-x86-64.so.2) resolves.
    mkdir -p "$rootfs"/usr/{bin,sbin,lib,lib64,local/bin} "$rootfs"/etc/ssl/certs \
        "$rootfs"/tmp "$rootfs"/var/cache/argosy "$rootfs"/dev "$rootfs"/proc "$rootfs"/sys
    for d in bin sbin lib lib64; do ln -s "usr/$d" "$rootfs/$d"; done
    chmod 1777 "$rootfs/tmp"
    strip --strip-debug -o "$rootfs/usr/local/bin/argosy" "$binary"
    install -m 0755 "$TOOLS_BIN/helm" "$rootfs/usr/local/bin/helm"
    install -m 0755 "$TOOLS_BIN/kubectl" "$rootfs/usr/local/bin/kubectl"
    install -m 0755 /usr/bin/ssh "$rootfs/usr/bin/ssh"
    install -m 0755 /usr/bin/dash "$rootfs/usr/bin/dash"
    ln -s dash "$rootfs/usr/bin/sh"
    for lib in $libs; do
        # The directory resolved (so /lib/... lands in /usr/lib/...), the file name kept
        # (the soname the loader looks for), the content dereferenced.
        dest="$rootfs$(realpath "$(dirname "$lib")")"
        mkdir -p "$dest"
        cp -L "$lib" "$dest/$(basename "$lib")"
    done
    cat "${ca_files[@]}" >"$rootfs/etc/ssl/certs/ca-certificates.crt"
    cat >"$rootfs/etc/passwd" <<EOF
root:x:0:0:root:/root:/usr/sbin/nologin
nobody:x:65534:65534:nobody:/nonexistent:/usr/sbin/nologin
argosy:x:$UID_GID:$UID_GID:argosy:/tmp:/usr/sbin/nologin
EOF
    cat >"$rootfs/etc/group" <<EOF
root:x:0:
nogroup:x:65534:
argosy:x:$UID_GID:
EOF
    printf 'passwd: files\ngroup: files\nhosts: files dns\n' >"$rootfs/etc/nsswitch.conf"
    chmod -R go-w "$rootfs"
    chmod 1777 "$rootfs/tmp"

    # Check it runs before it becomes an image: every program finds its libraries (chroot
    # needs root; without it the test of the image is the check).
    if [[ $(id -u) -eq 0 ]]; then
        for p in /usr/local/bin/argosy /usr/bin/ssh /usr/bin/dash /usr/local/bin/helm /usr/local/bin/kubectl; do
            out=$(chroot --userspec "$UID_GID:$UID_GID" "$rootfs" "$p" --version 2>&1 || true)
            if grep -q -e 'error while loading shared libraries' -e 'failed to run command' <<<"$out"; then
                die "$p does not start in the staged root: $out"
            fi
        done
    fi

    # One layer, from a tar with fixed owners (root, but the repository cache directory
    # belongs to the user, so a fresh volume mounted there, which podman fills with the
    # image's directory, is writable) and fixed times (the same inputs give the same layer).
    layer="$work/rootfs.tar"
    tar_args=(--numeric-owner --sort=name --mtime=@0 -C "$rootfs")
    tar "${tar_args[@]}" --owner=0 --group=0 -cf "$layer" .
    tar "${tar_args[@]}" --owner="$UID_GID" --group="$UID_GID" --no-recursion -rf "$layer" ./var/cache/argosy

    # --- the image -------------------------------------------------------------------------
    log "building $tag from scratch (inputs $fingerprint)"
    container=$(buildah from --quiet --name "$WORKING_CONTAINER" scratch)
    buildah add --quiet "$container" "$layer" / >/dev/null
    created=$(date -u +%Y-%m-%dT%H:%M:%SZ)
    repository=$(sed -n 's/^repository = "\(.*\)"/\1/p' "$root/Cargo.toml" | head -n1)
    buildah config \
        --entrypoint '["/usr/local/bin/argosy"]' \
        --cmd run \
        --user "$UID_GID:$UID_GID" \
        --workingdir /tmp \
        --port 8080/tcp \
        --stop-signal SIGTERM \
        --env PATH=/usr/local/bin:/usr/bin:/bin \
        --env HOME=/tmp \
        --env TMPDIR=/tmp \
        --env ARGOSY_REPO_CACHE=/var/cache/argosy/repos \
        --env HELM_CACHE_HOME=/tmp/helm/cache \
        --env HELM_CONFIG_HOME=/tmp/helm/config \
        --env HELM_DATA_HOME=/tmp/helm/data \
        --env KUBECACHEDIR=/tmp/kube/cache \
        --label org.opencontainers.image.title=argosy \
        --label "org.opencontainers.image.description=Argosy: multi-cluster GitOps fleet manager (Argo CD-compatible ApplicationSet controller and sync engine)" \
        --label "org.opencontainers.image.version=$version" \
        --label "org.opencontainers.image.revision=$revision" \
        --label "org.opencontainers.image.created=$created" \
        --label "org.opencontainers.image.source=$repository" \
        --label "org.opencontainers.image.url=$repository" \
        --label org.opencontainers.image.licenses=Apache-2.0 \
        --label "io.argosy.image.helm=$helm_version" \
        --label "io.argosy.image.kubectl=$kubectl_version" \
        --label "io.argosy.image.ssh=$ssh_version" \
        --label "io.argosy.image.inputs=$fingerprint" \
        --created-by "scripts/build-image.sh" \
        "$container"
    buildah commit --quiet --rm --format oci "$container" "$tag" >/dev/null
    container=""
    new_id=$(buildah inspect --type image --format '{{.FromImageID}}' "$tag")
    # The image this tag named before, unless something else still uses it.
    if [[ -n $previous_id && $previous_id != "$new_id" ]]; then
        if buildah rmi "$previous_id" >/dev/null 2>&1; then
            log "removed the previous image ${previous_id:0:12}"
        else
            log "kept the previous image ${previous_id:0:12} (still tagged or in use)"
        fi
    fi
    cleanup
    trap - EXIT
fi
report "$tag"

# --- push ----------------------------------------------------------------------------------------
if [[ -n $push ]]; then
    push_args=()
    [[ -z $cert_dir ]] || push_args+=(--cert-dir "$cert_dir")
    [[ -z $tls_verify ]] || push_args+=("--tls-verify=$tls_verify")
    tmp_auth=""
    if [[ -n $creds ]]; then
        tmp_auth=$(mktemp "$ARGOSY_CACHE/image/auth.XXXXXX")
        trap 'rm -f "$tmp_auth"' EXIT
        echo '{}' >"$tmp_auth"
        registry=${push%%/*}
        printf '%s' "${creds#*:}" | buildah login --authfile "$tmp_auth" "${push_args[@]}" \
            --username "${creds%%:*}" --password-stdin "$registry" >/dev/null ||
            die "login to $registry as ${creds%%:*} failed"
        authfile=$tmp_auth
    fi
    [[ -z $authfile ]] || push_args+=(--authfile "$authfile")
    digest_file=$(mktemp "$ARGOSY_CACHE/image/digest.XXXXXX")
    log "pushing $tag to $push"
    buildah push --quiet "${push_args[@]}" --digestfile "$digest_file" "$tag" "docker://$push" >/dev/null ||
        die "buildah push to $push failed"
    digest=$(cat "$digest_file")
    rm -f "$digest_file" "$tmp_auth"
    log "pushed $push@$digest"
    printf 'pushed: %s@%s\n' "$push" "$digest"
fi
