"""Custom metrics for locustfiles: histograms and counters observed in users, exported by the master.

    from locust_workers.metrics import custom

    custom.observe("sse_ttft_seconds", 0.42, name="chat_stream")    # a histogram observation
    custom.inc("sse_tokens", 57, name="chat_stream")                # a counter
    tps = custom.histogram("sse_tokens_per_second", buckets=[1, 2, 5, 10, 20, 50, 100])
    tps.observe(38.5, name="chat_stream")                           # a declared histogram

The master's exporter serves them as `locust_custom_<metric>{run_id, name}`: histograms with
`_bucket/_sum/_count`, counters with `_total`.

Why deltas over Locust's report events: observations happen in user greenlets, so they must be
cheap and never block. One observation is a dict lookup, a bisect and two additions: no lock
(greenlets only switch at I/O, and there is none here), no I/O, no allocation once the series
exists. Every report interval (3 s) Locust's `report_to_master` event hands the counts gathered
since the last report (`drain`) to the worker's stats message, and the master adds them up
(custom_totals.py): the way Locust ships its own request stats, including the final report a
worker sends when it quits, so the totals are exact. In a local (single-process) run the
exporter drains this process's store at each scrape instead. The memory a metric takes is set by
its buckets and names, never by how many values it sees.

Names: a metric is `[a-zA-Z][a-zA-Z0-9_]*` (the exporter adds `locust_custom_`; counters get
`_total`, so a counter's own name must not end in `_total`). A bad name, a name used as two
kinds, buckets declared after a metric's first use, or a non-finite value raise
`CustomMetricError` at that call. The `name` label works like Locust's request names: past
`max_names` distinct values per metric (contract.MAX_NAMES_ENV, 200) the rest count as `__other__`.
"""

from __future__ import annotations

import math
import re
from bisect import bisect_left
from collections.abc import Iterable
from itertools import pairwise
from typing import Any

from locust_workers.contract import CUSTOM_PREFIX as PREFIX
from locust_workers.contract import DEFAULT_MAX_NAMES, OTHER_NAME

REPORT_KEY = "loadctl_custom"  # the key of a worker's report dict that carries its snapshot
MAX_METRICS = 100
METRIC_NAME = re.compile(r"^[a-zA-Z][a-zA-Z0-9_]*$")
MAX_NAME_LENGTH = 120


def _renard_10(first_exponent: int, last_exponent: int) -> tuple[float, ...]:
    # R10 preferred numbers: ten steps per decade, each ~25 % above the last.
    steps = ("1", "1.25", "1.6", "2", "2.5", "3.15", "4", "5", "6.3", "8")
    bounds = [float(f"{m}e{e}") for e in range(first_exponent, last_exponent) for m in steps]
    return (*bounds, float(f"1e{last_exponent}"))


# 1 ms to 100 s, ten buckets per decade: fine enough for a percentile within one bucket
# (~25 %) for anything from a cache hit to a slow LLM's time to first token.
DEFAULT_SECONDS_BUCKETS = _renard_10(-3, 2)


class CustomMetricError(ValueError):
    """A custom metric used in a way that cannot be exported; raised at the offending call."""


def check_metric_name(metric: Any) -> str:
    if not isinstance(metric, str) or not METRIC_NAME.match(metric) or len(metric) > MAX_NAME_LENGTH:
        raise CustomMetricError(
            f"custom metric name {metric!r}: use letters, digits and underscores, starting with a letter, "
            f"at most {MAX_NAME_LENGTH} characters (it is exported as {PREFIX}<name>)"
        )
    return metric


def check_buckets(metric: str, buckets: Iterable[float]) -> tuple[float, ...]:
    try:
        bounds = [float(b) for b in buckets]
    except (TypeError, ValueError):
        raise CustomMetricError(
            f"custom metric {metric!r}: buckets must be numbers, got {buckets!r}"
        ) from None
    if bounds and bounds[-1] == math.inf:
        bounds.pop()  # +Inf is always there
    if not bounds or not all(math.isfinite(b) for b in bounds):
        raise CustomMetricError(f"custom metric {metric!r}: buckets need at least one finite upper bound")
    if any(b >= c for b, c in pairwise(bounds)):
        raise CustomMetricError(f"custom metric {metric!r}: buckets must be strictly increasing: {bounds}")
    return tuple(bounds)


