"""One run's lifecycle over a backend: pre-flight, deploy, follow live, final scrape, gates, teardown.

Teardown runs on every path (success, infrastructure error, Ctrl-C, SIGTERM, live abort), and
run.json is written with whatever was collected, so an interrupted run still leaves a usable
results folder. Gates and the generator's health are read from the run's Prometheus before it is
stopped; controller/verdict.py turns all of it into the one verdict.
"""

from __future__ import annotations

import platform
import signal
import time
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager, nullcontext
from dataclasses import dataclass, field
from html import escape as html_escape
from importlib.metadata import version
from pathlib import Path
from typing import Any, Protocol

import httpx
from rich.console import Console
from rich.live import Live

from controller.analysis.compare import RunFigures, compare_runs
from controller.analysis.models import Analysis
from controller.analysis.read import read_analysis
from controller.analysis.steps import breaking_point_users
from controller.backends.base import Backend
from controller.baseline import baseline_target
from controller.comparison import read_run_figures
from controller.crash import remember_run_dir
from controller.errors import (
    EXIT_INFRA,
    GeneratorLost,
    InfraError,
    Interrupted,
    PrometheusError,
    PrometheusLost,
    RunSkipped,
)
from controller.gates.compile import WindowError, window_segments
from controller.gates.evaluate import GateReport, GateResult, judge, with_results
from controller.gates.models import GateFile
from controller.gates.runner import Target, evaluate_gates
from controller.gates.thresholds import gate_thresholds
from controller.models import OVERRUN_GRACE_S, Peak, PhaseWindow, RunPlan, RunRecord
from controller.preflight import Checked, check_pods_see_it, check_run, claim_run_dir
from controller.progress import Snapshot, format_snapshot, read_snapshot
from controller.prom.client import is_ready
from controller.prom.health import (
    read_alerts_fired,
    read_generator_problems,
    read_last_seen,
    read_totals,
)
from controller.prom.locustfile import LocustfileEnd, read_locustfile_end
from controller.prom.peaks import read_peaks
from controller.prom.timeline import read_timeline
from controller.reports.gates import gates_table, write_gate_reports
from controller.reports.render import chart_panels, grafana_link, render_html, render_markdown
from controller.reports.run_report import peaks_table, report_view
from controller.rundir import (
    ANALYSIS_JSON,
    RUN_RECORD,
    RUN_REPORT,
    RUN_REPORT_HTML,
    RunDir,
    locust_totals,
    read_csv,
    write_atomic,
)
from controller.verdict import (
    Ending,
    Happened,
    decide,
    early_stop_problem,
    locustfile_reasons,
    master_problem,
)

# The final-scrape wait: two scrape intervals of the run's Prometheus, at least FINAL_SCRAPE_MIN_S.
FINAL_SCRAPE_MIN_S = 5.0
FINAL_SCRAPE_INTERVALS = 2
LIVE_GATE_INTERVAL_S = 5.0
PROGRESS_PRINT_INTERVAL_S = 10.0  # without a terminal (CI logs): one progress line this often
# The load stops when the run's Prometheus has not answered for this long (nothing could judge it).
PROMETHEUS_LOST_AFTER_S = 5.0
# ...or when fewer workers than planned are connected for this long while the stage table runs.
WORKERS_SHORT_AFTER_S = 5.0
_NOT_LOADING = ("stopped", "stopping", "ready", "cleanup", "missing")  # run_info phases off the table


@dataclass
class Followed:
    """How following the load ended, before anything is read back from Prometheus."""

    ending: Ending = "completed"
    reason: str | None = None
    aborted_by: str | None = None
    generator: list[str] = field(default_factory=list)


class RunObserver(Protocol):
    """Hears a run's events live (Grafana annotations); must neither raise nor block the run."""

    def progress(self, snapshot: Snapshot) -> None: ...
    def aborted(self, reason: str) -> None: ...
    def finished(self, record: RunRecord) -> None: ...


class GateAbort(Exception):
    def __init__(self, result: GateResult) -> None:
        super().__init__(f"aborted by gate {result.name}: {result.reason}")
        self.result = result


