"""What runs.py needs from a backend: local processes (local.py) or a Helm release (k8s.py)."""

from __future__ import annotations

from typing import Any, Protocol

import httpx

from controller.models import RunPlan, Verdict


class Backend(Protocol):
    name: str
    plan: RunPlan

    @property
    def prometheus_url(self) -> str | None:
        """The Prometheus that watches the run; None until deploy() provided one."""

    @property
    def scrape_interval_s(self) -> float:
        """The longest time between two scrapes of the run's exporter by that Prometheus (after deploy).
        runs.py derives the final-scrape timeout from it, one rule for every backend."""

    def deploy(self) -> None:
        """Start Prometheus (if the backend owns it), the master and the workers; return once they run."""

    def health(self) -> str | None:
        """None while healthy; otherwise why the run cannot go on (raises nothing)."""

    def load_finished(self) -> bool:
        """True once the master has ended the test (the stage table ran out or it was stopped)."""

    def stop_load(self) -> None:
        """Stop the load now, keeping the final stats (used on interrupt)."""

    def wait_final_scrape(self, client: httpx.Client, *, moment: float, timeout: float) -> bool:
        """Wait at most `timeout` s until Prometheus holds the run's final totals: the load had
        stopped by `moment` (unix time), so a scrape after it holds the end of every series.
        False if the time ran out."""

    def teardown(self, *, verdict: Verdict | None = None) -> None:
        """Stop everything still running, on every path. `verdict` is where the run is heading
        (a k8s release is kept on "fail" with --keep-on-fail)."""

    def collect(self) -> tuple[str, ...]:
        """Put result files into the run directory; return their names."""

    @property
    def record_fields(self) -> dict[str, Any]:
        """Backend-specific run.json fields (stats_source, release, namespace)."""

    @property
    def locust_exit_code(self) -> int | None: ...

    def locust_warnings(self) -> tuple[str, ...]:
        """WARNING/ERROR lines Locust logged during the run (after teardown; empty if unknown)."""
