"""Which prometheus and promtool binaries a run uses: $PROMETHEUS_BIN if set, else the newest found.

Candidates: `prometheus` on PATH (Debian's 2.x, installed by `make setup`) and every Prometheus 3
that scripts/ensure-prometheus3.sh built into its cache (`make test` builds one). Newest wins, so
a machine that has both runs local tests on what staging clusters run. promtool is taken from
beside the chosen prometheus, so both always speak the same version.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from functools import cache
from pathlib import Path

from controller.errors import InfraError

PROMETHEUS_ENV = "PROMETHEUS_BIN"
# scripts/ensure-prometheus3.sh builds into <this>/v<version>/ (its LOADCTL_PROMETHEUS3_CACHE default)
PROMETHEUS3_CACHE_ENV = "LOADCTL_PROMETHEUS3_CACHE"
_VERSION = re.compile(r"version (\d+)\.(\d+)\.(\d+)")


def parse_version(version_output: str) -> tuple[int, int, int] | None:
    """(major, minor, patch) from `prometheus --version`'s first line; None when it has none
    (a `go install` without the version stamp prints an empty one)."""
    found = _VERSION.search(version_output.splitlines()[0] if version_output else "")
    return (int(found[1]), int(found[2]), int(found[3])) if found else None


@cache
def binary_version(path: str) -> tuple[int, int, int] | None:
    try:
        done = subprocess.run([path, "--version"], capture_output=True, text=True, timeout=20, check=False)
    except (OSError, subprocess.SubprocessError):
        return None
    return parse_version(done.stdout or done.stderr)


def newest(candidates: list[str]) -> str | None:
    """The candidate with the highest version; unversioned ones only if nothing else is there."""
    ranked = sorted(candidates, key=lambda path: binary_version(path) or (-1, 0, 0), reverse=True)
    return ranked[0] if ranked else None


def cached_prometheus3() -> list[str]:
    root = Path(os.environ.get(PROMETHEUS3_CACHE_ENV) or Path.home() / ".cache/loadctl/prometheus")
    return [str(p) for p in sorted(root.glob("v*/prometheus")) if os.access(p, os.X_OK)]


def find_prometheus() -> str:
    explicit = os.environ.get(PROMETHEUS_ENV)
    if explicit:
        if not os.access(explicit, os.X_OK):
            raise InfraError(f"{PROMETHEUS_ENV}={explicit} is not an executable file")
        return explicit
    on_path = shutil.which("prometheus")
    found = newest([*([on_path] if on_path else []), *cached_prometheus3()])
    if not found:
        raise InfraError("prometheus not found on PATH: run `make setup` or set PROMETHEUS_BIN")
    return found


def find_promtool() -> str:
    """promtool beside the prometheus find_prometheus() picks, else on PATH."""
    try:
        sibling = Path(find_prometheus()).with_name("promtool")
    except InfraError:
        sibling = None
    if sibling is not None and os.access(sibling, os.X_OK):
        return str(sibling)
    found = shutil.which("promtool")
    if not found:
        raise InfraError("promtool not found on PATH (it comes with Prometheus): run `make setup`")
    return found
