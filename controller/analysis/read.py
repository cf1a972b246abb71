"""The analysis' only I/O: each window measured in the run's Prometheus, with the gates' PromQL."""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import TypedDict

import httpx

from controller.analysis.drift import drift, drift_report, pool_stability, warmup_end
from controller.analysis.generator import generator_health
from controller.analysis.models import (
    Analysis,
    Drift,
    DriftReport,
    GeneratorHealth,
    PoolStability,
    Recovery,
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
from controller.prom.client import query, query_range, query_value
from controller.prom.health import users_peak_query, worker_cpu_peak_query, workers_missing_query
from controller.prom.queries import AFTER_RUN_S, range_s, run_selector


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
    workers: int,
    generator_problems: Sequence[str] = (),
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
        **read_stability(
            client=client,
            run_id=run_id,
            stages=stages,
            phases=phases,
            started=started,
            ended=ended,
            settings=settings,
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


def read_stability(
    *,
    client: httpx.Client,
    run_id: str,
    stages: Sequence[Stage],
    phases: Sequence[PhaseWindow],
    started: float,
    ended: float,
    settings: AnalysisSettings,
) -> Stability:
    """Drift after the warm-up, and the pools from before the load to a while after it: up to now
    during the run's read-back, AFTER_RUN_S after the stop when rebuilt later (`loadctl report`)."""
    warm = warmup_end(started=started, ended=ended, stages=stages, phases=phases, warmup=settings.warmup)
    found = read_drift(client=client, run_id=run_id, metrics=drift_gauges(settings), start=warm, end=ended)
    after = min(time.time(), ended + AFTER_RUN_S)
    pools = read_pools(client=client, run_id=run_id, started=started, stopped=ended, now=after)
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


# Pools watched for stability: (name in analysis.json, PromQL of what is in use, PromQL of in use /
# capacity). PostgreSQL: connections held by work (every state but idle): an application's pool
# keeps idle connections open after the load by design, so only busy ones must go back to the
# pre-load level (open idle connections that keep growing are the drift of the total). The demo
# target: its worker pool's busy slots over its size (examples/demo_target/pool.py).
POOL_GAUGES = (
    (
        'loadctl_postgres_connections{state!="idle"}',
        'sum without (state) (loadctl_postgres_connections{{run_id="{run_id}", state!="idle"}})',
        "loadctl_postgres_pool_utilization_ratio{selector}",
    ),
    (
        "demo_pool_in_use",
        "demo_pool_in_use{selector}",
        "demo_pool_in_use{selector} / demo_pool_size{selector}",
    ),
)
POOL_PRE_LOAD_STEPS = 5  # the range starts this many steps before the load: `before`'s samples


def read_pools(
    *, client: httpx.Client, run_id: str, started: float, stopped: float, now: float
) -> tuple[PoolStability, ...]:
    """Each pool series from before the load to `now` (after it), with its utilisation's peak."""
    step = drift_step(started, now)
    pools: list[PoolStability] = []
    for name, in_use, utilisation in POOL_GAUGES:
        selector = run_selector(run_id)
        series = query_range(
            client=client,
            promql=in_use.format(run_id=run_id, selector=selector),
            start=started - POOL_PRE_LOAD_STEPS * step,
            end=now,
            step=step,
        )
        # a subquery at the range query's step: the ratio's peak among the same instants
        window = f"[{range_s(started, stopped)}:{max(1, round(step * 1000))}ms] @ {stopped:.3f}"
        peaks = (
            query(client=client, promql=f"max_over_time(({utilisation.format(selector=selector)}){window})")
            if series
            else []
        )
        by_labels = {str(drift_labels(p.labels)): p.value for p in peaks}
        pools += [
            pool_stability(
                name,
                s.labels,
                s.points,
                started=started,
                stopped=stopped,
                utilisation_peak=by_labels.get(str(drift_labels(s.labels))),
            )
            for s in series
        ]
    return tuple(pools)
