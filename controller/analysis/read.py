"""The analysis' only I/O: each window measured in the run's Prometheus, with the gates' PromQL."""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import TypedDict

import httpx

from controller.analysis.charts import chart, chart_queries, chart_step
from controller.analysis.drift import (
    POOL_SETTLE_S,
    Labelled,
    drift,
    drift_report,
    pool_stability,
    summed_over,
    warmup_end,
)
from controller.analysis.generator import generator_health
from controller.analysis.models import (
    Analysis,
    BreakingPoint,
    Capacity,
    Chart,
    Drift,
    DriftReport,
    GeneratorHealth,
    PoolStability,
    Recovery,
    SloUsed,
    Step,
    StepWindow,
    WindowFigures,
)
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
from controller.gates.compile import (
    Segment,
    compile_drift,
    compile_scrape_counts,
    compile_window_figures,
    drift_labels,
    drift_step,
)
from controller.gates.models import GateFile
from controller.models import AnalysisSettings, PhaseWindow, Stage
from controller.prom.client import query, query_range, query_samples, query_value
from controller.prom.health import users_peak_query, worker_cpu_peak_query, workers_missing_query
from controller.prom.queries import keep_after, range_s, samples_between


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

    run = RunSeries(client=client, run_id=run_id)
    interval = read_scrape_interval(**run, started=started, ended=ended)
    holds = step_windows(phases, stages, min_bin_s=min_bin_seconds(interval))
    return Analysis(
        phases=phase_figures(phases, stages, [measure(p.start, p.end) for p in phases]),
        timeline=timeline([measure(*w) for w in slice_windows(started, ended, settings.slices)]),
        **judged_steps(holds, [measure(h.start, h.end) for h in holds], slo_used(settings.slo, gate_file)),
        recovery=read_recovery(**run, stages=stages, phases=phases, ended=ended, interval_s=interval),
        **read_stability(
            **run, stages=stages, phases=phases, span=(started, ended), settings=settings, interval_s=interval
        ),
        generator=read_generator(
            **run, stages=stages, workers=workers, started=started, ended=ended, problems=generator_problems
        ),
        charts=read_charts(
            **run,
            started=started,
            ended=ended,
            summary_peaks=summary_peaks,
            scrape_interval_s=interval or 1.0,
        ),
    )


class RunSeries(TypedDict):
    """Where a run's series are: its Prometheus and its run_id (every reader's first two arguments)."""

    client: httpx.Client
    run_id: str


class StepsJudged(TypedDict):
    """analysis.json's steps, the SLO they were judged against, breaking point and capacity."""

    steps: tuple[Step, ...]
    slo: SloUsed
    breaking_point: BreakingPoint | None
    capacity: Capacity
    steps_rule: str


