"""The stage-table load shape: a list of (duration, users, spawn_rate, phase) rows.

One shape covers baseline, stress ramp, spike, staged ramp, peak and soak: they differ only in
their tables. Each row names its phase (ramp_up, steady, ramp_down, ...) so the exporter can
label live metrics with it and gates can be judged over the steady part only.

The controller passes the table in the environment (contract.STAGES_ENV, contract.encode_stages);
a locustfile can also subclass StageTableShape and set `stages` itself.
"""

from __future__ import annotations

import os
import time

from locust import LoadTestShape

from locust_workers.contract import STAGES_ENV, StageRow, decode_stages


def stage_at(stages: tuple[StageRow, ...], elapsed: float) -> int | None:
    """Index of the stage running `elapsed` seconds into the run, or None once the table is done."""
    end = 0.0
    for index, stage in enumerate(stages):
        end += stage.duration
        if elapsed < end:
            return index
    return None


class StageTableShape(LoadTestShape):
    """Runs `stages` in order, then stops the test. Records when each stage really started."""

    abstract = True
    stages: tuple[StageRow, ...] = ()

    def __init__(self) -> None:
        super().__init__()
        if not self.stages:
            self.stages = decode_stages(os.environ.get(STAGES_ENV, ""))
        self.current_stage: int | None = None
        self.stage_started_at: dict[int, float] = {}

    @property
    def current_phase(self) -> str | None:
        return None if self.current_stage is None else self.stages[self.current_stage].phase

    def tick(self) -> tuple[int, float] | None:
        index = stage_at(self.stages, self.get_run_time())
        if index is None:
            self.current_stage = None
            return None
        if index != self.current_stage:
            self.current_stage = index
            self.stage_started_at.setdefault(index, time.time())
        stage = self.stages[index]
        return stage.users, stage.spawn_rate


# --------------------------------------------------------------------------- the locustfile's own shape
#
# A locustfile's own LoadTestShape runs the load instead of the stage table (plugin.py then defines
# none). loadctl reads three optional things from it, by convention (README: "Your own LoadTestShape"):
#   phase      the current phase's name, an attribute the shape may set in tick()
#   phases     the names `phase` takes, declared on the class (gate windows are checked against them)
#   stages     Locust's documented form: a list of dicts with a cumulative `duration` (the stage's end,
#              in seconds from the start), here also a `phase` (or `name`) key: the phase at each
#              moment is its stage's; the last `duration` is the shape's end
#   time_limit the shape's end in seconds (Locust's documented examples use this name)
# A shape naming no phase has one phase, `run`.

RUN_PHASE = "run"


def declared_stages(shape: object) -> list[tuple[float, str]]:
    """(end in seconds, phase) of each entry of the shape's `stages` in Locust's documented form;
    [] when it has none. A stage naming no phase is in phase `run`."""
    stages = getattr(shape, "stages", None)
    if isinstance(shape, StageTableShape) and stages:
        ends, end = [], 0.0
        for row in stages:  # loadctl's own rows: each `duration` is the stage's length
            end += row.duration
            ends.append((end, row.phase))
        return ends
    if not isinstance(stages, list | tuple) or not stages:
        return []
    if not all(isinstance(s, dict) and isinstance(s.get("duration"), int | float) for s in stages):
        return []
    return [(float(s["duration"]), str(s.get("phase") or s.get("name") or RUN_PHASE)) for s in stages]


def declared_phases(shape: object) -> tuple[str, ...]:
    """The phases the shape says it has, in order: `phases`, else its stages' names, else its
    `phase` as set on the class, else `run`."""
    phases = getattr(shape, "phases", None)
    if isinstance(phases, list | tuple) and phases and all(isinstance(p, str) for p in phases):
        return tuple(dict.fromkeys(phases))
    named = [phase for _, phase in declared_stages(shape)]
    if named:
        return tuple(dict.fromkeys(named))
    phase = getattr(shape, "phase", None)
    return (phase,) if isinstance(phase, str) and phase else (RUN_PHASE,)


def declared_end(shape: object) -> float | None:
    """When the shape says it ends, in seconds from the start: `time_limit`, else the last stage's
    end; None when it cannot say (it ends when tick() returns None, or at -t)."""
    limit = getattr(shape, "time_limit", None)
    if isinstance(limit, int | float) and not isinstance(limit, bool) and limit > 0:
        return float(limit)
    stages = declared_stages(shape)
    return max(end for end, _ in stages) if stages else None


def phase_now(shape: object, elapsed: float) -> str:
    """The shape's phase `elapsed` seconds into the run: its `phase` attribute, else its stage's."""
    phase = getattr(shape, "phase", None)
    if isinstance(phase, str) and phase:
        return phase
    for end, name in declared_stages(shape):
        if elapsed < end:
            return name
    return RUN_PHASE


class PhaseLog:
    """The phases a user's shape went through, as the exporter reports them for the stage table:
    `stage_started_at` {index: unix time} and `stages[index].phase`, `current_phase`."""

    def __init__(self) -> None:
        self.stage_started_at: dict[int, float] = {}
        self.names: list[str] = []
        self.current_phase: str | None = None

    def enter(self, phase: str | None, at: float) -> None:
        if phase is not None and phase != self.current_phase:
            self.stage_started_at[len(self.names)] = at
            self.names.append(phase)
        self.current_phase = phase


def track_phases(shape: LoadTestShape) -> PhaseLog:
    """Note the user's shape's phase after each of its ticks (wrapping tick on the instance)."""
    log = PhaseLog()
    tick = shape.tick

    def noted_tick():
        result = tick()
        log.enter(None if result is None else phase_now(shape, shape.get_run_time()), time.time())
        return result

    shape.tick = noted_tick  # type: ignore[method-assign]
    shape.loadctl_phases = log  # type: ignore[attr-defined]
    return log


def phase_starts(shape: object) -> list[tuple[int, str, float]]:
    """(index, phase, unix start) of each phase the run's shape began: the stage table's rows, or
    the phases noted by track_phases on a user's shape."""
    log = getattr(shape, "loadctl_phases", None)
    if isinstance(log, PhaseLog):
        return [(i, log.names[i], started) for i, started in sorted(log.stage_started_at.items())]
    started_at = getattr(shape, "stage_started_at", None)  # a StageTableShape, or any shape like it
    if isinstance(started_at, dict):
        return [(i, shape.stages[i].phase, started) for i, started in sorted(started_at.items())]  # type: ignore[attr-defined]
    return []


def current_phase(shape: object) -> str | None:
    log = getattr(shape, "loadctl_phases", None)
    if isinstance(log, PhaseLog):
        return log.current_phase
    phase = getattr(shape, "current_phase", None)  # a StageTableShape, or any shape like it
    return phase if isinstance(phase, str) else None
