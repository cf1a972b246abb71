"""The analysis' only I/O: each window measured in the run's Prometheus, with the gates' PromQL."""

from __future__ import annotations

from collections.abc import Sequence

import httpx

from controller.analysis.charts import chart, chart_queries, chart_step
from controller.analysis.generator import generator_health
from controller.analysis.models import Analysis, Chart, GeneratorHealth, Recovery, WindowFigures
from controller.analysis.phases import phase_figures
from controller.analysis.recovery import probe_window_s, probe_windows, recovery, spikes
from controller.analysis.steps import (
    RAMP_RULE,
    breaking_point,
    capacity,
    judge_steps,
    min_bin_seconds,
    slo_used,
    step_windows,
)
from controller.analysis.timeline import slice_windows, timeline
from controller.gates.compile import Segment, compile_scrape_counts, compile_window_figures
from controller.gates.models import GateFile
from controller.models import AnalysisSettings, PhaseWindow, Stage
from controller.prom.client import query, query_range, query_value
from controller.prom.health import users_peak_query, worker_cpu_peak_query, workers_missing_query


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


def read_charts(
    *,
    client: httpx.Client,
    run_id: str,
    started: float,
    ended: float,
    summary_peaks: Sequence[str],
    scrape_interval_s: float,
) -> tuple[Chart, ...]:
    """report.html's charts: each chart's series over the run, at most MAX_POINTS points each."""
    step = chart_step(started, ended)
    charts = []
    for spec in chart_queries(
        run_id, summary_peaks=summary_peaks, step=step, scrape_interval_s=scrape_interval_s
    ):
        answers = [
            [
                (series.labels, series.points)
                for series in query_range(client=client, promql=s.promql, start=started, end=ended, step=step)
            ]
            for s in spec.series
        ]
        charts.append(chart(spec, answers, start=started, end=ended, step=step))
    return tuple(charts)


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
    workers: int,
    generator_problems: Sequence[str] = (),
    summary_peaks: Sequence[str] = (),
) -> Analysis:
    """The run's analysis: each phase window, the run cut into equal slices, each hold of users.

    PrometheusError passes through (the caller turns it into a note: the analysis never judges).
    """

    def measure(start: float, end: float) -> WindowFigures:
        return read_window(client=client, run_id=run_id, segment=(start, end), run_end=ended)

    interval = read_scrape_interval(client=client, run_id=run_id, started=started, ended=ended)
    holds = step_windows(phases, stages, min_bin_s=min_bin_seconds(interval))
    slo = slo_used(settings.slo, gate_file)
    steps = judge_steps(holds, [measure(h.start, h.end) for h in holds], slo)
    return Analysis(
        phases=phase_figures(phases, stages, [measure(p.start, p.end) for p in phases]),
        timeline=timeline([measure(*w) for w in slice_windows(started, ended, settings.slices)]),
        steps=steps,
        slo=slo,
        breaking_point=breaking_point(steps),
        capacity=capacity(steps),
        steps_rule=f"each hold of users; {RAMP_RULE}",
        recovery=read_recovery(
            client=client,
            run_id=run_id,
            stages=stages,
            phases=phases,
            ended=ended,
            interval_s=interval,
        ),
        generator=read_generator(
            client=client,
            run_id=run_id,
            stages=stages,
            workers=workers,
            started=started,
            ended=ended,
            problems=generator_problems,
        ),
        charts=read_charts(
            client=client,
            run_id=run_id,
            started=started,
            ended=ended,
            summary_peaks=summary_peaks,
            scrape_interval_s=interval or 1.0,
        ),
    )


def read_scrape_interval(*, client: httpx.Client, run_id: str, started: float, ended: float) -> float | None:
    """Seconds between scrapes of the run's request counters, as its Prometheus holds them (so an
    offline rebuild needs no backend), in whole seconds as scrape intervals are set (the run's span
    over its sample count reads 1.07 for a 1-s interval: the counters appear at the first request);
    None without any sample."""
    (promql,) = compile_scrape_counts(run_id=run_id, segments=((started, ended),))
    scrapes = query_value(client=client, promql=promql)
    return max(1.0, float(round((ended - started) / scrapes))) if scrapes else None


def read_recovery(
    *,
    client: httpx.Client,
    run_id: str,
    stages: Sequence[Stage],
    phases: Sequence[PhaseWindow],
    ended: float,
    interval_s: float | None,
) -> tuple[Recovery, ...]:
    """Each spike's recovery; its probe windows are measured lazily, up to the first one back."""

    def measure(window: Segment) -> WindowFigures:
        return read_window(client=client, run_id=run_id, segment=window, run_end=ended)

    window_s = probe_window_s(interval_s)
    step_s = interval_s or window_s
    found = []
    for spike in spikes(phases, stages, min_before_s=window_s):
        probes = probe_windows(spike, window_s=window_s, step_s=step_s)
        step = probes[1][0] - probes[0][0] if len(probes) > 1 else step_s
        after = (measure(w) for w in probes)
        found.append(recovery(spike, measure(spike.before), after, window_s=window_s, step_s=step))
    return tuple(found)


def read_generator(
    *,
    client: httpx.Client,
    run_id: str,
    stages: Sequence[Stage],
    workers: int,
    started: float,
    ended: float,
    problems: Sequence[str],
) -> GeneratorHealth:
    """Workers lost, the hottest worker's CPU and the users reached over the run, with the problems
    the verdict's generator check found (prom/health.py, the same queries)."""
    span = {"start": started, "end": ended}
    return generator_health(
        stages=stages,
        workers=workers,
        workers_missing_max=query_value(client=client, promql=workers_missing_query(run_id, **span)),
        max_worker_cpu_percent=query_value(client=client, promql=worker_cpu_peak_query(run_id, **span)),
        users_max=query_value(client=client, promql=users_peak_query(run_id, **span)),
        problems=problems,
    )