def preflight(plan: RunPlan, *, backend: str = "local") -> Checked:
    """Everything that can be checked before any load is sent (exit 2 on bad input), then the
    run's folder claimed (last, so a rejected run leaves no folder behind)."""
    checked = check_run(plan)
    check_pods_see_it(checked.locust_config, backend=backend)
    claim_run_dir(plan)
    remember_run_dir(plan.run_dir)  # from here on a crash leaves its traceback in this run's logs/
    return checked


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
        "hosts": plan.hosts,
        "shape": plan.shape,
        "backend": backend.name,
        "workers": plan.workers,
        "planned_duration_s": plan.duration,
        "started_at": started,
        "ended_at": ended,
        "phases": phases,
        "verdict": "error",  # a draft is never a pass; finish() writes the decided verdict
        "exit_code": EXIT_INFRA,
        "loadctl_version": version("loadctl"),
        "gates_file": str(plan.gates) if plan.gates else None,
        "stages": plan.stages,
        "analysis_settings": plan.analysis,
        "command": plan.command,
        "user_weights": plan.user_weights,
        "locust_version": version("locust"),
        "python_version": platform.python_version(),
        "machine": platform.node() or None,
        "grafana_url": plan.grafana_url,
        "locust_config": plan.locust_config,
        **backend.record_fields,
    }
    return RunRecord(**(fields | extra))


def check_live_gates(plan: RunPlan, backend: Backend, gate_file: GateFile, http: httpx.Client) -> None:
    """Judge the abort gates over their window so far; raise GateAbort on a real violation."""
    now = time.time()
    started, _, phases = read_timeline(client=http, run_id=plan.run_id, planned_s=plan.duration, at=now)
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
    """Show live progress until the master ends the load.

    Raises PrometheusLost when the run's Prometheus stops answering, GeneratorLost when the backend
    reports a broken worker or fewer workers than planned stay connected, InfraError on an overrun.
    """
    plan = backend.plan
    if backend.prometheus_url is None:
        raise InfraError("the backend deployed without a Prometheus to follow")
    url = backend.prometheus_url
    deadline = time.monotonic() + plan.duration + OVERRUN_GRACE_S
    prometheus_down, workers_short = _Streak(), _Streak()
    print_due, gates_due = _Every(PROGRESS_PRINT_INTERVAL_S), _Every(LIVE_GATE_INTERVAL_S)
    live_gate_file = gate_file if gate_file is not None and any(g.abort for g in gate_file.gates) else None
    with (
        httpx.Client(base_url=url, timeout=5.0) as http,
        httpx.Client(base_url=url, timeout=2.0) as probe,
        _live_view(console) as live,
    ):
        while not backend.load_finished():
            if not is_ready(client=probe):
                if (down_s := prometheus_down.hold()) >= PROMETHEUS_LOST_AFTER_S:
                    raise PrometheusLost(f"the run's Prometheus at {url} stopped answering for {down_s:.0f}s")
                time.sleep(1.0)
                continue
            prometheus_down.reset()
            _check_generator(backend, deadline=deadline)
            snapshot = read_snapshot(client=http, run_id=plan.run_id)
            _check_workers(snapshot, plan.workers, short=workers_short)
            if observer is not None:
                observer.progress(snapshot)
            line = format_snapshot(snapshot, planned_s=plan.duration, width=console.width)
            if live is not None:
                live.update(line, refresh=True)
            elif print_due():
                console.print(line, highlight=False)
            if live_gate_file is not None and gates_due():
                _live_gates_round(plan, backend, live_gate_file, http=http, console=console)
            time.sleep(interval)


class _Streak:
    """How long a condition has held without a break, on the monotonic clock."""

    def __init__(self) -> None:
        self._since: float | None = None

    def hold(self) -> float:
        """The condition holds now: seconds since it started holding."""
        if self._since is None:
            self._since = time.monotonic()
        return time.monotonic() - self._since

    def reset(self) -> None:
        self._since = None


