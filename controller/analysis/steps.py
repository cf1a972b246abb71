"""Steps of load, the breaking point and the capacity: each hold of the stage table judged against
an SLO. Pure.

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
SLO_RULE = "p95 (successful requests) and error rate at most the SLO's"
THROUGHPUT_RULE = (
    f"no SLO given: a step adding users is within while throughput grows by at least "
    f"{MIN_THROUGHPUT_GROWTH:.0%} over the best step before it"
)


def step_windows(phases: Sequence[PhaseWindow], stages: Sequence[Stage]) -> tuple[StepWindow, ...]:
    """Each stage's hold (after its ramp from the previous stage's users), adjacent equal ones merged."""
    windows: list[StepWindow] = []
    for phase in sorted(phases, key=lambda p: p.start):
        stage = stages[phase.stage]
        before = stages[phase.stage - 1].users if phase.stage > 0 else 0
        start = min(phase.end, phase.start + ramp_seconds(before, stage.users, stage.spawn_rate))
        if stage.users == 0 or phase.end - start < MIN_HOLD_S:
            continue
        last = windows[-1] if windows else None
        if last is not None and last.users == stage.users and abs(last.end - start) < 1e-6:
            windows[-1] = last.model_copy(update={"end": phase.end})
        else:
            windows.append(StepWindow(users=stage.users, start=start, end=phase.end))
    return tuple(windows)


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
