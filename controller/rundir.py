"""The one owner of results/<run_id>/: the name of everything in it, the one way a file is written
there, and run.json in and out.

Every other module asks here for a path (`RunDir(plan.run_dir).stats_csv`) or a name instead of
spelling it, so renaming a results file is one edit. Every file loadctl writes goes through
`write_atomic` (text, JSON and CSV alike): a CI step or a second loadctl reading the folder while a
run finishes sees the old file or the whole new one, never half of it. Only file I/O here.
"""

from __future__ import annotations

import contextlib
import csv
import io
import json
import os
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from controller.models import RunRecord

# results/<run_id>/: where runs go unless --results-dir says otherwise (relative to the working folder)
RESULTS_ROOT = Path("results")

# What the run leaves for people and CI.
RUN_RECORD = "run.json"
RUN_REPORT = "report.md"
RUN_REPORT_HTML = "report.html"  # loadctl's, with charts (the same sections as report.md)
LOCUST_HTML = "locust_report.html"  # Locust's own --html
ANALYSIS_JSON = "analysis.json"  # phases and the run over time (controller/analysis)
GATES_JSON = "gates.json"
GATES_MD = "gates.md"
JUNIT_XML = "junit.xml"
GATES_LOCK_REPORT = "gates_lock.md"  # `loadctl gates lock`'s default --report
STATS_CSV = "stats.csv"
STATS_HISTORY_CSV = "stats_history.csv"
FAILURES_CSV = "failures.csv"
EXCEPTIONS_CSV = "exceptions.csv"
# What the run's processes read and write.
TSDB_DIR = "tsdb"  # kept after the run: `loadctl prometheus RUN_DIR` serves it again
PROMETHEUS_CONFIG = "prometheus.yml"
PROBES_CONFIG = "probes.json"
LOGS_DIR = "logs"
MASTER_LOG = f"{LOGS_DIR}/master.log"  # relative: messages point users at it
# Locust's --csv PREFIX writes PREFIX_stats.csv ...; a finished run keeps them under the names above.
LOCUST_CSV_PREFIX = "locust"
LOCUST_CSVS = {
    f"{LOCUST_CSV_PREFIX}_{name}": name
    for name in (STATS_CSV, STATS_HISTORY_CSV, FAILURES_CSV, EXCEPTIONS_CSV)
}


@dataclass(frozen=True)
class RunDir:
    """The paths of one run's results folder (nothing is created until something is written)."""

    path: Path

    @property
    def record(self) -> Path:
        return self.path / RUN_RECORD

    @property
    def report_md(self) -> Path:
        return self.path / RUN_REPORT

    @property
    def report_html(self) -> Path:
        return self.path / RUN_REPORT_HTML

    @property
    def analysis_json(self) -> Path:
        return self.path / ANALYSIS_JSON

    @property
    def locust_html(self) -> Path:
        return self.path / LOCUST_HTML

    @property
    def gates_lock_report(self) -> Path:
        return self.path / GATES_LOCK_REPORT

    @property
    def stats_csv(self) -> Path:
        return self.path / STATS_CSV

    @property
    def failures_csv(self) -> Path:
        return self.path / FAILURES_CSV

    @property
    def locust_csv_prefix(self) -> Path:
        return self.path / LOCUST_CSV_PREFIX

    @property
    def tsdb(self) -> Path:
        return self.path / TSDB_DIR

    @property
    def prometheus_config(self) -> Path:
        return self.path / PROMETHEUS_CONFIG

    @property
    def probes_config(self) -> Path:
        return self.path / PROBES_CONFIG

    @property
    def logs(self) -> Path:
        return self.path / LOGS_DIR

    # One log per process the run starts, named after it (report lines cite the file's stem).
    @property
    def master_log(self) -> Path:
        return self.path / MASTER_LOG

    def worker_log(self, index: int) -> Path:
        return self.logs / f"worker-{index}.log"

    @property
    def probes_log(self) -> Path:
        return self.logs / "probes.log"

    @property
    def prometheus_log(self) -> Path:
        return self.logs / "prometheus.log"

    @property
    def port_forward_log(self) -> Path:
        return self.logs / "port-forward.log"

    def served_prometheus(self, label: str) -> tuple[Path, Path]:
        """(config, log) of a Prometheus serving this finished run's TSDB again; the run's own
        prometheus.yml records what was scraped and stays as it was."""
        return self.logs / f"prometheus-{label}.yml", self.logs / f"prometheus-{label}.log"

    def crash_log(self, name: str) -> Path:
        """A crash's traceback belongs with the run, next to the process logs."""
        return self.logs / name

    def keep_locust_csvs(self) -> None:
        """Locust's PREFIX_*.csv renamed to the names a run folder promises (stats.csv ...)."""
        for locust_name, name in LOCUST_CSVS.items():
            source = self.path / locust_name
            if source.exists():
                source.replace(self.path / name)

    def write_record(self, record: RunRecord) -> Path:
        return write_atomic(self.record, text=json.dumps(record.model_dump(mode="json"), indent=2) + "\n")

    def read_record(self) -> RunRecord:
        """run.json parsed; OSError, UnicodeDecodeError and pydantic's ValidationError pass through."""
        return RunRecord.model_validate_json(self.record.read_text(encoding="utf-8"))


def write_atomic(path: Path, *, text: str) -> Path:
    """`text` in `path` (its folder created if needed) by a temp file in the same folder and
    os.replace: a reader sees the old file or the new one, and a failure leaves no partial file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    # same folder = same filesystem, which os.replace needs to be atomic; the pid keeps two
    # processes writing one name apart
    partial = path.with_name(f".{path.name}.{os.getpid()}.partial")
    try:
        # errors="replace": a Prometheus error body can decode to a lone surrogate, which UTF-8
        # cannot encode; one "?" in a reason beats losing the whole file. newline="": the text is
        # written as given (a CSV's \r\n stays \r\n).
        with open(partial, "w", encoding="utf-8", errors="replace", newline="") as handle:
            handle.write(text)
        os.replace(partial, path)
    except BaseException:
        with contextlib.suppress(OSError):
            partial.unlink(missing_ok=True)
        raise
    return path


def write_csv(path: Path, *, columns: Sequence[str], rows: Sequence[Mapping[str, str]]) -> Path:
    """A CSV with a header row, written atomically (rendered in memory first: a bad row writes nothing)."""
    buffer = io.StringIO(newline="")
    writer = csv.DictWriter(buffer, fieldnames=columns)
    writer.writeheader()
    writer.writerows(rows)
    return write_atomic(path, text=buffer.getvalue())


def read_csv(path: Path) -> list[dict[str, str]]:
    """Rows of one of the run's CSVs; none when the file is missing (a run that never started)."""
    try:
        with open(path, newline="", encoding="utf-8") as handle:
            return list(csv.DictReader(handle))
    except OSError:
        return []


def crash_log_name(*, pid: int, now: float) -> str:
    """loadctl-<pid>-<UTC time>.log: a crash's traceback, in logs/ (or the temp folder, see crash.py)."""
    return f"loadctl-{pid}-{time.strftime('%Y%m%dT%H%M%SZ', time.gmtime(now))}.log"


def locust_totals(stats_rows: Sequence[Mapping[str, str]]) -> tuple[int, int] | None:
    """(requests, failures) from the Aggregated row of stats.csv."""
    for row in stats_rows:
        if row.get("Name") == "Aggregated":
            try:
                return int(row["Request Count"]), int(row["Failure Count"])
            except (KeyError, ValueError):
                return None
    return None
