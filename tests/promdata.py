"""Known, deterministic Prometheus data for integration tests: synthetic load-test runs.

A `SyntheticRun` describes a run as phases; each phase gives, per request name, constant rates:
requests/s, failures/s per status and the latency distribution as requests/s per histogram bucket.
`openmetrics()` turns runs into the series Locust's exporter (plus a server's own gauges) would
have produced, sampled every second, as OpenMetrics text for `promtool tsdb create-blocks-from`;
`SyntheticRun.record()` is the matching run.json, so gates get exactly the windows of a real run.

Time layout of a run starting at S (a whole second) with phases of d1, d2, ... seconds:
  - one sample per series at every whole second S, S+1, ..., S+sum(d), for every series;
  - counters grow linearly inside a phase at that phase's rate; a counter's value at time t is what
    was counted during (S, t], so the sample at a phase boundary closes the phase that ends there;
  - gauges follow the same rule: the sample at a boundary carries the value of the phase that ends
    there (the first sample, at S, the first phase's), except the optional one-sample peak.
With samples on both edges of every phase window, Prometheus 2.x `increase(x[d] @ end)` over a
window is exactly counter(end) - counter(start): no extrapolation is involved.

`lazy=True` makes series appear as Locust's exporter shows them: a request name's series (requests
and its whole histogram) from the first sample where it has requests, a failure series from the
first sample where that status has failed. Otherwise every series starts at S with value 0.
"""

from __future__ import annotations

import math
import subprocess
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path

import httpx

from controller.models import PhaseWindow, RunRecord
from controller.prom.binaries import find_promtool
from controller.prom.config import empty_config
from controller.prom.server import PrometheusServer

# Upper bounds of the latency buckets (seconds); every Traffic.latency has one count per bound.
LE: tuple[float, ...] = (0.01, 0.05, 0.1, 0.5, 1.0, math.inf)
PG_POOL_SIZE = 20.0
# What one observation in each bucket adds to the histogram's _sum (seconds).
_TYPICAL_S: tuple[float, ...] = (0.005, 0.03, 0.075, 0.3, 0.75, 2.0)


def start_time() -> int:
    """A whole hour three hours ago: accepted by promtool and Prometheus, far from any retention."""
    return int(time.time()) // 3600 * 3600 - 3 * 3600


def le_label(bound: float) -> str:
    """As the exporter writes `le`: 0.01, 0.5, 1.0, +Inf."""
    if math.isinf(bound):
        return "+Inf"
    text = f"{bound:.6f}".rstrip("0")
    return text + "0" if text.endswith(".") else text


@dataclass(frozen=True)
class Traffic:
    """One request name during one phase: constant rates per second."""

    rps: float
    latency: tuple[float, ...]  # requests/s landing in each bucket of LE (not cumulative)
    failures: Mapping[str, float] = field(default_factory=dict)  # status -> failures/s
    method: str = "GET"

    def __post_init__(self) -> None:
        if len(self.latency) != len(LE):
            raise ValueError(
                f"latency needs {len(LE)} per-bucket rates (one per LE), got {len(self.latency)}"
            )
        if not math.isclose(sum(self.latency), self.rps, rel_tol=0, abs_tol=1e-12):
            raise ValueError(f"latency rates add up to {sum(self.latency)}, not rps {self.rps}")
        if sum(self.failures.values()) > self.rps:
            raise ValueError("more failures than requests")


@dataclass(frozen=True)
class Phase:
    phase: str
    duration: int  # whole seconds
    traffic: Mapping[str, Traffic]  # request name -> its rates
    pool_ratio: float = 0.0  # demo_pool_in_use_ratio during this phase
    pg_busy: float = 0.0  # loadctl_postgres_connections{state="active"} (with SyntheticRun.pg_idle)


