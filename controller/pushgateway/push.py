"""`loadctl run --pushgateway URL`: push the finished run's summary, and record where in run.json.

After the verdict, never before: a push that fails (Pushgateway down, refused, slow) is a warning
on the console and `pushed: false` in run.json, and changes neither the verdict nor the exit code.
The group is PUT (replaced whole), so pushing a run twice leaves one copy of it.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlsplit

from prometheus_client import push_to_gateway

from controller.errors import InputError, tail
from controller.models import PushedSummary, RunRecord
from controller.pushgateway.summary import GROUPING_LABEL, JOB, RunSummary, summarize, summary_registry
from controller.rundir import GATES_JSON, RunDir, read_csv

PUSH_TIMEOUT_S = 10.0


def check_pushgateway_url(url: str, *, field: str = "--pushgateway") -> str:
    """An http(s) URL with a host, without a trailing slash; InputError (exit 2) before any load."""
    parts = urlsplit(url.strip())
    if parts.scheme not in ("http", "https") or not parts.hostname or parts.query or parts.fragment:
        raise InputError(
            f"not a Pushgateway URL: {url!r} (expected http://HOST:PORT)", source="command line", field=field
        )
    return url.strip().rstrip("/")


def group_url(url: str, run_id: str) -> str:
    """The run's group on the Pushgateway, as its API and web page name it."""
    return f"{url}/metrics/job/{JOB}/{GROUPING_LABEL}/{quote(run_id, safe='')}"


def push_summary(url: str, summary: RunSummary, *, timeout: float = PUSH_TIMEOUT_S) -> None:
    """PUT the summary as the run's group; OSError (urllib's URLError/HTTPError among them) on failure."""
    push_to_gateway(
        url,
        job=JOB,
        registry=summary_registry(summary),
        grouping_key={GROUPING_LABEL: summary.run_id},
        timeout=timeout,
    )


def _gates_json(run_dir: Path) -> dict[str, Any] | None:
    try:
        loaded = json.loads((run_dir / GATES_JSON).read_text(encoding="utf-8"))
    except (OSError, ValueError):  # no gates.json (no gates, a run that never started): no gate series
        return None
    return loaded if isinstance(loaded, dict) else None


def read_summary(run_dir: Path, record: RunRecord, *, schedule: str) -> RunSummary:
    """The summary of a finished run from its results folder (stats.csv, gates.json)."""
    return summarize(
        record, stats=read_csv(RunDir(run_dir).stats_csv), gates_json=_gates_json(run_dir), schedule=schedule
    )


def push_run(
    record: RunRecord, *, run_dir: Path, url: str, schedule: str, warn: Callable[[str], None]
) -> RunRecord:
    """Push the run's summary, then record the outcome in run.json; the record with it."""
    where = group_url(url, record.run_id)
    try:
        push_summary(url, read_summary(run_dir, record, schedule=schedule))
        outcome = PushedSummary(url=where, pushed=True)
    except (OSError, ValueError) as e:  # ValueError: http.client's for a malformed answer
        reason = tail(str(e), 300)
        warn(f"could not push the run's summary to {url}: {reason} (the verdict stands)")
        outcome = PushedSummary(url=where, pushed=False, error=reason)
    pushed = record.model_copy(update={"pushgateway": outcome})
    try:
        RunDir(run_dir).write_record(pushed)
    except OSError as e:
        warn(f"could not record the push in {RunDir(run_dir).record}: {e.strerror or e}")
    return pushed
