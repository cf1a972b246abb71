"""Prometheus exporter for a Locust master: a custom collector over the master's aggregated stats.

Why a collector and not counters updated per request: the master already aggregates every
worker's stats; reading them at scrape time costs nothing per request and nothing on workers.
(The one exception: workers note each *failed* request's response time, failed_times.py,
because Locust's stats mix failures into the response times and gates judge successful ones.)
It works with any locustfile: plugin.py registers it, the user's file does not import it.

Metric contract (names and labels are relied on by gates and dashboards):
  locust_requests_total{run_id,name,method}                 counter, every request
  locust_request_failures_total{run_id,name,method,status}  counter; status = HTTP code or exception class
  locust_response_time_seconds{run_id,name,method}          histogram (see histogram.py for buckets:
                                                            their resolution is LATENCY_BUCKETS_ENV)
  locust_failed_response_time_seconds{run_id,name,method}   histogram of failed requests alone, same buckets
                                                            (failed_times.py): successful = all - failed
  locust_users{run_id}, locust_workers{run_id,state}, locust_worker_cpu_percent{run_id,worker}
  locust_run_info{run_id,profile,phase}                     1 for the current phase
  locust_stage_start_timestamp_seconds{run_id,stage,phase}  when each stage of the table (or phase
                                                            of the locustfile's own shape) began
  locust_test_start_timestamp_seconds{run_id}, locust_test_stop_timestamp_seconds{run_id}
  locust_process_exit_code{run_id,message}                  the exit code the locustfile asked for
  locust_locustfile_stop_timestamp_seconds{run_id,caller,message}
                                                            when it stopped the test (locustfile_end.py)
  locust_custom_<metric>{run_id,name}                       the locustfile's own (metrics.py): histogram
                                                            (_bucket/_sum/_count) or counter (_total)
"""

from __future__ import annotations

import re
import time
from collections import defaultdict
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector
from prometheus_client.samples import Sample
from prometheus_client.utils import floatToGoString

from locust_workers.contract import (
    DEFAULT_LATENCY_BUCKETS,
    DEFAULT_MAX_NAMES,
    FAILED_RESPONSE_TIME_SECONDS,
    LOCUSTFILE_STOP_TIMESTAMP_SECONDS,
    NATIVE_LATENCY,
    OTHER_NAME,
    PROCESS_EXIT_CODE,
    REQUEST_FAILURES_TOTAL,
    REQUESTS_TOTAL,
    RESPONSE_TIME_SECONDS,
    RUN_INFO,
    STAGE_START_TIMESTAMP_SECONDS,
    TEST_START_TIMESTAMP_SECONDS,
    TEST_STOP_TIMESTAMP_SECONDS,
    USERS,
    WORKER_CPU_PERCENT,
    WORKER_STATES,
    WORKERS,
)
from locust_workers.histogram import bucket_bounds_ms, cumulative_counts, resolution_of
from locust_workers.native_histogram import native_histogram_family
from locust_workers.shapes import current_phase, phase_starts

if TYPE_CHECKING:
    from locust_workers.custom_totals import CustomTotals
    from locust_workers.failed_times import FailedTimes
    from locust_workers.locustfile_end import LocustfileEnd

_STATUS_PATTERNS = (
    re.compile(r"^\w+\(['\"](\d{3}) "),  # HTTPError('429 Client Error: ...') from HttpUser
    # LocustBadStatusCode(code=503) from FastHttpUser; anchored to a call-style repr so that a
    # "code=" inside another exception's message (a gRPC error's details) is not read as HTTP
    re.compile(r"^[\w.]+\(.*\bcode=(\d{3})\b", re.DOTALL),
)
# A label value must stay bounded whatever a locustfile raises: a class name only, never a message.
UNKNOWN_STATUS = "unknown"
# a gate's `status` takes up to 40 characters (controller/gates/models.py): every label can be gated on
STATUS_MAX_CHARS = 40
_SCAN_CHARS = 4096
_NOT_WORD = re.compile(r"\W")
_DOTTED = r"[^\W\d]\w*(?:\.[^\W\d]\w*)*"  # module.path.ClassName (Unicode identifiers too)
# The repr and str forms an exception reaches the master in (a worker sends repr strings):
_CLASS_FORMS = (
    re.compile(rf"({_DOTTED})\("),  # ClassName(...), module.ClassName(...): the default repr
    re.compile(rf"<({_DOTTED}) object at 0x"),  # <module.ClassName object at 0x....>: object.__repr__
    # <_InactiveRpcError of RPC ...> (gRPC), <ClassName>; the capital (after any leading
    # underscores) keeps markup such as "<html>" or "<!DOCTYPE" from being read as a class
    re.compile(rf"<((?:{_DOTTED}\.)?_*[^\W\d_a-z]\w*)[\s>]"),
    re.compile(rf"((?:{_DOTTED}\.)?_*[^\W\d_a-z]\w*)(?::\s|:?$)"),  # module.ClassName: msg (traceback)
)


