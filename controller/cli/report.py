"""`loadctl report RESULTS_DIR [--baseline DIR]`: a finished run's analysis.json and report.md
rebuilt offline, from its kept tsdb/ served by a local Prometheus (as `gates eval --run` judges it).

The run's own settings come from its run.json (stage table, analysis settings, gate file); a run.json
written before they were recorded is analysed with defaults, and says so. run.json itself (the
verdict) is left as it was.
"""

from __future__ import annotations

from contextlib import ExitStack
from pathlib import Path

import click
import httpx

from controller.analysis.compare import RunFigures, compare_runs
from controller.analysis.models import Analysis
from controller.analysis.read import read_analysis
from controller.baseline import baseline_target, run_record
from controller.cli.options import RUN_DIR
from controller.cli.render import say, warn
from controller.comparison import read_run_figures
from controller.crash import remember_run_dir
from controller.errors import InfraError, InputError, LoadctlError
from controller.gates.evaluate import GateReport
from controller.gates.models import GateFile
from controller.gates.runner import Target, evaluate_gates
from controller.models import AnalysisSettings, RunRecord, Stage
from controller.rundir import RunDir, read_csv


def recorded_stages(record: RunRecord, notes: list[str]) -> tuple[Stage, ...]:
    """run.json's stage table; without one (an older run), one stage of unknown (0) users per phase."""
    if record.stages:  # None or () in a run.json written before the stage table was recorded
        return record.stages
    if record.shape is not None:
        return ()  # the locustfile's own shape ran the load: phases without planned users
    notes.append("run.json records no stage table (an older run): phases without users, no steps")
    stages: dict[int, Stage] = {}
    for phase in record.phases:
        stages.setdefault(
            phase.stage, Stage(duration=phase.end - phase.start, users=0, spawn_rate=1, phase=phase.phase)
        )
    return tuple(
        stages.get(i, Stage(duration=1, users=0, spawn_rate=1)) for i in range(max(stages, default=-1) + 1)
    )


def recorded_settings(record: RunRecord, notes: list[str]) -> AnalysisSettings:
    if record.analysis_settings is not None:
        return record.analysis_settings
    notes.append("run.json records no analysis settings (an older run): the defaults were used")
    return AnalysisSettings()


def recorded_gate_file(record: RunRecord, notes: list[str]) -> GateFile | None:
    """The run's gate file, if it is still there and valid: its SLO and the report's gate section."""
    if record.gates_file is None:
        return None
    from controller.gates.load import load_gate_file

    try:
        return load_gate_file(Path(record.gates_file))
    except LoadctlError as e:
        notes.append(f"the run's gate file was not used: {e}")
        return None


def reanalyse(
    record: RunRecord, client: httpx.Client, *, gate_file: GateFile | None, notes: list[str]
) -> Analysis:
    """The analysis runs.py makes after a run, from the served tsdb. Unlike after a run, a failure
    raises (PrometheusError: one line, exit 3): the analysis.json already there is kept."""
    assert record.started_at is not None and record.ended_at is not None  # checked by the caller
    return read_analysis(
        client=client,
        run_id=record.run_id,
        stages=recorded_stages(record, notes),
        phases=record.phases,
        started=record.started_at,
        ended=record.ended_at,
        settings=recorded_settings(record, notes),
        gate_file=gate_file,
        workers=record.workers,
        generator_problems=record.generator_problems,
        # report.html's gauge charts: the summary_peaks that had data (run.json keeps their peaks)
        summary_peaks=tuple(dict.fromkeys(p.metric for p in record.peaks)),
    )


def _checked_record(run_dir: Path) -> RunRecord:
    record = run_record(run_dir)
    folder = RunDir(run_dir)
    if not folder.tsdb.is_dir():
        raise InputError(f"no {folder.tsdb.name}/ directory: nothing to analyse offline", source=str(run_dir))
    if record.started_at is None or record.ended_at is None:
        raise InputError("the load never started: nothing to analyse", source=str(folder.record))
    return record


@click.command()
@click.argument("run_dir", metavar="RESULTS_DIR", type=RUN_DIR)
@click.option(
    "--baseline", type=RUN_DIR, help="A run's results folder to compare with (analysis.json `comparison`)."
)
def report(run_dir: Path, baseline: Path | None) -> None:
    """Rebuild RESULTS_DIR's analysis.json, report.md and report.html offline from its tsdb/."""
    from controller.prom.server import serve_run_tsdb
    from controller.runs import write_reports

    remember_run_dir(run_dir)
    record = _checked_record(run_dir)
    base = read_run_figures(baseline) if baseline is not None else None  # bad input before Prometheus
    notes: list[str] = []
    gate_file = recorded_gate_file(record, notes)
    gates: GateReport | None = None
    with ExitStack() as stack:
        server = stack.enter_context(serve_run_tsdb(run_dir, label="report"))
        client = stack.enter_context(server.client(timeout=30.0))
        analysis = reanalyse(record, client, gate_file=gate_file, notes=notes)
        if gate_file is not None:
            relative = stack.enter_context(baseline_target(baseline, gate_file=gate_file))
            gates = evaluate_gates(
                gate_file, source=str(record.gates_file), target=Target(client, record), baseline=relative
            )
    folder = RunDir(run_dir)
    stats = read_csv(folder.stats_csv)
    if base is not None:
        comparison = compare_runs(base, RunFigures(record, analysis, stats), baseline_dir=str(baseline))
        analysis = analysis.model_copy(update={"comparison": comparison})
    try:
        notes += write_reports(
            run_dir,
            record,
            stats=stats,
            failures=read_csv(folder.failures_csv),
            report=gates,
            analysis=analysis,
        )
    except OSError as e:
        raise InfraError(f"{run_dir}: cannot write: {e.strerror or e}") from e
    for note in notes:
        warn(note)
    say(f"rebuilt {folder.analysis_json}, {folder.report_md} and {folder.report_html}")
