"""The run summary pushed to a Pushgateway (pure builder) and `loadctl history`'s rows, without servers:
tests/integration/test_run_history.py pushes to a real one."""

from __future__ import annotations

import math
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from prometheus_client.parser import text_string_to_metric_families

from controller.cli.history import table_lines
from controller.errors import InputError
from controller.prom.client import Sample
from controller.pushgateway import summary as pushed
from controller.pushgateway.history import Unreadable, newest_first, rows_from_folder, summaries_from_samples
from controller.pushgateway.push import check_pushgateway_url, group_url
from controller.pushgateway.summary import GateFigure, RunSummary, exposition, gate_figures, summarize
from controller.rundir import RunDir
from tests.support import run_record

STATS = [
    {
        "Type": "GET",
        "Name": "search",
        "Request Count": "90",
        "Failure Count": "3",
        "95%": "120",
        "99%": "300",
    },
    {
        "Type": "",
        "Name": "Aggregated",
        "Request Count": "100",
        "Failure Count": "5",
        "Requests/s": "10.5",
        "95%": "150",
        "99%": "400",
    },
]
GATES = {
    "gates": [
        {"name": "p95", "value": 0.15, "max": 1.2, "verdict": "pass"},
        {"name": "rps", "value": 10.5, "min": 5, "verdict": "pass"},
        {"name": "relative", "value": None, "max_change": "+10%"},  # unevaluated, no absolute threshold
    ]
}


def samples(text: str) -> dict[str, list[tuple[dict[str, str], float]]]:
    """Metric name -> [(labels, value)] of an exposition, parsed by prometheus_client's own parser."""
    out: dict[str, list[tuple[dict[str, str], float]]] = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            out.setdefault(sample.name, []).append((sample.labels, sample.value))
    return out


def test_the_summary_takes_locusts_whole_run_figures_and_the_gates():
    record = run_record(
        run_id="night-1", profile="soak", verdict="warn", exit_code=0, requests=100, failures=5
    )
    summary = summarize(record, stats=STATS, gates_json=GATES, schedule="nightly")
    assert (summary.requests, summary.error_ratio, summary.throughput_rps) == (100, 0.05, 10.5)
    assert (summary.p95_s, summary.p99_s, summary.duration_s) == (0.15, 0.4, 60.0)
    assert summary.gates == (
        GateFigure("p95", 0.15, (("max", 1.2),)),
        GateFigure("rps", 10.5, (("min", 5.0),)),
        GateFigure("relative", None, ()),
    )
    series = samples(exposition(summary))
    verdicts = {labels["verdict"]: value for labels, value in series[pushed.VERDICT]}
    assert verdicts["warn"] == 1 and sum(verdicts.values()) == 1 and set(verdicts) == set(pushed.VERDICTS)
    assert series[pushed.LATENCY_P95] == [({"profile": "soak", "schedule": "nightly"}, 0.15)]
    assert series[pushed.ERROR_RATIO][0][1] == 0.05
    assert series[pushed.EXIT_CODE][0][1] == 0
    assert {(lb["gate"], lb["bound"]): v for lb, v in series[pushed.GATE_THRESHOLD]} == {
        ("p95", "max"): 1.2,
        ("rps", "min"): 5.0,
    }
    assert {lb["gate"] for lb, _ in series[pushed.GATE_VALUE]} == {"p95", "rps"}  # unevaluated: no series
    assert all("run_id" not in labels for rows in series.values() for labels, _ in rows)  # the group's


def test_unknown_figures_have_no_series():
    """A run that never sent a request (skipped, error before the load): no stats, no gates.json."""
    record = run_record(verdict="error", exit_code=3, started_at=None, ended_at=None)
    series = samples(exposition(summarize(record, stats=[], gates_json=None)))
    for metric in (pushed.REQUESTS, pushed.LATENCY_P95, pushed.DURATION, pushed.TIMESTAMP, pushed.GATE_VALUE):
        assert metric not in series
    assert series[pushed.EXIT_CODE][0][1] == 3
    assert {lb["verdict"] for lb, v in series[pushed.VERDICT] if v == 1} == {"error"}


label_text = st.text(st.characters(codec="utf-8", exclude_categories=("Cs",)), max_size=40)
json_values = st.recursive(
    st.none() | st.booleans() | st.floats() | st.integers() | st.text(max_size=10),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4),
    max_leaves=20,
)


def gate_figure(name: str, value: float, limit: float | None) -> GateFigure:
    return GateFigure(name, value, (("max", limit),) if limit is not None else ())


@settings(max_examples=150, deadline=None)
@given(
    profile=label_text,
    schedule=label_text,
    gates=st.lists(
        st.tuples(label_text, st.floats(), st.floats() | st.none()), max_size=5, unique_by=lambda g: g[0]
    ),
)
def test_hostile_labels_and_values_round_trip_through_the_text_format(profile, schedule, gates):
    """Quotes, backslashes, newlines, any Unicode in labels; NaN and infinities as values: the
    exposition parses back to the same labels, and a non-finite value is left out, not pushed."""
    summary = RunSummary(
        run_id="r1", profile=profile, schedule=schedule, verdict="fail", exit_code=1,
        started_at=1.0, ended_at=2.0, requests=1.0, error_ratio=math.nan, throughput_rps=math.inf,
        p95_s=0.1, p99_s=None,
        gates=tuple(gate_figure(*gate) for gate in gates),
    )  # fmt: skip
    series = samples(exposition(summary))
    assert series[pushed.REQUESTS] == [({"profile": profile, "schedule": schedule}, 1.0)]
    assert pushed.ERROR_RATIO not in series and pushed.THROUGHPUT not in series
    values = {lb["gate"]: v for lb, v in series.get(pushed.GATE_VALUE, [])}
    assert values == {name: value for name, value, _ in gates if math.isfinite(value)}
    limits = {lb["gate"]: v for lb, v in series.get(pushed.GATE_THRESHOLD, [])}
    assert limits == {name: limit for name, _, limit in gates if limit is not None and math.isfinite(limit)}


