#!/usr/bin/env bash
# ensure-prometheus3.sh: Prometheus 3 and its promtool, for the tests that run on both 2.x and 3.x.
#
# Prints ONE line on stdout: a directory holding `prometheus` and `promtool`. Progress goes to stderr.
#
# Debian ships Prometheus 2 (scripts/ensure-tool.sh installs it); Prometheus 3 is not packaged, and
# a release tarball is a download from outside the registries. So it is built from the Go module
# proxy, like the control-plane binaries (scripts/ensure-k8s.sh): the module's v0.3xx.y versions
# are the 3.xx.y releases.
#   - Cache: ${LOADCTL_PROMETHEUS3_CACHE:-$HOME/.cache/loadctl/prometheus}/v$PROMETHEUS3_VERSION/,
#     reused only if its --version says $PROMETHEUS3_VERSION.
#   - `-tags remove_all_sd`: without the cloud service discoveries (AWS, Azure, GCE, Kubernetes...),
#     which loadctl's static and file configs never use, the build takes a fraction of the time.
#   - `-X .../version.Version`: `go install` leaves the version empty; stamped, the local backend
#     can tell which of the Prometheus binaries it finds is the newest (controller/prom/server.py).
# One flock on <cache>/.lock, and builds are renamed into place, as in ensure-k8s.sh.
set -euo pipefail

PROMETHEUS3_VERSION=3.16.0 # the newest 3.x the Go module proxy serves for Go 1.26
MODULE_VERSION=v0.316.0    # its module version
MODULE=github.com/prometheus/prometheus

cache_root=${LOADCTL_PROMETHEUS3_CACHE:-$HOME/.cache/loadctl/prometheus}
cache=$cache_root/v$PROMETHEUS3_VERSION

log() { echo "ensure-prometheus3: $*" >&2; }

binary_ok() { # binary_ok PATH: exists and reports the pinned version
  [ -x "$1" ] && "$1" --version 2>/dev/null | head -1 | grep -q "version $PROMETHEUS3_VERSION "
}

build() { # build DIR: prometheus and promtool into DIR
  if ! command -v go >/dev/null 2>&1; then
    log "'go' not found: install Go >= 1.26 (https://go.dev/dl) to build Prometheus $PROMETHEUS3_VERSION"
    exit 1
  fi
  log "building Prometheus $PROMETHEUS3_VERSION and promtool from the Go module proxy (a few minutes)..."
  local ldflags="-s -w -X github.com/prometheus/common/version.Version=$PROMETHEUS3_VERSION"
  ldflags+=" -X github.com/prometheus/common/version.Branch=module-$MODULE_VERSION"
  # The build must not depend on the caller's Go settings (vendor mode, a go.work, cgo).
  env GOFLAGS=-buildvcs=false CGO_ENABLED=0 GOWORK=off GOBIN="$1" \
    go install -tags remove_all_sd -ldflags "$ldflags" \
    "$MODULE/cmd/prometheus@$MODULE_VERSION" "$MODULE/cmd/promtool@$MODULE_VERSION" >&2
}

main() {
  mkdir -p "$cache"
  exec 9>"$cache/.lock"
  if ! flock -n 9; then
    log "waiting for another ensure-prometheus3.sh to finish with $cache..."
    flock 9
  fi
  rm -rf "$cache"/.build.* # left by a run that was killed; we hold the lock, so none is live
  if ! binary_ok "$cache/prometheus" || ! binary_ok "$cache/promtool"; then
    local work
    work=$(mktemp -d "$cache/.build.XXXXXX")
    # shellcheck disable=SC2064 # expand now: $work is local
    trap "rm -rf '$work'" EXIT
    build "$work"
    binary_ok "$work/prometheus" || { log "the built prometheus does not report $PROMETHEUS3_VERSION"; exit 1; }
    # Same filesystem, so each mv is an atomic rename.
    mv -f "$work/prometheus" "$work/promtool" "$cache/"
    rm -rf "$work"
    trap - EXIT
  fi
  echo "$cache"
}

main