@dataclass(frozen=True)
class SyntheticRun:
    run_id: str
    start: int  # unix seconds
    phases: tuple[Phase, ...]
    pool_peak: tuple[int, float] | None = None  # (seconds after start, value) of a one-sample peak
    upstream_unreachable: Mapping[str, float] = field(default_factory=dict)  # upstream -> gauge value
    lazy: bool = False
    # A server process' RSS growing linearly from the start: (bytes at the start, bytes per hour);
    # None: no such series. A known leak for drift_per_hour and analysis.json's drift.
    rss: tuple[float, float] | None = None
    # PostgreSQL probe "db": this many idle connections throughout, each phase's pg_busy active, a
    # pool of PG_POOL_SIZE; None: no such series.
    pg_idle: float | None = None

    def __post_init__(self) -> None:
        methods: dict[str, str] = {}
        for phase in self.phases:
            if phase.duration <= 0 or int(phase.duration) != phase.duration:
                raise ValueError("phase durations are whole seconds > 0")
            for name, traffic in phase.traffic.items():
                if methods.setdefault(name, traffic.method) != traffic.method:
                    raise ValueError(f"request name {name!r} changes method between phases")

    # --- time layout -------------------------------------------------------------------------

    @property
    def duration(self) -> int:
        return sum(p.duration for p in self.phases)

    @property
    def end(self) -> int:
        return self.start + self.duration

    def bounds(self) -> list[tuple[int, int]]:
        """(start, end) unix seconds of each phase."""
        spans: list[tuple[int, int]] = []
        at = self.start
        for phase in self.phases:
            spans.append((at, at + phase.duration))
            at += phase.duration
        return spans

    def times(self) -> range:
        return range(self.start, self.end + 1)

    def _phase_at(self, t: int) -> int:
        """Index of the phase a sample at `t` belongs to: the one ending at a boundary."""
        for index, (_, end) in enumerate(self.bounds()):
            if t <= end:
                return index
        raise ValueError(f"{t} is after the run")

    def _integral(self, t: int, rate: Callable[[Phase], float]) -> float:
        """sum over phases of rate(phase) * seconds of that phase inside (start, t]."""
        total = 0.0
        for phase, (begin, end) in zip(self.phases, self.bounds(), strict=True):
            seconds = min(t, end) - begin
            if seconds > 0:
                total += rate(phase) * seconds
        return total

    # --- series --------------------------------------------------------------------------------

    def request_series(self) -> list[tuple[str, str]]:
        """(name, method) of every request name, sorted."""
        return sorted({(n, t.method) for p in self.phases for n, t in p.traffic.items()})

    def failure_series(self) -> list[tuple[str, str, str]]:
        return sorted(
            {(n, t.method, s) for p in self.phases for n, t in p.traffic.items() for s in t.failures}
        )

    def requests_at(self, t: int, name: str) -> float:
        return self._integral(t, lambda p: p.traffic[name].rps if name in p.traffic else 0.0)

    def failures_at(self, t: int, name: str, status: str) -> float:
        return self._integral(
            t, lambda p: p.traffic[name].failures.get(status, 0.0) if name in p.traffic else 0.0
        )

    def bucket_at(self, t: int, name: str, index: int) -> float:
        """Cumulative count of bucket LE[index] (observations <= LE[index]) at `t`."""
        return self._integral(
            t, lambda p: sum(p.traffic[name].latency[: index + 1]) if name in p.traffic else 0.0
        )

    def latency_sum_at(self, t: int, name: str) -> float:
        return self._integral(
            t,
            lambda p: (
                sum(c * s for c, s in zip(p.traffic[name].latency, _TYPICAL_S, strict=True))
                if name in p.traffic
                else 0.0
            ),
        )

    def pool_ratio_at(self, t: int) -> float:
        if self.pool_peak is not None and t == self.start + self.pool_peak[0]:
            return self.pool_peak[1]
        return self.phases[self._phase_at(t)].pool_ratio

    def rss_at(self, t: int) -> float:
        assert self.rss is not None
        return self.rss[0] + self.rss[1] * (t - self.start) / 3600

    def pg_connections_at(self, t: int) -> dict[str, float]:
        assert self.pg_idle is not None
        return {"active": self.phases[self._phase_at(t)].pg_busy, "idle": self.pg_idle}

    def first_sample(self, counter: Callable[[int], float]) -> int:
        """Time of a series' first sample: the start, or (lazy) its first non-zero value."""
        if not self.lazy:
            return self.start
        return next((t for t in self.times() if counter(t) > 0), self.end + 1)

    # --- the run record --------------------------------------------------------------------------

    def record(self, *, profile: str = "known") -> RunRecord:
        """run.json as the controller writes it after the run."""
        requests = sum(self.requests_at(self.end, n) for n, _ in self.request_series())
        failures = sum(self.failures_at(self.end, n, s) for n, _, s in self.failure_series())
        return RunRecord(
            run_id=self.run_id,
            profile=profile,
            profile_file=None,
            locustfile="synthetic.py",
            host="http://127.0.0.1:9",
            backend="local",
            workers=1,
            planned_duration_s=float(self.duration),
            started_at=float(self.start),
            ended_at=float(self.end),
            phases=tuple(
                PhaseWindow(stage=i, phase=p.phase, start=float(b), end=float(e))
                for i, (p, (b, e)) in enumerate(zip(self.phases, self.bounds(), strict=True))
            ),
            verdict="no_gates",
            exit_code=0,
            requests=round(requests),
            failures=round(failures),
            loadctl_version="0.1.0",
        )


