#!/usr/bin/env bash
# ensure-postgres.sh
# PostgreSQL server binaries for the probe tests (tests/integration/test_probes.py). Debian puts
# them in /usr/lib/postgresql/<version>/bin, not on PATH, so ensure-tool.sh cannot find them:
# succeeds if $PG_BIN_DIR holds initdb and postgres, or they are on PATH, or in such a directory;
# otherwise installs the Debian package `postgresql` when running as root with apt-get.
set -euo pipefail
found() {
  if [ -n "${PG_BIN_DIR:-}" ]; then [ -x "$PG_BIN_DIR/initdb" ] && [ -x "$PG_BIN_DIR/postgres" ]; return; fi
  command -v initdb >/dev/null 2>&1 && command -v postgres >/dev/null 2>&1 && return 0
  compgen -G "/usr/lib/postgresql/*/bin/initdb" >/dev/null
}
if [ -n "${PG_BIN_DIR:-}" ]; then
  found && exit 0
  echo "PG_BIN_DIR=$PG_BIN_DIR has no initdb and postgres" >&2; exit 1
fi
found && exit 0
if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
  echo "installing PostgreSQL (Debian package postgresql)..."
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq >/dev/null
  apt-get install -y -qq --no-install-recommends postgresql >/dev/null
  found && exit 0
  echo "apt-get installed postgresql but initdb is still not found" >&2; exit 1
fi
echo "PostgreSQL not found: install it (Debian: sudo apt-get install postgresql) or set PG_BIN_DIR=/usr/lib/postgresql/<version>/bin" >&2
exit 1
