"""Locking a gate file to a pilot run: the worked example, and the rules that keep it from loosening."""

import copy
from typing import Any

import pytest
import yaml

from controller.gates.evaluate import GateResult
from controller.gates.lock import (
    LockRow,
    dump_gate_file,
    lock_gate_file,
    locked_threshold_max,
    locked_threshold_min,
    round_significant,
)
from controller.gates.models import GateFile
from controller.reports.lock import lock_report_markdown

PILOT: dict[str, Any] = {
    "version": 1,
    "name": "pilot",
    "window": "steady",
    "gates": [
        {
            "name": "non_harvest_error_rate",
            "metric": "error_rate",
            "labels": 'name!="harvest_auto"',
            "max": 0.02,
            "floor": 0.005,
        },
        {"name": "search_p95", "metric": "latency_p95_ms", "labels": 'name="recipes_search"', "max": 1200},
        {"name": "rps", "metric": "rps", "min": 30},
        {"name": "studio_p99", "metric": "latency_p99_ms", "max": 5000},
        {"name": "search_p50_vs_baseline", "metric": "latency_p50_ms", "max_change": "+10%"},
    ],
}


def observed(name: str, value: float | None, reason: str | None = None) -> GateResult:
    return GateResult(
        name=name,
        verdict="pass" if value is not None else "fail",
        value=value,
        promql="q",
        window="steady",
        start=0.0,
        end=300.0,
        reason=reason,
    )


RESULTS = (
    observed("non_harvest_error_rate", 0.0),
    observed("search_p95", 934.0),
    observed("rps", 40.0),
    observed("studio_p99", None, reason="no data"),
    observed("search_p50_vs_baseline", 120.0),
)


def gate(data: dict, name: str) -> dict:
    return next(g for g in data["gates"] if g["name"] == name)


def test_the_pure_formulas():
    assert locked_threshold_max(0.02, 0.0, 1.2, 0.005) == 0.005
    assert locked_threshold_max(1200, 934, 1.2, None) == pytest.approx(1120.8)
    assert locked_threshold_max(1200, 1100, 1.2, None) == 1200  # never above the current max
    assert locked_threshold_min(30, 40, 1.2) == pytest.approx(33.3333333)
    assert locked_threshold_min(30, 33, 1.2) == 30  # never below the current min


def test_rounding_is_directional():
    assert round_significant(1120.8, up=False) == 1120
    assert round_significant(100 / 3, up=True) == 33.34
    assert round_significant(0.005, up=False) == 0.005  # no float noise: not 0.004999
    assert round_significant(0.025 * 1.2, up=False) == 0.03
    assert round_significant(123456, up=False) == 123400
    assert round_significant(0.0, up=True) == 0.0


def test_the_seed_worked_example():
    locked, rows = lock_gate_file(PILOT, RESULTS, headroom=1.2)
    assert gate(locked, "non_harvest_error_rate")["max"] == 0.005  # 0.0 * 1.2 is below the floor
    assert gate(locked, "search_p95")["max"] == 1120  # min(1200, 1120.8) rounded down
    assert gate(locked, "rps")["min"] == 33.34  # max(30, 33.33) rounded up
    assert locked["name"] == "pilot.locked"
    by_gate = {(row.gate, row.field): row for row in rows}
    assert by_gate[("search_p95", "max")] == LockRow("search_p95", "max", 1200.0, 934.0, 1120.0, "")
    assert by_gate[("non_harvest_error_rate", "max")].note == "floor 0.005"


def test_a_gate_without_an_observed_value_keeps_its_threshold():
    locked, rows = lock_gate_file(PILOT, RESULTS)
    assert gate(locked, "studio_p99") == gate(PILOT, "studio_p99")
    row = next(r for r in rows if r.gate == "studio_p99")
    assert (row.previous, row.locked, row.note) == (5000, 5000, "not locked: no data")
    missing, rows = lock_gate_file(PILOT, RESULTS[:1])
    assert gate(missing, "search_p95")["max"] == 1200
    assert "not locked: not evaluated" in {r.note for r in rows if r.gate == "search_p95"}


