"""Which Prometheus a run uses (controller/prom/binaries.py), with the real 2.x and 3.x binaries:
$PROMETHEUS_BIN if set, else the newest of PATH's and the ones ensure-prometheus3.sh built."""

from __future__ import annotations

import os
import shutil

import pytest

from controller.errors import InfraError
from controller.prom.binaries import (
    PROMETHEUS3_CACHE_ENV,
    PROMETHEUS_ENV,
    binary_version,
    find_prometheus,
    find_promtool,
    parse_version,
)
from tests.prom_versions import prometheus_build

pytestmark = pytest.mark.integration


@pytest.fixture
def no_explicit_binary(monkeypatch):
    monkeypatch.delenv(PROMETHEUS_ENV, raising=False)


def test_versions_are_read_from_the_binaries():
    assert binary_version(prometheus_build(2).prometheus)[0] == 2
    assert binary_version(prometheus_build(3).prometheus)[:2] >= (3, 0)
    assert parse_version("prometheus, version 3.16.0 (branch: x)\n  build user: y") == (3, 16, 0)
    assert parse_version("prometheus, version  (branch: , revision: unknown)") is None
    assert parse_version("") is None


def test_the_newest_found_wins(no_explicit_binary, monkeypatch):
    three = prometheus_build(3)
    cache_root = os.path.dirname(os.path.dirname(three.prometheus))
    monkeypatch.setenv(PROMETHEUS3_CACHE_ENV, cache_root)
    assert find_prometheus() == three.prometheus
    assert find_promtool() == three.promtool  # always the same version as the server


def test_without_a_built_3x_it_is_paths_2x(no_explicit_binary, monkeypatch, tmp_path):
    monkeypatch.setenv(PROMETHEUS3_CACHE_ENV, str(tmp_path / "empty"))
    assert find_prometheus() == shutil.which("prometheus")


def test_an_unversioned_build_ranks_below_a_versioned_one(no_explicit_binary, monkeypatch, tmp_path):
    """A `go install` without the version stamp says "version " and nothing: it is not "newer"."""
    fake = tmp_path / "v9.9.9" / "prometheus"
    fake.parent.mkdir()
    fake.write_text("#!/bin/sh\necho 'prometheus, version  (branch: , revision: unknown)'\n")
    fake.chmod(0o755)
    monkeypatch.setenv(PROMETHEUS3_CACHE_ENV, str(tmp_path))
    assert find_prometheus() == shutil.which("prometheus")


def test_prometheus_bin_wins_over_newer_ones(monkeypatch):
    two = prometheus_build(2)
    monkeypatch.setenv(PROMETHEUS_ENV, two.prometheus)
    assert find_prometheus() == two.prometheus
    monkeypatch.setenv(PROMETHEUS_ENV, "/nonexistent/prometheus")
    with pytest.raises(InfraError, match="PROMETHEUS_BIN=/nonexistent/prometheus is not an executable"):
        find_prometheus()
