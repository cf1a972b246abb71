"""Recovery after a spike: how long p95 and the error rate take to come back to their pre-spike
level once the spike's load is gone. Pure.

A spike is a stage holding more users than both its neighbours (adjacent stages with the same
users are one level: a ramp stage and its hold), where the stage after it still has users (a
lower load to recover under) and the stage before it had some (a level to recover to). The
pre-spike level is measured over the stage before it: its hold, after its own ramp (the whole
stage when that hold is shorter than one probe window).

After the spike's end, windows of `window_s` (a few scrape intervals) slide by `step_s` (one
scrape interval, more when the search would need over MAX_PROBES windows) until the end of the
stage after the spike. A window is back when its p95 (successful requests) and error rate are
both at most the pre-spike value + max(TOLERANCE of it, an absolute floor) -- the floor
(P95_FLOOR_MS, ERROR_RATE_FLOOR) keeps a near-zero baseline (no errors before the spike) from
demanding perfection; a window without requests is not back. The recovery time is the start of the
first window that is back and stays back: every window starting within one more window length
after it is back too (or every window left, near the stage's end), minus the spike's end -- one
lucky window while p95 still swings around its limit is not a recovery. None: no such window
before that stage ended.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from controller.analysis.models import Recovery, WindowFigures
from controller.models import PhaseWindow, Stage, ramp_seconds

TOLERANCE = 0.10
P95_FLOOR_MS = 5.0  # p95 back when at most 5 ms (or 10 %) above its pre-spike value
ERROR_RATE_FLOOR = 0.01  # error rate back when at most 1 percentage point (or 10 %) above it
PROBE_SCRAPES = 5  # a probe window is this many scrape intervals long...
MIN_PROBE_S = 3.0  # ...and at least this many seconds
MAX_PROBES = 200  # per spike: the step grows on a long recovery stage to bound the queries


@dataclass(frozen=True)
class Spike:
    """One spike: its stage, when it ended, the pre-spike window, and until when recovery is sought."""

    stage: int
    phase: str
    end: float
    before: tuple[float, float]
    until: float  # the end of the stage after the spike


def probe_window_s(scrape_interval_s: float | None) -> float:
    return max(MIN_PROBE_S, PROBE_SCRAPES * (scrape_interval_s or 0.0))


def recovery_rule(window_s: float, step_s: float) -> str:
    return (
        f"p95 (successful requests) and error rate in {window_s:g}-s windows sliding by {step_s:g} s from "
        f"the spike's end to the end of the stage after it; recovered at the start of the first window "
        f"where both are at most the pre-spike level (the stage before the spike, after its ramp) + "
        f"max({TOLERANCE:.0%} of it, {P95_FLOOR_MS:g} ms / {ERROR_RATE_FLOOR:.0%} error rate) and stay "
        f"so in every window starting within {window_s:g} s after it (or up to the stage's end); "
        f"seconds = that start - the spike's end; null: no such window"
    )


def spikes(
    phases: Sequence[PhaseWindow], stages: Sequence[Stage], *, min_before_s: float
) -> tuple[Spike, ...]:
    """Each level of users (a stage, or adjacent stages with the same users: a ramp stage and its
    hold) above the stages on both sides, with users before and after it, that ran with both.
    The spike is its last stage. `min_before_s`: a shorter pre-spike hold takes its whole stage."""
    ran = {p.stage: p for p in phases}
    found = []
    for index in range(1, len(stages) - 1):
        first = index
        while first > 0 and stages[first - 1].users == stages[index].users:
            first -= 1
        if first == 0 or not 0 < stages[first - 1].users < stages[index].users:
            continue
        if not 0 < stages[index + 1].users < stages[index].users:
            continue
        before, during, after = ran.get(first - 1), ran.get(index), ran.get(index + 1)
        if before is None or during is None or after is None:
            continue
        previous = stages[first - 1]
        earlier = stages[first - 2].users if first >= 2 else 0
        hold = before.start + ramp_seconds(earlier, previous.users, previous.spawn_rate)
        start = hold if before.end - hold >= min_before_s else before.start
        found.append(Spike(index, during.phase, during.end, (start, before.end), after.end))
    return tuple(found)


def probe_windows(spike: Spike, *, window_s: float, step_s: float) -> tuple[tuple[float, float], ...]:
    """Windows of `window_s` from the spike's end, `step_s` apart (wider past MAX_PROBES), within its
    recovery stage."""
    span = spike.until - spike.end - window_s
    if span < 0:
        return ()
    step = max(step_s, span / (MAX_PROBES - 1))
    count = int(span // step) + 1
    return tuple((spike.end + i * step, spike.end + i * step + window_s) for i in range(count))


def _ceiling(before: float, floor: float) -> float:
    return before + max(TOLERANCE * before, floor)


def _back(measured: WindowFigures, *, p95_max: float, error_max: float) -> bool:
    rate = measured.error_rate
    return (
        measured.p95_ms is not None and measured.p95_ms <= p95_max and rate is not None and rate <= error_max
    )


def recovery(
    spike: Spike, before: WindowFigures, after: Iterable[WindowFigures], *, window_s: float, step_s: float
) -> Recovery:
    """`after`: the probe windows in time order, consumed only up to the first one back (so the
    caller may measure them lazily)."""
    found = Recovery(
        spike_phase=spike.phase,
        spike_stage=spike.stage,
        spike_end=spike.end,
        before_p95_ms=before.p95_ms,
        before_error_rate=before.error_rate,
        seconds=None,
        tolerance=TOLERANCE,
        rule=recovery_rule(window_s, step_s),
        window_s=window_s,
        until=spike.until,
        reason="",
    )
    if before.p95_ms is None or before.error_rate is None:
        return found.model_copy(
            update={"reason": "no successful requests before the spike: no level to return to"}
        )
    p95_max = _ceiling(before.p95_ms, P95_FLOOR_MS)
    error_max = _ceiling(before.error_rate, ERROR_RATE_FLOOR)
    first_back, last = _settled(after, window_s=window_s, p95_max=p95_max, error_max=error_max)
    if first_back is not None:
        seconds = first_back.start - spike.end
        reason = f"back {seconds:g} s after the spike and stayed back: {_figures(first_back)}"
        return found.model_copy(update={"seconds": seconds, "reason": reason})
    if last is None:
        reason = f"the stage after the spike was shorter than one {window_s:g}-s window"
    else:
        reason = (
            f"not back before the stage after the spike ended: last window {_figures(last)} vs at most "
            f"p95 {p95_max:.0f} ms, error rate {error_max:.2%}"
        )
    return found.model_copy(update={"reason": reason})


def _settled(
    after: Iterable[WindowFigures], *, window_s: float, p95_max: float, error_max: float
) -> tuple[WindowFigures | None, WindowFigures | None]:
    """(the first window back and staying back, the last window read); stops reading once settled."""
    first_back: WindowFigures | None = None
    last: WindowFigures | None = None
    for measured in after:
        last = measured
        if not _back(measured, p95_max=p95_max, error_max=error_max):
            first_back = None
        elif first_back is None:
            first_back = measured
        if first_back is not None and measured.start - first_back.start >= window_s:
            break
    return first_back, last


def _figures(measured: WindowFigures) -> str:
    p95 = "none" if measured.p95_ms is None else f"{measured.p95_ms:.0f} ms"
    rate = "none" if measured.error_rate is None else f"{measured.error_rate:.2%}"
    return f"p95 {p95}, error rate {rate}"
