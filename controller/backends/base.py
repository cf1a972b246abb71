"""What runs.py needs from a backend (local processes today, Helm releases later)."""

from __future__ import annotations

from typing import Protocol

from controller.models import RunPlan


class Backend(Protocol):
    name: str
    plan: RunPlan

    @property
    def prometheus_url(self) -> str: ...

    def deploy(self) -> None:
        """Start Prometheus (if the backend owns it), the master and the workers; return once they run."""

    def health(self) -> str | None:
        """None while healthy; otherwise why the run cannot go on (raises nothing)."""

    def load_finished(self) -> bool:
        """True once the master has ended the test (the stage table ran out or it was stopped)."""

    def stop_load(self) -> None:
        """Stop the load now, keeping the final stats (used on interrupt)."""

    def teardown(self) -> None:
        """Stop everything still running. Idempotent; called on every path."""

    def collect(self) -> tuple[str, ...]:
        """Put result files into the run directory; return their names."""

    @property
    def locust_exit_code(self) -> int | None: ...
