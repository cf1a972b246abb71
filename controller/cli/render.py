"""The CLI's one console, and what it prints for a backend's events and a finished run.

Every command prints through `console`, so tests and users see one stream with one set of
settings (soft wrap: a long path or URL stays on one line, copyable).
"""

from __future__ import annotations

from pathlib import Path

from rich.console import Console
from rich.markup import escape

from controller.models import RunRecord
from controller.rundir import RUN_REPORT, RunDir

console = Console(soft_wrap=True)

# verdicts not listed are green (pass, no_gates)
VERDICT_STYLES = {
    "interrupted": "yellow",
    "error": "red",
    "fail": "red",
    "inconclusive": "red",
    "warn": "yellow",
}


def say(message: str) -> None:
    """A plain line: no markup, no highlighting of numbers and paths."""
    console.print(escape(message), highlight=False)


def warn(message: str) -> None:
    console.print(f"[yellow]{escape(message)}[/]", highlight=False)


class ConsoleEvents:
    """A backend's events (controller/backends/base.py BackendEvents) as lines on the CLI's console."""

    def note(self, message: str) -> None:
        say(message)

    def progress(self, message: str) -> None:
        say(message)

    def warning(self, message: str) -> None:
        warn(message)


def outcome_lines(record: RunRecord, *, run_dir: Path, has_tsdb: bool) -> list[str]:
    """What `run` prints after the run (rich markup): verdict and totals, why, where the results are."""
    style = VERDICT_STYLES.get(record.verdict, "green")
    totals = "" if record.requests is None else f", {record.requests} requests, {record.failures} failures"
    lines = [f"[{style}]verdict: {record.verdict}[/] (exit {record.exit_code}){totals}"]
    if record.reason:
        lines.append(f"reason: {record.reason}")
    if record.alerts_fired:
        lines.append(f"alerts fired during the run: {', '.join(record.alerts_fired)}")
    if record.locust_warnings:
        first, *others = record.locust_warnings
        more = f" (+{len(others)} more in {RUN_REPORT})" if others else ""
        lines.append(f"locust warned: {first}{more}")
    again = f"; query again: loadctl prometheus {run_dir}" if has_tsdb else ""
    folder = RunDir(run_dir)
    lines.append(
        f"results: {run_dir}  (report: {folder.report_md}, with charts: {folder.report_html}{again})"
    )
    return lines


def print_outcome(record: RunRecord, *, run_dir: Path) -> None:
    # a k8s run followed by the cluster's Prometheus keeps no tsdb of its own
    for line in outcome_lines(record, run_dir=run_dir, has_tsdb=RunDir(run_dir).tsdb.is_dir()):
        console.print(line, highlight=False)
