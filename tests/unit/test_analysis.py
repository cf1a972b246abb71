"""The run analysis' pure parts on synthetic figures with known answers, and its PromQL (the gates')."""

from __future__ import annotations

import pytest

from controller.analysis.models import WindowFigures
from controller.analysis.phases import phase_figures
from controller.analysis.timeline import TREND_THRESHOLD, slice_windows, timeline, trend
from controller.gates.compile import compile_gate, compile_window_figures
from controller.gates.models import Gate
from controller.models import PhaseWindow, Stage


def figures(start: float, end: float, *, requests: float | None, failed: float = 0.0, p95: float = 100.0):
    return WindowFigures(
        start=start,
        end=end,
        requests=requests,
        failures_by_status={"500": failed} if failed else {},
        p50_ms=p95 / 2,
        p95_ms=p95,
        p99_ms=p95 * 2,
    )


def series(values: list[float | None]) -> list[tuple[float, float | None]]:
    return [(10.0 * i + 5, v) for i, v in enumerate(values)]


def test_a_rising_error_rate_is_rising_a_falling_one_falling():
    assert trend(series([0.01, 0.02, 0.03, 0.04, 0.05])).direction == "rising"
    assert trend(series([500, 400, 300, 200, 100])).direction == "falling"


def test_a_flat_series_is_flat_and_so_is_noise_below_the_threshold():
    assert trend(series([0.02] * 10)).direction == "flat"
    fit = trend(series([100, 104, 97, 103, 98, 102, 99, 101, 100, 100]))
    assert fit.direction == "flat" and abs(fit.relative_change or 0) < TREND_THRESHOLD
    assert trend(series([0.0] * 10)).direction == "flat"  # no errors at all


def test_the_threshold_is_the_change_over_the_run_relative_to_the_mean():
    # a line from 90 to 110 (mean 100): change 20 = 0.2 of the mean, not above the threshold
    fit = trend(series([90, 95, 100, 105, 110]))
    assert fit.change == pytest.approx(20) and fit.relative_change == pytest.approx(0.2)
    assert fit.direction == "flat"
    assert trend(series([90, 95, 100, 105, 111])).direction == "rising"


def test_too_few_slices_with_data_is_flat():
    fit = trend(series([None, 0.01, None, None, 0.5]))
    assert fit.direction == "flat" and fit.slices_with_data == 2


def test_slices_are_equal_and_cover_the_run():
    windows = slice_windows(100.0, 130.0, 3)
    assert windows == ((100.0, 110.0), (110.0, 120.0), (120.0, 130.0))
    with pytest.raises(ValueError):
        slice_windows(100.0, 100.0, 3)


def test_timeline_takes_rps_and_error_rate_as_the_gates_do():
    measured = [figures(10.0 * i, 10.0 * (i + 1), requests=100, failed=i * 5, p95=100) for i in range(4)]
    result = timeline(measured)
    assert [s.error_rate for s in result.slices] == [0.0, 0.05, 0.10, 0.15]
    assert [s.rps for s in result.slices] == [10.0, 9.5, 9.0, 8.5]  # successful requests per second
    assert result.trend == {"error_rate": "rising", "p95_ms": "flat"}
    assert result.threshold == TREND_THRESHOLD and "least-squares" in result.rule


def test_phases_take_users_from_the_plan_and_rates_from_their_window():
    stages = (
        Stage(duration=60, users=50, spawn_rate=1, phase="ramp_up"),
        Stage(duration=120, users=50, spawn_rate=1, phase="steady"),
        Stage(duration=30, users=0, spawn_rate=5, phase="ramp_down"),
    )
    phases = (
        PhaseWindow(stage=0, phase="ramp_up", start=0, end=60),
        PhaseWindow(stage=1, phase="steady", start=60, end=180),
        PhaseWindow(stage=2, phase="ramp_down", start=180, end=210),
    )
    measured = [
        WindowFigures(start=0, end=60, requests=600, failures_by_status={}, p50_ms=20, p95_ms=40, p99_ms=80),
        WindowFigures(start=60, end=180, requests=2400, failures_by_status={"429": 96, "500": 24}, p95_ms=90),
        WindowFigures(start=180, end=210, requests=None),
    ]
    ramp_up, steady, ramp_down = phase_figures(phases, stages, measured)
    assert (ramp_up.users, ramp_up.rps, ramp_up.error_rate, ramp_up.p95_ms) == (50, 10.0, 0.0, 40)
    assert (steady.users, steady.rps, steady.error_rate) == (50, 19.0, 0.05)
    assert steady.failures_by_status == {"429": 0.04, "500": 0.01} and steady.failures == 120
    assert (ramp_down.users, ramp_down.rps, ramp_down.error_rate) == (0, None, None)
    with pytest.raises(ValueError):
        phase_figures(phases, stages, measured[:2])


def test_a_window_is_measured_with_the_gates_own_promql():
    segments, run_end = ((100.0, 160.0),), 160.0
    queries = compile_window_figures(run_id="r1", segments=segments, run_end=run_end)
    for name, promql in queries.latency_ms.items():
        gate = Gate(name="g", metric=name, max=1)
        assert promql == compile_gate(gate, run_id="r1", segments=segments, run_end=run_end)
    requests = Gate(name="g", metric="requests", max=1)
    assert queries.requests == compile_gate(requests, run_id="r1", segments=segments, run_end=run_end)
    assert "by (status)" in queries.failures_by_status and "locust_request_failures_total" in (
        queries.failures_by_status
    )
