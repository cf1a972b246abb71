#!/usr/bin/env bash
# ensure-tool.sh BINARY DEBIAN_PACKAGE ENV_VAR
# Succeeds if $ENV_VAR points at an executable or BINARY is on PATH (or in /usr/sbin); otherwise
# installs the Debian package when running as root with apt-get, else stops with one line.
set -euo pipefail
binary=$1 package=$2 env_var=$3
explicit=${!env_var:-}
if [ -n "$explicit" ]; then
  [ -x "$explicit" ] && exit 0
  echo "$env_var=$explicit is not executable" >&2; exit 1
fi
if command -v "$binary" >/dev/null 2>&1 || [ -x "/usr/sbin/$binary" ]; then exit 0; fi
if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
  echo "installing $binary (Debian package $package)..."
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq >/dev/null
  apt-get install -y -qq --no-install-recommends "$package" >/dev/null
  command -v "$binary" >/dev/null 2>&1 || [ -x "/usr/sbin/$binary" ] && exit 0
  echo "apt-get installed $package but $binary is still not found" >&2; exit 1
fi
echo "$binary not found: install it (Debian: sudo apt-get install $package) or set $env_var=/path/to/$binary" >&2
exit 1
