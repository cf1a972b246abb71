"""gates.json, gates.md, junit.xml and the terminal table, from hand-built reports (no Prometheus)."""

import json
import math
import xml.etree.ElementTree as ET
from datetime import datetime
from typing import Any

import httpx
from rich.console import Console

from controller.gates.evaluate import GateReport, GateResult, GateVerdict, Overall
from controller.gates.models import GateFile
from controller.gates.runner import Target, evaluate_gates
from controller.models import PhaseWindow
from controller.processes import free_port
from controller.reports.gates import (
    gates_json,
    gates_markdown,
    gates_table,
    junit_xml,
    number,
    target,
    write_gate_reports,
)
from tests.support import run_record

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


def report(
    *gates: GateResult,
    verdict: Overall = "fail",
    reason: str | None = None,
    names: tuple[str, ...] | None = None,
    **kwargs: Any,
) -> GateReport:
    fields: dict[str, Any] = {
        "gate_file": "gates/pilot.yaml",
        "run_id": "r1",
        "evaluated_at": END + 5,
        "baseline_run_id": "r0",
        "suite": "pilot",
        "gate_names": tuple(g.name for g in gates) if names is None else names,
    }
    return GateReport(verdict=verdict, gates=gates, reason=reason, **(fields | kwargs))


FULL = report(PASSED, WARNED, FAILED, NO_DATA, RELATIVE)
ALL_NAMES = tuple(g.name for g in FULL.gates)
UNREACHABLE = "Prometheus unreachable for 30s: connection refused"
# Prometheus went away after the first gate: four gates have no result at all
OUTAGE = report(PASSED, verdict="error", reason=UNREACHABLE, names=ALL_NAMES)


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


# -- junit.xml: the Jenkins/Ant junit.xsd shape, checked rule by rule ------------------------------

XSD_SUITE = ("name", "tests", "failures", "errors", "skipped", "time", "timestamp")
OUTCOMES = ("failure", "error", "skipped")


def junit_suite(text: str) -> ET.Element:
    """Parse junit.xml and check it against the junit.xsd shape; returns the one testsuite."""
    root = ET.fromstring(text)
    assert root.tag == "testsuites"
    assert {"name", "tests", "failures", "errors", "time"} <= set(root.keys())
    suites = list(root)
    assert [s.tag for s in suites] == ["testsuite"]
    suite = suites[0]
    assert set(XSD_SUITE) <= set(suite.keys()), suite.keys()
    for count in ("tests", "failures", "errors", "skipped"):
        assert int(suite.get(count, "")) >= 0
        if root.get(count) is not None:
            assert root.get(count) == suite.get(count)
    assert float(suite.get("time", "")) >= 0
    stamp = datetime.fromisoformat(suite.get("timestamp", ""))
    assert stamp.tzinfo is not None, "timestamp must carry its time zone"
    # xsd sequence: properties?, testcase*, system-out?, system-err?
    tags = [child.tag for child in suite]
    order = {"properties": 0, "testcase": 1, "system-out": 2, "system-err": 3}
    assert [order[t] for t in tags] == sorted(order[t] for t in tags), tags
    cases = suite.findall("testcase")
    assert len(cases) == int(suite.get("tests", ""))
    seen: dict[str, int] = dict.fromkeys(OUTCOMES, 0)
    for case in cases:
        assert {"classname", "name", "time"} <= set(case.keys())
        float(case.get("time", ""))
        children = [child.tag for child in case]
        assert set(children) <= {*OUTCOMES, "system-out", "system-err"}, children
        results = [t for t in children if t in OUTCOMES]
        assert len(results) <= 1, children
        assert children[: len(results)] == results  # the outcome comes before system-out
        for tag in results:
            seen[tag] += 1
            assert {"message", "type"} <= set(case.find(tag).keys())  # type: ignore[union-attr]
    assert (seen["failure"], seen["error"], seen["skipped"]) == (
        int(suite.get("failures", "")),
        int(suite.get("errors", "")),
        int(suite.get("skipped", "")),
    )
    # attributes are one short line: long PromQL lives in element text
    for element in root.iter():
        for value in element.attrib.values():
            assert "\n" not in value and len(value) <= 300, value
    return suite


def cases_of(suite: ET.Element) -> dict[str, ET.Element]:
    return {case.get("name", ""): case for case in suite.iter("testcase")}


def test_junit_counts_failures_and_explains_them():
    suite = junit_suite(junit_xml(FULL))
    assert suite.get("name") == "loadctl gates: pilot"
    assert (suite.get("tests"), suite.get("failures"), suite.get("errors"), suite.get("skipped")) == (
        "5",
        "2",
        "0",
        "0",
    )
    assert suite.get("timestamp") == "2025-11-24T16:05:05+00:00"
    cases = cases_of(suite)
    assert list(cases) == list(ALL_NAMES)
    assert all(case.get("classname") == "pilot" for case in cases.values())
    failure = cases["non_harvest_error_rate"].find("failure")
    assert failure is not None
    message = failure.get("message", "")
    assert "0.031" in message and "<= 0.02" in message
    assert ERR_QUERY not in message and ERR_QUERY in (failure.text or "")
    no_data = cases["studio_p99"].find("failure")
    assert no_data is not None and "no data" in no_data.get("message", "")
    warned = cases["rps"]
    assert warned.find("failure") is None
    out = warned.find("system-out")
    assert out is not None and (out.text or "").startswith("WARN:")
    passed = cases["search_p95"]
    assert [child.tag for child in passed] == ["system-out"]
    assert P95_QUERY in (passed.findtext("system-out") or "")
    props = {p.get("name"): p.get("value") for p in suite.iter("property")}
    assert props["run_id"] == "r1" and props["verdict"] == "fail" and props["exit_code"] == "1"