class _Every:
    """True on the first call, then at most once per `period_s` seconds."""

    def __init__(self, period_s: float) -> None:
        self.period_s = period_s
        self._last: float | None = None

    def __call__(self) -> bool:
        now = time.monotonic()
        if self._last is not None and now - self._last < self.period_s:
            return False
        self._last = now
        return True


def _live_view(console: Console) -> AbstractContextManager[Live | None]:
    """One progress line redrawn in place on a terminal; on a pipe or file, a line every so often."""
    return Live(console=console, auto_refresh=False, transient=True) if console.is_terminal else nullcontext()


def _check_generator(backend: Backend, *, deadline: float) -> None:
    """The backend's own health (a broken worker, a dead master), then the planned time."""
    problem = backend.health()
    if problem:
        raise GeneratorLost(problem)
    if time.monotonic() > deadline:
        raise InfraError(
            f"the run overran its planned {backend.plan.duration:.0f}s by {OVERRUN_GRACE_S:.0f}s"
        )


def _check_workers(snapshot: Snapshot, planned: int, *, short: _Streak) -> None:
    """GeneratorLost once fewer workers than planned have been connected for WORKERS_SHORT_AFTER_S."""
    if not _workers_short(snapshot, planned):
        short.reset()
    elif short.hold() >= WORKERS_SHORT_AFTER_S:
        raise GeneratorLost(
            f"only {snapshot.workers} of {planned} workers connected during "
            f"phase {snapshot.phase}: the missing workers' users were not replaced"
        )


def _live_gates_round(
    plan: RunPlan, backend: Backend, gate_file: GateFile, *, http: httpx.Client, console: Console
) -> None:
    """The abort gates judged once; a Prometheus error only skips the round (the gates are judged
    again after the run, with the final data)."""
    try:
        check_live_gates(plan, backend, gate_file, http)
    except PrometheusError as e:
        console.print(f"[yellow]live gates skipped this round: {e}[/]")


def _workers_short(snapshot: Snapshot, planned: int) -> bool:
    """Fewer workers than planned while the stage table runs (not before the start or after the end)."""
    loading = snapshot.started_at is not None and snapshot.phase not in (None, *_NOT_LOADING)
    return loading and snapshot.workers is not None and snapshot.workers < planned


def execute(
    plan: RunPlan, *, backend: Backend, console: Console, observer: RunObserver | None = None
) -> RunRecord:
    checked = preflight(plan, backend=backend.name)
    gate_file = checked.gate_file
    plan = plan.model_copy(update={"locust_config": checked.locust_config})
    if gate_file is not None:  # the master publishes them: the dashboards draw this run's own lines
        backend.plan = backend.plan.model_copy(update={"gate_thresholds": gate_thresholds(gate_file)})
    followed = Followed()
    for line in start_lines(plan):
        console.print(line, highlight=False)
    with interrupt_signals(console) as quiet:
        try:
            backend.deploy()
            console.print(f"prometheus {backend.prometheus_url}  results {plan.run_dir}", highlight=False)
            follow(backend, console=console, gate_file=gate_file, observer=observer)
        except GateAbort as e:
            followed = Followed("aborted", str(e), aborted_by=e.result.name)
            console.print(f"[red]{e}: stopping the load[/]", highlight=False)
            if observer is not None:
                observer.aborted(str(e))
        except Interrupted as e:
            followed = Followed("interrupted", str(e))
            console.print(f"[yellow]{e}: stopping the load[/]")
        except RunSkipped as e:
            followed = Followed("skipped", f"skipped: {e}")
            console.print(f"[yellow]run skipped, no load sent: {e}[/]", highlight=False)
        except PrometheusLost as e:
            followed = Followed("prometheus_lost", str(e))
            console.print(f"[red]{e}: stopping the load[/]", highlight=False)
        except GeneratorLost as e:
            followed = Followed("completed", generator=[f"{e} (the load was stopped)"])
            console.print(f"[red]load generator broken: {e}: stopping the load[/]", highlight=False)
        except InfraError as e:
            followed = Followed("error", str(e))
        finally:
            quiet()
            record = finish(plan, backend, followed, console=console, gate_file=gate_file)
            if observer is not None:
                observer.finished(record)
    return record


