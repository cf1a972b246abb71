"""Gate -> PromQL, pure. Every term is pinned to its window with the `@` modifier, so a gate means
the same thing whenever (and against whichever Prometheus) it is evaluated.

A window can be several segments (a staged profile has several `steady` stages): counts and
histogram buckets are summed over the segments before the rate or quantile is taken.
"""

from __future__ import annotations

from collections.abc import Sequence

from controller.gates.models import Gate
from controller.models import PhaseWindow

Segment = tuple[float, float]
SEGMENT_LABEL = "loadctl_segment"
QUANTILES = {"latency_p50_ms": 0.5, "latency_p90_ms": 0.9, "latency_p95_ms": 0.95, "latency_p99_ms": 0.99}


class WindowError(ValueError):
    """The run has no such window (e.g. a gate on `steady` for a run that never reached it)."""


def window_segments(
    window: str, *, phases: Sequence[PhaseWindow], started_at: float | None, ended_at: float | None
) -> tuple[Segment, ...]:
    """`run` is start..end; a phase name is every stage with that phase, adjacent ones merged."""
    if window == "run":
        if started_at is None or ended_at is None or ended_at <= started_at:
            raise WindowError("the run has no start and end times")
        return ((started_at, ended_at),)
    segments: list[Segment] = []
    for phase in sorted(phases, key=lambda p: p.start):
        if phase.phase != window or phase.end <= phase.start:
            continue
        if segments and abs(segments[-1][1] - phase.start) < 1e-6:
            segments[-1] = (segments[-1][0], phase.end)
        else:
            segments.append((phase.start, phase.end))
    if not segments:
        known = ", ".join(sorted({p.phase for p in phases})) or "none"
        raise WindowError(f"the run has no '{window}' phase (phases: {known}; or use window: run)")
    return tuple(segments)


def _duration(seconds: float) -> str:
    return f"{max(1, round(seconds * 1000))}ms"


def _selector(metric: str, run_id: str, labels: str, extra: str = "") -> str:
    matchers = [f'run_id="{run_id}"', *(m for m in (labels, extra) if m)]
    return f"{metric}{{{', '.join(matchers)}}}"


def _summed(selector: str, segments: Sequence[Segment], by: str = "") -> str:
    """sum(increase(...)) over the window's segments.

    Several segments are joined as a union, each series tagged with its segment so none collapses
    into another, then aggregated once: a series present in only one segment (a status that first
    appears in the second steady stage) still counts, and with no series anywhere the result stays
    empty, so the gate fails closed. (Adding per-segment sums with `+` would drop such series.)
    """
    increases = [f"increase({selector}[{_duration(end - start)}] @ {end:.3f})" for start, end in segments]
    if len(increases) == 1:
        return f"sum{by}({increases[0]})"
    tagged = [f'label_replace({term}, "{SEGMENT_LABEL}", "{i}", "", "")' for i, term in enumerate(increases)]
    return f"sum{by}(" + " or ".join(tagged) + ")"


def compile_gate(gate: Gate, *, run_id: str, segments: Sequence[Segment]) -> str:
    if gate.promql is not None:
        start, end = segments[0][0], segments[-1][1]
        return (
            gate.promql.replace("$run_id", run_id)
            .replace("$__range", _duration(end - start))
            .replace("$start", f"{start:.3f}")
            .replace("$end", f"{end:.3f}")
        )
    metric = gate.metric
    requests = _summed(_selector("locust_requests_total", run_id, gate.labels), segments)
    if metric in QUANTILES:
        buckets = _summed(
            _selector("locust_response_time_seconds_bucket", run_id, gate.labels), segments, by=" by (le) "
        )
        return f"1000 * histogram_quantile({QUANTILES[metric]}, {buckets})"
    if metric == "requests":
        return requests
    if metric == "rps":
        seconds = sum(end - start for start, end in segments)
        return f"{requests} / {seconds:.3f}"
    status = f'status="{gate.status}"' if metric == "status_rate" else ""
    failed = _summed(_selector("locust_request_failures_total", run_id, gate.labels, status), segments)
    # No failure series means zero failures, but only when there were requests: with neither,
    # the query stays empty and the gate fails closed.
    failures = f"({failed} or 0 * {requests})"
    if metric == "failures":
        return failures
    return f"{failures} / {requests}"  # error_rate, status_rate
