"""`loadctl history`: past runs as RunSummary rows, from a results folder tree or from a Prometheus
that scrapes the Pushgateway the runs pushed to (the metrics of summary.py).

A results tree is walked for run.json files (results/<run_id>/run.json, or deeper: one folder per
schedule on a persistent volume); a run.json that cannot be read is an Unreadable row naming the file
and why, never a traceback and never the end of the listing.
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
from pydantic import ValidationError

from controller.errors import InputError
from controller.prom.client import Sample, query
from controller.pushgateway.push import read_summary
from controller.pushgateway.summary import (
    ERROR_RATIO,
    EXIT_CODE,
    GROUPING_LABEL,
    JOB,
    LATENCY_P95,
    LATENCY_P99,
    REQUESTS,
    START_TIMESTAMP,
    THROUGHPUT,
    TIMESTAMP,
    VERDICT,
    RunSummary,
)
from controller.rundir import LOGS_DIR, RUN_RECORD, TSDB_DIR, RunDir

# How far back Prometheus is asked: the Pushgateway keeps every group it was sent (they are scraped
# as long as it runs), the lookback also finds the runs of a Pushgateway restarted without persistence.
PROMETHEUS_LOOKBACK = "400d"
_NOT_RUNS = {TSDB_DIR, LOGS_DIR}  # big folders of a run that never hold another run


@dataclass(frozen=True)
class Unreadable:
    """A run.json that could not be read: the file and the one-line reason."""

    path: str
    reason: str


HistoryRow = RunSummary | Unreadable


def run_files(root: Path) -> Iterator[Path]:
    """Every run.json under `root` (root itself may be one run's folder), in no particular order."""
    for folder, subfolders, files in os.walk(root):
        subfolders[:] = [name for name in subfolders if name not in _NOT_RUNS]
        if RUN_RECORD in files:
            yield Path(folder) / RUN_RECORD


def _read_row(path: Path) -> HistoryRow:
    try:
        record = RunDir(path.parent).read_record()
    except OSError as e:
        return Unreadable(str(path), f"cannot read: {e.strerror or e}")
    except UnicodeDecodeError:
        return Unreadable(str(path), "corrupt: not UTF-8 text")
    except ValidationError as e:
        first = e.errors()[0]
        where = ".".join(str(part) for part in first["loc"])
        return Unreadable(str(path), f"corrupt: {where + ': ' if where else ''}{first['msg']}")
    return read_summary(path.parent, record, schedule="")  # the schedule is the Pushgateway's label only


def rows_from_folder(root: Path) -> list[HistoryRow]:
    """One row per run.json under `root`; InputError (exit 2) when `root` is no folder."""
    if not root.is_dir():
        raise InputError("not found: no results folder there", source=str(root))
    return [_read_row(path) for path in run_files(root)]


def _latest(metric: str, *matchers: str) -> str:
    selector = ",".join((f'job="{JOB}"', *matchers))
    return f"last_over_time({metric}{{{selector}}}[{PROMETHEUS_LOOKBACK}])"


_FIGURES = {
    EXIT_CODE: "exit_code",
    START_TIMESTAMP: "started_at",
    TIMESTAMP: "ended_at",
    REQUESTS: "requests",
    ERROR_RATIO: "error_ratio",
    THROUGHPUT: "throughput_rps",
    LATENCY_P95: "p95_s",
    LATENCY_P99: "p99_s",
}


def summaries_from_samples(
    verdicts: Sequence[Sample], figures: Mapping[str, Sequence[Sample]]
) -> list[RunSummary]:
    """Pure: one RunSummary per run_id with a verdict (the `== 1` state), its figures by metric name."""
    runs: dict[str, dict[str, Any]] = {}
    for sample in verdicts:
        labels = sample.labels
        runs[labels.get(GROUPING_LABEL, "")] = {
            "run_id": labels.get(GROUPING_LABEL, ""),
            "profile": labels.get("profile", ""),
            "schedule": labels.get("schedule", ""),
            "verdict": labels.get("verdict", ""),
            **dict.fromkeys(_FIGURES.values()),
        }
    for metric, field in _FIGURES.items():
        for sample in figures.get(metric, ()):
            fields = runs.get(sample.labels.get(GROUPING_LABEL, ""))
            if fields is not None:
                fields[field] = int(sample.value) if field == "exit_code" else sample.value
    return [RunSummary(**fields) for fields in runs.values()]


def rows_from_prometheus(client: httpx.Client) -> list[HistoryRow]:
    """The pushed runs Prometheus holds (PrometheusError when it cannot answer)."""
    verdicts = query(client=client, promql=f"{_latest(VERDICT)} == 1")
    figures = {metric: query(client=client, promql=_latest(metric)) for metric in _FIGURES}
    return list(summaries_from_samples(verdicts, figures))


def newest_first(rows: Sequence[HistoryRow], *, limit: int | None = None) -> list[HistoryRow]:
    """Runs by start time, newest first (unknown start last); unreadable files after them."""
    runs = [row for row in rows if isinstance(row, RunSummary)]
    runs.sort(key=lambda run: (run.started_at is not None, run.started_at or 0.0, run.run_id), reverse=True)
    unreadable = sorted((r for r in rows if isinstance(r, Unreadable)), key=lambda r: r.path)
    ordered: list[HistoryRow] = [*runs, *unreadable]
    return ordered[:limit] if limit is not None else ordered
