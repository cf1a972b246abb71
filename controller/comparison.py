"""Two finished runs' results folders compared (`loadctl compare`, `run --baseline`): the files read
here, the comparison itself in analysis/compare.py (pure).

A folder is run.json (required: controller/baseline.py says why it cannot be read), analysis.json
(absent in runs older than it: no phase rows, no noise from that run) and stats.csv (absent: no
endpoint rows, the headline from run.json's totals).
"""

from __future__ import annotations

from pathlib import Path

from controller.analysis.compare import RunFigures, compare_runs
from controller.analysis.models import Analysis, Comparison
from controller.baseline import read_model_file, run_record
from controller.errors import InputError
from controller.rundir import RunDir, read_csv


def read_run_figures(run_dir: Path) -> RunFigures:
    """What the comparison needs from one results folder (InputError naming the file when it cannot)."""
    if not run_dir.is_dir():
        raise InputError("not found: not a loadctl run directory", source=str(run_dir))
    folder = RunDir(run_dir)
    return RunFigures(
        record=run_record(run_dir),
        analysis=read_model_file(folder.analysis_json, Analysis),
        stats=read_csv(folder.stats_csv),
    )


def compare_folders(baseline_dir: Path, current_dir: Path) -> Comparison:
    """`current_dir` against `baseline_dir`; InputError (exit 2) naming the file that cannot be read."""
    return compare_runs(
        read_run_figures(baseline_dir), read_run_figures(current_dir), baseline_dir=str(baseline_dir)
    )
