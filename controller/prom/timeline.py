"""The run's phase timeline (start, stop, a window per stage), as the exporter reported it to Prometheus."""

from __future__ import annotations

import httpx

from controller.models import PhaseWindow
from controller.prom.client import query, query_value
from controller.prom.queries import run_start_query, run_stop_query, stage_starts_query


def phase_windows(stage_starts: dict[int, tuple[str, float]], stopped_at: float) -> tuple[PhaseWindow, ...]:
    """Each started stage runs until the next one starts; the last one until the test stopped."""
    ordered = sorted(stage_starts.items())
    windows = []
    for position, (stage, (phase, start)) in enumerate(ordered):
        end = ordered[position + 1][1][1] if position + 1 < len(ordered) else stopped_at
        windows.append(PhaseWindow(stage=stage, phase=phase, start=start, end=max(start, end)))
    return tuple(windows)


def read_timeline(
    *, client: httpx.Client, run_id: str, planned_s: float, at: float | None = None
) -> tuple[float | None, float | None, tuple[PhaseWindow, ...]]:
    """(test start, test stop, phase windows) as the exporter reported them to Prometheus, as of `at`
    (default now), for a run planned to last `planned_s`."""
    start = query_value(client=client, promql=run_start_query(run_id, planned_s=planned_s), at=at)
    stop = query_value(client=client, promql=run_stop_query(run_id, planned_s=planned_s), at=at)
    samples = query(client=client, promql=stage_starts_query(run_id, planned_s=planned_s), at=at)
    starts = {int(s.labels["stage"]): (s.labels["phase"], s.value) for s in samples}
    end = stop if stop is not None else (at if at is not None else None)
    return start, stop, phase_windows(starts, end) if end is not None and starts else ()