def _number(metric: str, value: Any) -> float:
    try:
        return float(value)
    except (TypeError, ValueError):
        raise CustomMetricError(f"custom metric {metric!r}: {value!r} is not a number") from None


class _HistogramSeries:
    __slots__ = ("counts", "total")

    def __init__(self, slots: int) -> None:
        self.counts = [0] * slots  # per bucket, not cumulative; the last one is +Inf
        self.total = 0.0


class _Metric:
    """What histograms and counters share: a name, the admitted `name` label values, a cap."""

    kind = ""

    def __init__(self, store: CustomMetrics, metric: str, description: str) -> None:
        self._store = store
        self.metric = metric
        self.description = description or f"Custom {self.kind} {metric} from the locustfile."
        self._admitted: set[str] = set()  # kept across drains, so a name keeps its own series
        # this interval's state by label value (plus aliases of folded names to __other__'s)
        self._series: dict[str, Any] = {}

    def _label(self, name: Any) -> str:
        if name in self._admitted:
            return name
        if not isinstance(name, str):
            raise CustomMetricError(f"custom metric {self.metric!r}: name must be a string, got {name!r}")
        if len(self._admitted) >= self._store.max_names:
            return OTHER_NAME
        self._admitted.add(name)
        return name

    def _take(self) -> list[tuple[str, Any]]:
        """This interval's series by label, and a fresh interval (folded names' aliases left out)."""
        series, self._series = self._series, {}
        kept = [(label, s) for label, s in series.items() if label in self._admitted or label == OTHER_NAME]
        return sorted(kept, key=lambda item: item[0])


class Histogram(_Metric):
    kind = "histogram"

    def __init__(
        self, store: CustomMetrics, metric: str, bounds: tuple[float, ...], description: str
    ) -> None:
        super().__init__(store, metric, description)
        self.bounds = bounds

    def observe(self, value: float, *, name: str = "") -> None:
        value = _number(self.metric, value)
        if not math.isfinite(value):
            raise CustomMetricError(f"custom metric {self.metric!r}: cannot observe {value!r}")
        series = self._series.get(name)
        if series is None:
            label = self._label(name)
            series = self._series.get(label) or _HistogramSeries(len(self.bounds) + 1)
            self._series[label] = series
            if label != name:
                self._series[name] = series  # a folded name finds __other__ directly next time
        series.counts[bisect_left(self.bounds, value)] += 1
        series.total += value

    def _drain(self) -> dict[str, Any] | None:
        series = self._take()
        if not series:
            return None
        return {
            "buckets": list(self.bounds),
            "help": self.description,
            # a list, not a dict keyed by name: Locust's msgpack decoder treats some dict keys specially
            "series": [[label, s.counts, s.total] for label, s in series],
        }


class Counter(_Metric):
    kind = "counter"

    def inc(self, amount: float = 1.0, *, name: str = "") -> None:
        amount = _number(self.metric, amount)
        if not (amount >= 0 and math.isfinite(amount)):
            raise CustomMetricError(
                f"custom metric {self.metric!r}: counters only go up, cannot add {amount!r}"
            )
        series = self._series.get(name)
        if series is None:
            label = self._label(name)
            series = self._series.get(label) or [0.0]
            self._series[label] = series
            if label != name:
                self._series[name] = series
        series[0] += amount

    def _drain(self) -> dict[str, Any] | None:
        series = self._take()
        if not series:
            return None
        return {"help": self.description, "series": [[label, s[0]] for label, s in series]}


