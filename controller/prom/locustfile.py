"""How the locustfile itself ended the run (the exit code its quitting hook asked for, a stop of
its own mid-run), as the master's exporter reported it (locust_workers/locustfile_end.py)."""

from __future__ import annotations

from dataclasses import dataclass

import httpx

from controller.prom.client import query
from controller.prom.queries import locustfile_end_query
from locust_workers.contract import LOCUSTFILE_STOP_TIMESTAMP_SECONDS, PROCESS_EXIT_CODE


@dataclass(frozen=True)
class LocustfileEnd:
    """What the locustfile said; all None/empty when it said nothing."""

    exit_code: int | None = None  # environment.process_exit_code, 0 included
    exit_message: str = ""  # its last WARNING-or-worse log line before Locust quit
    stopped_at: float | None = None  # when it stopped the test itself (runner.quit())
    stopped_by: str = ""  # that call and where from: "runner.quit() from locustfile.py:51"
    stop_message: str = ""  # its last WARNING-or-worse log line before the stop


def read_locustfile_end(*, client: httpx.Client, run_id: str, planned_s: float, at: float) -> LocustfileEnd:
    codes = query(
        client=client, promql=locustfile_end_query(PROCESS_EXIT_CODE, run_id, planned_s=planned_s), at=at
    )
    stops = query(
        client=client,
        promql=locustfile_end_query(LOCUSTFILE_STOP_TIMESTAMP_SECONDS, run_id, planned_s=planned_s),
        at=at,
    )
    code = codes[0] if codes else None
    stop = min(stops, key=lambda s: s.value) if stops else None
    return LocustfileEnd(
        exit_code=round(code.value) if code else None,
        exit_message=code.labels.get("message", "") if code else "",
        stopped_at=stop.value if stop else None,
        stopped_by=stop.labels.get("caller", "") if stop else "",
        stop_message=stop.labels.get("message", "") if stop else "",
    )
