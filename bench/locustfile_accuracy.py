"""Load for bench/gate_accuracy.py: demo-target endpoints with a latency spread, a few refused
requests, and a log of every request (completion time, response time, failed) as ground truth.

Each Locust process appends to $GATE_ACCURACY_LOG/<pid>.csv; the bench reads them after the run.
"""

from locust import FastHttpUser, constant, events, task  # isort: skip

import atexit
import os
import time
from pathlib import Path
from typing import Any

_LOG_DIR = os.environ.get("GATE_ACCURACY_LOG")
_lines: list[str] = []


def _flush() -> None:
    if _LOG_DIR and _lines:
        with open(Path(_LOG_DIR) / f"{os.getpid()}.csv", "a", encoding="utf-8") as log:
            log.write("".join(_lines))
        _lines.clear()


@events.request.add_listener
def _log(name: str, response_time: float | None, exception: Any = None, **_kw: Any) -> None:
    if _LOG_DIR and response_time is not None:
        _lines.append(f"{time.time():.6f},{response_time:.3f},{int(exception is not None)},{name}\n")
        if len(_lines) >= 2000:
            _flush()


@events.test_stop.add_listener
def _stopped(**_kw: Any) -> None:
    _flush()


atexit.register(_flush)


class Spread(FastHttpUser):
    wait_time = constant(0.05)

    @task(6)
    def search(self) -> None:
        self.client.get("/v1/recipes?q=pasta", name="recipes_search")

    @task(3)
    def make_now(self) -> None:
        self.client.get("/v1/recommendations/make-now", name="make_now")

    @task(2)
    def analytics(self) -> None:
        self.client.get("/v1/studio/analytics/summary", name="analytics")

    @task(1)
    def refused(self) -> None:
        # nothing listens on loopback port 1: a fast failure without a response
        self.client.get("http://127.0.0.1:1/", name="refused")
