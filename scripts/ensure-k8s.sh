#!/usr/bin/env bash
# ensure-k8s.sh: the binaries for a loopback Kubernetes control plane (tests/k8s/controlplane.py).
#
# Prints ONE line on stdout: a directory holding kube-apiserver, kube-controller-manager,
# kube-scheduler, etcd and kwok (executables or symlinks to them). Progress goes to stderr.
#
# Where they come from:
#   - $KUBEBUILDER_ASSETS: any of the five found there (executable) is used as-is. envtest assets
#     usually hold only etcd + kube-apiserver; the rest come from the cache. In that case the
#     printed directory is a per-KUBEBUILDER_ASSETS directory of symlinks inside the cache
#     (assets-<hash>/), so the shared cache itself never points at somebody's envtest download.
#   - the cache, ${LOADCTL_K8S_CACHE:-$HOME/.cache/loadctl/envtest}/k8s-v1.31.0/ (printed when
#     KUBEBUILDER_ASSETS is unset):
#       kube-apiserver, kube-controller-manager, kube-scheduler: built from the Go module proxy
#         (k8s.io/kubernetes@v1.31.0, staging modules pinned to v0.31.0), version-stamped v1.31.0
#         so Helm kubeVersion constraints see a real version instead of v0.0.0-master;
#       kwok: `go install sigs.k8s.io/kwok/cmd/kwok@v0.7.0`;
#       etcd: a symlink to the Debian etcd-server binary (installed by scripts/ensure-tool.sh;
#         ETCD_BIN overrides).
#     A cached Kubernetes binary is reused only if its --version says v1.31.0.
#
# Concurrency: one flock on <cache>/.lock, so two concurrent runs never build twice. Builds go to a
# temp dir inside the cache (same filesystem) and are renamed into place, so the cache never holds
# a half-written binary.
set -euo pipefail

K8S_VERSION=v1.31.0
STAGING_VERSION=v0.31.0 # the k8s.io/* staging modules are tagged v0.<minor>.<patch>
KWOK_VERSION=v0.7.0
K8S_BINARIES=(kube-apiserver kube-controller-manager kube-scheduler)
ALL_BINARIES=("${K8S_BINARIES[@]}" etcd kwok)

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
cache_root=${LOADCTL_K8S_CACHE:-$HOME/.cache/loadctl/envtest}
cache=$cache_root/k8s-$K8S_VERSION
assets=${KUBEBUILDER_ASSETS:-}

log() { echo "ensure-k8s: $*" >&2; }

from_assets() { # from_assets NAME: true if KUBEBUILDER_ASSETS provides NAME
  [ -n "$assets" ] && [ -x "$assets/$1" ] && [ ! -d "$assets/$1" ]
}

k8s_binary_ok() { # k8s_binary_ok PATH: exists and reports the pinned version
  [ -x "$1" ] && "$1" --version 2>/dev/null | grep -qx "Kubernetes $K8S_VERSION"
}

kwok_binary_ok() {
  [ -x "$1" ] && "$1" --version 2>/dev/null | grep -q "$KWOK_VERSION"
}

require_go() {
  if ! command -v go >/dev/null 2>&1; then
    echo "ensure-k8s: 'go' not found: install Go >= 1.22 (https://go.dev/dl; Debian 12's golang-go is too old) to build the Kubernetes test binaries" >&2
    exit 1
  fi
}

go_env() { # the build must not depend on the caller's Go settings (vendor mode, a go.work, cgo)
  env GOFLAGS=-buildvcs=false CGO_ENABLED=0 GOWORK=off "$@"
}

