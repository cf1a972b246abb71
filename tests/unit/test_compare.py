"""Two runs compared (analysis/compare.py) on hand-made figures with known changes and noise."""

from __future__ import annotations

import math

import pytest

from controller.analysis.compare import (
    FLAG_FLOOR,
    RunFigures,
    compare_runs,
    differences,
    relative_spread,
)
from controller.analysis.models import Analysis, PhaseFigures, Slice, Timeline
from controller.models import PhaseWindow, Stage
from tests.support import run_record

STAGES = (
    Stage(duration=10, users=4, spawn_rate=4, phase="ramp_up"),
    Stage(duration=20, users=8, spawn_rate=4, phase="steady"),
)


def stats_rows(*, requests: int, failures: int, rps: float, p95: float) -> list[dict[str, str]]:
    endpoint = {
        "Type": "GET",
        "Name": "/items",
        "Request Count": str(requests),
        "Failure Count": str(failures),
        "Requests/s": str(rps),
        "50%": str(p95 / 2),
        "95%": str(p95),
        "99%": str(p95 * 2),
    }
    return [endpoint, endpoint | {"Type": "", "Name": "Aggregated"}]


def timeline(rps: list[float], p95: list[float], errors: list[float]) -> Timeline:
    slices = tuple(
        Slice(start=10.0 * i, end=10.0 * (i + 1), requests=r * 10, rps=r, p95_ms=p, error_rate=e)
        for i, (r, p, e) in enumerate(zip(rps, p95, errors, strict=True))
    )
    return Timeline(slices=slices, trend={}, fit={}, threshold=0.2, rule="")


def steady(rps: float, p95: float) -> PhaseFigures:
    return PhaseFigures(
        phase="steady",
        stage=1,
        start=10.0,
        end=30.0,
        users=8,
        requests=rps * 20,
        failures=0.0,
        rps=rps,
        p50_ms=p95 / 2,
        p95_ms=p95,
        p99_ms=p95 * 2,
        error_rate=0.0,
        failures_by_status={},
    )


# Quiet runs: rps per slice 99/101 (stdev 1, mean 100: spread 0.01), p95 196/204 (0.02), no errors.
QUIET = timeline([99, 101], [196, 204], [0.0, 0.0])
PHASES = (
    PhaseWindow(stage=0, phase="ramp_up", start=0, end=10),
    PhaseWindow(stage=1, phase="steady", start=10, end=30),
)


def run(
    run_id: str, *, rps: float, p95: float, failures: int = 0, line: Timeline = QUIET, **record
) -> RunFigures:
    fields = {"phases": PHASES, "stages": STAGES} | record
    return RunFigures(
        record=run_record(run_id=run_id, **fields),
        analysis=Analysis(phases=(steady(rps, p95),), timeline=line),
        stats=stats_rows(requests=int(rps * 30), failures=failures, rps=rps, p95=p95),
    )


def by_key(comparison):
    return {(row.section, row.figure): row for row in comparison.rows}


def test_every_headline_phase_and_endpoint_figure_with_its_change():
    comparison = compare_runs(
        run("a", rps=100, p95=200), run("b", rps=103, p95=300), baseline_dir="results/a"
    )
    rows = by_key(comparison)
    assert comparison.comparable and comparison.differences == ()
    assert comparison.baseline_run_id == "a" and comparison.baseline_dir == "results/a"
    sections = list(dict.fromkeys(row.section for row in comparison.rows))
    assert sections == ["headline", "phase 1:steady", "endpoint GET /items"]
    for section in sections:
        assert {f for s, f in rows if s == section} == {
            "requests",
            "failures",
            "error_rate",
            "rps",
            "p50_ms",
            "p95_ms",
            "p99_ms",
        }
    # p95 200 -> 300: +50 %, far beyond the quiet runs' noise: flagged
    p95 = rows["headline", "p95_ms"]
    assert (p95.baseline, p95.current, p95.change) == (200, 300, pytest.approx(0.5))
    assert p95.noise == pytest.approx(math.hypot(0.02, 0.02)) and p95.flagged
    assert rows["phase 1:steady", "p99_ms"].change == pytest.approx(0.5)
    # rps 100 -> 103: +3 %, above the noise (sqrt(2) %) but not the 5 % floor: not flagged
    rps = rows["endpoint GET /items", "rps"]
    assert rps.change == pytest.approx(0.03) and rps.noise == pytest.approx(math.hypot(0.01, 0.01))
    assert not rps.flagged
    # no failures in either: no change (baseline 0), nothing to flag
    assert rows["headline", "failures"].change is None and not rows["headline", "failures"].flagged


def test_failures_appearing_are_flagged_though_the_change_is_unknown():
    rows = by_key(
        compare_runs(run("a", rps=100, p95=200), run("b", rps=100, p95=200, failures=30), baseline_dir="a")
    )
    assert rows["headline", "failures"].change is None and rows["headline", "failures"].flagged
    assert rows["headline", "error_rate"].current == pytest.approx(30 / 3000)
    assert not rows["headline", "p95_ms"].flagged


def test_a_noisy_run_flags_nothing():
    # rps 50/150 per slice (spread 0.5), p95 100/300 (0.5): +40 % on every figure is within it
    noisy = timeline([50, 150], [100, 300], [0.0, 0.0])
    comparison = compare_runs(
        run("a", rps=100, p95=200, line=noisy), run("b", rps=140, p95=280), baseline_dir="a"
    )
    assert not any(row.flagged for row in comparison.rows)
    rows = by_key(comparison)
    assert rows["headline", "rps"].change == pytest.approx(0.4)
    assert rows["headline", "rps"].noise == pytest.approx(math.hypot(0.5, 0.01))


def test_relative_spread_rule():
    assert relative_spread([99, 101]) == pytest.approx(0.01)
    assert relative_spread([0.0, 0.0, None]) == 0.0
    assert relative_spread([5.0, None]) is None  # one slice: no spread to speak of
    assert FLAG_FLOOR == 0.05


def test_runs_of_another_locustfile_host_or_stage_table_are_not_comparable():
    other = (*STAGES, Stage(duration=10, users=0, spawn_rate=4, phase="ramp_down"))
    comparison = compare_runs(
        run("a", rps=100, p95=200),
        run("b", rps=100, p95=200, locustfile="other.py", host="http://127.0.0.1:2", stages=other),
        baseline_dir="a",
    )
    assert not comparison.comparable
    assert comparison.differences == (
        "locustfile: demo.py vs other.py",
        "host: http://127.0.0.1:1 vs http://127.0.0.1:2",
        "stage table: [ramp_up 10s 4u@4/s, steady 20s 8u@4/s] vs "
        "[ramp_up 10s 4u@4/s, steady 20s 8u@4/s, ramp_down 10s 0u@4/s]",
    )


def test_older_run_json_without_a_stage_table_compares_phases_and_duration():
    older = run_record(phases=PHASES[:1], planned_duration_s=30.0)
    assert differences(run_record(phases=PHASES), older) == (
        "phases: ramp_up, steady vs ramp_up",
        "planned duration: 60s vs 30s",
    )
    assert differences(run_record(phases=PHASES, stages=STAGES), run_record(phases=PHASES)) == ()
    assert differences(run_record(phases=PHASES, stages=STAGES), run_record(phases=PHASES, stages=())) == ()
