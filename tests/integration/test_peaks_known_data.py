"""report.md's System Under Test figures (initial / peak / final) from known data in a real Prometheus.

A local run's Prometheus first scrapes a few seconds after the load starts, so a gauge often has no
sample at the start: "initial" must then be its first sample, not n/a.
"""

from __future__ import annotations

import pytest

from controller.prom.peaks import read_peaks
from tests.promdata import build_tsdb, serve_tsdb, start_time

pytestmark = pytest.mark.integration


def _gauge(name: str, labels: str, points: list[tuple[int, float]]) -> list[str]:
    return [f"{name}{{{labels}}} {value} {t}" for t, value in points]


def test_initial_is_the_value_at_the_start_else_the_first_sample_in_the_run(tmp_path):
    start = start_time()
    lines = ["# TYPE pool_in_use gauge"]
    # scraped from 10 s into the run: 3, then 7 (the peak) at 30 s, then 4 until the end
    late = [
        (t, 3.0 if t < start + 30 else 7.0 if t == start + 30 else 4.0) for t in range(start + 10, start + 61)
    ]
    lines += _gauge("pool_in_use", 'run_id="r",pool="late"', late)
    # scraped before the run: its value at the start is 1
    early = [(t, 1.0 if t <= start else 2.0) for t in range(start - 5, start + 61)]
    lines += _gauge("pool_in_use", 'run_id="r",pool="early"', early)
    # another run's series never counts
    lines += _gauge("pool_in_use", 'run_id="other",pool="late"', [(start + 5, 99.0)])
    build_tsdb("\n".join([*lines, "# EOF", ""]), tmp_path / "tsdb")
    with serve_tsdb(tmp_path / "tsdb", tmp_path) as client:
        peaks = read_peaks(client, run_id="r", metrics=["pool_in_use"], start=start, end=start + 60)
    found = {p.labels: (p.initial, p.value, p.final) for p in peaks}
    assert found == {'{pool="early"}': (1.0, 2.0, 2.0), '{pool="late"}': (3.0, 7.0, 4.0)}
