"""Prometheus 2.x and 3.x, both real: the binaries the version-parametrised tests run on.

2.x is Debian's package (`make setup`); 3.x is built from the Go module proxy by
scripts/ensure-prometheus3.sh (`make test` runs it first; here it only finds the cache, or builds
once when pytest is run by hand). A missing one is an error, never a skip: CI must not pass
without testing both.
"""

from __future__ import annotations

import shutil
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from functools import cache
from pathlib import Path

import pytest

from controller.prom.binaries import PROMETHEUS_ENV, binary_version

REPO_ROOT = Path(__file__).resolve().parents[1]
MAJORS = (2, 3)


@dataclass(frozen=True)
class PrometheusBuild:
    major: int
    prometheus: str

    @property
    def promtool(self) -> str:
        return str(Path(self.prometheus).with_name("promtool"))


@cache
def prometheus_build(major: int) -> PrometheusBuild:
    if major == 2:
        found = shutil.which("prometheus")
        binary = found or "/usr/bin/prometheus"
    else:
        done = subprocess.run(
            [str(REPO_ROOT / "scripts/ensure-prometheus3.sh")], capture_output=True, text=True, check=False
        )
        if done.returncode != 0:
            raise RuntimeError(f"scripts/ensure-prometheus3.sh failed: {done.stderr[-2000:]}")
        binary = str(Path(done.stdout.strip()) / "prometheus")
    version = binary_version(binary)
    if version is None or version[0] != major:
        raise RuntimeError(f"{binary} is {version}, not Prometheus {major}.x: run `make setup` / `make test`")
    return PrometheusBuild(major, binary)


@contextmanager
def using(build: PrometheusBuild) -> Iterator[PrometheusBuild]:
    """$PROMETHEUS_BIN set to `build` (so find_prometheus/find_promtool pick it) while inside."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv(PROMETHEUS_ENV, build.prometheus)
        yield build
