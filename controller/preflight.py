"""Every check of a run that can be made before any load is sent, in one place.

`loadctl run` and `loadctl validate` both call check_run(), so "validate says ok" means "run will
start". Each problem is an InputError (exit 2) naming the file or flag and the field. The checks
are pure over the plan and the files it names, except two small subprocesses (promtool for the
gates' PromQL, `locust --list` for the locustfile); claim_run_dir() is the one that writes.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

from controller.baseline import FLAG as BASELINE_FLAG
from controller.baseline import read_baseline
from controller.errors import InputError
from controller.gates.load import gate_label, load_gate_file
from controller.gates.models import GateFile
from controller.locustfile_check import check_user_weights, list_user_classes
from controller.models import RunPlan, Stage, phase_names
from controller.reports.render import check_report_templates

RESULTS_FLAG = "--results-dir"
RUN_ID_FLAG = "--run-id"


def check_run(plan: RunPlan) -> GateFile | None:
    """All pre-load checks of `plan`; returns its gate file (validated), or None without gates."""
    check_results_dir(plan)
    if plan.baseline is not None:
        read_baseline(plan.baseline)
    gate_file = load_gate_file(plan.gates) if plan.gates is not None else None
    if gate_file is not None:
        assert plan.gates is not None
        check_gate_windows(gate_file, plan.stages, source=str(plan.gates))
        check_baseline_rules(gate_file, baseline=plan.baseline, source=str(plan.gates))
    source = str(plan.profile_file) if plan.profile_file else "command line"
    check_report_templates(plan.report_template, source=source)
    check_user_weights(plan.user_weights, list_user_classes(plan.locustfile), source=source)
    return gate_file


def check_gate_windows(gate_file: GateFile, stages: tuple[Stage, ...], *, source: str) -> None:
    """A gate's window must be a phase of this stage table (or `run`): a typo would otherwise only
    show after the whole load as a failed gate."""
    known = phase_names(stages)
    for index, gate in enumerate(gate_file.gates):
        window = gate_file.window_of(gate)
        if window not in known:
            inherited = "" if gate.window else " (the file's default window)"
            raise InputError(
                f"'{window}'{inherited} is not a phase of this run (phases: {', '.join(sorted(known))})",
                source=source,
                field=f"{gate_label(gate.name, index)}.window",
            )


def check_baseline_rules(gate_file: GateFile, *, baseline: Path | None, source: str) -> None:
    """A relative gate (max_change/min_change) can only be judged against a baseline run."""
    if baseline is not None:
        return
    for index, gate in enumerate(gate_file.gates):
        if gate.needs_baseline:
            field = "max_change" if gate.max_change is not None else "min_change"
            raise InputError(
                f"a relative gate needs a baseline run: give {BASELINE_FLAG} RESULTS/RUN_ID",
                source=source,
                field=f"{gate_label(gate.name, index)}.{field}",
            )


def check_results_dir(plan: RunPlan) -> None:
    """The results folder must be creatable and writable, and the run's folder not taken yet."""
    existing = plan.results_dir
    while not existing.exists() and existing != existing.parent:
        existing = existing.parent
    if not existing.is_dir():
        raise InputError(f"{existing} is not a directory", source="command line", field=RESULTS_FLAG)
    if not _writable(existing):
        raise InputError(f"{existing} is not writable", source="command line", field=RESULTS_FLAG)
    if plan.run_dir.exists():
        raise InputError(_taken(plan), source="command line", field=RUN_ID_FLAG)


def _writable(directory: Path) -> bool:
    if not os.access(directory, os.W_OK | os.X_OK):
        return False
    try:  # os.access does not know read-only mounts, and root passes it everywhere
        tempfile.TemporaryDirectory(dir=directory, prefix=".loadctl-check-").cleanup()
    except OSError:
        return False
    return True


def claim_run_dir(plan: RunPlan) -> Path:
    """Create the run's folder, failing if it exists: of two runs with one id, exactly one gets it."""
    try:
        plan.results_dir.mkdir(parents=True, exist_ok=True)
        plan.run_dir.mkdir()
    except FileExistsError:
        raise InputError(_taken(plan), source="command line", field=RUN_ID_FLAG) from None
    except OSError as e:
        raise InputError(
            f"cannot create {plan.run_dir}: {e.strerror}", source="command line", field=RESULTS_FLAG
        ) from e
    return plan.run_dir


def _taken(plan: RunPlan) -> str:
    return f"{plan.run_dir} already exists; choose another {RUN_ID_FLAG}"
