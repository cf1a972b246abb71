"""`loadctl gates eval` and `loadctl gates lock`: judge or tighten a gate file against any Prometheus.

A run directory's own TSDB is served locally when no --prometheus URL is given, so a finished
run (and a baseline run) can be judged again offline.
"""

from __future__ import annotations

import math
import sys
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path

import click
import httpx

from controller.analysis.models import Analysis
from controller.baseline import baseline_target, read_baseline, run_record
from controller.cli.options import GATES_PROMETHEUS, RUN_DIR, check_output, gate_file_option, write_output
from controller.cli.render import console
from controller.crash import remember_run_dir
from controller.errors import InputError
from controller.gates.evaluate import GateReport
from controller.gates.load import load_gate_file
from controller.gates.runner import Target, evaluate_gates
from controller.models import RunRecord
from controller.prom.timeline import read_timeline
from controller.rundir import GATES_LOCK_REPORT, RUN_RECORD, RunDir


def check_prometheus_url(url: str | None) -> None:
    if url is None:
        return
    try:
        parsed = httpx.URL(url)
    except httpx.InvalidURL as e:
        raise InputError(f"invalid URL {url!r}: {e}", source="command line", field="--prometheus") from e
    if parsed.scheme not in ("http", "https") or not parsed.host:
        raise InputError(
            f"expected an http(s)://host[:port] URL, got {url!r}", source="command line", field="--prometheus"
        )


@contextmanager
def prometheus_client(url: str | None, run_dir: Path | None, label: str) -> Iterator[httpx.Client]:
    if url:
        with httpx.Client(base_url=url.rstrip("/"), timeout=30.0) as client:
            yield client
        return
    if run_dir is None:
        raise InputError(
            "give --prometheus URL or --run RUN_DIR", source="command line", field="--prometheus"
        )
    from controller.prom.server import serve_run_tsdb

    with serve_run_tsdb(run_dir, label=label) as server, server.client(timeout=30.0) as client:
        yield client


def record_from_window(client: httpx.Client, run_id: str, start: float, end: float) -> RunRecord:
    """A run known only by id and times: phases come from the exporter's series in Prometheus."""
    if not (math.isfinite(start) and math.isfinite(end)):
        raise InputError("--start and --end must be unix times", source="command line", field="--start")
    if end <= start:
        raise InputError("--end must be after --start", source="command line", field="--end")
    _, _, phases = read_timeline(client=client, run_id=run_id, planned_s=end - start, at=end)
    return RunRecord(
        run_id=run_id,
        profile="unknown",
        profile_file=None,
        locustfile="",
        host="",
        backend="external",
        workers=0,
        planned_duration_s=end - start,
        started_at=start,
        ended_at=end,
        phases=phases,
        verdict="no_gates",
        exit_code=0,
        loadctl_version="",
    )


def report_text(report: GateReport, fmt: str) -> str:
    """The report as --format md, json or junit writes it."""
    from controller.reports.gates import gates_json, gates_markdown, junit_xml

    return {"json": gates_json, "md": gates_markdown, "junit": junit_xml}[fmt](report)


@click.group()
def gates() -> None:
    """Judge runs against gate files, and lock gates from a good run."""


