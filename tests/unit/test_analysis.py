"""The run analysis' pure parts on synthetic figures with known answers, and its PromQL (the gates')."""

from __future__ import annotations

import httpx
import pytest

from controller.analysis.models import WindowFigures
from controller.analysis.phases import phase_figures
from controller.analysis.steps import breaking_point, capacity, judge_steps, slo_used, step_windows
from controller.analysis.timeline import TREND_THRESHOLD, slice_windows, timeline, trend
from controller.gates.compile import compile_gate, compile_window_figures
from controller.gates.models import Gate, GateFile
from controller.models import PhaseWindow, RunPlan, Slo, Stage, simple_stages
from controller.processes import free_port
from controller.runs import Readings, analyse


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


STAIRCASE = (
    Stage(duration=60, users=10, spawn_rate=1, phase="step"),  # 10 s ramp, 50 s hold
    Stage(duration=60, users=20, spawn_rate=1, phase="step"),
    Stage(duration=60, users=30, spawn_rate=1, phase="step"),
    Stage(duration=60, users=40, spawn_rate=1, phase="step"),
    Stage(duration=20, users=0, spawn_rate=10, phase="ramp_down"),
)
STAIRCASE_PHASES = tuple(
    PhaseWindow(stage=i, phase=s.phase, start=60.0 * i, end=60.0 * i + s.duration)
    for i, s in enumerate(STAIRCASE)
)


def step_figures(rps_and_p95: list[tuple[float, float]], *, failed: float = 0.0) -> list[WindowFigures]:
    """50-s holds serving `rps` successful requests/s at `p95` ms, plus `failed` failures each."""
    return [
        WindowFigures(
            start=0,
            end=50,
            requests=rps * 50 + failed,
            failures_by_status={"500": failed} if failed else {},
            p95_ms=p95,
        )
        for rps, p95 in rps_and_p95
    ]


def test_a_staircase_has_one_step_per_hold_after_its_ramp():
    holds = step_windows(STAIRCASE_PHASES, STAIRCASE)
    assert [(h.users, h.start, h.end) for h in holds] == [
        (10, 10, 60),
        (20, 70, 120),
        (30, 130, 180),
        (40, 190, 240),
    ]
    # a ramp_up + steady pair at the same users is one step: the steady stage's hold
    simple = simple_stages(users=10, spawn_rate=1, duration=60)
    phases = (
        PhaseWindow(stage=0, phase="ramp_up", start=0, end=10),
        PhaseWindow(stage=1, phase="steady", start=10, end=60),
    )
    assert [(h.users, h.start, h.end) for h in step_windows(phases, simple)] == [(10, 10, 60)]


def test_the_knee_is_the_first_step_breaking_the_slo_and_capacity_the_best_step_within():
    holds = step_windows(STAIRCASE_PHASES, STAIRCASE)
    slo = slo_used(Slo(latency_p95_ms=300), None)
    steps = judge_steps(holds, step_figures([(100, 120), (200, 180), (260, 450), (250, 900)]), slo)
    assert [s.within_slo for s in steps] == [True, True, False, False]
    knee = breaking_point(steps)
    assert (
        knee is not None and (knee.users, knee.rps) == (30, 260) and "p95 450 ms > SLO 300 ms" in knee.reason
    )
    assert capacity(steps).model_dump() == {"max_rps_within_slo": 200, "users": 20, "max_rps": 260}
    assert breaking_point(steps[:2]) is None


def test_the_slo_comes_from_the_profile_else_the_gates_else_throughput():
    gates = GateFile(
        version=1,
        name="g",
        gates=(
            Gate(name="p95", metric="latency_p95_ms", max=800),
            Gate(name="p95_search", metric="latency_p95_ms", labels='name="search"', max=100),
            Gate(name="errors", metric="error_rate", max=0.01),
        ),
    )
    assert slo_used(Slo(error_rate=0.02), gates).model_dump(exclude={"rule"}) == {
        "source": "profile",
        "latency_p95_ms": None,
        "error_rate": 0.02,
    }
    from_gates = slo_used(None, gates)
    assert (from_gates.source, from_gates.latency_p95_ms, from_gates.error_rate) == ("gates", 800, 0.01)
    assert slo_used(None, None).source == "throughput"


def test_without_an_slo_the_knee_is_where_throughput_stops_growing():
    holds = step_windows(STAIRCASE_PHASES, STAIRCASE)
    steps = judge_steps(
        holds, step_figures([(100, 50), (190, 60), (196, 70), (150, 80)]), slo_used(None, None)
    )
    assert [s.within_slo for s in steps] == [True, True, False, False]
    knee = breaking_point(steps)
    assert knee is not None and knee.users == 30 and "throughput stopped growing" in knee.reason
    assert capacity(steps).users == 20


def test_an_error_rate_slo_breaks_on_the_first_step_above_it():
    holds = step_windows(STAIRCASE_PHASES, STAIRCASE)
    slo = slo_used(Slo(error_rate=0.01), None)
    steps = judge_steps(
        holds, step_figures([(100, 50), (200, 60)], failed=100) + step_figures([(1, 1)] * 2), slo
    )
    knee = breaking_point(steps)  # 100 failures in 5100 requests (1.96 %), then in 10100 (0.99 %)
    assert knee is not None and knee.users == 10 and "error rate 1.96% > SLO 1.00%" in knee.reason
    assert [s.within_slo for s in steps] == [
        False,
        True,
        True,
        True,
    ]  # no latency SLO: 1 ms of 1 req/s is fine
    assert capacity(steps).users == 20


def test_an_analysis_that_cannot_be_read_is_a_note_and_an_error_never_an_exception(tmp_path):
    plan = RunPlan(
        run_id="r1",
        profile="p",
        locustfile=tmp_path / "load.py",
        host="http://127.0.0.1:1",
        stages=(Stage(duration=60, users=1, spawn_rate=1),),
        workers=1,
        results_dir=tmp_path,
    )
    readings = Readings(
        started=0.0, ended=60.0, phases=(PhaseWindow(stage=0, phase="steady", start=0, end=60),)
    )
    with httpx.Client(base_url=f"http://127.0.0.1:{free_port()}", timeout=2.0) as refused:
        analysis = analyse(plan, readings, refused, gate_file=None)
    assert analysis.error and "unreachable" in analysis.error and not analysis.phases
    assert readings.notes == [f"the run's analysis (analysis.json) could not be computed: {analysis.error}"]