def start_lines(plan: RunPlan) -> list[str]:
    """What the run is about to do: its load (stage table or the locustfile's own shape) and hosts."""
    targets = ", ".join(plan.hosts) + ("" if plan.host else " (the user classes' own hosts)")
    if plan.shape is None:
        load = f"{len(plan.stages)} stages"
        notes = []
    else:
        shape = plan.shape
        load = f"the locustfile's own shape {shape.name}"
        given = (
            ("-u", shape.users, ""),
            ("-r", shape.spawn_rate, ""),
            ("-t", shape.run_time_s, "s"),
        )
        options = " ".join(f"{flag} {value:g}{unit}" for flag, value, unit in given if value is not None)
        end = "its own end" if shape.own_end_s is not None and shape.own_end_s <= plan.duration else "-t"
        notes = [
            f"using the locustfile's own LoadTestShape {shape.name}: loadctl's stage table is not "
            f"loaded; phases {', '.join(shape.phases)}; bounded by {end} ({plan.duration:.0f}s)"
            + (f"; Locust gets {options}" if options else "")
        ]
    head = (
        f"run [bold]{plan.run_id}[/]: profile {plan.profile}, {load}, "
        f"{plan.duration:.0f}s, {plan.workers} workers -> {targets}"
    )
    return [head, *notes]


@dataclass
class Readings:
    """What finish() read back from the run's Prometheus (all empty when it could not)."""

    started: float | None = None
    stopped: float | None = None
    ended: float | None = None
    phases: tuple[PhaseWindow, ...] = ()
    report: GateReport | None = None
    gates_unjudged: str | None = None
    peaks: tuple[Peak, ...] = ()
    generator: list[str] = field(default_factory=list)
    alerts: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    totals: tuple[int, int] | None = None  # the exporter's, before teardown; run.json has Locust's own
    analysis: Analysis | None = None  # None: the load never started, or Prometheus failed before it
    locustfile: LocustfileEnd = field(default_factory=LocustfileEnd)  # how the locustfile itself ended it


def final_scrape_timeout(scrape_interval_s: float) -> float:
    """How long read_back waits for the scrape that holds the run's final totals, for any backend.

    One interval can pass between the load's end and the next scrape, and that scrape can land
    just too early or fail once: two intervals cover it. A private Prometheus scrapes every second,
    so there the floor rules (slack for a busy machine); a cluster Prometheus scrapes far less
    often, and a fixed wait short enough for the first would judge a k8s run on totals the
    cluster has not scraped yet. The backend reports the interval (Backend.scrape_interval_s).
    """
    return max(FINAL_SCRAPE_MIN_S, FINAL_SCRAPE_INTERVALS * scrape_interval_s)


def judged_windows(gate_file: GateFile | None, readings: Readings) -> list[tuple[str, float, float]]:
    """(name, start, end) of every window a verdict rests on: the gates' windows, else the run."""
    names = sorted({gate_file.window_of(g) for g in gate_file.gates}) if gate_file else ["run"]
    spans = []
    for name in names:
        try:
            segments = window_segments(
                name, phases=readings.phases, started_at=readings.started, ended_at=readings.ended
            )
        except WindowError:
            continue
        spans += [(name, start, end) for start, end in segments]
    return spans


