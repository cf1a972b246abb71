"""The analysis' only I/O: each window measured in the run's Prometheus, with the gates' PromQL."""

from __future__ import annotations

from collections.abc import Sequence

import httpx

from controller.analysis.models import Analysis, WindowFigures
from controller.analysis.phases import phase_figures
from controller.analysis.steps import breaking_point, capacity, judge_steps, slo_used, step_windows
from controller.analysis.timeline import slice_windows, timeline
from controller.gates.compile import Segment, compile_window_figures
from controller.gates.models import GateFile
from controller.models import AnalysisSettings, PhaseWindow, Stage
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
    settings: AnalysisSettings,
    gate_file: GateFile | None,
) -> Analysis:
    """The run's analysis: each phase window, the run cut into equal slices, each hold of users.

    PrometheusError passes through (the caller turns it into a note: the analysis never judges).
    """

    def measure(start: float, end: float) -> WindowFigures:
        return read_window(client=client, run_id=run_id, segment=(start, end), run_end=ended)

    holds = step_windows(phases, stages)
    slo = slo_used(settings.slo, gate_file)
    steps = judge_steps(holds, [measure(h.start, h.end) for h in holds], slo)
    return Analysis(
        phases=phase_figures(phases, stages, [measure(p.start, p.end) for p in phases]),
        timeline=timeline([measure(*w) for w in slice_windows(started, ended, settings.slices)]),
        steps=steps,
        slo=slo,
        breaking_point=breaking_point(steps),
        capacity=capacity(steps),
    )