def test_junit_tests_keep_their_identity_from_build_to_build():
    first = junit_suite(junit_xml(FULL))
    later = report(*FULL.gates, run_id="pilot-20261201-101010", evaluated_at=END + 86_400)
    second = junit_suite(junit_xml(later))
    ids = [(c.get("classname"), c.get("name")) for c in first.iter("testcase")]
    assert ids == [(c.get("classname"), c.get("name")) for c in second.iter("testcase")]
    assert first.get("name") == second.get("name")
    assert "r1" not in str(ids)


def test_junit_never_names_a_suite_by_path():
    local = report(PASSED, verdict="pass", suite="", gate_file="/home/ci/checkout/gates/pilot.yaml")
    suite = junit_suite(junit_xml(local))
    assert suite.get("name") == "loadctl gates: pilot"
    assert {c.get("classname") for c in suite.iter("testcase")} == {"pilot"}


def test_junit_has_one_testcase_per_gate_when_prometheus_was_unreachable():
    suite = junit_suite(junit_xml(OUTAGE))
    assert (suite.get("tests"), suite.get("failures"), suite.get("errors")) == ("5", "0", "4")
    cases = cases_of(suite)
    assert list(cases) == list(ALL_NAMES)  # the same tests as in a normal build
    assert [child.tag for child in cases["search_p95"]] == ["system-out"]
    for name in ALL_NAMES[1:]:
        error = cases[name].find("error")
        assert error is not None, name
        assert error.get("type") == "not-evaluated"
        assert "unreachable" in error.get("message", "")
    assert UNREACHABLE in (suite.findtext("system-out") or "")


def test_junit_of_a_report_without_gate_names_still_shows_the_error():
    legacy = report(PASSED, verdict="error", reason=UNREACHABLE, names=())
    suite = junit_suite(junit_xml(legacy))
    assert (suite.get("tests"), suite.get("errors")) == ("2", "1")
    error = suite.find("testcase[@name='prometheus']/error")
    assert error is not None and "unreachable" in error.get("message", "")


def test_junit_survives_a_hostile_reason(tmp_path):
    hostile = 'bad body \x00\x1b[0m\x07 \ud83d ]]> <tag attr="x"> & \u2603\nsecond line'
    dirty = report(result("x", "fail", None, max=1.0, reason=hostile), reason=hostile, verdict="error")
    suite = junit_suite(junit_xml(dirty))
    failure = suite.find("testcase[@name='x']/failure")
    assert failure is not None
    message = failure.get("message", "")
    assert ']]> <tag attr="x"> & \u2603 second line' in message  # escaped, not dropped
    assert "second line" in (failure.text or "")
    write_gate_reports(dirty, run_dir=tmp_path)  # a lone surrogate must not break the UTF-8 file
    ET.parse(tmp_path / "junit.xml")


def test_junit_keeps_long_promql_out_of_attributes():
    long_query = "sum(" + " + ".join(f'rate(x_total{{run_id="r1",name="n{i}"}}[5m])' for i in range(40)) + ")"
    long_reason = "Prometheus said: " + long_query
    gate = result("wide", "fail", None, max=1.0, promql=long_query, reason=long_reason)
    suite = junit_suite(junit_xml(report(gate)))
    failure = suite.find("testcase/failure")
    assert failure is not None and long_query in (failure.text or "")
    assert failure.get("message", "").endswith("...")


def unreachable_prometheus() -> httpx.Client:
    """A real connection refused: a loopback port nothing listens on (no mock of Prometheus)."""
    return httpx.Client(base_url=f"http://127.0.0.1:{free_port()}", timeout=2.0)


def test_runner_tells_the_report_every_gate_it_was_asked_for():
    gate_file = GateFile.model_validate(
        {
            "version": 1,
            "name": "pilot",
            "gates": [
                {"name": "rps", "metric": "rps", "min": 0.5},
                {"name": "p95", "metric": "latency_p95_ms", "max": 900},
                {"name": "errors", "metric": "error_rate", "max": 0.01},
            ],
        }
    )
    record = run_record(
        run_id="pilot-1",
        profile="pilot",
        planned_duration_s=300.0,
        started_at=START,
        ended_at=END,
        phases=(PhaseWindow(stage=0, phase="steady", start=START, end=END),),
        verdict="fail",
        exit_code=1,
    )
    with unreachable_prometheus() as client:
        outage = evaluate_gates(
            gate_file, source="/abs/gates/pilot.yaml", target=Target(client, record), retry_s=0
        )
    assert outage.verdict == "error" and outage.gates == ()
    assert (outage.suite, outage.gate_names) == ("pilot", ("rps", "p95", "errors"))
    suite = junit_suite(junit_xml(outage))
    assert [c.get("name") for c in suite.iter("testcase")] == ["rps", "p95", "errors"]
    assert suite.get("errors") == "3" and suite.get("name") == "loadctl gates: pilot"


def test_terminal_table_has_the_columns_and_results():
    console = Console(width=200, record=True, color_system=None)
    console.print(gates_table(FULL))
    text = console.export_text()
    for word in (
        "Gate",
        "Window",
        "Target",
        "Actual",
        "Result",
        "PASS",
        "WARN",
        "FAIL",
        "Gates verdict: FAIL",
    ):
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
