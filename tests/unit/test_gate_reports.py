"""gates.json, gates.md, junit.xml and the terminal table, from hand-built reports (no Prometheus)."""

import json
import math
import xml.etree.ElementTree as ET
from typing import Any

from rich.console import Console

from controller.gates.evaluate import GateReport, GateResult, GateVerdict, Overall
from controller.reports.gates import (
    gates_json,
    gates_markdown,
    gates_table,
    junit_xml,
    number,
    target,
    write_gate_reports,
)

START, END = 1_764_000_000.0, 1_764_000_300.0
P95_QUERY = 'histogram_quantile(0.95, sum by (le) (rate(x_bucket{run_id="r1"}[300s] @ 1764000300)))'
ERR_QUERY = 'sum(increase(fail_total{run_id="r1",name!="harvest_auto"}[300s]))'


def result(name: str, verdict: GateVerdict, value: float | None, **kwargs: Any) -> GateResult:
    common: dict[str, Any] = {"promql": f"q_{name}", "window": "steady", "start": START, "end": END}
    common.update(kwargs)
    return GateResult(name=name, verdict=verdict, value=value, **common)


PASSED = result("search_p95", "pass", 934.0, max=1200.0, promql=P95_QUERY)
WARNED = result("rps", "warn", 28.5, min=30.0, severity="warn", reason="28.5 < min 30")
FAILED = result(
    "non_harvest_error_rate", "fail", 0.031, max=0.02, promql=ERR_QUERY, reason="0.031 > max 0.02"
)
NO_DATA = result("studio_p99", "fail", None, max=5000.0, reason="no data | scrape gap")
RELATIVE = result("search_p50", "pass", 101.0, max_change="+10%", baseline=99.0)


def report(*gates: GateResult, verdict: Overall = "fail", reason: str | None = None) -> GateReport:
    return GateReport(
        verdict=verdict,
        gates=gates,
        gate_file="gates/pilot.yaml",
        run_id="r1",
        evaluated_at=END + 5,
        baseline_run_id="r0",
        reason=reason,
    )


FULL = report(PASSED, WARNED, FAILED, NO_DATA, RELATIVE)
OUTAGE = report(PASSED, verdict="error", reason="Prometheus unreachable for 30s: connection refused")


def test_numbers_and_targets_read_like_a_person_wrote_them():
    assert [number(v) for v in (None, 0.0, 0.005, 0.031, 28.5, 934.0, 1120.8, 999.96, 123456.0)] == [
        "n/a",
        "0",
        "0.005",
        "0.031",
        "28.5",
        "934",
        "1,121",
        "1,000",
        "123,456",
    ]
    assert target(PASSED) == "<= 1,200"
    assert target(WARNED) == ">= 30"
    assert target(result("band", "pass", 1.0, min=0.005, max=1200.0)) == "0.005 to 1,200"
    assert target(RELATIVE) == "<= +10% vs baseline"


def test_json_is_strict_and_has_the_contract_keys():
    data = json.loads(gates_json(FULL))
    assert data["verdict"] == "fail" and data["exit_code"] == 1
    assert [g["name"] for g in data["gates"]] == [g.name for g in FULL.gates]
    first = data["gates"][0]
    assert {"name", "verdict", "value", "max", "promql", "window", "reason"} <= first.keys()
    assert first["window"] == {"name": "steady", "start": START, "end": END}
    assert "min" not in first
    missing = data["gates"][3]
    assert missing["value"] is None and missing["reason"] == "no data | scrape gap"


def test_json_never_contains_nan():
    odd = report(result("weird", "fail", math.nan, max=math.inf))
    text = gates_json(odd)
    data = json.loads(text, parse_constant=lambda c: (_ for _ in ()).throw(ValueError(c)))
    assert data["gates"][0]["value"] is None and data["gates"][0]["reason"] == "value is nan"
    assert data["gates"][0]["max"] is None


def test_markdown_has_a_row_per_gate_and_details_for_the_rest():
    text = gates_markdown(FULL)
    assert "**Verdict: FAIL** (exit 1)" in text
    assert "| Gate | Window | Target | Actual | Baseline | Result |" in text
    assert "| search_p95 | steady (5m) | <= 1,200 | 934 | - | PASS |" in text
    assert "| rps | steady (5m) | >= 30 | 28.5 | - | WARN |" in text
    assert "| non_harvest_error_rate | steady (5m) | <= 0.02 | 0.031 | - | FAIL |" in text
    assert "| studio_p99 | steady (5m) | <= 5,000 | n/a | - | FAIL |" in text
    assert "| search_p50 | steady (5m) | <= +10% vs baseline | 101 | 99 | PASS |" in text
    details = text.split("### Details", 1)[1]
    assert f"`{ERR_QUERY}`" in details and "0.031 > max 0.02" in details
    assert "no data | scrape gap" in details  # outside the table a pipe needs no escaping
    assert "search_p95" not in details  # passes are not detailed


