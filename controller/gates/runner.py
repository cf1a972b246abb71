"""Evaluate a gate file against a Prometheus: compile, query (with retries), judge.

Prometheus being unreachable is not a gate result: after retrying with backoff for up to
`retry_s` seconds the whole report is "error" (exit 3), never "pass".
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from typing import TypeVar

import httpx

from controller.errors import PrometheusError, PrometheusUnreachable
from controller.gates.compile import (
    MIN_SCRAPES,
    QUANTILES,
    Segment,
    WindowError,
    compile_gate,
    compile_judged_requests,
    compile_scrape_counts,
    drift_series_name,
    drift_step,
    window_segments,
)
from controller.gates.evaluate import GateReport, GateResult, drift_value, judge, overall, usable
from controller.gates.models import Gate, GateFile
from controller.models import RunRecord
from controller.prom.client import query, query_range

T = TypeVar("T")


class Unreachable(Exception):
    pass


@dataclass(frozen=True)
class Target:
    """A run and the Prometheus that holds its data.

    `stopped_at_end`: the record's ended_at is when the load stopped (run.json), so a segment
    ending there also reads the exporter's final scrape just after it. False for a window given
    by hand (--start/--end), whose end is taken as it is.
    """

    client: httpx.Client
    record: RunRecord
    stopped_at_end: bool = True


def retrying(fetch: Callable[[], T], *, retry_s: float) -> T:
    """fetch(), retried with backoff while Prometheus is unreachable, for up to `retry_s` seconds."""
    deadline = time.monotonic() + retry_s
    delay = 0.5
    while True:
        try:
            return fetch()
        except PrometheusUnreachable as e:
            if time.monotonic() + delay > deadline:
                raise Unreachable(str(e)) from e
            time.sleep(delay)
            delay = min(delay * 2, 5.0)


def query_one(
    *, client: httpx.Client, promql: str, at: float, retry_s: float
) -> tuple[float | None, str | None]:
    """(value, reason). Retries only while Prometheus is unreachable; a bad answer is final."""
    try:
        samples = retrying(lambda: query(client=client, promql=promql, at=at), retry_s=retry_s)
    except PrometheusError as e:  # Prometheus answered: a bad query is this gate's failure, final
        return None, str(e)
    if not samples:
        return None, "no data"
    if len(samples) > 1:
        return None, f"expected one series, got {len(samples)}: add labels or aggregate in the query"
    return samples[0].value, None


def measure_drift(
    promql: str, segments: tuple[Segment, ...], client: httpx.Client, *, retry_s: float
) -> tuple[float | None, str | None]:
    """A drift_per_hour gate's (value, reason): its gauge's samples in every segment of the window,
    at drift_step over the whole window (as the analysis reads them), fitted per series."""
    step = drift_step(segments[0][0], segments[-1][1])
    series: dict[str, list[tuple[float, float]]] = {}
    for start, end in segments:
        try:
            fetch = partial(query_range, client=client, promql=promql, start=start, end=end, step=step)
            found = retrying(fetch, retry_s=retry_s)
        except PrometheusError as e:
            return None, str(e)
        for one in found:
            series.setdefault(drift_series_name(one.labels), []).extend(one.points)
    return drift_value(series)


def too_short(run_id: str, segments: tuple[Segment, ...], client: httpx.Client, retry_s: float) -> str | None:
    """Why the window cannot be judged (too few scrapes inside a segment), or None."""
    for (start, end), promql in zip(
        segments, compile_scrape_counts(run_id=run_id, segments=segments), strict=True
    ):
        scrapes, _ = query_one(client=client, promql=promql, at=end, retry_s=retry_s)
        if scrapes is None or scrapes < MIN_SCRAPES:
            seen = "no scrape" if not scrapes else f"{scrapes:.0f} scrape(s)"
            return (
                f"window too short to judge: {seen} of the run's counters inside {end - start:.1f} s "
                f"({start:.3f}..{end:.3f}), need {MIN_SCRAPES}"
            )
    return None


def measure(
    gate: Gate, window: str, target: Target, *, retry_s: float, until: float | None = None
) -> tuple[float | None, str | None, str, tuple[float, float] | None]:
    """(value, reason, promql, (start, end)) of one gate on one run; `until` cuts the window (live)."""
    record = target.record
    try:
        segments = window_segments(
            window, phases=record.phases, started_at=record.started_at, ended_at=record.ended_at
        )
    except WindowError as e:
        return None, str(e), "", None
    if gate.from_analysis:  # runs.judge_analysis_gates puts its result in once the analysis is done
        span = (segments[0][0], segments[-1][1])
        return (
            None,
            f"{gate.metric} is judged from the run's analysis (analysis.json), after the run",
            "",
            span,
        )
    run_end = record.ended_at if target.stopped_at_end else None  # then also the final scrape
    if until is not None:
        segments = tuple((s, min(e, until)) for s, e in segments if s < until)
        if not segments:
            return None, f"window '{window}' has not started yet", "", None
        run_end = None
    promql = compile_gate(gate, run_id=record.run_id, segments=segments, run_end=run_end)
    span = (segments[0][0], segments[-1][1])
    if gate.metric == "drift_per_hour":
        return (*measure_drift(promql, segments, target.client, retry_s=retry_s), promql, span)
    if gate.metric is not None:
        short = too_short(record.run_id, segments, target.client, retry_s)
        if short is not None:
            return None, short, promql, span
    value, reason = query_one(client=target.client, promql=promql, at=span[1], retry_s=retry_s)
    if gate.metric in QUANTILES and not usable(value) and reason in (None, "no data"):
        # A quantile of nothing is NaN: say whether there was nothing at all or nothing successful.
        judged, _ = query_one(
            client=target.client,
            promql=compile_judged_requests(gate, run_id=record.run_id, segments=segments, run_end=run_end),
            at=span[1],
            retry_s=retry_s,
        )
        if judged == 0:
            reason = (
                "no requests in the window"
                if gate.outcome == "all"
                else "no successful requests in the window"
            )
    return value, reason, promql, span


def evaluate_gates(
    gate_file: GateFile,
    *,
    source: str,
    target: Target,
    baseline: Target | None = None,
    retry_s: float = 30.0,
    only: tuple[str, ...] | None = None,
    until: float | None = None,
) -> GateReport:
    results: list[GateResult] = []
    names = tuple(g.name for g in gate_file.gates if only is None or g.name in only)
    try:
        for gate in gate_file.gates:
            if only is not None and gate.name not in only:
                continue
            window = gate_file.window_of(gate)
            value, reason, promql, span = measure(gate, window, target, retry_s=retry_s, until=until)
            baseline_value = None
            if gate.needs_baseline and baseline is not None:
                baseline_value, _, _, _ = measure(gate, window, baseline, retry_s=retry_s)
            results.append(
                judge(
                    gate,
                    value=value,
                    reason=reason,
                    promql=promql,
                    window=window,
                    start=span[0] if span else None,
                    end=span[1] if span else None,
                    baseline=baseline_value,
                )
            )
    except Unreachable as e:
        return GateReport(
            verdict="error",
            gates=tuple(results),
            gate_file=source,
            run_id=target.record.run_id,
            evaluated_at=time.time(),
            reason=f"Prometheus unreachable for {retry_s:.0f}s: {e}",
            baseline_run_id=baseline.record.run_id if baseline else None,
            suite=gate_file.name,
            gate_names=names,
        )
    return GateReport(
        verdict=overall(results),
        gates=tuple(results),
        gate_file=source,
        run_id=target.record.run_id,
        evaluated_at=time.time(),
        baseline_run_id=baseline.record.run_id if baseline else None,
        suite=gate_file.name,
        gate_names=names,
    )