def read_back(
    plan: RunPlan, backend: Backend, followed: Followed, gate_file: GateFile | None, http: httpx.Client
) -> Readings:
    """Everything the verdict needs from Prometheus: timeline, gates, generator health, alerts."""
    readings = Readings()
    timeout = final_scrape_timeout(backend.scrape_interval_s)
    if not backend.wait_final_scrape(http, moment=time.time(), timeout=timeout):
        readings.notes.append("some targets were not scraped again after the load stopped")
    readings.started, readings.stopped, readings.phases = read_timeline(
        client=http, run_id=plan.run_id, planned_s=plan.duration, at=time.time()
    )
    if readings.started is None:
        return readings
    readings.locustfile = read_locustfile_end(
        client=http, run_id=plan.run_id, planned_s=plan.duration, at=time.time()
    )
    readings.ended = readings.stopped
    if readings.ended is None:  # the master died before stopping the test: its last scrape is the end
        seen = read_last_seen(client=http, run_id=plan.run_id, planned_s=plan.duration, at=time.time())
        readings.ended = seen if seen is not None else time.time()
        readings.phases = tuple(
            p.model_copy(update={"end": min(p.end, readings.ended)})
            for p in readings.phases
            if p.start < readings.ended
        )
    judged = draft_record(
        plan, backend, started=readings.started, ended=readings.ended, phases=readings.phases
    )
    if gate_file is not None and followed.ending in ("completed", "aborted"):
        with baseline_target(plan.baseline, gate_file=gate_file) as baseline:
            readings.report = evaluate_gates(
                gate_file, source=str(plan.gates), target=Target(http, judged), baseline=baseline
            )
    readings.generator = read_generator_problems(
        client=http,
        run_id=plan.run_id,
        stages=plan.stages,
        phases=readings.phases,
        workers=plan.workers,
        started=readings.started,
        ended=readings.ended,
        judged=judged_windows(gate_file, readings),
    )
    readings.totals = read_totals(
        client=http, run_id=plan.run_id, started=readings.started, ended=readings.ended
    )
    readings.alerts = read_alerts_fired(
        client=http, run_id=plan.run_id, started=readings.started, ended=readings.ended + 5
    )
    if plan.summary_peaks:
        readings.peaks = read_peaks(
            http, run_id=plan.run_id, metrics=plan.summary_peaks, start=readings.started, end=readings.ended
        )
    readings.analysis = analyse(plan, readings, http, gate_file=gate_file)
    if gate_file is not None and readings.report is not None:
        readings.report = judge_analysis_gates(gate_file, readings.report, readings.analysis)
    return readings


def judge_analysis_gates(gate_file: GateFile, report: GateReport, analysis: Analysis | None) -> GateReport:
    """The report with its gates judged from the analysis (breaking_point_users) in place of the
    placeholders evaluate_gates left; fail closed when the analysis is missing or failed."""
    judged = []
    for gate in gate_file.gates:
        placeholder = next((r for r in report.gates if r.name == gate.name), None)
        if not gate.from_analysis or placeholder is None:
            continue
        value: float | None = None
        reason: str | None = f"the run's analysis failed: {analysis.error if analysis else 'not computed'}"
        if analysis is not None and analysis.error is None:
            value, reason = breaking_point_users(analysis.steps)
        judged.append(
            judge(
                gate,
                value=value,
                reason=reason,
                promql="",
                window=placeholder.window,
                start=placeholder.start,
                end=placeholder.end,
            )
        )
    return with_results(report, judged)


def analyse(plan: RunPlan, readings: Readings, http: httpx.Client, *, gate_file: GateFile | None) -> Analysis:
    """analysis.json's content, best effort: a failure is a note and the file's `error`, never the verdict."""
    assert readings.started is not None and readings.ended is not None  # read_back returns before
    try:
        return read_analysis(
            client=http,
            run_id=plan.run_id,
            stages=plan.stages,
            phases=readings.phases,
            started=readings.started,
            ended=readings.ended,
            settings=plan.analysis,
            gate_file=gate_file,
            workers=plan.workers,
            generator_problems=readings.generator,
            summary_peaks=plan.summary_peaks,
        )
    except Exception as e:  # a bug or a Prometheus error here must cost the analysis, never the run
        readings.notes.append(f"the run's analysis ({ANALYSIS_JSON}) could not be computed: {e}")
        return Analysis(error=str(e) or type(e).__name__)


