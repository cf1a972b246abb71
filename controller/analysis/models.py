"""analysis.json's shape (a contract: names fixed, new fields may be added), and what one window
measured. Pure data."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict

Direction = Literal["rising", "falling", "flat"]


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class WindowFigures(_Frozen):
    """What the run's Prometheus says about one window, measured as the gates measure it.

    requests None: no request series in the window (no data). Latencies are of successful requests
    (the latency gates' default), None when there were none.
    """

    start: float
    end: float
    requests: float | None
    failures_by_status: dict[str, float] = {}
    p50_ms: float | None = None
    p95_ms: float | None = None
    p99_ms: float | None = None

    @property
    def failures(self) -> float:
        return sum(self.failures_by_status.values())

    @property
    def rps(self) -> float | None:
        """Successful requests per second, as the `rps` gate counts them."""
        seconds = self.end - self.start
        if self.requests is None or seconds <= 0:
            return None
        return (self.requests - self.failures) / seconds

    @property
    def error_rate(self) -> float | None:
        """Failures / requests, as the `error_rate` gate; None without requests."""
        if not self.requests:
            return None
        return self.failures / self.requests


class PhaseFigures(_Frozen):
    """One stage-table segment as it ran: `users` is what the plan held at its end."""

    phase: str
    stage: int
    start: float
    end: float
    users: int
    requests: float | None
    failures: float
    rps: float | None
    p50_ms: float | None
    p95_ms: float | None
    p99_ms: float | None
    error_rate: float | None
    failures_by_status: dict[str, float]  # status -> failures of that status / requests


class Slice(_Frozen):
    start: float
    end: float
    requests: float | None
    rps: float | None
    p95_ms: float | None
    error_rate: float | None


class TrendFit(_Frozen):
    """A least-squares line through one figure's slices: its change over the run vs its mean."""

    direction: Direction
    slices_with_data: int
    mean: float | None = None
    change: float | None = None  # slope * the run's duration (first slice's middle to the last's)
    relative_change: float | None = None  # change / mean


class Timeline(_Frozen):
    slices: tuple[Slice, ...]
    trend: dict[str, Direction]  # "error_rate", "p95_ms"
    fit: dict[str, TrendFit]
    threshold: float  # |relative_change| above this is rising/falling
    rule: str  # the threshold in words


class StepWindow(_Frozen):
    """One hold of the stage table: `users` held from `start` (their ramp done) to `end`; or, `ramp`
    True, one bin of a ramp up: `users` planned at its `end`."""

    users: int
    start: float
    end: float
    ramp: bool = False


class Step(_Frozen):
    users: int
    start: float
    end: float
    ramp: bool = False  # a bin of a ramp (users planned at its end), not a hold
    rps: float | None
    p95_ms: float | None
    error_rate: float | None
    within_slo: bool | None  # None: not judged (the throughput rule judges only steps adding users)
    violation: str | None = None  # why it is not within


class SloUsed(_Frozen):
    """The SLO the steps were judged against, and where it came from."""

    source: Literal["profile", "gates", "throughput"]
    latency_p95_ms: float | None = None
    error_rate: float | None = None
    rule: str


class BreakingPoint(_Frozen):
    users: int
    rps: float | None
    reason: str


class Capacity(_Frozen):
    max_rps_within_slo: float | None  # the best step within the SLO
    users: int | None  # that step's users
    max_rps: float | None  # the best step of all


# --- stability, recovery, generator, charts, comparison (issue 12; filled in by their modules) ---

DriftVerdict = Literal["leak", "growing", "stable", "no_data"]  # growing: a leak's shape, too short
PoolVerdict = Literal["stable", "leak", "no_data"]


class Drift(_Frozen):
    """One watched gauge (one label set) after the warm-up: a least-squares line through its samples.

    growth_ratio_per_hour = slope_per_hour / the fitted value at the warm-up's end; `r_squared` is
    the fit quality (a leak must be sustained, not one jump).
    """

    metric: str
    labels: dict[str, str]
    samples: int
    first: float | None
    last: float | None
    peak: float | None
    slope_per_hour: float | None
    growth_ratio_per_hour: float | None
    r_squared: float | None
    verdict: DriftVerdict


class DriftReport(_Frozen):
    warmup_end: float  # samples before this are ignored (first stage, or 10 % of the run)
    rule: str  # the leak rule in words, thresholds included
    gauges: tuple[Drift, ...]


class PoolStability(_Frozen):
    """Connections before the load, at their peak, and after it: back to the pre-load level or not."""

    metric: str
    labels: dict[str, str]
    before: float | None  # the last sample before the load started
    peak: float | None
    after: float | None  # the first sample at least POOL_SETTLE_S (5 s) after the load stopped
    exhausted: bool | None  # utilisation reached 1 (or connections reached max) at any point
    verdict: PoolVerdict
    rule: str
    before_at: float | None = None  # when `before` was sampled: after the load's start = no pre-load sample
    after_at: float | None = None


class Recovery(_Frozen):
    """After a spike (a phase followed by a lower load): seconds until p95 and error rate are back
    within `tolerance` of their pre-spike level; None if they never were before the run ended."""

    spike_phase: str
    spike_stage: int
    spike_end: float
    before_p95_ms: float | None
    before_error_rate: float | None
    seconds: float | None
    tolerance: float
    rule: str
    window_s: float | None = None  # the probe windows' length
    until: float | None = None  # recovery was sought until here (the end of the stage after the spike)
    reason: str = ""  # how it recovered, or why seconds is None


class GeneratorHealth(_Frozen):
    """The load generator as it ran: what the verdict's generator check looked at."""

    workers_planned: int
    workers_lost: int | None
    max_worker_cpu_percent: float | None
    users_planned: int  # the stage table's peak
    users_reached: int | None  # locust_users' peak
    problems: tuple[str, ...] = ()


class ChartSeries(_Frozen):
    """One line on a chart: (unix time, value) points, None where Prometheus had no sample."""

    name: str  # legend text, e.g. "p95", "500", "rss demo_target"
    points: tuple[tuple[float, float | None], ...]


class Chart(_Frozen):
    key: str  # stable id: users, rps, latency, errors, or the gauge's metric name
    title: str
    unit: str  # "users", "req/s", "ms", "errors/s", "bytes", ...
    series: tuple[ChartSeries, ...]


class ComparisonRow(_Frozen):
    section: str  # "headline", "phase <name>", "endpoint <method> <name>"
    figure: str  # "rps", "p95_ms", "error_rate", ...
    baseline: float | None
    current: float | None
    change: float | None  # (current - baseline) / baseline; None when either is missing or 0
    noise: float | None  # the runs' own relative spread for this figure (per-slice), when known
    flagged: bool  # |change| beyond the noise (and a floor): worth a look


class Comparison(_Frozen):
    baseline_run_id: str
    baseline_dir: str
    comparable: bool
    differences: tuple[str, ...]  # what makes the runs not like for like (locustfile, stages, host)
    rule: str  # when a change is flagged, in words
    rows: tuple[ComparisonRow, ...]
    current_run_id: str | None = None  # the run compared with the baseline


class Analysis(_Frozen):
    """analysis.json. `error` says why the analysis is missing or partial (it never judges a run)."""

    phases: tuple[PhaseFigures, ...] = ()
    timeline: Timeline | None = None
    steps: tuple[Step, ...] = ()
    slo: SloUsed | None = None
    breaking_point: BreakingPoint | None = None
    capacity: Capacity | None = None
    drift: DriftReport | None = None
    pools: tuple[PoolStability, ...] = ()
    recovery: tuple[Recovery, ...] = ()
    generator: GeneratorHealth | None = None
    charts: tuple[Chart, ...] = ()
    comparison: Comparison | None = None
    steps_rule: str | None = None  # how the steps were cut from the stage table (holds, ramp bins)
    error: str | None = None
