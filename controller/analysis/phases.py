"""Per-phase figures: one entry per stage-table segment the run went through. Pure."""

from __future__ import annotations

from collections.abc import Sequence

from controller.analysis.models import PhaseFigures, WindowFigures
from controller.models import PhaseWindow, Stage


def phase_figures(
    phases: Sequence[PhaseWindow], stages: Sequence[Stage], figures: Sequence[WindowFigures]
) -> tuple[PhaseFigures, ...]:
    """`figures[i]` measured `phases[i]`'s window; `users` comes from the plan's stage of that phase."""
    if len(phases) != len(figures):
        raise ValueError(f"{len(phases)} phases but {len(figures)} measured windows")
    return tuple(_phase(phase, stages, measured) for phase, measured in zip(phases, figures, strict=True))


def _phase(phase: PhaseWindow, stages: Sequence[Stage], measured: WindowFigures) -> PhaseFigures:
    requests = measured.requests
    by_status = {
        status: (failures / requests if requests else 0.0)
        for status, failures in sorted(measured.failures_by_status.items())
    }
    return PhaseFigures(
        phase=phase.phase,
        stage=phase.stage,
        start=phase.start,
        end=phase.end,
        users=stages[phase.stage].users if 0 <= phase.stage < len(stages) else 0,
        requests=requests,
        failures=measured.failures,
        rps=measured.rps,
        p50_ms=measured.p50_ms,
        p95_ms=measured.p95_ms,
        p99_ms=measured.p99_ms,
        error_rate=measured.error_rate,
        failures_by_status=by_status,
    )
