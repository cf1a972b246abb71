"""controller/rundir.py: the results folder's names, its one atomic writer, run.json in and out."""

import json
from typing import Any

import pytest

from controller.models import PhaseWindow
from controller.rundir import RunDir, locust_totals, read_csv, write_atomic, write_csv
from tests.support import run_record


def test_run_json_round_trips(tmp_path):
    record = run_record(
        phases=(PhaseWindow(stage=0, phase="steady", start=1.0, end=61.0),),
        files=("report.md", "run.json", "stats.csv"),
        requests=120,
        failures=3,
    )
    folder = RunDir(tmp_path / "run")
    path = folder.write_record(record)  # creates the run's folder
    assert path == tmp_path / "run" / "run.json"
    assert folder.read_record() == record
    text = path.read_text(encoding="utf-8")
    assert text.endswith("}\n") and json.loads(text)["phases"][0]["phase"] == "steady"


def test_a_failed_write_keeps_the_old_file_and_leaves_no_partial(tmp_path):
    path = write_atomic(tmp_path / "report.md", text="old\n")
    not_text: Any = b"bytes are not text"
    with pytest.raises(TypeError):  # fails inside the write, after the temp file was opened
        write_atomic(path, text=not_text)
    assert path.read_text(encoding="utf-8") == "old\n"
    assert [p.name for p in tmp_path.iterdir()] == ["report.md"]


def test_a_failed_rename_leaves_no_partial(tmp_path):
    taken = tmp_path / "gates.json"
    (taken / "inside").mkdir(parents=True)  # a non-empty folder where the file should go
    with pytest.raises(OSError):
        write_atomic(taken, text="{}\n")
    assert [p.name for p in tmp_path.iterdir()] == ["gates.json"] and taken.is_dir()


def test_a_bad_csv_row_writes_nothing(tmp_path):
    path = tmp_path / "stats.csv"
    write_csv(path, columns=("Name", "Request Count"), rows=[{"Name": "a", "Request Count": "1"}])
    with pytest.raises(ValueError):
        write_csv(path, columns=("Name",), rows=[{"Name": "b", "Unknown": "x"}])
    assert read_csv(path) == [{"Name": "a", "Request Count": "1"}]
    assert [p.name for p in tmp_path.iterdir()] == ["stats.csv"]


def test_csv_keeps_locusts_line_endings_and_reads_back(tmp_path):
    rows = [
        {"Name": "search", "Request Count": "10", "Failure Count": "1"},
        {"Name": "Aggregated", "Request Count": "12", "Failure Count": "2"},
    ]
    path = write_csv(tmp_path / "stats.csv", columns=("Name", "Request Count", "Failure Count"), rows=rows)
    assert path.read_bytes().startswith(b"Name,Request Count,Failure Count\r\n")
    assert read_csv(path) == rows
    assert locust_totals(read_csv(path)) == (12, 2)
    assert read_csv(tmp_path / "missing.csv") == [] and locust_totals([]) is None


def test_locusts_csvs_are_kept_under_the_promised_names(tmp_path):
    folder = RunDir(tmp_path)
    for suffix in ("stats", "stats_history", "failures", "exceptions"):
        (tmp_path / f"{folder.locust_csv_prefix.name}_{suffix}.csv").write_text("x\n", encoding="utf-8")
    folder.keep_locust_csvs()
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        "exceptions.csv",
        "failures.csv",
        "stats.csv",
        "stats_history.csv",
    ]
    assert folder.stats_csv.is_file() and folder.failures_csv.is_file()
