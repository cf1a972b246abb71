"""Gate -> PromQL, pure. Every term is pinned to its window with the `@` modifier, so a gate means
the same thing whenever (and against whichever Prometheus) it is evaluated.

Counts are exact differences, not increase(): a counter's value at a segment's end minus its
value at the segment's start, a series absent at the start counting from zero:

    E - (S or E * 0)    E = last_over_time(x[end - start] @ end)   (last sample in the segment)
                        S = last_over_time(x[5m] @ start)          (last sample before it began)

increase() ignores a series' first sample and extrapolates each series on its own, so a failure
series born at 1 read 0, counts read a few percent low and each histogram bucket was stretched
separately (quantiles off by up to ~18 %). A difference reads what the exporter said, exactly.
Range vectors skip staleness markers, so `last_over_time` still finds a series after its target
has gone. A segment that ends when the run ends reads its end value up to FINAL_GRACE_S later:
the exporter serves its final totals (the workers' last reports) a moment after the test stopped.

A window can be several segments (a staged profile has several `steady` stages): counts and
histogram buckets are summed over the segments before the rate or quantile is taken.

`outcome` (rps and latency_* only): `successful` (the default) counts requests minus failures and
takes quantiles over all buckets minus the failed requests' buckets
(locust_failed_response_time_seconds, same bounds); `all` uses every request.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from controller.gates.models import Gate
from controller.models import PhaseWindow
from controller.prom.queries import run_selector
from locust_workers.contract import (
    FAILED_RESPONSE_TIME_SECONDS,
    REQUEST_FAILURES_TOTAL,
    REQUESTS_TOTAL,
    RESPONSE_TIME_SECONDS,
)

Segment = tuple[float, float]
SEGMENT_LABEL = "loadctl_segment"
QUANTILES = {"latency_p50_ms": 0.5, "latency_p90_ms": 0.9, "latency_p95_ms": 0.95, "latency_p99_ms": 0.99}
FINAL_GRACE_S = 60.0  # after the stop, a run's only samples are its final scrapes
START_LOOKBACK_S = 300.0  # how far back a segment's start value is looked for (Prometheus' lookback)
MIN_SCRAPES = 3  # fewer scrapes of the run's counters inside a segment: too short to judge
REQUESTS = REQUESTS_TOTAL
FAILURES = REQUEST_FAILURES_TOTAL
BUCKETS = f"{RESPONSE_TIME_SECONDS}_bucket"
FAILED_BUCKETS = f"{FAILED_RESPONSE_TIME_SECONDS}_bucket"


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
    return f"{metric}{run_selector(run_id, labels, extra)}"


def _is_final(end: float, run_end: float | None) -> bool:
    return run_end is not None and abs(end - run_end) < 1e-6


def _delta(selector: str, segment: Segment, run_end: float | None) -> str:
    """What each series of `selector` counted during the segment: end value - start value (or 0)."""
    start, end = segment
    if _is_final(end, run_end):
        end += FINAL_GRACE_S
    last = f"last_over_time({selector}[{_duration(end - start)}] @ {end:.3f})"
    first = f"last_over_time({selector}[{_duration(START_LOOKBACK_S)}] @ {start:.3f})"
    return f"({last} - ({first} or {last} * 0))"


def _summed(selector: str, segments: Sequence[Segment], run_end: float | None, by: str = "") -> str:
    """Sum of every series' count over the window's segments.

    Several segments are joined as a union, each series tagged with its segment so none collapses
    into another, then aggregated once: a series present in only one segment (a status that first
    appears in the second steady stage) still counts, and with no series anywhere the result stays
    empty, so the gate fails closed. (Adding per-segment sums with `+` would drop such series.)
    """
    deltas = [_delta(selector, segment, run_end) for segment in segments]
    if len(deltas) == 1:
        return f"sum{by}({deltas[0]})"
    tagged = [f'label_replace({term}, "{SEGMENT_LABEL}", "{i}", "", "")' for i, term in enumerate(deltas)]
    return f"sum{by}(" + " or ".join(tagged) + ")"


def _minus(total: str, part: str) -> str:
    """total - part, where a missing part (no such series in the window) counts as zero."""
    return f"({total} - ({part} or {total} * 0))"


def _latency(
    names: tuple[str, str], gate: Gate | None, run_id: str, segments: Sequence[Segment], run_end: float | None
) -> str:
    """The window's response-time histogram from `names` (all, failed): successful = all - failed."""
    labels = gate.labels if gate else ""
    buckets = _summed(_selector(names[0], run_id, labels), segments, run_end, by=" by (le) ")
    if gate is None or gate.outcome != "all":
        failed = _summed(_selector(names[1], run_id, labels), segments, run_end, by=" by (le) ")
        buckets = _minus(buckets, failed)
    return buckets


