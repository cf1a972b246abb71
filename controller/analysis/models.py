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
    """One hold of the stage table: `users` held from `start` (their ramp done) to `end`."""

    users: int
    start: float
    end: float


class Step(_Frozen):
    users: int
    start: float
    end: float
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


class Analysis(_Frozen):
    """analysis.json. `error` says why the analysis is missing or partial (it never judges a run)."""

    phases: tuple[PhaseFigures, ...] = ()
    timeline: Timeline | None = None
    steps: tuple[Step, ...] = ()
    slo: SloUsed | None = None
    breaking_point: BreakingPoint | None = None
    capacity: Capacity | None = None
    error: str | None = None