def _master_problems(
    plan: RunPlan, followed: Followed, readings: Readings, *, locust_exit_code: int | None
) -> list[str]:
    """The master's end as a generator problem: a crash, or a test that Locust stopped early --
    unless the locustfile stopped it itself (runner.quit()): that is its verdict, not a sick generator."""
    assert readings.started is not None
    asked = readings.locustfile.exit_code
    broken = master_problem(locust_exit_code, test_stopped=readings.stopped is not None, asked=asked)
    if broken:
        return [broken]
    if readings.stopped is None or followed.generator or readings.locustfile.stopped_at is not None:
        return []
    early = early_stop_problem(planned_s=plan.duration, ran_s=readings.stopped - readings.started)
    return [early] if early else []


def happened(
    plan: RunPlan,
    followed: Followed,
    readings: Readings,
    *,
    locust_exit_code: int | None,
    totals: tuple[int, int] | None,
) -> Happened:
    generator = [*followed.generator, *readings.generator]
    locustfile: tuple[str, ...] = ()
    if followed.ending == "completed" and readings.started is not None:
        generator[:0] = _master_problems(plan, followed, readings, locust_exit_code=locust_exit_code)
    if readings.started is not None:
        locustfile = locustfile_reasons(
            readings.locustfile, started=readings.started, planned_s=plan.duration
        )
    gates_unjudged = readings.gates_unjudged
    if plan.gates is not None and readings.report is None and gates_unjudged is None:
        gates_unjudged = "the run's data could not be read"
    return Happened(
        ending=followed.ending,
        ending_reason=followed.reason,
        load_started=readings.started is not None,
        locust_exit_code=locust_exit_code,
        gates="file" if plan.gates is not None else ("none" if plan.gates_opt_out else "absent"),
        report=readings.report,
        gates_unjudged=gates_unjudged,
        generator=tuple(dict.fromkeys(generator)),
        locustfile=locustfile,
        requests=totals[0] if totals else None,
        failures=totals[1] if totals else None,
        notes=tuple(readings.notes),
    )


def finish(
    plan: RunPlan, backend: Backend, followed: Followed, *, console: Console, gate_file: GateFile | None
) -> RunRecord:
    readings = Readings()
    try:
        backend.stop_load()
        url = backend.prometheus_url
        if url is not None and followed.ending not in ("skipped", "prometheus_lost"):
            try:
                with httpx.Client(base_url=url, timeout=10.0) as http:
                    readings = read_back(plan, backend, followed, gate_file, http)
            except PrometheusError as e:
                readings.notes.append(f"Prometheus: {e}")
                readings.gates_unjudged = str(e)
    finally:
        # Where the run is heading, for a k8s release kept on "fail" (Locust's totals come later).
        heading = decide(happened(plan, followed, readings, locust_exit_code=None, totals=readings.totals))
        backend.teardown(verdict=heading.verdict)
    files = set(backend.collect())
    stats, failures = read_csv(RunDir(plan.run_dir).stats_csv), read_csv(RunDir(plan.run_dir).failures_csv)
    totals = locust_totals(stats)
    compare_with_baseline(plan, backend, readings, stats=stats)
    facts = happened(plan, followed, readings, locust_exit_code=backend.locust_exit_code, totals=totals)
    decision = decide(facts)
    report = readings.report
    if readings.peaks:
        console.print(peaks_table(readings.peaks))
    if report is not None:
        files.update(write_gate_reports(report, run_dir=plan.run_dir))
        console.print(gates_table(report))
    files.update([ANALYSIS_JSON] if readings.analysis is not None else [])  # written with run.json
    record = draft_record(
        plan,
        backend,
        started=readings.started,
        ended=readings.ended or time.time(),
        phases=readings.phases,
        verdict=decision.verdict,
        exit_code=decision.exit_code,
        reason=decision.reason,
        aborted_by=followed.aborted_by,
        locust_exit_code=backend.locust_exit_code,
        requests=totals[0] if totals else None,
        failures=totals[1] if totals else None,
        files=tuple(sorted(files | {RUN_RECORD, RUN_REPORT, RUN_REPORT_HTML})),
        peaks=readings.peaks,
        generator_problems=facts.generator,
        alerts_fired=tuple(readings.alerts),
        locust_warnings=backend.locust_warnings(),
    )
    write_results(
        plan,
        record,
        stats=stats,
        failures=failures,
        report=report,
        analysis=readings.analysis,
        console=console,
    )
    return record


