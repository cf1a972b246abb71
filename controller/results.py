"""The run's phase timeline, as the exporter reported it to Prometheus."""

from __future__ import annotations

import httpx

from controller.models import PhaseWindow
from controller.prom.client import query, query_value


def phase_windows(stage_starts: dict[int, tuple[str, float]], stopped_at: float) -> tuple[PhaseWindow, ...]:
    """Each started stage runs until the next one starts; the last one until the test stopped."""
    ordered = sorted(stage_starts.items())
    windows = []
    for position, (stage, (phase, start)) in enumerate(ordered):
        end = ordered[position + 1][1][1] if position + 1 < len(ordered) else stopped_at
        windows.append(PhaseWindow(stage=stage, phase=phase, start=start, end=max(start, end)))
    return tuple(windows)


def read_timeline(
    *, client: httpx.Client, run_id: str, lookback_s: float, at: float | None = None
) -> tuple[float | None, float | None, tuple[PhaseWindow, ...]]:
    """(test start, test stop, phase windows) as the exporter reported them to Prometheus."""
    window = f"[{max(60, int(lookback_s) + 60)}s]"
    sel = f'run_id="{run_id}"'
    start = query_value(
        client=client,
        promql=f"max(last_over_time(locust_test_start_timestamp_seconds{{{sel}}}{window}))",
        at=at,
    )
    stop = query_value(
        client=client,
        promql=f"max(last_over_time(locust_test_stop_timestamp_seconds{{{sel}}}{window}))",
        at=at,
    )
    samples = query(
        client=client, promql=f"last_over_time(locust_stage_start_timestamp_seconds{{{sel}}}{window})", at=at
    )
    starts = {int(s.labels["stage"]): (s.labels["phase"], s.value) for s in samples}
    end = stop if stop is not None else (at if at is not None else None)
    return start, stop, phase_windows(starts, end) if end is not None and starts else ()
