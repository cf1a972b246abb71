"""The analysis' only I/O: each window measured in the run's Prometheus, with the gates' PromQL."""

from __future__ import annotations

from collections.abc import Sequence

import httpx

from controller.analysis.models import Analysis, WindowFigures
from controller.analysis.phases import phase_figures
from controller.analysis.timeline import slice_windows, timeline
from controller.gates.compile import Segment, compile_window_figures
from controller.models import PhaseWindow, Stage
from controller.prom.client import query, query_value


def read_window(*, client: httpx.Client, run_id: str, segment: Segment, run_end: float) -> WindowFigures:
    """One window's requests, failures by status and p50/p95/p99 (successful requests)."""
    queries = compile_window_figures(run_id=run_id, segments=(segment,), run_end=run_end)
    failures = query(client=client, promql=queries.failures_by_status)
    latency = {name: query_value(client=client, promql=promql) for name, promql in queries.latency_ms.items()}
    return WindowFigures(
        start=segment[0],
        end=segment[1],
        requests=query_value(client=client, promql=queries.requests),
        failures_by_status={s.labels.get("status", ""): s.value for s in failures},
        p50_ms=latency["latency_p50_ms"],
        p95_ms=latency["latency_p95_ms"],
        p99_ms=latency["latency_p99_ms"],
    )


def read_analysis(
    *,
    client: httpx.Client,
    run_id: str,
    stages: Sequence[Stage],
    phases: Sequence[PhaseWindow],
    started: float,
    ended: float,
    slices: int,
) -> Analysis:
    """The run's analysis: each phase window, then the run cut into `slices` equal windows.

    PrometheusError passes through (the caller turns it into a note: the analysis never judges).
    """
    measured = [
        read_window(client=client, run_id=run_id, segment=(p.start, p.end), run_end=ended) for p in phases
    ]
    over_time = [
        read_window(client=client, run_id=run_id, segment=window, run_end=ended)
        for window in slice_windows(started, ended, slices)
    ]
    return Analysis(phases=phase_figures(phases, stages, measured), timeline=timeline(over_time))
