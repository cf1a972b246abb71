"""The one contract between runs.py and a backend: local processes (local.py) or a Helm release (k8s.py).

runs.py calls a backend in this order, and every backend is written against it:

    deploy()                      start Prometheus (if the backend owns it), the master, the workers
    load_finished() / health()    polled while the load runs (health only while not finished)
    stop_load()                   always once, after following ended for whatever reason
    wait_final_scrape(...)        when its Prometheus is still there to ask
    teardown(verdict=...)         always once, on every path (also after a failed deploy)
    collect()                     after teardown: the result files, stats.csv included
    locust_exit_code, locust_warnings(), record_fields   after collect (record_fields also before)

Backends print nothing: whatever the user should hear goes to the BackendEvents they were given,
and the CLI decides how it looks.
"""

from __future__ import annotations

from typing import Literal, Protocol, TypedDict

import httpx

from controller.models import RunPlan, Verdict


class BackendEvents(Protocol):
    """What a backend tells the user while it works; implementations must not raise."""

    def note(self, message: str) -> None:
        """A step taken (helm install, a port-forward started) or a fact worth a line."""

    def progress(self, message: str) -> None:
        """Where the deployment stands (pods ready, workers running); sent again when it changes."""

    def warning(self, message: str) -> None:
        """Something the run survives but the user should know (a fallback, a file not rebuilt)."""


class RecordFields(TypedDict):
    """The backend's part of run.json."""

    stats_source: Literal["locust", "prometheus"] | None  # who wrote stats.csv, None if nobody did
    release: str | None  # the Helm release of a k8s run
    namespace: str | None


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
        """Stop the load now if it still runs, keeping the final stats (a no-op once it ended)."""

    def wait_final_scrape(self, client: httpx.Client, *, moment: float, timeout: float) -> bool:
        """Wait at most `timeout` s until Prometheus holds the run's final totals: the load had
        stopped by `moment` (unix time), so a scrape after it holds the end of every series.
        False if the time ran out."""

    def teardown(self, *, verdict: Verdict | None = None) -> None:
        """Stop everything still running, on every path. `verdict` is where the run is heading
        (a k8s release is kept on "fail" with --keep-on-fail). Whatever collect() needs from a
        process that teardown stops is read before it stops."""

    def collect(self) -> tuple[str, ...]:
        """Put the result files (stats.csv, failures.csv, ...) into the run directory; return the
        names of every file there."""

    @property
    def record_fields(self) -> RecordFields:
        """Backend-specific run.json fields (complete once collect() ran)."""

    @property
    def locust_exit_code(self) -> int | None: ...

    def locust_warnings(self) -> tuple[str, ...]:
        """WARNING/ERROR lines Locust logged during the run (after teardown; empty if unknown)."""