def failure_status(error: object) -> str:
    """HTTP status of a failed request, or its exception's class name when there was none.

    A master sees each error as the repr string a worker sent (Locust's stats reports carry
    StatsError.parse_error(repr(exception))); a local runner keeps the exception itself, whose class
    we can name directly. 'unknown' only when the error names no class at all (a bare message).
    """
    # only the head can hold a status or a class name; the cap keeps a megabyte repr cheap to scan
    head = _text(error).strip()[:_SCAN_CHARS]
    for pattern in _STATUS_PATTERNS:
        match = pattern.match(head)
        if match:
            return match.group(1)
    if isinstance(error, BaseException):
        return _label(type(error).__name__)
    for form in _CLASS_FORMS:
        match = form.match(head)
        if match:
            return _label(match.group(1).rsplit(".", 1)[-1])
    return UNKNOWN_STATUS


def _text(error: object) -> str:
    """The error as a worker would have sent it (its repr); a broken __repr__ is no reason to fail."""
    if error is None or isinstance(error, str):
        return error or ""
    try:
        return repr(error)
    except Exception:  # a locustfile's exception class can do anything in its __repr__
        return ""


def _label(class_name: str) -> str:
    """A class name as a bounded label value: word characters only, at most STATUS_MAX_CHARS."""
    return _NOT_WORD.sub("_", class_name)[:STATUS_MAX_CHARS] or UNKNOWN_STATUS


@dataclass(frozen=True)
class StatsSnapshot:
    """Copies of what the request families are built from, taken on Locust's event loop in one go
    (no greenlet switch in between: consistent, and a worker report cannot change it half-read).
    Building and encoding the families from it can then run in another OS thread."""

    taken_at: float
    version: tuple[Any, ...]
    entries: list[tuple[tuple[str, str], int, dict[float, int], float]]
    errors: list[tuple[str, str, object, int]]
    failed: dict[tuple[str, str], tuple[dict[int, int], float]] | None
    other: list[Metric]  # the small families (runner gauges, custom metrics), built on the loop


class LatencyFamily(Protocol):
    """Builds one latency metric family from {labels: ({rounded ms: count}, total ms)}: the one
    switch between the classic histogram and another encoding (a native histogram)."""

    def __call__(self, name: str, documentation: str, series: Mapping[LabelValues, Times]) -> Metric: ...


LabelValues = tuple[str, str, str]  # run_id, name, method
Times = tuple[dict[float, int], float]


@dataclass(frozen=True)
class ClassicLatency:
    """A classic histogram with histogram.py's buckets (one series per bucket, name and method)."""

    bounds_ms: tuple[float, ...]

    def __call__(self, name: str, documentation: str, series: Mapping[LabelValues, Times]) -> Metric:
        bounds = list(self.bounds_ms)
        rows = []
        for label_values, (times, total_ms) in sorted(series.items()):
            rows.append(
                (label_values, cumulative_counts(times, bounds), sum(times.values()), total_ms / 1000)
            )
        return ClassicHistogram(name, documentation, tuple(_le(b / 1000) for b in bounds), rows)