def _fmt(value: float) -> str:
    if math.isinf(value):
        return "+Inf" if value > 0 else "-Inf"
    return repr(float(value))


def _labels(pairs: Sequence[tuple[str, str]]) -> str:
    inner = ",".join(f'{k}="{v}"' for k, v in pairs)
    return "{" + inner + "}"


def _series(lines: list[str], metric: str, labels: Sequence[tuple[str, str]], points) -> None:
    text = metric + _labels(labels)
    lines.extend(f"{text} {_fmt(v)} {t}" for t, v in points)


def openmetrics(runs: Sequence[SyntheticRun]) -> str:
    """OpenMetrics text with every run's series: families contiguous, each series in time order."""
    lines: list[str] = []

    def family(name: str, kind: str, help_text: str) -> None:
        lines.append(f"# HELP {name} {help_text}")
        lines.append(f"# TYPE {name} {kind}")

    family("locust_requests", "counter", "Requests sent, failed or not.")
    for run in runs:
        for name, method in run.request_series():
            since = run.first_sample(partial(run.requests_at, name=name))
            _series(
                lines,
                "locust_requests_total",
                [("run_id", run.run_id), ("name", name), ("method", method)],
                ((t, run.requests_at(t, name)) for t in run.times() if t >= since),
            )

    family("locust_request_failures", "counter", "Failed requests by HTTP status or exception.")
    for run in runs:
        for name, method, status in run.failure_series():
            since = run.first_sample(partial(run.failures_at, name=name, status=status))
            _series(
                lines,
                "locust_request_failures_total",
                [("run_id", run.run_id), ("name", name), ("method", method), ("status", status)],
                ((t, run.failures_at(t, name, status)) for t in run.times() if t >= since),
            )

    family("locust_response_time_seconds", "histogram", "Response time of requests.")
    for run in runs:
        for name, method in run.request_series():
            since = run.first_sample(partial(run.requests_at, name=name))
            base = [("run_id", run.run_id), ("name", name), ("method", method)]
            visible = [t for t in run.times() if t >= since]
            for index, bound in enumerate(LE):
                _series(
                    lines,
                    "locust_response_time_seconds_bucket",
                    [*base, ("le", le_label(bound))],
                    ((t, run.bucket_at(t, name, index)) for t in visible),
                )
            _series(
                lines,
                "locust_response_time_seconds_count",
                base,
                ((t, run.requests_at(t, name)) for t in visible),
            )
            _series(
                lines,
                "locust_response_time_seconds_sum",
                base,
                ((t, run.latency_sum_at(t, name)) for t in visible),
            )

    family("locust_stage_start_timestamp_seconds", "gauge", "Unix time each stage of the stage table began.")
    for run in runs:
        for stage, (phase, (begin, _)) in enumerate(zip(run.phases, run.bounds(), strict=True)):
            _series(
                lines,
                "locust_stage_start_timestamp_seconds",
                [("run_id", run.run_id), ("stage", str(stage)), ("phase", phase.phase)],
                ((t, float(begin)) for t in run.times() if t >= begin),
            )

    family("locust_test_start_timestamp_seconds", "gauge", "Unix time the test started.")
    for run in runs:
        _series(
            lines,
            "locust_test_start_timestamp_seconds",
            [("run_id", run.run_id)],
            ((t, float(run.start)) for t in run.times()),
        )

    family("locust_test_stop_timestamp_seconds", "gauge", "Unix time the test stopped.")
    for run in runs:
        _series(
            lines, "locust_test_stop_timestamp_seconds", [("run_id", run.run_id)], [(run.end, float(run.end))]
        )

    family("demo_pool_in_use_ratio", "gauge", "Share of the server's worker pool in use.")
    for run in runs:
        _series(
            lines,
            "demo_pool_in_use_ratio",
            [("run_id", run.run_id)],
            ((t, run.pool_ratio_at(t)) for t in run.times()),
        )

    family("demo_upstream_unreachable", "gauge", "1 while the server cannot reach an upstream.")
    for run in runs:
        for upstream, value in sorted(run.upstream_unreachable.items()):
            _series(
                lines,
                "demo_upstream_unreachable",
                [("run_id", run.run_id), ("upstream", upstream)],
                ((t, value) for t in run.times()),
            )

    family("loadctl_process_resident_memory_bytes", "gauge", "RSS of the server's process.")
    for run in runs:
        if run.rss is not None:
            _series(
                lines,
                "loadctl_process_resident_memory_bytes",
                [("run_id", run.run_id), ("probe", "server")],
                ((t, run.rss_at(t)) for t in run.times()),
            )

    family("loadctl_postgres_connections", "gauge", "Client connections by state.")
    for run in runs:
        if run.pg_idle is not None:
            for state in ("active", "idle"):
                _series(
                    lines,
                    "loadctl_postgres_connections",
                    [("run_id", run.run_id), ("probe", "db"), ("state", state)],
                    ((t, run.pg_connections_at(t)[state]) for t in run.times()),
                )
    family("loadctl_postgres_pool_utilization_ratio", "gauge", "Connections / pool size.")
    for run in runs:
        if run.pg_idle is not None:
            _series(
                lines,
                "loadctl_postgres_pool_utilization_ratio",
                [("run_id", run.run_id), ("probe", "db")],
                ((t, sum(run.pg_connections_at(t).values()) / PG_POOL_SIZE) for t in run.times()),
            )

    lines.append("# EOF")
    return "\n".join(lines) + "\n"