@gates.command("eval")
@gate_file_option("Gate file (YAML).")
@GATES_PROMETHEUS
@click.option(
    "--run", "run_dir", type=RUN_DIR, help=f"A loadctl run directory (windows from its {RUN_RECORD})."
)
@click.option("--run-id", help="Without --run: the run_id label to judge.")
@click.option("--start", type=float, help="Without --run: window start, unix time.")
@click.option("--end", type=float, help="Without --run: window end, unix time.")
@click.option("--baseline", type=RUN_DIR, help="A run directory to compare max_change/min_change gates with.")
@click.option(
    "--format", "fmt", type=click.Choice(["table", "md", "json", "junit"]), default="table", show_default=True
)
@click.option("--output", type=click.Path(dir_okay=False, path_type=Path), help="Write the report here.")
@click.option(
    "--retry",
    type=click.FloatRange(min=0),
    default=30.0,
    show_default=True,
    help="Seconds to retry an unreachable Prometheus before the verdict is 'error'.",
)
def eval_command(
    gates_path: Path,
    prometheus: str | None,
    run_dir: Path | None,
    run_id: str | None,
    start: float | None,
    end: float | None,
    baseline: Path | None,
    fmt: str,
    output: Path | None,
    retry: float,
) -> None:
    """Evaluate a gate file; exit 0 pass/warn, 1 fail, 3 error."""
    remember_run_dir(run_dir)
    gate_file = load_gate_file(gates_path)
    if run_dir is None and (run_id is None or start is None or end is None):
        raise InputError(
            "give --run RUN_DIR, or --run-id with --start and --end", source="command line", field="--run"
        )
    check_prometheus_url(prometheus)
    check_output(output, "--output")
    # every file is read before any Prometheus is started: bad input fails fast, nothing to stop
    given = run_record(run_dir) if run_dir is not None else None
    if baseline is not None:
        read_baseline(baseline)
    with ExitStack() as stack:
        client = stack.enter_context(prometheus_client(prometheus, run_dir, "gates"))
        if given is not None:
            target = Target(client, given)
        else:
            assert run_id is not None and start is not None and end is not None
            target = Target(client, record_from_window(client, run_id, start, end), stopped_at_end=False)
        base = stack.enter_context(baseline_target(baseline))
        report = evaluate_gates(
            gate_file, source=str(gates_path), target=target, baseline=base, retry_s=retry
        )
    if run_dir is not None:
        from controller.runs import judge_analysis_gates  # here: runs loads every backend

        report = judge_analysis_gates(gate_file, report, kept_analysis(run_dir))
    if fmt == "table":
        from controller.reports.gates import gates_table

        console.print(gates_table(report))
        if output is not None:
            write_output(output, report_text(report, "md"))
    else:
        text = report_text(report, fmt)
        if output is not None:
            write_output(output, text)
        else:
            sys.stdout.write(text if text.endswith("\n") else text + "\n")
    sys.exit(report.exit_code)


def kept_analysis(run_dir: Path) -> Analysis | None:
    """The run's analysis.json, for the gates judged from it (None: missing or unreadable)."""
    try:
        return Analysis.model_validate_json(RunDir(run_dir).analysis_json.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None


@gates.command("lock")
@gate_file_option("Gate file to tighten.")
@click.option("--run", "run_dir", required=True, type=RUN_DIR, help="The passing run to lock from.")
@click.option("--headroom", type=click.FloatRange(min=1.0, min_open=True), default=1.2, show_default=True)
@click.option(
    "--output", required=True, type=click.Path(dir_okay=False, path_type=Path), help="Locked gate file."
)
@click.option(
    "--report",
    "report_path",
    type=click.Path(dir_okay=False, path_type=Path),
    help=f"Markdown lock report (default: RUN_DIR/{GATES_LOCK_REPORT}).",
)
@GATES_PROMETHEUS
def lock_command(
    gates_path: Path,
    run_dir: Path,
    headroom: float,
    output: Path,
    report_path: Path | None,
    prometheus: str | None,
) -> None:
    """Write a tightened gate file from a passing run.

    Each max becomes min(max, max(observed x headroom, floor)); each min max(min, observed / headroom).
    """
    from controller.gates.lock import dump_gate_file, lock_gate_file
    from controller.inputs import load_yaml_mapping
    from controller.reports.lock import lock_report_markdown

    remember_run_dir(run_dir)
    gate_file = load_gate_file(gates_path)
    check_prometheus_url(prometheus)
    report_path = report_path or RunDir(run_dir).gates_lock_report
    check_output(output, "--output")
    check_output(report_path, "--report")
    record = run_record(run_dir)
    with prometheus_client(prometheus, run_dir, "lock") as client:
        report = evaluate_gates(gate_file, source=str(gates_path), target=Target(client, record))
    from controller.runs import judge_analysis_gates  # here: runs loads every backend

    report = judge_analysis_gates(gate_file, report, kept_analysis(run_dir))
    if report.verdict == "error":
        raise InputError(f"cannot lock: {report.reason}", source=str(run_dir))
    data, rows = lock_gate_file(load_yaml_mapping(gates_path), report.gates, headroom=headroom)
    write_output(output, dump_gate_file(data, run_id=record.run_id, source=str(gates_path)))
    load_gate_file(output)  # the locked file must itself be valid
    write_output(
        report_path,
        lock_report_markdown(
            rows, gate_file=str(gates_path), run_id=record.run_id, headroom=headroom, output=str(output)
        ),
    )
    console.print(
        f"locked {sum(1 for r in rows if r.locked != r.previous)} thresholds -> {output}  "
        f"(report {report_path})",
        highlight=False,
    )
