"""One run's lifecycle over a backend: pre-flight, deploy, follow live, final scrape, gates, teardown.

Teardown runs on every path (success, infrastructure error, Ctrl-C, SIGTERM, live abort), and
run.json is written with whatever was collected, so an interrupted run still leaves a usable
results folder. Gates are judged against the run's Prometheus before it is stopped.
"""

from __future__ import annotations

import signal
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager, nullcontext
from dataclasses import dataclass, field
from importlib.metadata import version
from typing import Any, Protocol

import httpx
from rich.console import Console
from rich.live import Live

from controller.backends.base import Backend
from controller.baseline import baseline_target
from controller.errors import (
    EXIT_GATE_FAILED,
    EXIT_INFRA,
    EXIT_PASS,
    InfraError,
    Interrupted,
    PrometheusError,
    RunSkipped,
)
from controller.gates.evaluate import GateReport, GateResult
from controller.gates.models import GateFile
from controller.gates.runner import Target, evaluate_gates
from controller.models import Peak, PhaseWindow, RunPlan, RunRecord, Verdict
from controller.preflight import check_run, claim_run_dir
from controller.progress import Snapshot, format_snapshot, read_snapshot
from controller.prom.peaks import read_peaks
from controller.reports.gates import gates_table, write_gate_reports
from controller.reports.run_report import peaks_table, run_report_markdown
from controller.results import csv_rows, locust_totals, read_timeline, write_record

FINAL_SCRAPE_TIMEOUT_S = 5.0
OVERRUN_GRACE_S = 180.0
LIVE_GATE_INTERVAL_S = 5.0


@dataclass
class Outcome:
    verdict: Verdict = "no_gates"
    exit_code: int = EXIT_PASS
    reasons: list[str] = field(default_factory=list)
    aborted_by: str | None = None


class RunObserver(Protocol):
    """Hears a run's events live (Grafana annotations); must neither raise nor block the run."""

    def progress(self, snapshot: Snapshot) -> None: ...
    def aborted(self, reason: str) -> None: ...
    def finished(self, record: RunRecord) -> None: ...


class GateAbort(Exception):
    def __init__(self, result: GateResult) -> None:
        super().__init__(f"aborted by gate {result.name}: {result.reason}")
        self.result = result


def preflight(plan: RunPlan) -> GateFile | None:
    """Everything that can be checked before any load is sent (exit 2 on bad input), then the
    run's folder claimed (last, so a rejected run leaves no folder behind)."""
    gate_file = check_run(plan)
    claim_run_dir(plan)
    return gate_file


