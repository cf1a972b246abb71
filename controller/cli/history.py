"""`loadctl history`: one line per past run, newest first, from a results folder tree or from the
Prometheus that scrapes the Pushgateway runs push their summary to (`run --pushgateway`)."""

from __future__ import annotations

import json
import time
from collections.abc import Sequence
from dataclasses import asdict
from pathlib import Path

import click

from controller.cli.render import say, warn
from controller.errors import InputError
from controller.pushgateway.history import HistoryRow, Unreadable, newest_first
from controller.pushgateway.summary import RunSummary
from controller.rundir import RESULTS_ROOT

COLUMNS = ("RUN ID", "STARTED (UTC)", "PROFILE", "VERDICT", "DURATION", "REQUESTS", "ERRORS", "P95")


def _number(value: float | None, text: str) -> str:
    return "-" if value is None else text


def row_cells(run: RunSummary) -> tuple[str, ...]:
    """One run's cells, in COLUMNS' order; "-" for what is unknown."""
    started = run.started_at
    return (
        run.run_id,
        "-" if started is None else time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime(started)),
        run.profile + (f" ({run.schedule})" if run.schedule else ""),
        run.verdict,
        _number(run.duration_s, f"{run.duration_s or 0:.0f}s"),
        _number(run.requests, f"{run.requests or 0:.0f}"),
        _number(run.error_ratio, f"{(run.error_ratio or 0) * 100:.2f}%"),
        _number(run.p95_s, f"{(run.p95_s or 0) * 1000:.0f}ms"),
    )


def table_lines(runs: Sequence[RunSummary]) -> list[str]:
    """The header and one aligned line per run (pure)."""
    rows = [COLUMNS, *(row_cells(run) for run in runs)]
    widths = [max(len(row[i]) for row in rows) for i in range(len(COLUMNS))]
    return [
        "  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip() for row in rows
    ]


def as_json(rows: Sequence[HistoryRow]) -> str:
    items = [
        {"path": row.path, "error": row.reason}
        if isinstance(row, Unreadable)
        else asdict(row) | {"duration_s": row.duration_s}
        for row in rows
    ]
    return json.dumps(items, indent=2)


def _read(results_dir: Path | None, prometheus_url: str | None) -> list[HistoryRow]:
    from controller.pushgateway.history import rows_from_folder, rows_from_prometheus

    if prometheus_url is None:
        return rows_from_folder(results_dir or RESULTS_ROOT)
    if results_dir is not None:
        raise InputError(
            "give either RESULTS_DIR or --prometheus", source="command line", field="--prometheus"
        )
    if not prometheus_url.startswith(("http://", "https://")):
        raise InputError(
            f"not an http(s) URL: {prometheus_url!r}", source="command line", field="--prometheus"
        )
    import httpx

    with httpx.Client(base_url=prometheus_url, timeout=10.0) as client:
        return rows_from_prometheus(client)


@click.command()
@click.argument("results_dir", required=False, type=click.Path(path_type=Path))
@click.option(
    "--prometheus",
    "prometheus_url",
    metavar="URL",
    help="Read the runs from this Prometheus (it scrapes the Pushgateway of `run --pushgateway`).",
)
@click.option("--json", "as_json_flag", is_flag=True, help="Print JSON instead of a table.")
@click.option("--limit", type=click.IntRange(min=1), help="Only the N newest runs.")
def history(
    results_dir: Path | None, prometheus_url: str | None, as_json_flag: bool, limit: int | None
) -> None:
    """Past runs, newest first: verdict, duration, requests, error rate, p95 (RESULTS_DIR: ./results)."""
    rows = newest_first(_read(results_dir, prometheus_url), limit=limit)
    if as_json_flag:
        click.echo(as_json(rows))  # plain stdout: no console markup or wrapping in what scripts parse
        return
    runs = [row for row in rows if isinstance(row, RunSummary)]
    for line in (
        table_lines(runs) if runs else [f"no runs found in {prometheus_url or results_dir or RESULTS_ROOT}"]
    ):
        say(line)
    for row in rows:
        if isinstance(row, Unreadable):
            warn(f"skipped {row.path}: {row.reason}")
