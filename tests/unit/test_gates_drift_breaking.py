"""The drift_per_hour and breaking_point_users gates: validation, PromQL, values with known answers,
and the breaking point judged from the analysis into the gate report. Pure, no server."""

from __future__ import annotations

import pytest

from controller.analysis.drift import drift
from controller.analysis.models import Analysis, Step
from controller.analysis.steps import breaking_point_users
from controller.errors import InputError
from controller.gates.compile import compile_gate
from controller.gates.evaluate import GateReport, GateResult, drift_value, judge, with_results
from controller.gates.load import parse_gate_file
from controller.gates.models import Gate, GateFile
from controller.runs import judge_analysis_gates

T0 = 1_700_000_000.0
RSS = "loadctl_process_resident_memory_bytes"


def gate(**kwargs) -> Gate:
    return Gate(**({"name": "g"} | kwargs))


def line(start: float, per_hour: float, count: int = 61, every: float = 60.0):
    return [(T0 + i * every, start + per_hour * i * every / 3600) for i in range(count)]


@pytest.mark.parametrize(
    ("kwargs", "words"),
    [
        ({"metric": "drift_per_hour", "max": 0.05}, "drift_per_hour needs 'gauge'"),
        ({"metric": "rps", "min": 1, "gauge": RSS}, "'gauge' only applies to metric drift_per_hour"),
        ({"metric": "drift_per_hour", "gauge": "rss bytes", "max": 0.05}, "should match pattern"),
        ({"metric": "breaking_point_users", "min": 500, "abort": True}, "cannot abort live"),
        ({"metric": "breaking_point_users", "max_change": "-10%"}, "not max_change/min_change"),
        ({"metric": "breaking_point_users", "min": 500, "labels": 'name="x"'}, "whole run"),
        ({"metric": "breaking_point_users", "min": 500, "window": "steady"}, "whole run"),
    ],
)
def test_invalid_drift_and_breaking_point_gates(kwargs, words):
    with pytest.raises(ValueError, match=words):
        gate(**kwargs)


def test_a_bad_field_names_the_file_and_the_gate():
    data = {
        "version": 1,
        "name": "t",
        "gates": [{"name": "bp", "metric": "breaking_point_users", "min": 500, "abort": True}],
    }
    with pytest.raises(InputError, match=r"^g.yaml: gates\[0\] \(bp\): .*cannot abort live: it is judged"):
        parse_gate_file(data, source="g.yaml")
    data["gates"] = [{"name": "d", "metric": "drift_per_hour", "max": 0.05, "gauge": 7}]
    with pytest.raises(InputError, match=r"^g.yaml: gates\[0\] \(d\)\.gauge: "):
        parse_gate_file(data, source="g.yaml")


def test_the_live_drift_gate_is_allowed_and_breaking_point_is_judged_over_the_run():
    assert gate(metric="drift_per_hour", gauge=RSS, max=0.05, abort=True).abort
    file = GateFile(
        version=1,
        name="f",
        window="steady",
        gates=(
            gate(name="bp", metric="breaking_point_users", min=500),
            gate(name="d", metric="drift_per_hour", gauge=RSS, max=0.05),
        ),
    )
    assert [file.window_of(g) for g in file.gates] == ["run", "steady"]
    assert file.gates[0].from_analysis and not file.gates[1].from_analysis


def test_drift_compiles_to_the_gauge_per_series_connections_summed_over_state():
    seg = ((100.0, 160.0),)
    rss = gate(metric="drift_per_hour", gauge=RSS, labels='probe="app"', max=0.05)
    assert compile_gate(rss, run_id="r", segments=seg) == f'{RSS}{{run_id="r", probe="app"}}'
    pg = gate(metric="drift_per_hour", gauge="loadctl_postgres_connections", max=0.05)
    assert compile_gate(pg, run_id="r", segments=seg) == (
        'sum without (state) (loadctl_postgres_connections{run_id="r"})'
    )


def test_drift_value_is_the_analysis_growth_ratio_the_largest_of_the_series():
    leak, flat = line(100e6, 20e6), line(50e6, 0)
    value, reason = drift_value({'{probe="a"}': leak, '{probe="b"}': flat})
    assert reason is None and value == pytest.approx(0.2)
    assert value == drift(RSS, {}, leak).growth_ratio_per_hour  # the same number as analysis.json
    result = judge(
        gate(metric="drift_per_hour", gauge=RSS, max=0.05),
        value=value,
        promql="q",
        window="steady",
        start=0,
        end=1,
    )
    assert result.verdict == "fail" and result.reason == "0.2 > max 0.05"
    passing = judge(
        gate(metric="drift_per_hour", gauge=RSS, max=0.05),
        value=drift_value({"x": flat})[0],
        promql="q",
        window="steady",
        start=0,
        end=1,
    )
    assert passing.verdict == "pass" and passing.value == 0.0