@dataclass(frozen=True)
class NativeLatency:
    """A native histogram (native_histogram.py): one series per name and method, whatever the spread."""

    def __call__(self, name: str, documentation: str, series: Mapping[LabelValues, Times]) -> Metric:
        rows = ((labels, times, total_ms) for labels, (times, total_ms) in sorted(series.items()))
        return native_histogram_family(name, documentation, ("run_id", "name", "method"), rows)


HistogramRow = tuple[LabelValues, list[int], int, float]  # labels, cumulative counts, count, sum


class ClassicHistogram(Metric):
    """A histogram family that writes its own text-format lines (text()): prometheus_client's
    encoders take ~20 us per sample, and the buckets are most of a run's samples (a second per
    scrape at 200 names). Generic encoders still get `samples`, built when they ask."""

    def __init__(self, name: str, documentation: str, le: tuple[str, ...], rows: list[HistogramRow]) -> None:
        super().__init__(name, documentation, "histogram")
        self.le = le
        self.rows = rows

    @property
    def samples(self) -> list[Sample]:
        out = []
        for (run_id, name, method), cumulative, count, total in self.rows:
            labels = {"run_id": run_id, "name": name, "method": method}
            for le, value in [*zip(self.le, cumulative, strict=True), ("+Inf", count)]:
                out.append(Sample(self.name + "_bucket", {**labels, "le": le}, value))
            out.append(Sample(self.name + "_count", labels, count))
            out.append(Sample(self.name + "_sum", labels, total))
        return out

    @samples.setter
    def samples(self, _value: list[Sample]) -> None:
        pass  # Metric.__init__ sets [] ; the rows are the samples

    def text(self) -> str:
        """The family in Prometheus' text format 0.0.4, as generate_latest would write it."""
        name = self.name
        lines = [f"# HELP {name} {_help(self.documentation)}\n# TYPE {name} histogram\n"]
        suffixes = [f'le="{le}"}} ' for le in (*self.le, "+Inf")]
        for (run_id, label_name, method), cumulative, count, total in self.rows:
            labels = f'method="{_escape(method)}",name="{_escape(label_name)}",run_id="{_escape(run_id)}"'
            bucket = f"{name}_bucket{{{labels},"
            lines.extend(
                f"{bucket}{suffix}{value}\n"
                for suffix, value in zip(suffixes, [*cumulative, count], strict=True)
            )
            lines.append(
                f"{name}_count{{{labels}}} {count}\n{name}_sum{{{labels}}} {floatToGoString(total)}\n"
            )
        return "".join(lines)


def _escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace("\n", "\\n").replace('"', '\\"')


def _help(text: str) -> str:
    return text.replace("\\", "\\\\").replace("\n", "\\n")