def _quantile_ms(
    quantile: float, gate: Gate | None, run_id: str, segments: Sequence[Segment], run_end: float | None
) -> str:
    """A response-time quantile in ms; `gate` None: the default (successful requests, no labels).

    Classic buckets `or` the native histogram: a run exposes one of the two, the other side is
    empty (no such series), and the same arithmetic works on both (`by (le)` is a no-op on a native
    histogram, which has no le label; Prometheus 3 subtracts and sums native histograms).
    """
    classic = _latency((BUCKETS, FAILED_BUCKETS), gate, run_id, segments, run_end)
    native = _latency((RESPONSE_TIME_SECONDS, FAILED_RESPONSE_TIME_SECONDS), gate, run_id, segments, run_end)
    return f"1000 * histogram_quantile({quantile}, {classic} or {native})"


def _requests(gate: Gate, run_id: str, segments: Sequence[Segment], run_end: float | None) -> str:
    requests = _summed(_selector(REQUESTS, run_id, gate.labels), segments, run_end)
    if gate.outcome == "all":
        return requests
    failed = _summed(_selector(FAILURES, run_id, gate.labels), segments, run_end)
    return _minus(requests, failed)


def compile_gate(
    gate: Gate, *, run_id: str, segments: Sequence[Segment], run_end: float | None = None
) -> str:
    """The gate's PromQL. `run_end`: when the run stopped; a segment ending there takes the final scrape."""
    if gate.promql is not None:
        start, end = segments[0][0], segments[-1][1]
        return (
            gate.promql.replace("$run_id", run_id)
            .replace("$__range", _duration(end - start))
            .replace("$start", f"{start:.3f}")
            .replace("$end", f"{end:.3f}")
        )
    metric = gate.metric
    if metric == "drift_per_hour":
        assert gate.gauge is not None  # the model requires it
        return compile_drift(metric=gate.gauge, run_id=run_id, labels=gate.labels)
    if metric in QUANTILES:
        return _quantile_ms(QUANTILES[metric], gate, run_id, segments, run_end)
    if metric == "rps":
        seconds = sum(end - start for start, end in segments)
        return f"{_requests(gate, run_id, segments, run_end)} / {seconds:.3f}"
    requests = _summed(_selector(REQUESTS, run_id, gate.labels), segments, run_end)
    if metric == "requests":
        return requests
    status = f'status="{gate.status}"' if metric == "status_rate" else ""
    failed = _summed(_selector(FAILURES, run_id, gate.labels, status), segments, run_end)
    # No failure series means zero failures, but only when there were requests: with neither,
    # the query stays empty and the gate fails closed.
    failures = f"({failed} or 0 * {requests})"
    if metric == "failures":
        return failures
    return f"{failures} / {requests}"  # error_rate, status_rate


def compile_judged_requests(
    gate: Gate, *, run_id: str, segments: Sequence[Segment], run_end: float | None = None
) -> str:
    """How many requests a latency gate's quantile is taken over (successful ones unless outcome: all).

    Asked only when the quantile has no value, to say why ("no successful requests in the window").
    """
    return _requests(gate, run_id, segments, run_end)


