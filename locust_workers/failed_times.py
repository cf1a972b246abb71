"""Response times of failed requests, so gates can judge the latency of successful ones.

Locust's stats entries mix failed requests into `response_times`, and a refused connection is
fast: a dead target looked like a fast one. Workers record each failed request's time here
(the `request` event with `exception` set), rounded the way Locust rounds its own
(locust.stats.bucket_response_time), so the failed counts sit exactly inside Locust's per-key
counts and "all buckets - failed buckets" never goes below zero. Shipping works like custom
metrics (metrics.py, custom_totals.py): each worker report carries what was recorded since the
last one (`drain`), the master adds the reports up (`merge`), and a local runner drains its own
store at scrape time. The exporter serves the totals as `locust_failed_response_time_seconds`.

Memory is bounded like Locust's own: one {rounded ms: count} dict per (name, method).
"""

from __future__ import annotations

import logging
from typing import Any

import locust.stats

logger = logging.getLogger("loadctl")
REPORT_KEY = "loadctl_failed_times"

Key = tuple[str, str]  # (name, method)


class FailedTimes:
    """One process's failed-request times: recorded (workers, local runs) and/or merged (master)."""

    def __init__(self, *, local: bool = False) -> None:
        self.local = local  # this process also runs the users: drain into the totals at read time
        self._pending: dict[Key, tuple[dict[int, int], list[float]]] = {}
        self._totals: dict[Key, tuple[dict[int, int], list[float]]] = {}

    def record(self, name: str, method: str, response_time_ms: float | None) -> None:
        if response_time_ms is None:  # Locust does not time these either
            return
        rounded = int(locust.stats.bucket_response_time(response_time_ms))
        times, total = self._pending.setdefault((name, method or ""), ({}, [0.0]))
        times[rounded] = times.get(rounded, 0) + 1
        total[0] += response_time_ms

    def drain(self) -> list[list[Any]]:
        """What was recorded since the last drain: [[name, method, [[ms, count], ...], total_ms]]."""
        pending, self._pending = self._pending, {}
        # lists, not dicts with int keys: msgpack maps with non-string keys are fragile
        return [
            [name, method, sorted(times.items()), total[0]]
            for (name, method), (times, total) in pending.items()
        ]

    def merge(self, snapshot: Any) -> bool:
        """Adds a worker's snapshot to the totals; False (and nothing added) if it is malformed."""
        try:
            rows = [
                ((str(name), str(method)), [(int(ms), int(n)) for ms, n in times], float(total))
                for name, method, times, total in snapshot
            ]
        except (TypeError, ValueError):
            logger.warning("loadctl: malformed failed-request times in a worker report (skipped)")
            return False
        for key, times, total in rows:
            kept, kept_total = self._totals.setdefault(key, ({}, [0.0]))
            for ms, n in times:
                kept[ms] = kept.get(ms, 0) + n
            kept_total[0] += total
        return True

    def totals(self) -> dict[Key, tuple[dict[int, int], float]]:
        """{(name, method): ({rounded ms: count}, total ms)} of every failed request so far."""
        if self.local:
            self.merge(self.drain())
        return {key: (dict(times), total[0]) for key, (times, total) in self._totals.items()}


def record_failures(environment: Any, store: FailedTimes) -> None:
    """Record every failed request of this process's users into `store`."""

    def _on_request(
        request_type: str, name: str, response_time: float | None, exception: Any = None, **_kw: Any
    ) -> None:
        if exception is not None:
            store.record(name, request_type, response_time)

    environment.events.request.add_listener(_on_request)


def ship_with_worker_reports(environment: Any, store: FailedTimes) -> None:
    """On a worker: add the failures recorded since the last report to every report."""

    def _add(client_id: str, data: dict[str, Any], **_kw: Any) -> None:
        snapshot = store.drain()
        if snapshot:
            data[REPORT_KEY] = snapshot

    environment.events.report_to_master.add_listener(_add)


def merge_worker_reports(environment: Any, store: FailedTimes) -> None:
    """On the master: add the failures in every worker report to `store`'s totals."""

    def _merge(client_id: str, data: dict[str, Any], **_kw: Any) -> None:
        snapshot = data.get(REPORT_KEY)
        if snapshot is not None:
            store.merge(snapshot)

    environment.events.worker_report.add_listener(_merge)