@settings(max_examples=200, deadline=None)
@given(document=json_values)
def test_any_gates_json_gives_gate_figures_or_none_without_raising(document):
    for figure in gate_figures(document):
        assert isinstance(figure.name, str)
        assert figure.value is None or math.isfinite(figure.value)
        assert all(bound in ("max", "min") and math.isfinite(v) for bound, v in figure.thresholds)


@pytest.mark.parametrize("url", ["ftp://x", "127.0.0.1:9091", "http://", "http://h:9091/?a=1", ""])
def test_a_pushgateway_url_must_be_http_with_a_host(url):
    with pytest.raises(InputError, match="--pushgateway"):
        check_pushgateway_url(url)


def test_the_group_url_is_the_pushgateways_own():
    url = check_pushgateway_url("http://pg.monitoring:9091/")
    assert group_url(url, "nightly-1") == "http://pg.monitoring:9091/metrics/job/loadctl/run_id/nightly-1"


# --- loadctl history ----------------------------------------------------------------------------


def summary_of(run_id: str, started_at: float | None) -> RunSummary:
    return RunSummary(run_id, "p", "", "pass", 0, started_at, None, None, None, None, None, None)


def test_newest_first_then_unknown_start_then_unreadable_files():
    rows = [
        summary_of("a", 1.0),
        Unreadable("x/run.json", "corrupt"),
        summary_of("c", None),
        summary_of("b", 5.0),
    ]
    ordered = newest_first(rows)
    assert [getattr(r, "run_id", getattr(r, "path", None)) for r in ordered] == ["b", "a", "c", "x/run.json"]
    assert len(newest_first(rows, limit=2)) == 2


def test_summaries_from_prometheus_samples_join_on_run_id():
    verdicts = [
        Sample({"run_id": "n1", "profile": "soak", "schedule": "nightly", "verdict": "fail"}, 1.0),
        Sample({"run_id": "n2", "profile": "soak", "verdict": "pass"}, 1.0),
    ]
    figures = {
        pushed.EXIT_CODE: [Sample({"run_id": "n1"}, 1.0), Sample({"run_id": "gone"}, 0.0)],
        pushed.LATENCY_P95: [Sample({"run_id": "n2"}, 0.25)],
        pushed.START_TIMESTAMP: [Sample({"run_id": "n1"}, 100.0)],
        pushed.TIMESTAMP: [Sample({"run_id": "n1"}, 160.0)],
    }
    by_id = {s.run_id: s for s in summaries_from_samples(verdicts, figures)}
    assert set(by_id) == {"n1", "n2"}  # a figure without a verdict is no run
    assert (by_id["n1"].verdict, by_id["n1"].exit_code, by_id["n1"].schedule) == ("fail", 1, "nightly")
    assert by_id["n1"].duration_s == 60.0
    assert (by_id["n2"].p95_s, by_id["n2"].exit_code, by_id["n2"].schedule) == (0.25, None, "")


def test_a_results_tree_lists_runs_and_flags_unreadable_run_json(tmp_path: Path):
    RunDir(tmp_path / "nightly" / "n1").write_record(run_record(run_id="n1"))
    RunDir(tmp_path / "n2").write_record(run_record(run_id="n2", started_at=1_764_000_100.0))
    (tmp_path / "broken").mkdir()
    (tmp_path / "broken" / "run.json").write_text("{not json")
    (tmp_path / "n2" / "tsdb" / "x").mkdir(parents=True)
    (tmp_path / "n2" / "tsdb" / "x" / "run.json").write_text("{}")  # inside a TSDB: never a run
    rows = newest_first(rows_from_folder(tmp_path))
    assert [getattr(r, "run_id", None) for r in rows] == ["n2", "n1", None]
    (broken,) = [r for r in rows if isinstance(r, Unreadable)]
    assert broken.path == str(tmp_path / "broken" / "run.json") and broken.reason.startswith("corrupt")


def test_a_missing_results_folder_is_an_input_error(tmp_path: Path):
    with pytest.raises(InputError, match="no results folder"):
        rows_from_folder(tmp_path / "nope")


def test_the_table_has_one_aligned_line_per_run():
    runs = [
        RunSummary(
            "nightly-20261126", "soak", "nightly", "fail", 1,
            1_764_000_000.0, 1_764_003_600.0, 123456.0, 0.0123, 34.3, 0.2345, 0.5,
        ),
        summary_of("x", None),
    ]  # fmt: skip
    header, first, second = table_lines(runs)
    assert header.split("  ")[0].strip() == "RUN ID"
    assert first.split() == [
        "nightly-20261126", "2025-11-24", "16:00:00", "soak", "(nightly)", "fail",
        "3600s", "123456", "1.23%", "234ms",
    ]  # fmt: skip
    assert second.split() == ["x", "-", "p", "pass", "-", "-", "-", "-"]
    assert header.index("VERDICT") == first.index("fail")