def test_drift_fails_closed_without_a_fit():
    assert drift_value({}) == (None, "no data")
    value, reason = drift_value({"a": line(1e6, 0), "b": line(1e6, 0, count=2)})
    assert value is None and reason == "b: 2 sample(s) in the window, need 3 to fit a line"
    value, reason = drift_value({"c": line(0, 5)})
    assert value is None and reason is not None and "fitted at 0" in reason
    missing = judge(
        gate(metric="drift_per_hour", gauge=RSS, max=0.05, severity="warn"),
        value=None,
        reason=reason,
        promql="q",
        window="w",
        start=0,
        end=1,
    )
    assert missing.verdict == "fail"  # whatever its severity


def step(users: int, within: bool | None) -> Step:
    return Step(users=users, start=0, end=1, rps=10.0, p95_ms=100.0, error_rate=0.0, within_slo=within)


def test_breaking_point_users_is_the_breaking_steps_users_else_the_most_held():
    assert breaking_point_users([step(200, True), step(400, True), step(600, False), step(800, False)]) == (
        600.0,
        None,
    )
    # never broke: the most users held within the SLO, so min 500 cannot pass on a run that stayed at 400
    assert breaking_point_users([step(200, True), step(400, True)]) == (400.0, None)
    # the throughput rule leaves steps that add no users unjudged
    assert breaking_point_users([step(200, True), step(100, None)]) == (200.0, None)
    value, reason = breaking_point_users([step(200, None)])
    assert value is None and reason is not None and "no step" in reason
    assert breaking_point_users([]) == (value, reason)


BP_GATE = gate(name="bp", metric="breaking_point_users", min=500)
DRIFT_GATE = gate(name="d", metric="drift_per_hour", gauge=RSS, max=0.05)
GATE_FILE = GateFile(version=1, name="f", gates=(BP_GATE, DRIFT_GATE))


def report_before_the_analysis() -> GateReport:
    placeholder = judge(BP_GATE, value=None, reason="judged later", promql="", window="run", start=10, end=90)
    drift_ok = judge(DRIFT_GATE, value=0.01, promql="q", window="steady", start=20, end=90)
    return GateReport(
        verdict="fail",
        gates=(placeholder, drift_ok),
        gate_file="g.yaml",
        run_id="r",
        evaluated_at=0,
        gate_names=("bp", "d"),
    )


def test_the_breaking_point_gate_is_judged_from_the_analysis_into_the_report():
    held = Analysis(steps=(step(300, True), step(600, True)))
    report = judge_analysis_gates(GATE_FILE, report_before_the_analysis(), held)
    bp = report.gates[0]
    assert (bp.name, bp.verdict, bp.value, bp.window, bp.start, bp.end) == (
        "bp",
        "pass",
        600.0,
        "run",
        10,
        90,
    )
    assert report.verdict == "pass" and report.gates[1].verdict == "pass"
    broke = Analysis(steps=(step(300, True), step(450, False), step(600, False)))
    report = judge_analysis_gates(GATE_FILE, report_before_the_analysis(), broke)
    assert report.verdict == "fail" and report.gates[0].reason == "450 < min 500"


def test_without_an_analysis_the_breaking_point_gate_fails_closed():
    for analysis in (None, Analysis(error="Prometheus went away")):
        report = judge_analysis_gates(GATE_FILE, report_before_the_analysis(), analysis)
        assert report.verdict == "fail" and report.gates[0].value is None
        assert "the run's analysis failed" in (report.gates[0].reason or "")


def test_with_results_keeps_an_error_report_an_error():
    base = report_before_the_analysis()
    erroring = GateReport(**{**base.__dict__, "verdict": "error", "reason": "Prometheus unreachable"})
    passed = GateResult(name="bp", verdict="pass", value=600.0, promql="", window="run", start=10, end=90)
    assert with_results(erroring, [passed]).verdict == "error"
    assert with_results(base, [passed]).verdict == "pass"
