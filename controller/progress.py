"""Live progress of a run, read from Prometheus (the same data Grafana viewers see).

`read_snapshot` does the I/O; `format_snapshot` is pure, so the line is testable on its own.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass

import httpx

from controller.errors import PrometheusError
from controller.prom.client import query, query_value
from controller.prom.queries import run_selector


@dataclass(frozen=True)
class Snapshot:
    phase: str | None
    users: int | None
    workers: int | None
    rps: float | None
    p95_ms: float | None
    requests: int | None
    failures: int | None
    started_at: float | None


def read_snapshot(*, client: httpx.Client, run_id: str) -> Snapshot:
    sel = run_selector(run_id)
    connected = run_selector(run_id, 'state=~"ready|spawning|running"')

    def value(promql: str) -> float | None:
        try:
            return query_value(client=client, promql=promql)
        except PrometheusError:
            return None

    def whole(promql: str) -> int | None:
        v = value(promql)
        return None if v is None else round(v)

    try:
        info = query(client=client, promql=f"locust_run_info{sel}")
    except PrometheusError:
        info = []
    p95 = value(
        f"histogram_quantile(0.95, sum by (le) (rate(locust_response_time_seconds_bucket{sel}[15s])))"
    )
    return Snapshot(
        phase=info[0].labels.get("phase") if info else None,
        users=whole(f"sum(locust_users{sel})"),
        workers=whole(f"sum(locust_workers{connected})"),
        rps=value(f"sum(rate(locust_requests_total{sel}[10s]))"),
        p95_ms=None if p95 is None or math.isinf(p95) else p95 * 1000,
        requests=whole(f"sum(locust_requests_total{sel})"),
        failures=whole(f"sum(locust_request_failures_total{sel})") or 0,
        started_at=value(f"max(locust_test_start_timestamp_seconds{sel})"),
    )


def _fmt(value: float | None, pattern: str) -> str:
    return "-" if value is None else pattern.format(value)


def format_snapshot(snapshot: Snapshot, *, planned_s: float, now: float | None = None) -> str:
    """One line: phase, users, workers, RPS, p95, failures, time left."""
    now = time.time() if now is None else now
    if snapshot.started_at is None:
        left = "waiting for workers"
    else:
        remaining = max(0.0, planned_s - (now - snapshot.started_at))
        left = f"{int(remaining // 60)}:{int(remaining % 60):02d} left"
    failed = snapshot.failures or 0
    share = f" ({failed / snapshot.requests:.1%})" if snapshot.requests else ""
    return (
        f"phase {snapshot.phase or '-':<10} users {_fmt(snapshot.users, '{:d}'):>5}  "
        f"workers {_fmt(snapshot.workers, '{:d}')}  rps {_fmt(snapshot.rps, '{:.1f}'):>7}  "
        f"p95 {_fmt(snapshot.p95_ms, '{:.0f}'):>5} ms  requests {_fmt(snapshot.requests, '{:d}')}  "
        f"failures {failed}{share}  {left}"
    )