# build_k8s WORKDIR NAME...: builds the named cmd/ binaries into WORKDIR/bin.
build_k8s() {
  local work=$1; shift
  local module_dir=$work/module
  mkdir -p "$module_dir" "$work/bin"
  log "resolving k8s.io/kubernetes@$K8S_VERSION through the Go module proxy..."
  # k8s.io/kubernetes replaces its staging modules with ./staging/...; a consumer must pin them itself.
  local gomod
  gomod=$(cd "$work" && go_env go mod download -json "k8s.io/kubernetes@$K8S_VERSION" |
    sed -n 's/^[[:space:]]*"GoMod": "\(.*\)",\{0,1\}$/\1/p')
  [ -f "$gomod" ] || { log "go mod download did not report a go.mod for k8s.io/kubernetes@$K8S_VERSION"; exit 1; }
  local staging
  staging=$(sed -n 's|^[[:space:]]*\(k8s\.io/[^[:space:]]*\) => \./staging/src/k8s\.io/.*|\1|p' "$gomod")
  [ -n "$staging" ] || { log "found no staging replaces in $gomod"; exit 1; }
  {
    printf 'module loadctl-envtest\n\ngo 1.22.0\n\nrequire k8s.io/kubernetes %s\n\nreplace (\n' "$K8S_VERSION"
    local module
    for module in $staging; do printf '\t%s => %s %s\n' "$module" "$module" "$STAGING_VERSION"; done
    printf ')\n'
  } >"$module_dir/go.mod"
  {
    printf '//go:build tools\n\npackage tools\n\nimport (\n'
    local name
    for name in "$@"; do printf '\t_ "k8s.io/kubernetes/cmd/%s"\n' "$name"; done
    printf ')\n'
  } >"$module_dir/tools.go"
  (cd "$module_dir" && go_env go mod tidy >&2)
  local ldflags="-s -w -X k8s.io/component-base/version.gitVersion=$K8S_VERSION"
  ldflags+=" -X k8s.io/component-base/version.gitMajor=1 -X k8s.io/component-base/version.gitMinor=31"
  ldflags+=" -X k8s.io/component-base/version.gitTreeState=clean"
  local packages=() name
  for name in "$@"; do packages+=("k8s.io/kubernetes/cmd/$name"); done
  log "building $* (a few minutes with a cold Go build cache)..."
  (cd "$module_dir" && go_env go build -ldflags "$ldflags" -o "$work/bin/" "${packages[@]}" >&2)
}

build_kwok() { # build_kwok WORKDIR
  log "building kwok $KWOK_VERSION (about a minute with a cold Go build cache)..."
  mkdir -p "$1/bin"
  (cd "$1" && go_env GOBIN="$1/bin" go install "sigs.k8s.io/kwok/cmd/kwok@$KWOK_VERSION" >&2)
}

link_etcd() { # the Debian binary, unless ETCD_BIN names another
  "$here/ensure-tool.sh" etcd etcd-server ETCD_BIN >&2
  local etcd=${ETCD_BIN:-}
  [ -n "$etcd" ] || etcd=$(command -v etcd 2>/dev/null || echo /usr/sbin/etcd)
  replace_symlink "$etcd" "$cache/etcd"
}

replace_symlink() { # replace_symlink TARGET LINK: atomically, so a reader never sees no link
  ln -sfn "$1" "$2.tmp.$$"
  mv -fT "$2.tmp.$$" "$2"
}

needs_cache() { # needs_cache NAME: true if NAME is not supplied by KUBEBUILDER_ASSETS
  ! from_assets "$1"
}

fill_cache() {
  local missing_k8s=() name
  for name in "${K8S_BINARIES[@]}"; do
    if needs_cache "$name" && ! k8s_binary_ok "$cache/$name"; then missing_k8s+=("$name"); fi
  done
  local need_kwok=false
  if needs_cache kwok && ! kwok_binary_ok "$cache/kwok"; then need_kwok=true; fi
  if [ ${#missing_k8s[@]} -gt 0 ] || $need_kwok; then
    require_go
    local work
    work=$(mktemp -d "$cache/.build.XXXXXX")
    # shellcheck disable=SC2064 # expand now: $work is local
    trap "rm -rf '$work'" EXIT
    if [ ${#missing_k8s[@]} -gt 0 ]; then build_k8s "$work" "${missing_k8s[@]}"; fi
    if $need_kwok; then build_kwok "$work"; fi
    # Same filesystem, so each mv is an atomic rename.
    for name in "$work"/bin/*; do mv -f "$name" "$cache/"; done
    rm -rf "$work"
    trap - EXIT
  fi
  if needs_cache etcd; then link_etcd; fi
}

# A directory of symlinks: KUBEBUILDER_ASSETS binaries where present, cached ones otherwise.
assets_dir() {
  local dir
  dir=$cache/assets-$(printf '%s' "$assets" | sha256sum | cut -c1-12)
  mkdir -p "$dir"
  local name
  for name in "${ALL_BINARIES[@]}"; do
    if from_assets "$name"; then
      replace_symlink "$assets/$name" "$dir/$name"
    else
      replace_symlink "$cache/$name" "$dir/$name"
    fi
  done
  if from_assets kube-apiserver && ! k8s_binary_ok "$assets/kube-apiserver"; then
    log "warning: $assets/kube-apiserver is not $K8S_VERSION; using it anyway (KUBEBUILDER_ASSETS)"
  fi
  echo "$dir"
}

main() {
  mkdir -p "$cache"
  exec 9>"$cache/.lock"
  if ! flock -n 9; then
    log "waiting for another ensure-k8s.sh to finish with $cache..."
    flock 9
  fi
  rm -rf "$cache"/.build.* # left by a run that was killed; we hold the lock, so none is live
  fill_cache
  if [ -n "$assets" ]; then assets_dir; else echo "$cache"; fi
}

main