def build_tsdb(openmetrics_text: str, tsdb_dir: Path) -> Path:
    """Write the text next to `tsdb_dir` and turn it into TSDB blocks inside it. Returns the file."""
    tsdb_dir.mkdir(parents=True, exist_ok=True)
    source = tsdb_dir.with_name(tsdb_dir.name + ".om")
    source.write_text(openmetrics_text, encoding="utf-8")
    done = subprocess.run(
        [find_promtool(), "tsdb", "create-blocks-from", "openmetrics", str(source), str(tsdb_dir)],
        capture_output=True,
        text=True,
        timeout=120,
        stdin=subprocess.DEVNULL,
    )
    if done.returncode != 0:
        raise RuntimeError(
            f"promtool tsdb create-blocks-from openmetrics failed ({done.returncode}): "
            f"{(done.stdout + done.stderr)[-2000:]}"
        )
    if not any(p.is_dir() for p in tsdb_dir.iterdir()):
        raise RuntimeError(f"promtool created no block in {tsdb_dir}: {done.stdout[-2000:]}")
    return source


@contextmanager
def serve_tsdb(tsdb_dir: Path, tmp_dir: Path) -> Iterator[httpx.Client]:
    """A real Prometheus serving `tsdb_dir` (blocks are loaded at startup); stopped on exit."""
    server = PrometheusServer(
        config=empty_config(),
        config_path=tmp_dir / "prometheus.yml",
        data_dir=tsdb_dir,
        log_path=tmp_dir / "prometheus.log",
    )
    server.start()
    try:
        with server.client() as client:
            yield client
    finally:
        server.stop()