def judged_steps(holds: Sequence[StepWindow], measured: Sequence[WindowFigures], slo: SloUsed) -> StepsJudged:
    steps = judge_steps(holds, measured, slo)
    return StepsJudged(
        steps=steps,
        slo=slo,
        breaking_point=breaking_point(steps),
        capacity=capacity(steps),
        steps_rule=f"each hold of users; {RAMP_RULE}",
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


# --- drift and pool stability ---


class Stability(TypedDict):
    """analysis.json's drift and pools, as Analysis' keyword arguments."""

    drift: DriftReport
    pools: tuple[PoolStability, ...]


def wait_for_settled_samples(*, stopped: float, interval_s: float | None) -> None:
    """During the read-back, until a scrape POOL_SETTLE_S after the stop can be in the tsdb (a
    second more for its ingestion); a rebuild later (`loadctl report`) never waits."""
    time.sleep(max(0.0, stopped + POOL_SETTLE_S + (interval_s or 1.0) + 1.0 - time.time()))


def read_stability(
    *,
    client: httpx.Client,
    run_id: str,
    stages: Sequence[Stage],
    phases: Sequence[PhaseWindow],
    span: Segment,
    settings: AnalysisSettings,
    interval_s: float | None,
) -> Stability:
    """Drift after the warm-up, and the pools before, over and after the load (`span`: its start
    and stop)."""
    started, ended = span
    warm = warmup_end(started=started, ended=ended, stages=stages, phases=phases, warmup=settings.warmup)
    found = read_drift(client=client, run_id=run_id, metrics=drift_gauges(settings), start=warm, end=ended)
    pools = read_pools(client=client, run_id=run_id, started=started, stopped=ended, interval_s=interval_s)
    return Stability(drift=found, pools=pools)


DEFAULT_DRIFT_GAUGES = (
    "loadctl_process_resident_memory_bytes",
    "loadctl_postgres_connections",
    "loadctl_redis_used_memory_bytes",
)


def drift_gauges(settings: AnalysisSettings) -> tuple[str, ...]:
    return tuple(dict.fromkeys([*DEFAULT_DRIFT_GAUGES, *settings.drift]))


def read_drift(
    *, client: httpx.Client, run_id: str, metrics: Sequence[str], start: float, end: float
) -> DriftReport:
    """Each gauge's samples over [start (the warm-up's end), end (the load's stop)], one Drift per
    series; a gauge without series (no such probe) is left out."""
    gauges: list[Drift] = []
    for metric in metrics if end > start else ():  # a warm-up as long as the run: nothing to fit
        series = query_range(
            client=client,
            promql=compile_drift(metric=metric, run_id=run_id),
            start=start,
            end=end,
            step=drift_step(start, end),
        )
        gauges += sorted((drift(metric, s.labels, s.points) for s in series), key=lambda d: str(d.labels))
    return drift_report(start, gauges)


# Pools watched for stability: (name in analysis.json, selector of what is in use, a label it is
# summed over, in use / capacity). PostgreSQL: connections held by work (every state but idle): an
# application's pool keeps idle connections open after the load by design, so only busy ones must
# go back to the pre-load level (open idle connections that keep growing are the drift of the
# total). The demo target: its worker pool's busy slots over its size (examples/demo_target/pool.py).
POOL_GAUGES = (
    (
        'loadctl_postgres_connections{state!="idle"}',
        'loadctl_postgres_connections{{run_id="{run_id}", state!="idle"}}',
        "state",
        'loadctl_postgres_pool_utilization_ratio{{run_id="{run_id}"}}',
    ),
    (
        "demo_pool_in_use",
        'demo_pool_in_use{{run_id="{run_id}"}}',
        None,
        'demo_pool_in_use{{run_id="{run_id}"}} / demo_pool_size{{run_id="{run_id}"}}',
    ),
)
POOL_SAMPLES_S = 60.0  # raw samples read after the load's start and after the stop's settling
POOL_BEFORE_S = 300.0  # and before the start: Prometheus' own lookback


def read_pool_samples(
    *, client: httpx.Client, selector: str, over: str | None, start: float, end: float
) -> dict[str, Labelled]:
    """The raw samples of `selector` in (start, end], summed over the label `over`."""
    found = query_samples(client=client, promql=samples_between(selector, start, end))
    return summed_over(((s.labels, keep_after(start, s.points)) for s in found), over)


def read_peaks_over_load(
    *, client: httpx.Client, expr: str, over: str | None, started: float, stopped: float
):
    """Each series' maximum over the load, a subquery at drift_step (keyed as summed_over's)."""
    summed = f"sum without ({over}) ({expr})" if over else expr
    step_ms = max(1, round(drift_step(started, stopped) * 1000))
    promql = f"max_over_time(({summed})[{range_s(started, stopped)}:{step_ms}ms] @ {stopped:.3f})"
    return {str(drift_labels(s.labels)): s.value for s in query(client=client, promql=promql)}


def read_pools(
    *, client: httpx.Client, run_id: str, started: float, stopped: float, interval_s: float | None
) -> tuple[PoolStability, ...]:
    """Each pool series' level before the load, its peak over the load (and its utilisation's),
    and its level POOL_SETTLE_S after the stop (waited for, when there is a pool at all)."""
    found = []
    for name, in_use_selector, over, utilisation in POOL_GAUGES:
        selector = in_use_selector.format(run_id=run_id)
        around = read_pool_samples(
            client=client,
            selector=selector,
            over=over,
            start=started - POOL_BEFORE_S,
            end=started + POOL_SAMPLES_S,
        )
        if around:
            found.append((name, selector, over, utilisation.format(run_id=run_id), around))
    if found:
        wait_for_settled_samples(stopped=stopped, interval_s=interval_s)
    settled = stopped + POOL_SETTLE_S
    pools: list[PoolStability] = []
    for name, selector, over, utilisation, around in found:
        after = read_pool_samples(
            client=client, selector=selector, over=over, start=settled - 0.001, end=settled + POOL_SAMPLES_S
        )
        peaks = read_peaks_over_load(
            client=client, expr=selector, over=over, started=started, stopped=stopped
        )
        ratios = read_peaks_over_load(
            client=client, expr=utilisation, over=None, started=started, stopped=stopped
        )
        pools += [
            pool_stability(
                name,
                labels,
                around_start=points,
                after_stop=after[key][1] if key in after else [],
                peak=peaks.get(key),
                started=started,
                stopped=stopped,
                utilisation_peak=ratios.get(key),
            )
            for key, (labels, points) in sorted(around.items())
        ]
    return tuple(pools)
