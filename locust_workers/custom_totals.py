"""The master's side of custom metrics: add up the workers' snapshots, serve them as metric families.

Workers send what they observed since their last report (metrics.CustomMetrics.drain) with every
stats report; `merge` adds each snapshot to running totals, and `metric_families` turns the totals
into Prometheus histograms and counters at scrape time, from the exporter's collector. Totals only
grow for the life of the master, like Prometheus counters should.

A snapshot comes over the network from another process, so `merge` checks its shape and never
raises: a metric it cannot take (a bucket layout that differs from the first one seen, one name
used as a histogram on one worker and a counter on another, a malformed entry) is skipped and
logged once, and the rest of the snapshot still counts.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Iterator
from typing import Any

from prometheus_client.core import CounterMetricFamily, HistogramMetricFamily, Metric
from prometheus_client.utils import floatToGoString

from locust_workers.contract import CUSTOM_PREFIX as PREFIX
from locust_workers.contract import DEFAULT_MAX_NAMES, OTHER_NAME
from locust_workers.metrics import METRIC_NAME, REPORT_KEY, CustomMetrics

logger = logging.getLogger("loadctl")
LABELS = ["run_id", "name"]


class _Total:
    def __init__(self, description: str) -> None:
        self.description = description
        self.series: dict[str, Any] = {}

    def label(self, name: str, max_names: int) -> str:
        # First come, first admitted: once a name has its series, it keeps it.
        return name if name in self.series or len(self.series) < max_names else OTHER_NAME


class _HistogramTotal(_Total):
    def __init__(self, description: str, bounds: tuple[float, ...]) -> None:
        super().__init__(description)
        self.bounds = bounds
        self.le = [floatToGoString(b) for b in bounds]
        self.series: dict[str, tuple[list[int], list[float]]] = {}  # name -> (counts per bucket, [sum])


class _CounterTotal(_Total):
    def __init__(self, description: str) -> None:
        super().__init__(description)
        self.series: dict[str, list[float]] = {}  # name -> [value]


class CustomTotals:
    """Running totals of every worker's custom metrics (and this process's own, see `local`)."""

    def __init__(self, *, max_names: int = DEFAULT_MAX_NAMES, local: CustomMetrics | None = None) -> None:
        self.max_names = max_names
        # In a local run the users observe into this process's store: drained at each scrape.
        self.local = local
        self._histograms: dict[str, _HistogramTotal] = {}
        self._counters: dict[str, _CounterTotal] = {}
        self._reported: set[str] = set()

    def merge(self, snapshot: Any) -> list[str]:
        """Adds one snapshot; returns the problems not reported before (each is logged once)."""
        problems: list[str] = []
        if not isinstance(snapshot, dict):
            problems.append(f"custom metrics snapshot is not a mapping: {type(snapshot).__name__}")
            snapshot = {}
        for metric, entry in _entries(snapshot, "histograms", problems):
            problems += _prefixed(metric, self._merge_histogram(metric, entry))
        for metric, entry in _entries(snapshot, "counters", problems):
            problems += _prefixed(metric, self._merge_counter(metric, entry))
        new = [p for p in dict.fromkeys(problems) if p not in self._reported]
        for problem in new:
            self._reported.add(problem)
            logger.warning("loadctl custom metrics: %s (skipped)", problem)
        return new

    def metric_families(self, run_id: str) -> Iterator[Metric]:
        if self.local is not None:
            local = self.local.drain()
            if local:
                self.merge(local)
        for metric, hist in sorted(self._histograms.items()):
            family = HistogramMetricFamily(PREFIX + metric, hist.description, labels=LABELS)
            for name, (counts, total) in sorted(hist.series.items()):
                cumulative, running = [], 0
                for count in counts:
                    running += count
                    cumulative.append(running)
                buckets = [*zip(hist.le, cumulative, strict=False), ("+Inf", cumulative[-1])]
                family.add_metric([run_id, name], buckets, sum_value=total[0])
            yield family
        for metric, counter in sorted(self._counters.items()):
            counter_family = CounterMetricFamily(PREFIX + metric, counter.description, labels=LABELS)
            for name, value in sorted(counter.series.items()):
                counter_family.add_metric([run_id, name], value[0])
            yield counter_family

    def _merge_histogram(self, metric: str, entry: Any) -> list[str]:
        if metric in self._counters:
            return ["sent as a histogram, but it is a counter"]
        try:
            bounds = tuple(float(b) for b in entry["buckets"])
            description = str(entry.get("help") or "")
            rows = [
                (str(name), [int(c) for c in counts], float(total)) for name, counts, total in entry["series"]
            ]
        except (KeyError, TypeError, ValueError, AttributeError):
            return ["malformed histogram entry"]
        if not bounds or any(not math.isfinite(b) for b in bounds) or list(bounds) != sorted(set(bounds)):
            return [f"bad buckets {list(bounds)}"]
        hist = self._histograms.get(metric)
        if hist is None:
            hist = self._histograms[metric] = _HistogramTotal(description, bounds)
        elif hist.bounds != bounds:
            return [f"buckets {list(bounds)} differ from the first ones seen, {list(hist.bounds)}"]
        problems = []
        for name, counts, total in rows:
            if len(counts) != len(bounds) + 1 or any(c < 0 for c in counts) or not math.isfinite(total):
                problems.append("malformed histogram series")
                continue
            label = hist.label(name, self.max_names)
            kept_counts, kept_sum = hist.series.setdefault(label, ([0] * len(counts), [0.0]))
            for index, count in enumerate(counts):
                kept_counts[index] += count
            kept_sum[0] += total
        return problems

    def _merge_counter(self, metric: str, entry: Any) -> list[str]:
        if metric in self._histograms:
            return ["sent as a counter, but it is a histogram"]
        try:
            description = str(entry.get("help") or "")
            rows = [(str(name), float(value)) for name, value in entry["series"]]
        except (KeyError, TypeError, ValueError, AttributeError):
            return ["malformed counter entry"]
        counter = self._counters.get(metric)
        if counter is None:
            counter = self._counters[metric] = _CounterTotal(description)
        problems = []
        for name, value in rows:
            if not (value >= 0 and math.isfinite(value)):
                problems.append(f"counter increment {value!r}")
                continue
            counter.series.setdefault(counter.label(name, self.max_names), [0.0])[0] += value
        return problems


def _entries(snapshot: dict[str, Any], kind: str, problems: list[str]) -> Iterator[tuple[str, Any]]:
    metrics = snapshot.get(kind) or {}
    if not isinstance(metrics, dict):
        problems.append(f"custom metrics snapshot: {kind} is not a mapping")
        return
    for metric, entry in metrics.items():
        if isinstance(metric, str) and METRIC_NAME.match(metric):
            yield metric, entry
        else:
            problems.append(f"custom metric name {metric!r} is not valid")


def _prefixed(metric: str, problems: list[str]) -> list[str]:
    return [f"custom metric {metric!r}: {problem}" for problem in problems]


def merge_worker_reports(environment: Any, totals: CustomTotals) -> None:
    """On the master: add the snapshot in every worker report to `totals`."""

    def _merge(client_id: str, data: dict[str, Any], **_kw: Any) -> None:
        snapshot = data.get(REPORT_KEY)
        if snapshot is not None:
            totals.merge(snapshot)

    environment.events.worker_report.add_listener(_merge)
