"""The summary of one finished run as Prometheus metrics, for a Pushgateway (pure: no I/O).

A batch job reports to Prometheus by pushing to a Pushgateway, which Prometheus scrapes with
`honor_labels: true`. `loadctl run --pushgateway URL` pushes one group per run,
job="loadctl" and grouping label run_id, so every run stays a series of its own and the dashboard
"loadctl — runs over time" and `loadctl history` see them all. The metric contract (every series
also has run_id, from the group, and the labels profile and schedule; schedule is the chart's
CronJob schedule name, empty for a run by hand):

  loadctl_run_verdict{verdict}               1 for the run's verdict, 0 for every other state (a
                                             StateSet: `== 1` selects the verdict by its label)
  loadctl_run_exit_code{}                    the exit code of `loadctl run`
  loadctl_run_duration_seconds{}             from the load's start to its end
  loadctl_run_requests_total{}               requests Locust counted
  loadctl_run_error_ratio{}                  failed requests / requests
  loadctl_run_requests_per_second{}          Locust's average throughput over the run
  loadctl_run_latency_p95_seconds{}          Locust's whole-run percentiles (stats.csv Aggregated)
  loadctl_run_latency_p99_seconds{}
  loadctl_run_gate_value{gate}               each gate's measured value (gates.json)
  loadctl_run_gate_threshold{gate,bound}     each gate's absolute threshold, bound = max | min
  loadctl_run_timestamp_seconds{}            when the run ended (Unix time)
  loadctl_run_start_timestamp_seconds{}      when the load started

A figure that is unknown (no requests, no gates.json, a gate Prometheus could not evaluate) has no
series rather than NaN: absence is what PromQL and the dashboard handle well.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, get_args

from prometheus_client import CollectorRegistry, Gauge, generate_latest

from controller.analysis.compare import RunFigures, headline_figures
from controller.models import RunRecord, Verdict

JOB = "loadctl"
GROUPING_LABEL = "run_id"
LABELS = ("profile", "schedule")  # on every series, beside run_id (the group's)

VERDICT = "loadctl_run_verdict"
EXIT_CODE = "loadctl_run_exit_code"
DURATION = "loadctl_run_duration_seconds"
REQUESTS = "loadctl_run_requests_total"
ERROR_RATIO = "loadctl_run_error_ratio"
THROUGHPUT = "loadctl_run_requests_per_second"
LATENCY_P95 = "loadctl_run_latency_p95_seconds"
LATENCY_P99 = "loadctl_run_latency_p99_seconds"
GATE_VALUE = "loadctl_run_gate_value"
GATE_THRESHOLD = "loadctl_run_gate_threshold"
TIMESTAMP = "loadctl_run_timestamp_seconds"
START_TIMESTAMP = "loadctl_run_start_timestamp_seconds"

VERDICTS: tuple[str, ...] = get_args(Verdict)
BOUNDS = ("max", "min")


@dataclass(frozen=True)
class GateFigure:
    """One gate of gates.json: its value (None: not evaluated) and its absolute thresholds."""

    name: str
    value: float | None
    thresholds: tuple[tuple[str, float], ...]  # (bound, value): ("max", 0.02)


@dataclass(frozen=True)
class RunSummary:
    """What is pushed for one run and what `loadctl history` lists; None: unknown."""

    run_id: str
    profile: str
    schedule: str
    verdict: str
    exit_code: int | None
    started_at: float | None
    ended_at: float | None
    requests: float | None
    error_ratio: float | None
    throughput_rps: float | None
    p95_s: float | None
    p99_s: float | None
    gates: tuple[GateFigure, ...] = ()

    @property
    def duration_s(self) -> float | None:
        if self.started_at is None or self.ended_at is None:
            return None
        return max(0.0, self.ended_at - self.started_at)


def _number(value: Any) -> float | None:
    """A finite float, or None (missing, text, NaN, infinite, a bool)."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return float(value) if math.isfinite(value) else None


def _seconds(milliseconds: float | None) -> float | None:
    return None if milliseconds is None else milliseconds / 1000.0