def write_results(
    plan: RunPlan,
    record: RunRecord,
    *,
    stats: list[dict[str, str]],
    failures: list[dict[str, str]],
    report: GateReport | None,
    analysis: Analysis | None,
    console: Console,
) -> None:
    """run.json, analysis.json, report.md and report.html, best effort: a full or unwritable disk
    must not hide the verdict."""
    try:
        RunDir(plan.run_dir).write_record(record)
        notes = write_reports(
            plan.run_dir,
            record,
            stats=stats,
            failures=failures,
            report=report,
            analysis=analysis,
            template_dir=plan.report_template,
        )
        for note in notes:
            console.print(f"[yellow]warning: {note}[/]", highlight=False)
    except OSError as e:
        console.print(
            f"[red]could not write the results to {plan.run_dir}: {e.strerror or e}[/]", highlight=False
        )


def write_reports(
    run_dir: Path,
    record: RunRecord,
    *,
    stats: list[dict[str, str]],
    failures: list[dict[str, str]],
    report: GateReport | None,
    analysis: Analysis | None,
    template_dir: Path | None = None,
) -> list[str]:
    """analysis.json, report.md and report.html from what the run left: after a run, and again by
    `loadctl report` (OSError passes through). Returns the notes of a report that could not be
    rendered (a team's own template failing: that report says why, the verdict stands)."""
    folder = RunDir(run_dir)
    if analysis is not None and analysis.generator is not None:
        # One owner for "why the generator is suspect": the verdict's list (live checks and the
        # master's exit included), not only what Prometheus showed after the run.
        generator = analysis.generator.model_copy(update={"problems": record.generator_problems})
        analysis = analysis.model_copy(update={"generator": generator})
    if analysis is not None:
        write_atomic(folder.analysis_json, text=analysis.model_dump_json(indent=2) + "\n")
    view = report_view(record, stats=stats, failures=failures, gates=report, analysis=analysis)
    notes: list[str] = []
    markdown = _rendered(RUN_REPORT, lambda: render_markdown(view, template_dir=template_dir), notes)
    write_atomic(folder.report_md, text=markdown)
    html = _rendered(
        RUN_REPORT_HTML,
        lambda: render_html(
            view,
            charts=chart_panels(analysis, record),
            grafana=grafana_link(record),
            template_dir=template_dir,
        ),
        notes,
    )
    write_atomic(folder.report_html, text=html)
    return notes


def compare_with_baseline(
    plan: RunPlan, backend: Backend, readings: Readings, *, stats: list[dict[str, str]]
) -> None:
    """analysis.json's `comparison` with --baseline's folder, best effort: a failure is a note."""
    if plan.baseline is None or readings.analysis is None:
        return
    record = draft_record(
        plan, backend, started=readings.started, ended=readings.ended, phases=readings.phases
    )
    current = RunFigures(record=record, analysis=readings.analysis, stats=stats)
    try:
        comparison = compare_runs(read_run_figures(plan.baseline), current, baseline_dir=str(plan.baseline))
    except Exception as e:  # like the analysis: a bug or a bad baseline file costs the comparison only
        readings.notes.append(f"the comparison with the baseline {plan.baseline} could not be made: {e}")
        return
    readings.analysis = readings.analysis.model_copy(update={"comparison": comparison})


def _rendered(name: str, render: Callable[[], str], notes: list[str]) -> str:
    """A report rendered from its template; a template that fails (a team's own, most likely) costs
    the report, which then says why, never the run's verdict."""
    try:
        return render()
    except Exception as e:  # jinja2 raises anything the template's expressions raise
        note = f"{name} could not be rendered from its template: {type(e).__name__}: {e}"
        notes.append(note)
        if name == RUN_REPORT_HTML:
            return f"<!DOCTYPE html>\n<title>report</title>\n<p>{html_escape(note)}</p>\n"
        return f"# Report not rendered\n\n{note}\n"
