"""Live progress of a run, read from Prometheus (the same data Grafana viewers see).

`read_snapshot` does the I/O; `format_snapshot` is pure, so the line is testable on its own (and
fits the terminal: two lines, or fewer fields, rather than a line cut at the edge).
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
    # classic buckets or the native histogram (Prometheus 3): a run exposes one of the two
    p95 = value(
        "histogram_quantile(0.95, "
        f"sum by (le) (rate(locust_response_time_seconds_bucket{sel}[15s]))"
        f" or sum(rate(locust_response_time_seconds{sel}[15s])))"
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


# A user's shape can name its phases anything: past this, the name is cut with an ellipsis.
PHASE_MAX_CHARS = 20
# Least important first: the fields dropped, in this order, when two lines cannot hold them all.
# Failures and time left are never dropped.
_DROP_ORDER = ("workers", "requests", "users", "p95", "rps", "phase")


@dataclass(frozen=True)
class _Field:
    key: str
    wide: str  # padded, for the one-line form: columns stay put as the numbers change
    compact: str


def _fields(snapshot: Snapshot, *, planned_s: float, now: float) -> list[_Field]:
    if snapshot.started_at is None:
        left = "waiting for workers"
    else:
        remaining = max(0.0, planned_s - (now - snapshot.started_at))
        left = f"{int(remaining // 60)}:{int(remaining % 60):02d} left"
    failed = snapshot.failures or 0
    share = f" ({failed / snapshot.requests:.1%})" if snapshot.requests else ""
    phase = snapshot.phase or "-"
    if len(phase) > PHASE_MAX_CHARS:
        phase = phase[: PHASE_MAX_CHARS - 1] + "…"
    users, workers = _fmt(snapshot.users, "{:d}"), _fmt(snapshot.workers, "{:d}")
    rps, p95 = _fmt(snapshot.rps, "{:.1f}"), _fmt(snapshot.p95_ms, "{:.0f}")
    requests = _fmt(snapshot.requests, "{:d}")
    return [
        _Field("phase", f"phase {phase:<10}", f"phase {phase}"),
        _Field("users", f"users {users:>5}", f"users {users}"),
        _Field("workers", f"workers {workers}", f"workers {workers}"),
        _Field("rps", f"rps {rps:>7}", f"rps {rps}"),
        _Field("p95", f"p95 {p95:>5} ms", f"p95 {p95} ms"),
        _Field("requests", f"requests {requests}", f"requests {requests}"),
        _Field("failures", f"failures {failed}{share}", f"failures {failed}{share}"),
        _Field("left", left, left),
    ]


def _pack(texts: list[str], width: int) -> list[str]:
    """Greedy: as many texts on a line as fit in `width`, two spaces apart."""
    lines: list[str] = []
    for text in texts:
        if lines and len(lines[-1]) + 2 + len(text) <= width:
            lines[-1] += "  " + text
        else:
            lines.append(text)
    return lines


def format_snapshot(
    snapshot: Snapshot, *, planned_s: float, now: float | None = None, width: int | None = None
) -> str:
    """Phase, users, workers, RPS, p95, requests, failures, time left: one line, or within `width`.

    Too wide for one line: the fields wrap onto two lines; too wide for two, the least important
    fields go first (_DROP_ORDER). Failures and time left are always shown.
    """
    fields = _fields(snapshot, planned_s=planned_s, now=time.time() if now is None else now)
    one_line = "  ".join(f.wide for f in fields)
    if width is None or len(one_line) <= width:
        return one_line
    dropped: set[str] = set()
    for key in (None, *_DROP_ORDER):
        if key is not None:
            dropped.add(key)
        lines = _pack([f.compact for f in fields if f.key not in dropped], width)
        if len(lines) <= 2:
            break
    return "\n".join(lines)
