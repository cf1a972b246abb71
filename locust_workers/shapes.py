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