class LocustCollector(Collector):
    """Yields metric families from `environment.runner.stats`: snapshot() on the event loop, then
    families(snapshot) anywhere (exposition.py does that in an OS thread and caches the result)."""

    def __init__(
        self,
        environment: Any,
        *,
        run_id: str,
        profile: str,
        max_names: int = DEFAULT_MAX_NAMES,
        latency_buckets: str = DEFAULT_LATENCY_BUCKETS,
        custom: CustomTotals | None = None,
        failed: FailedTimes | None = None,
        locustfile_end: LocustfileEnd | None = None,
    ) -> None:
        self.environment = environment
        self.locustfile_end = locustfile_end
        self.custom = custom
        self.failed = failed
        self.run_id = run_id
        self.profile = profile
        self.max_names = max_names
        native = latency_buckets == NATIVE_LATENCY
        self.bounds_ms = [] if native else bucket_bounds_ms(resolution_of(latency_buckets))
        self.latency: LatencyFamily = NativeLatency() if native else ClassicLatency(tuple(self.bounds_ms))
        self.test_started_at: float | None = None
        self.test_stopped_at: float | None = None
        self.last_scrape_at = 0.0
        self.reports = 0  # worker reports received: custom metrics and failed times come with them
        environment.events.worker_report.add_listener(self._on_report)

    def _on_report(self, **_kw: Any) -> None:
        self.reports += 1

    def collect(self) -> Iterator[Metric]:
        snapshot = self.snapshot()
        if snapshot is not None:
            yield from self.families(snapshot)
            self.last_scrape_at = snapshot.taken_at

    def version(self) -> tuple[Any, ...] | None:
        """Changes whenever the numbers a scrape shows change (cheap: no copies), None without a
        runner. Worker reports move the totals; the rest are the run's own moments."""
        runner = self.environment.runner
        if runner is None:
            return None
        total = runner.stats.total
        end = self.locustfile_end
        return (
            self.reports,
            total.num_requests,
            total.num_failures,
            total.last_request_timestamp,
            len(runner.stats.entries),
            len(runner.stats.errors),
            runner.state,
            runner.user_count,
            current_phase(self.environment.shape_class),
            self.test_started_at,
            self.test_stopped_at,
            None if end is None else (end.exit_code, end.stopped_at),
        )

    def snapshot(self) -> StatsSnapshot | None:
        """Everything a scrape shows, copied: runs on the event loop and must not yield to it."""
        version = self.version()
        runner = self.environment.runner
        if version is None:
            return None
        entries = [
            (key, entry.num_requests, dict(entry.response_times), entry.total_response_time)
            for key, entry in list(runner.stats.entries.items())
        ]
        errors = [
            (e.name, e.method or "", e.error, e.occurrences) for e in list(runner.stats.errors.values())
        ]
        other = list(self._runner_metrics(runner))
        if self.custom is not None:
            other += self.custom.metric_families(self.run_id)
        if self.locustfile_end is not None:
            other += self._locustfile_end_metrics(self.locustfile_end)
        failed = self.failed.totals() if self.failed is not None else None
        return StatsSnapshot(time.time(), version, entries, errors, failed, other)

    def families(self, snapshot: StatsSnapshot) -> list[Metric]:
        """The metric families of a snapshot; reads nothing else, so any thread may call it."""
        allowed = self._bounded_names(name for (name, _method), *_rest in snapshot.entries)
        out = self._request_metrics(snapshot.entries, allowed)
        if snapshot.failed is not None:
            out.append(self._failed_latency_metric(snapshot.failed, allowed))
        out.append(self._failure_metric(snapshot.errors, allowed))
        return out + snapshot.other

    def _bounded_names(self, names: Any) -> set[str]:
        # Raw URLs as names would make series unbounded; past the cap, fold them into one name.
        return set(sorted(set(names))[: self.max_names])

    def _request_metrics(self, entries: list[Any], allowed: set[str]) -> list[Metric]:
        labels = ["run_id", "name", "method"]
        requests = CounterMetricFamily(REQUESTS_TOTAL, "Requests sent, failed or not.", labels=labels)
        counts: dict[LabelValues, int] = {}
        series: dict[LabelValues, Times] = {}
        for (name, method), num_requests, times, total_ms in entries:
            key = (self.run_id, name if name in allowed else OTHER_NAME, method or "")
            counts[key] = counts.get(key, 0) + num_requests
            _merge_into(series, key, times, total_ms)
        for key, count in sorted(counts.items()):
            requests.add_metric(list(key), count)
        return [requests, self.latency(RESPONSE_TIME_SECONDS, "Response time of requests.", series)]

    def _failed_latency_metric(
        self, failed: Mapping[tuple[str, str], tuple[Mapping[Any, int], float]], allowed: set[str]
    ) -> Metric:
        series: dict[LabelValues, Times] = {}
        for (name, method), (failed_times, total_ms) in failed.items():
            _merge_into(
                series, (self.run_id, name if name in allowed else OTHER_NAME, method), failed_times, total_ms
            )
        return self.latency(
            FAILED_RESPONSE_TIME_SECONDS,
            f"Response time of failed requests (also counted in {RESPONSE_TIME_SECONDS}).",
            series,
        )

    def _failure_metric(self, errors: list[tuple[str, str, object, int]], allowed: set[str]) -> Metric:
        family = CounterMetricFamily(
            REQUEST_FAILURES_TOTAL,
            "Failed requests by HTTP status or exception.",
            labels=["run_id", "name", "method", "status"],
        )
        totals: dict[tuple[str, str, str], int] = defaultdict(int)
        for error_name, method, error, occurrences in errors:
            name = error_name if error_name in allowed else OTHER_NAME
            totals[(name, method, failure_status(error))] += occurrences
        for (name, method, status), count in sorted(totals.items()):
            family.add_metric([self.run_id, name, method, status], count)
        return family

    def _runner_metrics(self, runner: Any) -> Iterator[Metric]:
        users = GaugeMetricFamily(USERS, "Users currently running.", labels=["run_id"])
        users.add_metric([self.run_id], runner.user_count)
        yield users

        clients = getattr(runner, "clients", None)
        if clients is not None:
            nodes = list(clients.values())
            workers = GaugeMetricFamily(WORKERS, "Workers by state.", labels=["run_id", "state"])
            for state in WORKER_STATES:
                workers.add_metric([self.run_id, state], sum(1 for n in nodes if n.state == state))
            yield workers
            cpu = GaugeMetricFamily(
                WORKER_CPU_PERCENT, "CPU use of each worker process.", labels=["run_id", "worker"]
            )
            for node in nodes:
                cpu.add_metric([self.run_id, node.id], node.cpu_usage)
            yield cpu

        shape = self.environment.shape_class
        # A test stopped before its stage table ended (the locustfile's runner.quit(), Ctrl-C) is
        # off the table, though the shape still names the stage it was in: the runner's state says so.
        on_table = runner.state not in _STOPPED_STATES
        phase = (current_phase(shape) if on_table else None) or _runner_phase(runner.state)
        info = GaugeMetricFamily(
            RUN_INFO, "1 for the run's current phase.", labels=["run_id", "profile", "phase"]
        )
        info.add_metric([self.run_id, self.profile, phase], 1)
        yield info

        stage_starts = GaugeMetricFamily(
            STAGE_START_TIMESTAMP_SECONDS,
            "Unix time each stage of the stage table (or phase of the locustfile's own shape) began.",
            labels=["run_id", "stage", "phase"],
        )
        for index, phase_name, started in phase_starts(shape):
            stage_starts.add_metric([self.run_id, str(index), phase_name], started)
        yield stage_starts

        moments = (
            (TEST_START_TIMESTAMP_SECONDS, self.test_started_at, "Unix time the test started."),
            (TEST_STOP_TIMESTAMP_SECONDS, self.test_stopped_at, "Unix time the test stopped."),
        )
        for metric, value, description in moments:
            if value is not None:
                family = GaugeMetricFamily(metric, description, labels=["run_id"])
                family.add_metric([self.run_id], value)
                yield family

    def _locustfile_end_metrics(self, end: LocustfileEnd) -> Iterator[Metric]:
        if end.exit_code is not None:
            code = GaugeMetricFamily(
                PROCESS_EXIT_CODE,
                "The exit code the locustfile asked for (environment.process_exit_code).",
                labels=["run_id", "message"],
            )
            code.add_metric([self.run_id, end.exit_message], end.exit_code)
            yield code
        if end.stopped_at is not None:
            stop = GaugeMetricFamily(
                LOCUSTFILE_STOP_TIMESTAMP_SECONDS,
                "Unix time the locustfile stopped the test itself (runner.quit()), and where.",
                labels=["run_id", "caller", "message"],
            )
            stop.add_metric([self.run_id, end.stopped_by, end.stop_message], end.stopped_at)
            yield stop


_STOPPED_STATES = ("stopping", "stopped", "cleanup")  # locust.runners.STATE_STOPPING, ...


def _merge_into(
    series: dict[LabelValues, Times], key: LabelValues, times: Mapping[Any, int], total_ms: float
) -> None:
    # names past the cap fold into one series: their times add up
    if key not in series:
        series[key] = (dict(times), total_ms)
        return
    merged, total = series[key]
    merged = dict(merged)
    for value, n in times.items():
        merged[value] = merged.get(value, 0) + n
    series[key] = (merged, total + total_ms)


def _runner_phase(state: str) -> str:
    return "run" if state in ("spawning", "running") else state


def _le(seconds: float) -> str:
    text = f"{seconds:.6f}".rstrip("0")
    return text + "0" if text.endswith(".") else text