class CustomMetrics:
    """One process's custom metrics: the API locustfiles call, and `drain()` for the reports.

    Not for OS threads: it relies on gevent's cooperative switching, like the rest of Locust.
    """

    def __init__(self, *, max_names: int = DEFAULT_MAX_NAMES, max_metrics: int = MAX_METRICS) -> None:
        self.max_names = max_names
        self.max_metrics = max_metrics
        self._metrics: dict[str, Histogram | Counter] = {}

    def histogram(
        self, metric: str, *, buckets: Iterable[float] | None = None, description: str = ""
    ) -> Histogram:
        """Declares (or returns) a histogram; `buckets` are upper bounds, default DEFAULT_SECONDS_BUCKETS."""
        existing = self._metrics.get(metric)
        if existing is None:
            bounds = DEFAULT_SECONDS_BUCKETS if buckets is None else check_buckets(metric, buckets)
            created = Histogram(self, self._new_name(metric), bounds, description)
            self._metrics[metric] = created
            return created
        if not isinstance(existing, Histogram):
            raise CustomMetricError(f"custom metric {metric!r} is a {existing.kind}, not a histogram")
        if buckets is not None and check_buckets(metric, buckets) != existing.bounds:
            raise CustomMetricError(
                f"custom metric {metric!r} already has buckets {list(existing.bounds)}: declare its "
                f"buckets once, with custom.histogram(...), before its first observation"
            )
        return existing

    def counter(self, metric: str, *, description: str = "") -> Counter:
        """Declares (or returns) a counter, exported as locust_custom_<metric>_total."""
        existing = self._metrics.get(metric)
        if existing is None:
            if isinstance(metric, str) and metric.endswith("_total"):
                raise CustomMetricError(
                    f"custom counter {metric!r}: leave off '_total', the exporter adds it "
                    f"({PREFIX}{metric.removesuffix('_total')}_total)"
                )
            created = Counter(self, self._new_name(metric), description)
            self._metrics[metric] = created
            return created
        if not isinstance(existing, Counter):
            raise CustomMetricError(f"custom metric {metric!r} is a {existing.kind}, not a counter")
        return existing

    def observe(self, metric: str, value: float, *, name: str = "") -> None:
        """One observation of histogram `metric` (declared with default buckets at first use)."""
        histogram = self._metrics.get(metric)
        if type(histogram) is not Histogram:
            histogram = self.histogram(metric)
        histogram.observe(value, name=name)

    def inc(self, metric: str, amount: float = 1.0, *, name: str = "") -> None:
        """Adds `amount` (>= 0) to counter `metric`."""
        counter = self._metrics.get(metric)
        if type(counter) is not Counter:
            counter = self.counter(metric)
        counter.inc(amount, name=name)

    def drain(self) -> dict[str, Any]:
        """Everything observed since the last drain, as a msgpack-able snapshot; {} if nothing.

        {"histograms": {metric: {"buckets": [...], "help": str, "series": [[name, counts, sum]]}},
         "counters": {metric: {"help": str, "series": [[name, value]]}}}
        counts are per bucket (not cumulative), one more than buckets: the last is +Inf.
        """
        snapshot: dict[str, dict[str, Any]] = {}
        for metric, state in self._metrics.items():
            drained = state._drain()
            if drained is not None:
                snapshot.setdefault(f"{state.kind}s", {})[metric] = drained
        return snapshot

    def _new_name(self, metric: str) -> str:
        check_metric_name(metric)
        if len(self._metrics) >= self.max_metrics:
            raise CustomMetricError(
                f"custom metric {metric!r}: already {self.max_metrics} custom metrics; metric names are "
                f"code, not data (put varying parts in name=...)"
            )
        return metric


custom = CustomMetrics()
"""The process-wide store that locustfiles use and loadctl's plugin ships to the master."""


def ship_with_worker_reports(environment: Any, store: CustomMetrics = custom) -> None:
    """On a worker: add `store`'s counts since the last report to every report for the master."""

    def _add(client_id: str, data: dict[str, Any], **_kw: Any) -> None:
        snapshot = store.drain()
        if snapshot:
            data[REPORT_KEY] = snapshot

    environment.events.report_to_master.add_listener(_add)
