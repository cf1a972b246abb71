"""Was the load generator healthy? Read after the run from its own series in Prometheus.

A run whose generator was sick measures the generator, not the target: a lost worker leaves its
users unreplaced (Locust does not move them), a saturated worker adds its own queueing to every
latency and caps the throughput. These checks read the exporter's series, so they work the same
for local processes and pods; the pure `*_problems` functions turn numbers into reasons.

Thresholds: a worker at >= 90 % CPU (Locust's own warning level) for 30 s inside a judged window;
users judged only in stages long enough to have reached their count with USERS_SLACK_S to spare.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import httpx

from controller.models import PhaseWindow, Stage
from controller.prom.client import query, query_value
from controller.prom.queries import last_seen_query, range_s, run_selector
from locust_workers.contract import USERS, WORKER_CPU_PERCENT, WORKER_MISSING, WORKERS

CPU_SATURATED_PERCENT = 90.0
CPU_SATURATED_FOR_S = 30
USERS_SLACK_S = 5.0


@dataclass(frozen=True)
class StageCheck:
    """One stage whose planned users must have been reached, and the most users it saw."""

    index: int
    phase: str
    planned: int
    reached: float | None


def stages_to_check(stages: Sequence[Stage], phases: Sequence[PhaseWindow]) -> list[tuple[PhaseWindow, int]]:
    """(window, planned users) of each stage that ran long enough to reach its users with slack."""
    checks = []
    previous = 0
    for index, stage in enumerate(stages):
        ramp_s = abs(stage.users - previous) / stage.spawn_rate
        window = next((p for p in phases if p.stage == index), None)
        if window is not None and stage.users > 0 and window.end - window.start >= ramp_s + USERS_SLACK_S:
            checks.append((window, stage.users))
        previous = stage.users
    return checks


def users_problems(checks: Sequence[StageCheck]) -> list[str]:
    return [
        f"users reached {0 if c.reached is None else int(c.reached)} of the {c.planned} planned "
        f"in stage {c.index} ({c.phase})"
        for c in checks
        if c.reached is None or c.reached < c.planned
    ]


def workers_problems(*, missing_max: float | None, planned: int) -> list[str]:
    if missing_max:
        return [
            f"{int(missing_max)} of {planned} workers went missing (no heartbeat); "
            "their users were not replaced"
        ]
    return []


def cpu_problems(saturated: Sequence[tuple[str, str, float]]) -> list[str]:
    """(window name, worker, the lowest CPU % of its hottest 30 s) per saturated worker."""
    return [
        f"worker {worker} was at >= {CPU_SATURATED_PERCENT:.0f}% CPU for {CPU_SATURATED_FOR_S}s in window "
        f"'{window}' (lowest {value:.0f}%): add workers, its latencies include its own queueing"
        for window, worker, value in saturated
    ]


def workers_missing_query(run_id: str, *, start: float, end: float) -> str:
    """The most workers the master had lost (no heartbeat) at once in [start, end]."""
    missing = run_selector(run_id, f'state="{WORKER_MISSING}"')
    return f"max(max_over_time({WORKERS}{missing}[{range_s(start, end)}] @ {end:.3f}))"


def users_peak_query(run_id: str, *, start: float, end: float) -> str:
    """The most users running at once in [start, end]."""
    return f"max(max_over_time({USERS}{run_selector(run_id)}[{range_s(start, end)}] @ {end:.3f}))"


def worker_cpu_peak_query(run_id: str, *, start: float, end: float) -> str:
    """The highest CPU % any worker reported in [start, end] (one sample: the saturation check above
    asks for 30 s of it)."""
    return (
        f"max(max_over_time({WORKER_CPU_PERCENT}{run_selector(run_id)}[{range_s(start, end)}] @ {end:.3f}))"
    )


def read_generator_problems(
    *,
    client: httpx.Client,
    run_id: str,
    stages: Sequence[Stage],
    phases: Sequence[PhaseWindow],
    workers: int,
    started: float,
    ended: float,
    judged: Sequence[tuple[str, float, float]],
) -> list[str]:
    """Every reason the generator's numbers are suspect; `judged` is (window name, start, end)."""
    problems: list[str] = []
    sel = run_selector(run_id)
    missing = query_value(client=client, promql=workers_missing_query(run_id, start=started, end=ended))
    problems += workers_problems(missing_max=missing, planned=workers)
    checks = []
    for window, planned in stages_to_check(stages, phases):
        reached = query_value(
            client=client, promql=users_peak_query(run_id, start=window.start, end=window.end)
        )
        checks.append(StageCheck(window.stage, window.phase, planned, reached))
    problems += users_problems(checks)
    saturated = []
    for name, start, end in judged:
        if end - start < CPU_SATURATED_FOR_S:
            continue
        # the lowest CPU of each worker over every 30 s inside the window; its maximum over the window
        samples = query(
            client=client,
            promql=f"max by (worker) (max_over_time(min_over_time({WORKER_CPU_PERCENT}{sel}"
            f"[{CPU_SATURATED_FOR_S}s])[{range_s(start + CPU_SATURATED_FOR_S, end)}:1s] @ {end:.3f}))",
        )
        saturated += [
            (name, s.labels.get("worker", "?"), s.value) for s in samples if s.value >= CPU_SATURATED_PERCENT
        ]
    problems += cpu_problems(saturated)
    return problems


def read_alerts_fired(*, client: httpx.Client, run_id: str, started: float, ended: float) -> list[str]:
    """Names of the run's alerts (run_id-labelled, see charts/loadctl/rules) that fired during it."""
    firing = run_selector(run_id, 'alertstate="firing"')
    samples = query(
        client=client,
        promql=f"max by (alertname) (max_over_time(ALERTS{firing}[{range_s(started, ended)}] @ {ended:.3f}))",
    )
    return sorted({s.labels.get("alertname", "?") for s in samples})


def read_last_seen(*, client: httpx.Client, run_id: str, planned_s: float, at: float) -> float | None:
    """When the exporter was last scraped: the end of a run whose master died without a stop time."""
    return query_value(client=client, promql=last_seen_query(run_id, planned_s=planned_s, at=at))


def read_totals(*, client: httpx.Client, run_id: str, started: float, ended: float) -> tuple[int, int]:
    """(requests, failures) as the exporter's final counters say; Locust's CSVs come later."""
    span = f"[{range_s(started, ended + 60)}] @ {ended + 60:.3f}"
    totals = []
    for metric in ("locust_requests_total", "locust_request_failures_total"):
        value = query_value(client=client, promql=f"sum(max_over_time({metric}{run_selector(run_id)}{span}))")
        totals.append(round(value or 0))
    return totals[0], totals[1]
