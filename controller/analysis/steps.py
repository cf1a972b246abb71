"""Steps of load, the breaking point and the capacity: each hold of the stage table (and each bin
of a linear ramp) judged against an SLO. Pure.

Steps: each stage's hold (its users, after the ramp from the previous stage's users) is one step,
adjacent equal holds merged. A ramp up that takes at least RAMP_SHARE of its stage is cut into bins
of equal user increments (RAMP_RULE), unless the next stage holds the same users (a ramp_up before
its steady stage: that hold is the step), so a stage table of ramps only (a linear ramp 0 -> 200
users) still has steps; a ramp's remaining hold shorter than a bin is its tail, not a step.

The SLO is the profile's `analysis: {slo: ...}`, else the gate file's p95 and error-rate gates
(run-wide ones: no labels, a `max`), else the throughput rule: a step that adds users is within
when its throughput (successful requests/s) grew by at least MIN_THROUGHPUT_GROWTH over the best
step before it; a step that adds no users is not judged by that rule.
"""

from __future__ import annotations

from collections.abc import Sequence

from controller.analysis.models import (
    BreakingPoint,
    Capacity,
    SloUsed,
    Step,
    StepWindow,
    WindowFigures,
)
from controller.gates.models import GateFile
from controller.models import PhaseWindow, Slo, Stage, ramp_seconds

MIN_THROUGHPUT_GROWTH = 0.05
MIN_HOLD_S = 1.0  # a hold shorter than this (the ramp took the stage) is no step
RAMP_SHARE = 0.5  # a ramp taking at least this share of its stage is binned
MAX_RAMP_BINS = 10
MIN_BIN_S = 5.0  # a bin at least this long, and at least BIN_SCRAPES scrape intervals
BIN_SCRAPES = 5
RAMP_RULE = (
    f"a ramp up taking at least {RAMP_SHARE:.0%} of its stage (and not only leading to a hold of the "
    f"same users) is cut into n bins of equal users, n = min({MAX_RAMP_BINS}, users added, ramp "
    f"seconds / the shortest bin); users = the plan's users at the bin's end"
)
SLO_RULE = "p95 (successful requests) and error rate at most the SLO's"
THROUGHPUT_RULE = (
    f"no SLO given: a step adding users is within while throughput grows by at least "
    f"{MIN_THROUGHPUT_GROWTH:.0%} over the best step before it"
)


def min_bin_seconds(scrape_interval_s: float | None) -> float:
    """The shortest bin of a ramp: MIN_BIN_S, and at least BIN_SCRAPES scrapes to measure it."""
    return max(MIN_BIN_S, BIN_SCRAPES * (scrape_interval_s or 0.0))


def step_windows(
    phases: Sequence[PhaseWindow], stages: Sequence[Stage], *, min_bin_s: float = MIN_BIN_S
) -> tuple[StepWindow, ...]:
    """Each stage's hold (after its ramp from the previous stage's users), adjacent equal ones merged,
    and each long ramp up cut into bins of equal users (see the module's docstring)."""
    windows: list[StepWindow] = []
    for phase in sorted(phases, key=lambda p: p.start):
        if not 0 <= phase.stage < len(stages):
            continue  # a phase of the locustfile's own shape: no planned users to step through
        stage = stages[phase.stage]
        before = stages[phase.stage - 1].users if phase.stage > 0 else 0
        start = min(phase.end, phase.start + ramp_seconds(before, stage.users, stage.spawn_rate))
        if _binned(phase, stages, ramp_end=start):
            windows += ramp_bins(
                from_users=before, stage=stage, start=phase.start, end=start, min_bin_s=min_bin_s
            )
            if phase.end - start < min_bin_s:
                continue  # the ramp's tail: its last bin already ends at these users
        if stage.users == 0 or phase.end - start < MIN_HOLD_S:
            continue
        last = windows[-1] if windows else None
        if last is not None and not last.ramp and last.users == stage.users and abs(last.end - start) < 1e-6:
            windows[-1] = last.model_copy(update={"end": phase.end})
        else:
            windows.append(StepWindow(users=stage.users, start=start, end=phase.end))
    return tuple(windows)


def _binned(phase: PhaseWindow, stages: Sequence[Stage], *, ramp_end: float) -> bool:
    """A ramp up taking at least RAMP_SHARE of its stage, not a lead-in to a hold of its users."""
    stage = stages[phase.stage]
    before = stages[phase.stage - 1].users if phase.stage > 0 else 0
    following = stages[phase.stage + 1] if phase.stage + 1 < len(stages) else None
    lead_in = following is not None and following.users == stage.users
    return (
        stage.users > before
        and not lead_in
        and ramp_end - phase.start >= RAMP_SHARE * stage.duration
        and ramp_end > phase.start
    )