@contextmanager
def interrupt_signals(console: Console) -> Iterator[Callable[[], None]]:
    """SIGINT/SIGTERM raise Interrupted once; after `quiet()` (cleanup) they only print a note."""
    state = {"cleaning": False}

    def handler(signum: int, _frame: object) -> None:
        if state["cleaning"]:
            console.print("[yellow]cleaning up, stopping every process this run started...[/]")
            return
        state["cleaning"] = True
        raise Interrupted(signal.Signals(signum).name)

    def quiet() -> None:
        state["cleaning"] = True

    previous = {s: signal.signal(s, handler) for s in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield quiet
    finally:
        for signum, old in previous.items():
            signal.signal(signum, old)


def draft_record(
    plan: RunPlan,
    backend: Backend,
    *,
    started: float | None,
    ended: float | None,
    phases: tuple[PhaseWindow, ...],
    **extra: Any,
) -> RunRecord:
    fields: dict[str, Any] = {
        "run_id": plan.run_id,
        "profile": plan.profile,
        "profile_file": str(plan.profile_file) if plan.profile_file else None,
        "locustfile": str(plan.locustfile),
        "host": plan.host,
        "backend": backend.name,
        "workers": plan.workers,
        "planned_duration_s": plan.duration,
        "started_at": started,
        "ended_at": ended,
        "phases": phases,
        "verdict": "no_gates",
        "exit_code": EXIT_PASS,
        "loadctl_version": version("loadctl"),
        "gates_file": str(plan.gates) if plan.gates else None,
        **backend.record_fields,
    }
    return RunRecord(**(fields | extra))


def check_live_gates(plan: RunPlan, backend: Backend, gate_file: GateFile, http: httpx.Client) -> None:
    """Judge the abort gates over their window so far; raise GateAbort on a real violation."""
    now = time.time()
    started, _, phases = read_timeline(client=http, run_id=plan.run_id, lookback_s=plan.duration, at=now)
    if started is None or now - started < gate_file.abort_grace:
        return
    abort_gates = tuple(g.name for g in gate_file.gates if g.abort)
    live = draft_record(plan, backend, started=started, ended=now, phases=phases)
    report = evaluate_gates(
        gate_file, source=str(plan.gates), target=Target(http, live), retry_s=0.0, only=abort_gates, until=now
    )
    for result in report.gates:
        # Only a measured violation stops the load; missing data live is judged after the run.
        if result.verdict == "fail" and result.value is not None:
            raise GateAbort(result)


def follow(
    backend: Backend,
    *,
    console: Console,
    gate_file: GateFile | None,
    interval: float = 2.0,
    observer: RunObserver | None = None,
) -> None:
    """Show live progress until the master ends the load; raise InfraError if the backend breaks."""
    plan = backend.plan
    deadline = time.monotonic() + plan.duration + OVERRUN_GRACE_S
    last_printed = last_gated = 0.0
    watch_gates = gate_file is not None and any(g.abort for g in gate_file.gates)
    live_view = (
        Live(console=console, auto_refresh=False, transient=True) if console.is_terminal else nullcontext()
    )
    if backend.prometheus_url is None:
        raise InfraError("the backend deployed without a Prometheus to follow")
    with httpx.Client(base_url=backend.prometheus_url, timeout=5.0) as http, live_view as live:
        while not backend.load_finished():
            problem = backend.health()
            if problem:
                raise InfraError(problem)
            if time.monotonic() > deadline:
                raise InfraError(
                    f"the run overran its planned {plan.duration:.0f}s by {OVERRUN_GRACE_S:.0f}s"
                )
            snapshot = read_snapshot(client=http, run_id=plan.run_id)
            if observer is not None:
                observer.progress(snapshot)
            line = format_snapshot(snapshot, planned_s=plan.duration)
            if live is not None:
                live.update(line, refresh=True)
            elif time.monotonic() - last_printed >= 10:
                console.print(line, highlight=False)
                last_printed = time.monotonic()
            if (
                watch_gates
                and gate_file is not None
                and time.monotonic() - last_gated >= LIVE_GATE_INTERVAL_S
            ):
                last_gated = time.monotonic()
                try:
                    check_live_gates(plan, backend, gate_file, http)
                except PrometheusError as e:
                    console.print(f"[yellow]live gates skipped this round: {e}[/]")
            time.sleep(interval)


def execute(
    plan: RunPlan, *, backend: Backend, console: Console, observer: RunObserver | None = None
) -> RunRecord:
    gate_file = preflight(plan)
    outcome = Outcome()
    console.print(
        f"run [bold]{plan.run_id}[/]: profile {plan.profile}, {len(plan.stages)} stages, "
        f"{plan.duration:.0f}s, {plan.workers} workers -> {plan.host}",
        highlight=False,
    )
    with interrupt_signals(console) as quiet:
        try:
            backend.deploy()
            console.print(f"prometheus {backend.prometheus_url}  results {plan.run_dir}", highlight=False)
            follow(backend, console=console, gate_file=gate_file, observer=observer)
        except GateAbort as e:
            outcome = Outcome("fail", EXIT_GATE_FAILED, [str(e)], aborted_by=e.result.name)
            console.print(f"[red]{e}: stopping the load[/]", highlight=False)
            if observer is not None:
                observer.aborted(str(e))
        except Interrupted as e:
            outcome = Outcome("interrupted", e.exit_code, [str(e)])
            console.print(f"[yellow]{e}: stopping the load[/]")
        except RunSkipped as e:
            outcome = Outcome("skipped", e.exit_code, [f"skipped: {e}"])
            console.print(f"[yellow]run skipped, no load sent: {e}[/]", highlight=False)
        except InfraError as e:
            outcome = Outcome("error", e.exit_code, [str(e)])
        finally:
            quiet()
            record = finish(plan, backend, outcome, console=console, gate_file=gate_file)
            if observer is not None:
                observer.finished(record)
    return record


class _NothingToRead(Exception):
    """No load was sent (a skipped run), or no Prometheus got to watch it (deploy failed first):
    there is no final scrape, timeline or gate to read."""


def _expected_verdict(outcome: Outcome, report: GateReport | None) -> Verdict:
    """The verdict finish() is heading for, known before teardown (which may keep a failed release)."""
    if report is not None and outcome.aborted_by is None:
        return report.verdict
    return outcome.verdict


def finish(
    plan: RunPlan, backend: Backend, outcome: Outcome, *, console: Console, gate_file: GateFile | None
) -> RunRecord:
    started = stopped = None
    phases: tuple[PhaseWindow, ...] = ()
    report: GateReport | None = None
    peaks: tuple[Peak, ...] = ()
    try:
        backend.stop_load()
        try:
            if outcome.verdict == "skipped" or backend.prometheus_url is None:
                raise _NothingToRead
            with httpx.Client(base_url=backend.prometheus_url, timeout=10.0) as http:
                if not backend.wait_final_scrape(http, moment=time.time(), timeout=FINAL_SCRAPE_TIMEOUT_S):
                    outcome.reasons.append("some targets were not scraped again after the load stopped")
                started, stopped, phases = read_timeline(
                    client=http,
                    run_id=plan.run_id,
                    lookback_s=plan.duration + OVERRUN_GRACE_S,
                    at=time.time(),
                )
                if gate_file is not None and started is not None and outcome.verdict in ("no_gates", "fail"):
                    judged = draft_record(
                        plan, backend, started=started, ended=stopped or time.time(), phases=phases
                    )
                    with baseline_target(plan.baseline, gate_file=gate_file) as baseline:
                        report = evaluate_gates(
                            gate_file, source=str(plan.gates), target=Target(http, judged), baseline=baseline
                        )
                if plan.summary_peaks and started is not None:
                    end = stopped or time.time()
                    peaks = read_peaks(
                        http, run_id=plan.run_id, metrics=plan.summary_peaks, start=started, end=end
                    )
        except PrometheusError as e:
            outcome.reasons.append(f"Prometheus: {e}")
        except _NothingToRead:
            pass
    finally:
        backend.teardown(verdict=_expected_verdict(outcome, report))
    files = set(backend.collect())
    locust_code = backend.locust_exit_code
    if outcome.verdict == "no_gates" and started is None:
        outcome = Outcome(
            "error",
            EXIT_INFRA,
            [f"the load never started (locust exit code {locust_code})", *outcome.reasons],
        )
    if peaks:
        console.print(peaks_table(peaks))
    if report is not None:
        files.update(write_gate_reports(report, run_dir=plan.run_dir))
        console.print(gates_table(report))
        if outcome.aborted_by is None:
            outcome.verdict, outcome.exit_code = report.verdict, report.exit_code
            if report.reason:
                outcome.reasons.append(report.reason)
    elif gate_file is not None and outcome.verdict in ("no_gates", "fail"):
        # gates were asked for and could not be judged: never a pass
        outcome.verdict, outcome.exit_code = "error", EXIT_INFRA
        outcome.reasons.append("gates were not evaluated")
    stats, failures = csv_rows(plan.run_dir / "stats.csv"), csv_rows(plan.run_dir / "failures.csv")
    totals = locust_totals(stats)
    record = draft_record(
        plan,
        backend,
        started=started,
        ended=stopped or time.time(),
        phases=phases,
        verdict=outcome.verdict,
        exit_code=outcome.exit_code,
        reason="; ".join(outcome.reasons) or None,
        aborted_by=outcome.aborted_by,
        locust_exit_code=locust_code,
        requests=totals[0] if totals else None,
        failures=totals[1] if totals else None,
        files=tuple(sorted(files | {"run.json", "report.md"})),
        peaks=peaks,
    )
    write_record(plan.run_dir, record)
    report_md = run_report_markdown(record, stats=stats, failures=failures, gates=report)
    (plan.run_dir / "report.md").write_text(report_md, encoding="utf-8")
    return record
