"""One run's lifecycle over a backend: pre-flight, deploy, follow live, final scrape, teardown, run.json.

Teardown runs on every path (success, infrastructure error, Ctrl-C, SIGTERM), and run.json is
written with whatever was collected, so an interrupted run still leaves a usable results folder.
"""

from __future__ import annotations

import signal
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from importlib.metadata import version

import httpx
from rich.console import Console
from rich.live import Live

from controller.backends.base import Backend
from controller.errors import EXIT_INFRA, EXIT_PASS, InfraError, Interrupted, PrometheusError
from controller.locustfile_check import check_user_weights, list_user_classes
from controller.models import RunPlan, RunRecord, Verdict
from controller.progress import format_snapshot, read_snapshot
from controller.prom.client import wait_for_scrapes_after
from controller.results import locust_totals, read_timeline, write_record

FINAL_SCRAPE_TIMEOUT_S = 5.0
OVERRUN_GRACE_S = 180.0


@dataclass
class Outcome:
    verdict: Verdict = "no_gates"
    exit_code: int = EXIT_PASS
    reasons: list[str] = field(default_factory=list)


def preflight(plan: RunPlan) -> None:
    """Everything that can be checked before any load is sent (exit 2 / 3 on failure)."""
    classes = list_user_classes(plan.locustfile)
    source = str(plan.profile_file) if plan.profile_file else "command line"
    check_user_weights(plan.user_weights, classes, source=source)
    if plan.gates is not None:
        # Fail closed and before any load: a run with gates must never end without a verdict.
        raise InfraError(
            f"gates ({plan.gates}) cannot be evaluated by this version of loadctl yet; "
            "run without --gates / 'gates:' for an unjudged run"
        )


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


def follow(backend: Backend, *, console: Console, interval: float = 2.0) -> None:
    """Show live progress until the master ends the load; raise InfraError if the backend breaks."""
    plan = backend.plan
    deadline = time.monotonic() + plan.duration + OVERRUN_GRACE_S
    last_printed = 0.0
    with (
        httpx.Client(base_url=backend.prometheus_url, timeout=5.0) as http,
        Live(console=console, auto_refresh=False, transient=True)
        if console.is_terminal
        else _nothing() as live,
    ):
        while not backend.load_finished():
            problem = backend.health()
            if problem:
                raise InfraError(problem)
            if time.monotonic() > deadline:
                raise InfraError(
                    f"the run overran its planned {plan.duration:.0f}s by {OVERRUN_GRACE_S:.0f}s"
                )
            line = format_snapshot(read_snapshot(client=http, run_id=plan.run_id), planned_s=plan.duration)
            if live is not None:
                live.update(line, refresh=True)
            elif time.monotonic() - last_printed >= 10:
                console.print(line, highlight=False)
                last_printed = time.monotonic()
            time.sleep(interval)


@contextmanager
def _nothing() -> Iterator[None]:
    yield None


def execute(plan: RunPlan, *, backend: Backend, console: Console) -> RunRecord:
    preflight(plan)
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
            follow(backend, console=console)
        except Interrupted as e:
            outcome = Outcome("interrupted", e.exit_code, [str(e)])
            console.print(f"[yellow]{e}: stopping the load[/]")
        except InfraError as e:
            outcome = Outcome("error", e.exit_code, [str(e)])
        finally:
            quiet()
            record = finish(plan, backend, outcome, console=console)
    return record


def finish(plan: RunPlan, backend: Backend, outcome: Outcome, *, console: Console) -> RunRecord:
    started = stopped = None
    phases: tuple = ()
    try:
        backend.stop_load()
        try:
            with httpx.Client(base_url=backend.prometheus_url, timeout=5.0) as http:
                if not wait_for_scrapes_after(
                    client=http, moment=time.time(), timeout=FINAL_SCRAPE_TIMEOUT_S
                ):
                    outcome.reasons.append("some targets were not scraped again after the load stopped")
                started, stopped, phases = read_timeline(
                    client=http,
                    run_id=plan.run_id,
                    lookback_s=plan.duration + OVERRUN_GRACE_S,
                    at=time.time(),
                )
        except PrometheusError as e:
            outcome.reasons.append(f"timeline unavailable: {e}")
    finally:
        backend.teardown()
    files = backend.collect()
    locust_code = backend.locust_exit_code
    if outcome.verdict == "no_gates" and started is None:
        outcome = Outcome(
            "error",
            EXIT_INFRA,
            [f"the load never started (locust exit code {locust_code})", *outcome.reasons],
        )
    totals = locust_totals(plan.run_dir / "stats.csv")
    record = RunRecord(
        run_id=plan.run_id,
        profile=plan.profile,
        profile_file=str(plan.profile_file) if plan.profile_file else None,
        locustfile=str(plan.locustfile),
        host=plan.host,
        backend=backend.name,
        workers=plan.workers,
        planned_duration_s=plan.duration,
        started_at=started,
        ended_at=stopped or time.time(),
        phases=phases,
        verdict=outcome.verdict,
        exit_code=outcome.exit_code,
        reason="; ".join(outcome.reasons) or None,
        locust_exit_code=locust_code,
        requests=totals[0] if totals else None,
        failures=totals[1] if totals else None,
        files=tuple(sorted({*files, "run.json"})),
        loadctl_version=version("loadctl"),
    )
    write_record(plan.run_dir, record)
    return record
