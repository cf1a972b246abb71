"""The load generator's health as analysis.json reports it: what the verdict's generator check
looked at, as numbers. Pure."""

from __future__ import annotations

from collections.abc import Sequence

from controller.analysis.models import GeneratorHealth
from controller.models import Stage


def generator_health(
    *,
    stages: Sequence[Stage],
    workers: int,
    workers_missing_max: float | None,
    max_worker_cpu_percent: float | None,
    users_max: float | None,
    problems: Sequence[str],
) -> GeneratorHealth:
    """`users_planned` is the stage table's peak; `problems` the verdict's generator problems."""
    return GeneratorHealth(
        workers_planned=workers,
        workers_lost=None if workers_missing_max is None else round(workers_missing_max),
        max_worker_cpu_percent=max_worker_cpu_percent,
        users_planned=max((s.users for s in stages), default=0),
        users_reached=None if users_max is None else round(users_max),
        problems=tuple(problems),
    )