def gate_figures(gates_json: Mapping[str, Any] | None) -> tuple[GateFigure, ...]:
    """The gates of a gates.json document; entries that are not gates (no string name) are left out.
    Relative thresholds (max_change) have no absolute value and are not thresholds here."""
    entries = gates_json.get("gates") if isinstance(gates_json, Mapping) else None
    figures = []
    for entry in entries if isinstance(entries, list) else ():
        if not isinstance(entry, Mapping) or not isinstance(entry.get("name"), str):
            continue
        bounds = tuple((bound, value) for bound in BOUNDS if (value := _number(entry.get(bound))) is not None)
        figures.append(GateFigure(entry["name"], _number(entry.get("value")), bounds))
    return tuple(figures)


def summarize(
    record: RunRecord,
    *,
    stats: Sequence[Mapping[str, str]],
    gates_json: Mapping[str, Any] | None,
    schedule: str = "",
) -> RunSummary:
    """One run's summary from its run.json, stats.csv rows and gates.json (None: no gates.json)."""
    figures = headline_figures(RunFigures(record=record, analysis=None, stats=stats))
    return RunSummary(
        run_id=record.run_id,
        profile=record.profile,
        schedule=schedule,
        verdict=record.verdict,
        exit_code=record.exit_code,
        started_at=record.started_at,
        ended_at=record.ended_at,
        requests=figures.get("requests"),
        error_ratio=figures.get("error_rate"),
        throughput_rps=figures.get("rps"),
        p95_s=_seconds(figures.get("p95_ms")),
        p99_s=_seconds(figures.get("p99_ms")),
        gates=gate_figures(gates_json),
    )


def _gauge(registry: CollectorRegistry, name: str, doc: str, *extra: str) -> Gauge:
    return Gauge(name, doc, labelnames=(*LABELS, *extra), registry=registry)


def _set(gauge: Gauge, value: float | int | None, *labels: str) -> None:
    if value is not None and math.isfinite(value):
        gauge.labels(*labels).set(value)


def summary_registry(summary: RunSummary) -> CollectorRegistry:
    """The run's metrics in a fresh registry (run_id is not among their labels: the push's grouping
    key adds it)."""
    registry = CollectorRegistry(auto_describe=True)
    own = (summary.profile, summary.schedule)
    verdict = _gauge(registry, VERDICT, "1 for the run's verdict, 0 for the others", "verdict")
    for state in (*VERDICTS, *([summary.verdict] if summary.verdict not in VERDICTS else [])):
        verdict.labels(*own, state).set(1 if state == summary.verdict else 0)
    singles = (
        (EXIT_CODE, "Exit code of loadctl run", summary.exit_code),
        (DURATION, "Seconds from the load's start to its end", summary.duration_s),
        (REQUESTS, "Requests Locust counted", summary.requests),
        (ERROR_RATIO, "Failed requests / requests", summary.error_ratio),
        (THROUGHPUT, "Average requests per second over the run", summary.throughput_rps),
        (LATENCY_P95, "Whole-run 95th percentile response time", summary.p95_s),
        (LATENCY_P99, "Whole-run 99th percentile response time", summary.p99_s),
        (TIMESTAMP, "When the run ended, Unix seconds", summary.ended_at),
        (START_TIMESTAMP, "When the load started, Unix seconds", summary.started_at),
    )
    for name, doc, figure in singles:
        _set(_gauge(registry, name, doc), figure, *own)
    value = _gauge(registry, GATE_VALUE, "Each gate's measured value", "gate")
    threshold = _gauge(registry, GATE_THRESHOLD, "Each gate's absolute threshold", "gate", "bound")
    for gate in summary.gates:
        _set(value, gate.value, *own, gate.name)
        for bound, limit in gate.thresholds:
            _set(threshold, limit, *own, gate.name, bound)
    return registry


def exposition(summary: RunSummary) -> str:
    """The summary in Prometheus' text format, as the Pushgateway receives it."""
    return generate_latest(summary_registry(summary)).decode("utf-8")