def compile_scrape_counts(*, run_id: str, segments: Sequence[Segment]) -> tuple[str, ...]:
    """Per segment: how many scrapes of the run's request counters fall inside it.

    A segment with fewer than MIN_SCRAPES cannot be judged: its start and end values would come
    from scrapes outside it. A query with no answer means no scrape at all. A scrape exactly at the
    start counts (it is the start value), so the range is 1 ms longer: Prometheus 3's ranges are
    left-open and would leave it out, where 2.x's closed ones take it in.
    """
    counters = f"{REQUESTS}{run_selector(run_id)}"
    return tuple(
        f"max(count_over_time({counters}[{_duration(end - start + 0.001)}] @ {end:.3f}))"
        for start, end in segments
    )


@dataclass(frozen=True)
class WindowQueries:
    """The PromQL of one window's figures for the run analysis, each as its gate would ask it."""

    requests: str  # every request (the `requests` gate)
    failures_by_status: str  # failed requests, one series per status label (the `failures` gate, split)
    latency_ms: dict[str, str]  # QUANTILES' metric name -> a successful requests' quantile (latency gates)


ANALYSIS_QUANTILES = ("latency_p50_ms", "latency_p95_ms", "latency_p99_ms")


def compile_window_figures(
    *, run_id: str, segments: Sequence[Segment], run_end: float | None = None
) -> WindowQueries:
    """A window's requests, failures by status and p50/p95/p99, compiled exactly as the gates
    compile `requests`, `failures` and `latency_*` (default outcome), so the analysis and the
    gates never disagree on a number."""
    failed = _summed(_selector(FAILURES, run_id, ""), segments, run_end, by=" by (status) ")
    return WindowQueries(
        requests=_summed(_selector(REQUESTS, run_id, ""), segments, run_end),
        failures_by_status=failed,
        latency_ms={
            name: _quantile_ms(QUANTILES[name], None, run_id, segments, run_end)
            for name in ANALYSIS_QUANTILES
        },
    )


# --- drift: a gauge's samples over a window, fitted to a line (controller/linefit.py) ---

# A range query's points per window at most: a 24 h soak is read every 2 min, a 10-min run every
# second. Enough for a least-squares line; bounded so a long run stays one small answer.
DRIFT_MAX_POINTS = 720
# Gauges split by a label that is a breakdown of one quantity: PostgreSQL connections by state are
# watched as one number per probe (a connection leaking from `active` to `idle` is no drift).
DRIFT_SUMMED_OVER = {"loadctl_postgres_connections": "state"}


def compile_drift(*, metric: str, run_id: str, labels: str = "") -> str:
    """A watched gauge's PromQL, one series per label set (summed over DRIFT_SUMMED_OVER's label)."""
    selector = _selector(metric, run_id, labels)
    over = DRIFT_SUMMED_OVER.get(metric)
    return f"sum without ({over}) ({selector})" if over else selector


# Labels that say where a series was scraped from, not which thing it measures: not in its name.
DRIFT_SOURCE_LABELS = frozenset({"__name__", "run_id", "instance", "job"})


def drift_labels(labels: Mapping[str, str]) -> dict[str, str]:
    """What tells one watched gauge's series apart (analysis.json's `labels`, a gate's reason)."""
    return {k: v for k, v in sorted(labels.items()) if k not in DRIFT_SOURCE_LABELS}


def drift_series_name(labels: Mapping[str, str]) -> str:
    """`{probe="app"}`: a drift series as a gate's reason names it."""
    return "{" + ", ".join(f'{k}="{v}"' for k, v in drift_labels(labels).items()) + "}"


def drift_step(start: float, end: float, *, min_step: float = 1.0) -> float:
    """The range query's step over [start, end]: at most DRIFT_MAX_POINTS points, at least `min_step`."""
    return max(min_step, (end - start) / DRIFT_MAX_POINTS)