def test_markdown_escapes_pipes_in_cells_and_takes_a_title():
    piped = report(result("a|b", "fail", 2.0, min=0.5, max=1.0, max_change="+1%"))
    text = gates_markdown(piped, title="Pilot gates")
    assert text.startswith("## Pilot gates\n")
    row = next(line for line in text.splitlines() if line.startswith("| a"))
    assert row == "| a\\|b | steady (5m) | 0.5 to 1, <= +1% vs baseline | 2 | - | FAIL |"


def test_markdown_says_prominently_when_prometheus_was_unreachable():
    text = gates_markdown(OUTAGE)
    assert "**Verdict: ERROR** (exit 3)" in text
    assert "> **Error:** Prometheus unreachable for 30s: connection refused" in text


def test_junit_counts_failures_and_explains_them():
    root = ET.fromstring(junit_xml(FULL))
    suite = root.find("testsuite")
    assert suite is not None
    assert suite.get("name") == "loadctl gates: gates/pilot.yaml"
    assert (suite.get("tests"), suite.get("failures"), suite.get("errors"), suite.get("skipped")) == (
        "5",
        "2",
        "0",
        "0",
    )
    cases = {case.get("name"): case for case in suite.iter("testcase")}
    assert set(cases) == {g.name for g in FULL.gates}
    assert all(case.get("classname") == "loadctl.gates.r1" for case in cases.values())
    failure = cases["non_harvest_error_rate"].find("failure")
    assert failure is not None
    message = failure.get("message", "")
    assert "0.031" in message and "<= 0.02" in message and ERR_QUERY in message
    no_data = cases["studio_p99"].find("failure")
    assert no_data is not None and "no data" in no_data.get("message", "")
    warned = cases["rps"]
    assert warned.find("failure") is None
    out = warned.find("system-out")
    assert out is not None and (out.text or "").startswith("WARN:")
    assert list(cases["search_p95"]) == []


def test_junit_reports_an_outage_as_an_error():
    suite = ET.fromstring(junit_xml(OUTAGE)).find("testsuite")
    assert suite is not None
    assert (suite.get("tests"), suite.get("failures"), suite.get("errors")) == ("2", "0", "1")
    error = suite.find("testcase[@name='prometheus']/error")
    assert error is not None and "unreachable" in error.get("message", "")


def test_junit_survives_control_characters():
    dirty = report(result("x", "fail", None, max=1.0, reason="bad body \x00\x1b[0m"))
    assert ET.fromstring(junit_xml(dirty)).find("testsuite") is not None


def test_terminal_table_has_the_columns_and_results():
    console = Console(width=200, record=True, color_system=None)
    console.print(gates_table(FULL))
    text = console.export_text()
    for word in ("Gate", "Window", "Target", "Actual", "Result", "PASS", "WARN", "FAIL", "Verdict: FAIL"):
        assert word in text
    outage = Console(width=200, record=True, color_system=None)
    outage.print(gates_table(OUTAGE))
    assert "unreachable" in outage.export_text()


def table_text(rep: GateReport) -> str:
    console = Console(width=250, record=True, color_system=None)
    console.print(gates_table(rep))
    return console.export_text()


def test_terminal_table_shows_baseline_and_why_only_when_they_matter():
    full = table_text(FULL)
    assert "Baseline" in full and "99" in full  # a relative gate's baseline value
    assert "Why" in full and "0.031 > max 0.02" in full and "no data" in full
    quiet = table_text(report(PASSED, verdict="pass"))
    assert "Baseline" not in quiet and "Why" not in quiet


def test_write_gate_reports_writes_three_files(tmp_path):
    names = write_gate_reports(FULL, run_dir=tmp_path)
    assert names == ("gates.json", "gates.md", "junit.xml")
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(names)
    assert json.loads((tmp_path / "gates.json").read_text(encoding="utf-8"))["verdict"] == "fail"
    ET.parse(tmp_path / "junit.xml")
