"""The exact-count semantics of compiled gates, on hand-written series in a real Prometheus.

One synthetic run, "exact", sampled every second from S to S+60 (phases p1 = S..S+30, blip =
S+30..S+31.5, p2 = S+31.5..S+60; the run stops at S+60) plus one final scrape at S+62, as the
exporter serves the workers' last reports just after the stop:

  requests{name="a"}   10/s, born at S+1 with 10 (as the exporter shows a name: once it has requests);
                       the final scrape adds 5: 605 in all
  failures{name="a", status="500"}   born at S+20 with 1 and never rising: exactly one failure
  requests{name="dead"}  1/s from S+1, every one failed (ConnectionRefusedError)
  buckets of "a" (le 0.01, 0.1, 1, +Inf): 10 % <= 10 ms, 60 % <= 100 ms, the rest <= 1 s;
  the failed histogram of "a" holds the one failure (<= 10 ms); of "dead" every request (<= 10 ms)

increase() reads the single failure as 0 (a series' first sample is its baseline) and misses the
final scrape; the difference of end and start values reads both.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from controller.gates.evaluate import GateReport
from controller.gates.models import GateFile
from controller.gates.runner import Target, evaluate_gates
from controller.models import PhaseWindow
from tests.prom_versions import PrometheusBuild
from tests.promdata import build_tsdb, le_label, serve_tsdb, start_time
from tests.support import run_record

pytestmark = pytest.mark.integration

S = start_time()
END = S + 60
FINAL = S + 62
LE = (0.01, 0.1, 1.0, math.inf)


def _a_requests(t: int) -> float:
    return 10.0 * (min(t, END) - S) + (5 if t == FINAL else 0)


def _a_cumulative(t: int) -> tuple[float, ...]:
    n = _a_requests(t)
    return (0.1 * n, 0.6 * n, n, n)


def _dead(t: int) -> float:
    return float(min(t, END) - S)


def openmetrics_text() -> str:
    times = [*range(S + 1, END + 1), FINAL]
    lines: list[str] = []

    def series(metric: str, labels: str, value: Callable[[int], float], since: int = S + 1) -> None:
        lines.extend(f"{metric}{{{labels}}} {value(t)!r} {t}" for t in times if t >= since)

    a, dead = 'run_id="exact",name="a",method="GET"', 'run_id="exact",name="dead",method="GET"'
    lines += ["# HELP locust_requests Requests.", "# TYPE locust_requests counter"]
    series("locust_requests_total", a, _a_requests)
    series("locust_requests_total", dead, _dead)
    lines += ["# HELP locust_request_failures Failures.", "# TYPE locust_request_failures counter"]
    series("locust_request_failures_total", a + ',status="500"', lambda t: 1.0, since=S + 20)
    series("locust_request_failures_total", dead + ',status="ConnectionRefusedError"', _dead)
    for family, rows in (
        (
            "locust_response_time_seconds",
            [(a, _a_cumulative, S + 1), (dead, lambda t: (_dead(t),) * 4, S + 1)],
        ),
        (
            "locust_failed_response_time_seconds",
            [(a, lambda t: (1.0,) * 4, S + 20), (dead, lambda t: (_dead(t),) * 4, S + 1)],
        ),
    ):
        lines += [f"# HELP {family} Latency.", f"# TYPE {family} histogram"]
        for labels, cumulative, since in rows:
            for index, bound in enumerate(LE):
                series(
                    f"{family}_bucket",
                    f'{labels},le="{le_label(bound)}"',
                    lambda t, i=index, c=cumulative: c(t)[i],  # type: ignore[misc]
                    since,
                )
            series(f"{family}_count", labels, lambda t, c=cumulative: c(t)[-1], since)  # type: ignore[misc]
            series(f"{family}_sum", labels, lambda t, c=cumulative: 0.05 * c(t)[-1], since)  # type: ignore[misc]
    lines.append("# EOF")
    return "\n".join(lines) + "\n"


RECORD = run_record(
    run_id="exact",
    profile="exact",
    locustfile="synthetic.py",
    host="http://127.0.0.1:9",
    started_at=float(S),
    ended_at=float(END),
    phases=(
        PhaseWindow(stage=0, phase="p1", start=float(S), end=float(S + 30)),
        PhaseWindow(stage=1, phase="blip", start=float(S + 30), end=S + 31.5),
        PhaseWindow(stage=2, phase="p2", start=S + 31.5, end=float(END)),
    ),
    requests=605,
    failures=1,
)


@pytest.fixture(scope="module")
def exact(tmp_path_factory: pytest.TempPathFactory, prometheus_version: PrometheusBuild) -> Iterator[Target]:
    """On Prometheus 2.x, then 3.x."""
    root = tmp_path_factory.mktemp(f"exact-prometheus{prometheus_version.major}")
    build_tsdb(openmetrics_text(), root / "tsdb")
    with serve_tsdb(root / "tsdb", root) as client:
        yield Target(client, RECORD)


def evaluate(target: Target, *gates: dict[str, Any], window: str = "run") -> GateReport:
    gate_file = GateFile.model_validate(
        {"version": 1, "name": "exact", "window": window, "gates": list(gates)}
    )
    return evaluate_gates(gate_file, source="test", target=target, retry_s=5.0)


def value_of(target: Target, window: str = "run", **gate: Any) -> tuple[float | None, str | None]:
    [result] = evaluate(target, {"name": "g", "max": 1e12, **gate}, window=window).gates
    return result.value, result.reason


A = 'name="a"'


def test_a_failure_series_born_at_one_counts_one(exact):
    report = evaluate(
        exact,
        {"name": "failures", "metric": "failures", "labels": A, "max": 0},
        {"name": "error_rate", "metric": "error_rate", "labels": A, "max": 0},
    )
    failures, error_rate = report.gates
    assert (failures.verdict, failures.value) == ("fail", 1.0)
    assert (error_rate.verdict, error_rate.value) == ("fail", pytest.approx(1 / 605, rel=1e-12))


def test_run_counts_include_the_final_scrape_after_the_stop(exact):
    assert value_of(exact, metric="requests", labels=A) == (605.0, None)  # born at 10, plus the last 5
    assert value_of(exact, metric="requests") == (605.0 + 60, None)
    assert value_of(exact, metric="rps", labels=A, outcome="all") == (
        pytest.approx(605 / 60, rel=1e-12),
        None,
    )


def test_a_window_given_by_hand_ends_where_it_says(exact):
    by_hand = Target(exact.client, RECORD, stopped_at_end=False)  # gates eval --start/--end
    assert value_of(by_hand, metric="requests", labels=A) == (600.0, None)  # not the scrape at S+62


def test_phase_boundaries_split_counts_exactly(exact):
    # p1 = (S, S+30]: 300 (the series was born inside, at 10); the failure (born at S+20) is in p1
    assert value_of(exact, "p1", metric="requests", labels=A) == (300.0, None)
    assert value_of(exact, "p1", metric="failures", labels=A) == (1.0, None)
    # p2 = (S+31.5, S+60] ends with the run: samples S+32..S+60 and the final one, from S+31's 310
    assert value_of(exact, "p2", metric="requests", labels=A) == (605.0 - 310, None)
    assert value_of(exact, "p2", metric="failures", labels=A) == (0.0, None)


def test_successful_rps_leaves_failures_out(exact):
    assert value_of(exact, metric="rps", labels=A) == (pytest.approx(604 / 60, rel=1e-12), None)
    assert value_of(exact, metric="rps", labels='name="dead"') == (0.0, None)
    assert value_of(exact, metric="rps", labels='name="dead"', outcome="all") == (1.0, None)


def test_successful_latency_is_all_buckets_minus_failed_ones(exact):
    # all of "a": cumulative (60.5, 363, 605, 605); successful: (59.5, 362, 604, 604)
    p50_all = 1000 * (0.01 + 0.09 * (302.5 - 60.5) / (363 - 60.5))
    p50_ok = 1000 * (0.01 + 0.09 * (302 - 59.5) / (362 - 59.5))
    assert value_of(exact, metric="latency_p50_ms", labels=A, outcome="all")[0] == pytest.approx(
        p50_all, rel=1e-9
    )
    assert value_of(exact, metric="latency_p50_ms", labels=A)[0] == pytest.approx(p50_ok, rel=1e-9)


def test_no_successful_request_is_an_explicit_fail(exact):
    [p95] = evaluate(
        exact, {"name": "p95", "metric": "latency_p95_ms", "labels": 'name="dead"', "max": 1e9}
    ).gates
    assert (p95.verdict, p95.value, p95.reason) == ("fail", None, "no successful requests in the window")
    value, reason = value_of(exact, metric="latency_p95_ms", labels='name="dead"', outcome="all")
    assert value == pytest.approx(9.5) and reason is None  # le 0.01: all of them, interpolated


def test_a_window_too_short_to_judge_fails_with_its_reason(exact):
    [result] = evaluate(exact, {"name": "g", "metric": "requests", "min": 0}, window="blip").gates
    assert (result.verdict, result.value) == ("fail", None)
    assert result.reason is not None and result.reason.startswith("window too short to judge: 2 scrape(s)")
    # labels that match nothing are still "no data", not a short window
    assert value_of(exact, "p1", metric="requests", labels='name="none"') == (None, "no data")
