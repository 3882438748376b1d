#!/usr/bin/env bash
# Builds the Kubernetes control plane the tests run against (kube-apiserver,
# kube-controller-manager, kube-scheduler from k8s.io/kubernetes, and kwok,
# which simulates the nodes) from the Go module proxy, and installs Debian's
# etcd-server if etcd is missing. The binaries are cached outside the
# repository, keyed by version, so only a machine's first run pays the build
# (about 8.5 minutes and 2 GB of memory at its peak).
#
# Usage: .ci/kube-binaries.sh
#   Progress goes to stderr; the last line of stdout is the directory of the
#   binaries, for CUTOVER_KUBE_BIN. CUTOVER_KUBE_CACHE overrides the cache
#   root (default ~/.cache/cutover/kube).
set -euo pipefail

KUBE_VERSION=v1.32.3
STAGING_VERSION=v0.32.3 # the staging modules' tag for KUBE_VERSION
KWOK_VERSION=v0.8.0

export PATH="/usr/local/go/bin:$PATH"
cache_root="${CUTOVER_KUBE_CACHE:-$HOME/.cache/cutover/kube}"
bin="$cache_root/${KUBE_VERSION}-kwok${KWOK_VERSION#v}/bin"
binaries=(kube-apiserver kube-controller-manager kube-scheduler kwok)

log() { echo "kube-binaries: $*" >&2; }

install_etcd() {
  if command -v etcd >/dev/null 2>&1; then
    return
  fi
  log "installing Debian's etcd-server"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq >&2
  apt-get install -y -qq --no-install-recommends etcd-server >&2
  # The package starts etcd as a service on the default ports; the tests
  # start their own on free ports and need none running.
  if command -v systemctl >/dev/null 2>&1; then
    systemctl disable --now etcd >/dev/null 2>&1 || true
  fi
  command -v etcd >&2
}

have_all() {
  local b
  for b in "${binaries[@]}"; do
    [ -x "$bin/$b" ] || return 1
  done
}

# build_kubernetes builds the three control-plane commands into $1. The
# kubernetes module cannot be built with "go install pkg@version": its go.mod
# replaces every staging module (k8s.io/api, k8s.io/client-go, ...) with a
# directory of its own repository. A throwaway module that requires it and
# replaces each of those with its published tag builds the same code.
build_kubernetes() {
  local out=$1 mod gomod staging replaces=()
  mod=$(mktemp -d)
  trap 'rm -rf "$mod"' RETURN
  cd "$mod"
  go mod init cutover.local/kubebuild >/dev/null 2>&1
  gomod=$(go mod download -json "k8s.io/kubernetes@$KUBE_VERSION" | sed -n 's/^[[:space:]]*"GoMod": "\(.*\)",$/\1/p')
  staging=$(sed -n 's#^[[:space:]]*\(k8s\.io/[^ ]*\) => \./staging/src/.*#\1#p' "$gomod")
  if [ -z "$staging" ]; then
    log "found no staging modules in $gomod; has the layout of k8s.io/kubernetes changed?"
    exit 1
  fi
  for m in $staging; do
    replaces+=("-replace=$m=$m@$STAGING_VERSION")
  done
  go mod edit "${replaces[@]}"
  local cmds=(k8s.io/kubernetes/cmd/kube-apiserver k8s.io/kubernetes/cmd/kube-controller-manager k8s.io/kubernetes/cmd/kube-scheduler)
  # go get of the packages (not only the module) records every checksum
  # their build needs; the module has no code of its own to tidy.
  go get "${cmds[@]/%/@$KUBE_VERSION}" >&2
  local minor=${KUBE_VERSION#v1.}
  minor=${minor%%.*}
  local ldflags="-X k8s.io/component-base/version.gitVersion=$KUBE_VERSION -X k8s.io/component-base/version.gitMajor=1 -X k8s.io/component-base/version.gitMinor=$minor"
  log "building ${cmds[*]} at $KUBE_VERSION"
  nice -n 10 go build -trimpath -ldflags "$ldflags" -o "$out/" "${cmds[@]}" >&2
}

# kwok's go.mod has no replace directives, so it installs directly.
build_kwok() {
  log "building sigs.k8s.io/kwok/cmd/kwok at $KWOK_VERSION"
  GOBIN="$1" GOFLAGS=-trimpath nice -n 10 go install "sigs.k8s.io/kwok/cmd/kwok@$KWOK_VERSION" >&2
}

install_etcd

if ! have_all; then
  mkdir -p "$(dirname "$bin")"
  # Build beside the cache and move into place at the end, so an interrupted
  # build never leaves a half-filled bin directory that looks complete.
  staging_dir=$(mktemp -d "$(dirname "$bin")/build.XXXXXX")
  trap 'rm -rf "$staging_dir"' EXIT
  start=$SECONDS
  (build_kubernetes "$staging_dir")
  build_kwok "$staging_dir"
  rm -rf "$bin"
  mv "$staging_dir" "$bin"
  log "built in $((SECONDS - start)) s"
fi

"$bin/kube-apiserver" --version >&2
echo "$bin"