def ramp_bins(
    *, from_users: int, stage: Stage, start: float, end: float, min_bin_s: float
) -> tuple[StepWindow, ...]:
    """[start, end] of a ramp from `from_users` at the stage's spawn rate, cut into bins of equal
    users (equal seconds: the ramp is linear); fewer bins when it is short or adds few users."""
    reached = min(stage.users, from_users + stage.spawn_rate * (end - start))
    count = min(MAX_RAMP_BINS, int((end - start) // min_bin_s), int(reached - from_users))
    width = (end - start) / count if count > 0 else 0.0
    return tuple(
        StepWindow(
            users=round(from_users + (reached - from_users) * (i + 1) / count),
            start=start + i * width,
            end=end if i == count - 1 else start + (i + 1) * width,
            ramp=True,
        )
        for i in range(count)
    )


def slo_used(profile_slo: Slo | None, gate_file: GateFile | None) -> SloUsed:
    """The profile's SLO, else the gate file's run-wide p95 and error-rate maxima, else throughput."""
    if profile_slo is not None:
        return SloUsed(source="profile", rule=SLO_RULE, **profile_slo.model_dump())
    limits: dict[str, float] = {}
    for gate in gate_file.gates if gate_file else ():
        name = {"latency_p95_ms": "latency_p95_ms", "error_rate": "error_rate"}.get(gate.metric or "")
        if name and gate.max is not None and not gate.labels and gate.outcome != "all":
            limits[name] = min(gate.max, limits.get(name, gate.max))
    if limits:
        return SloUsed(source="gates", rule=SLO_RULE, **limits)
    return SloUsed(source="throughput", rule=THROUGHPUT_RULE)


def _slo_violation(slo: SloUsed, measured: WindowFigures) -> str | None:
    if slo.latency_p95_ms is not None:
        if measured.p95_ms is None:
            return "no successful requests"
        if measured.p95_ms > slo.latency_p95_ms:
            return f"p95 {measured.p95_ms:.0f} ms > SLO {slo.latency_p95_ms:g} ms"
    if slo.error_rate is not None:
        rate = measured.error_rate
        if rate is None:
            return "no requests"
        if rate > slo.error_rate:
            return f"error rate {rate:.2%} > SLO {slo.error_rate:.2%}"
    return None


def _throughput_violation(measured: WindowFigures, best_before: float | None) -> str | None:
    rps = measured.rps or 0.0
    if best_before is not None and rps < best_before * (1 + MIN_THROUGHPUT_GROWTH):
        return (
            f"throughput stopped growing with users: {rps:.1f} req/s vs {best_before:.1f} "
            f"before (less than +{MIN_THROUGHPUT_GROWTH:.0%})"
        )
    return None


def judge_steps(
    windows: Sequence[StepWindow], figures: Sequence[WindowFigures], slo: SloUsed
) -> tuple[Step, ...]:
    """`figures[i]` measured `windows[i]`; each step within the SLO or not (and why)."""
    steps: list[Step] = []
    for window, measured in zip(windows, figures, strict=True):
        within: bool | None
        if slo.source != "throughput":
            violation = _slo_violation(slo, measured)
            within = violation is None
        elif all(window.users > s.users for s in steps):
            best = max((s.rps for s in steps if s.rps is not None), default=None)
            violation = _throughput_violation(measured, best)
            within = violation is None
        else:
            violation, within = None, None
        steps.append(
            Step(
                **window.model_dump(),
                rps=measured.rps,
                p95_ms=measured.p95_ms,
                error_rate=measured.error_rate,
                within_slo=within,
                violation=violation,
            )
        )
    return tuple(steps)


def breaking_point(steps: Sequence[Step]) -> BreakingPoint | None:
    """The first step outside the SLO, or None when every judged step held it."""
    broken = next((s for s in steps if s.within_slo is False), None)
    if broken is None:
        return None
    return BreakingPoint(users=broken.users, rps=broken.rps, reason=broken.violation or "")


def capacity(steps: Sequence[Step]) -> Capacity:
    """The best step within the SLO (its rps and users), and the best rps of any step."""
    within = [s for s in steps if s.within_slo and s.rps is not None]
    best = max(within, key=lambda s: s.rps or 0.0, default=None)
    return Capacity(
        max_rps_within_slo=best.rps if best else None,
        users=best.users if best else None,
        max_rps=max((s.rps for s in steps if s.rps is not None), default=None),
    )


def breaking_point_users(steps: Sequence[Step]) -> tuple[float | None, str | None]:
    """(value, reason) of the `breaking_point_users` gate: the breaking point's users, else the most
    users a step held within the SLO (a lower bound: the run never found its breaking point, so a
    run that never reached 500 users within the SLO cannot pass `min: 500`), else no value."""
    broken = breaking_point(steps)
    if broken is not None:
        return float(broken.users), None
    held = [s.users for s in steps if s.within_slo]
    if not held:
        return None, "no step of users held within the SLO (analysis.json's steps)"
    return float(max(held)), None
