"""The live progress line and the gate table fit the terminal (80 columns, a CI log, 60, 200)
without losing failures, time left or a gate's name; full names stay in gates.md/json/junit."""

import io
import json
import xml.etree.ElementTree as ET

import pytest
from rich.console import Console

from controller.progress import PHASE_MAX_CHARS, Snapshot, format_snapshot
from controller.reports.gates import (
    column_widths,
    fitting_columns,
    gates_table,
    table_rows,
    write_gate_reports,
)
from tests.unit.test_gate_reports import FULL, OUTAGE, report, result

WIDTHS = (80, 60, 200)
BUSY = Snapshot(
    phase="steady",
    users=1200,
    workers=16,
    rps=14123.4,
    p95_ms=1234.0,
    requests=123_456_789,
    failures=1_234_567,
    started_at=1000.0,
)
LONG_NAME = "checkout_service_p95_latency_under_steady_load_in_eu_west_1"
LONG = result(LONG_NAME, "fail", 1530.2, max=1200.0, reason="1530 > max 1200 (the window had a 12 s gap)")
WITH_LONG = report(*FULL.gates, LONG)


def printed(renderable: object, width: int) -> str:
    # soft_wrap, as the CLI's console (controller/cli/render.py): nothing is wrapped for us
    console = Console(width=width, record=True, color_system=None, soft_wrap=True, file=io.StringIO())
    console.print(renderable)
    return console.export_text()


# -- progress line ---------------------------------------------------------------------------------


@pytest.mark.parametrize("width", WIDTHS)
def test_the_progress_line_fits_and_keeps_failures_and_time_left(width):
    text = format_snapshot(BUSY, planned_s=3600, now=1030.0, width=width)
    lines = text.splitlines()
    assert max(len(line) for line in lines) <= width, text
    assert len(lines) <= 2, text
    assert "failures 1234567 (1.0%)" in text and "59:30 left" in text
    assert len(printed(text, width).rstrip("\n").splitlines()) == len(lines)  # rich adds no wrapping


def test_a_wide_terminal_keeps_the_one_aligned_line():
    assert format_snapshot(BUSY, planned_s=3600, now=1030.0, width=200) == format_snapshot(
        BUSY, planned_s=3600, now=1030.0
    )
    assert "\n" not in format_snapshot(BUSY, planned_s=3600, now=1030.0, width=200)


def test_at_80_columns_every_field_is_kept_on_two_lines():
    text = format_snapshot(BUSY, planned_s=3600, now=1030.0, width=80)
    for part in (
        "phase steady",
        "users 1200",
        "workers 16",
        "rps 14123.4",
        "p95 1234 ms",
        "requests 123456789",
    ):
        assert part in text, (part, text)
    assert len(text.splitlines()) == 2


def test_narrower_the_least_important_fields_go_first():
    text = format_snapshot(BUSY, planned_s=3600, now=1030.0, width=40)
    assert "workers" not in text and "requests" not in text and "users" not in text  # dropped first
    assert "failures 1234567 (1.0%)" in text and "59:30 left" in text
    assert max(len(line) for line in text.splitlines()) <= 40


def test_waiting_and_a_long_phase_name_fit_too():
    phase = "warm_caches_then_hold_for_the_nightly_batch"
    text = format_snapshot(
        Snapshot(phase, None, None, None, None, None, None, None), planned_s=90, now=0, width=60
    )
    assert "waiting for workers" in text and "failures 0" in text
    assert f"phase {phase[: PHASE_MAX_CHARS - 1]}…" in text
    assert max(len(line) for line in text.splitlines()) <= 60


# -- gate table ------------------------------------------------------------------------------------


@pytest.mark.parametrize("width", WIDTHS)
@pytest.mark.parametrize("rep", [WITH_LONG, OUTAGE, FULL], ids=["long-name", "outage", "full"])
def test_the_gate_table_fits(rep, width):
    text = printed(gates_table(rep), width)
    assert max(len(line) for line in text.splitlines()) <= width, text
    assert f"Gates verdict: {rep.verdict.upper()}" in text
    for r in rep.gates:
        assert r.verdict.upper() in text


def unfolded_names(text: str) -> list[str]:
    """The Gate column's cells with folded lines joined back: a row begins where a result shows."""
    names: list[str] = []
    for line in text.splitlines():
        cells = [cell.strip() for cell in line.split("│")[1:-1]]
        if not cells:
            continue
        if {"PASS", "WARN", "FAIL", "ERROR"} & set(cells):
            names.append(cells[0])
        else:
            names[-1] += cells[0]
    return names


@pytest.mark.parametrize("width", WIDTHS)
def test_gate_names_are_folded_never_cut(width):
    text = printed(gates_table(WITH_LONG), width)
    assert "…" not in text  # nothing cut at all
    assert unfolded_names(text) == [r.name for r in WITH_LONG.gates]


def test_at_200_columns_every_column_and_name_is_on_one_line():
    text = printed(gates_table(WITH_LONG), 200)
    header = next(line for line in text.splitlines() if line.startswith("┃ Gate"))
    assert [c.strip() for c in header.split("┃")[1:-1]] == [
        "Gate",
        "Window",
        "Target",
        "Actual",
        "Baseline",
        "Result",
        "Why",
    ]
    assert LONG_NAME in text and "left out" not in text


@pytest.mark.parametrize(("width", "left_out"), [(80, "Window, Baseline"), (60, "Window, Target, Baseline")])
def test_narrow_tables_say_what_they_left_out(width, left_out):
    text = " ".join(printed(gates_table(WITH_LONG), width).split())  # the note wraps at the width
    assert f"left out to fit {width} columns: {left_out}; gates.md has every column" in text
    for result_column in ("Gate", "Actual", "Result", "Why"):
        assert result_column in text


def test_column_widths_use_all_the_room_and_no_more():
    rows = table_rows(WITH_LONG)
    columns = ["Gate", "Window", "Target", "Actual", "Baseline", "Result", "Why"]
    for width in (60, 80, 120):
        kept = fitting_columns(columns, rows, width)
        widths = column_widths(kept, rows, width)
        assert sum(widths.values()) + 1 + 3 * len(kept) == width  # long name and reason: all taken
        assert widths["Result"] == len("Result") and widths["Actual"] == len("Actual")  # never wrapped
    wide = column_widths(columns, rows, 400)
    assert wide["Gate"] == len(LONG_NAME)  # room to spare: the whole name on one line


def test_the_files_keep_the_full_names(tmp_path):
    write_gate_reports(WITH_LONG, run_dir=tmp_path)
    assert LONG_NAME in [g["name"] for g in json.loads((tmp_path / "gates.json").read_text())["gates"]]
    assert f"| {LONG_NAME} |" in (tmp_path / "gates.md").read_text()
    names = [case.get("name") for case in ET.parse(tmp_path / "junit.xml").iter("testcase")]
    assert LONG_NAME in names