def test_relative_thresholds_are_left_alone():
    locked, rows = lock_gate_file(PILOT, RESULTS)
    assert gate(locked, "search_p50_vs_baseline") == gate(PILOT, "search_p50_vs_baseline")
    row = next(r for r in rows if r.gate == "search_p50_vs_baseline")
    assert row.field == "max_change" and row.note.startswith("not locked")


def test_never_loosens_and_never_locks_below_the_observed_value():
    data = {
        "version": 1,
        "name": "x.locked",
        "gates": [{"name": "p95", "metric": "latency_p95_ms", "max": 1000, "min": 10}],
    }
    locked, rows = lock_gate_file(data, [observed("p95", 1500.0)])  # the run broke the max: keep it
    assert gate(locked, "p95") == {"name": "p95", "metric": "latency_p95_ms", "max": 1000, "min": 10}
    assert {row.note for row in rows} == {"not locked: the run broke its max"}
    assert locked["name"] == "x.locked"
    # a headroom this thin would round the max below what was observed: keep the exact value
    tight, _ = lock_gate_file(data, [observed("p95", 123.45)], headroom=1.00001)
    assert 123.45 <= gate(tight, "p95")["max"] < 1000
    assert 10 < gate(tight, "p95")["min"] <= 123.45


def test_the_input_is_not_mutated():
    before = copy.deepcopy(PILOT)
    lock_gate_file(PILOT, RESULTS)
    assert before == PILOT


@pytest.mark.parametrize("headroom", [1.0, 0.8, 0.0, -1.2, float("nan"), float("inf")])
def test_headroom_must_be_above_one(headroom):
    with pytest.raises(ValueError, match="headroom"):
        lock_gate_file(PILOT, RESULTS, headroom=headroom)
    with pytest.raises(ValueError, match="headroom"):
        locked_threshold_max(1200, 934, headroom, None)


def test_report_table():
    _, rows = lock_gate_file(PILOT, RESULTS)
    text = lock_report_markdown(
        rows, gate_file="gates/pilot.yaml", run_id="pilot-1", headroom=1.2, output="gates/pilot.locked.yaml"
    )
    assert text.startswith("## Gate Lock\n")
    for fragment in (
        "`pilot-1`",
        "`gates/pilot.yaml`",
        "`gates/pilot.locked.yaml`",
        "x1.2",
        "| Gate | Threshold | Previous | Observed | Locked |",
        "| search_p95 | max | 1200 | 934 | 1120 |",
        "| rps | min | 30 | 40 | 33.34 |",
        "| non_harvest_error_rate | max | 0.02 | 0 | 0.005 (floor 0.005) |",
        "| studio_p99 | max | 5000 | - | 5000 (not locked: no data) |",
    ):
        assert fragment in text


def test_dumped_yaml_loads_back_and_validates():
    locked, _ = lock_gate_file(PILOT, RESULTS)
    text = dump_gate_file(locked, run_id="pilot-1", source="gates/pilot.yaml")
    first = text.splitlines()[0]
    assert first == "# Generated by `loadctl gates lock` from run pilot-1 and gates/pilot.yaml."
    loaded = yaml.safe_load(text)
    assert loaded == locked
    assert [g["name"] for g in loaded["gates"]] == [g["name"] for g in PILOT["gates"]]  # order kept
    model = GateFile.model_validate(loaded)
    assert model.name == "pilot.locked"
    assert {g.name: (g.max, g.min) for g in model.gates}["search_p95"] == (1120, None)


def test_the_header_stays_one_comment_line():
    text = dump_gate_file({"version": 1}, source="gates/x.yaml and run r9\nversion: 2")
    assert (
        text.splitlines()[0] == "# Generated by `loadctl gates lock` from gates/x.yaml and run r9 version: 2."
    )
    assert yaml.safe_load(text) == {"version": 1}
