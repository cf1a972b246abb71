"""The Prometheus rules file (charts/loadctl/rules/loadctl.rules.yaml) with the real promtool.

promtool's own rule unit tests (tests/rules/loadctl.rules.test.yaml) give every recording rule a
value and every alert a firing and a quiet case; they run here with `promtool check rules`. Besides:
the unit tests cover every rule, every selector reads `run_id!=""` (the chart narrows exactly that
string to one run), and the local Prometheus of a run loads and evaluates the file.
"""

from __future__ import annotations

import re
import subprocess
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

from controller.chart import rules_file
from controller.gates.load import find_promtool
from controller.processes import wait_until
from controller.prom.config import scrape_config
from controller.prom.server import PrometheusServer
from tests.support import CHART, REPO_ROOT

# promtool and a run's Prometheus, both real processes
pytestmark = pytest.mark.integration

RULES_FILE = rules_file()

RULE_TESTS = REPO_ROOT / "tests" / "rules" / "loadctl.rules.test.yaml"
ALL_RUNS = 'run_id!=""'

# Words of PromQL that are not metric names (functions, aggregations, operators used in the file).
PROMQL_WORDS = {
    "sum", "max", "min", "avg", "count", "rate", "irate", "increase", "histogram_quantile",
    "max_over_time", "min_over_time", "avg_over_time", "vector", "and", "or", "unless", "bool",
}  # fmt: skip


def promtool(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [find_promtool(), *args], capture_output=True, text=True, timeout=60, cwd=REPO_ROOT, check=False
    )


def rules() -> list[dict[str, Any]]:
    return [rule for group in yaml.safe_load(RULES_FILE.read_text())["groups"] for rule in group["rules"]]


def test_the_local_prometheus_and_the_chart_use_the_same_file():
    assert RULES_FILE == CHART / "rules" / "loadctl.rules.yaml"
    assert scrape_config(run_id="r", exporter_address="127.0.0.1:9646")["rule_files"] == [str(RULES_FILE)]


def test_promtool_check_rules():
    done = promtool("check", "rules", str(RULES_FILE))
    assert done.returncode == 0, done.stdout + done.stderr
    assert f"SUCCESS: {len(rules())} rules found" in done.stdout


def test_promtool_rule_unit_tests_pass():
    done = promtool("test", "rules", str(RULE_TESTS))
    assert done.returncode == 0, done.stdout + done.stderr
    assert "SUCCESS" in done.stdout


def test_the_unit_tests_cover_every_recording_rule_and_alert():
    tests = yaml.safe_load(RULE_TESTS.read_text())["tests"]
    assert yaml.safe_load(RULE_TESTS.read_text())["rule_files"] == [
        str(Path("..", "..", RULES_FILE.relative_to(REPO_ROOT)))
    ]
    evaluated = {case["expr"] for test in tests for case in test.get("promql_expr_test", [])}
    alert_cases = [case for test in tests for case in test.get("alert_rule_test", [])]
    for rule in rules():
        if "record" in rule:
            assert rule["record"] in evaluated, rule["record"]
        else:
            cases = [case for case in alert_cases if case["alertname"] == rule["alert"]]
            assert any(case["exp_alerts"] for case in cases), f"{rule['alert']}: no firing case"
            assert any(not case["exp_alerts"] for case in cases), f"{rule['alert']}: no quiet case"
            for case in cases:
                for alert in case["exp_alerts"]:
                    assert set(alert["exp_annotations"]) == {"summary", "description"}, rule["alert"]


def vector_selectors(expr: str) -> list[tuple[str, str]]:
    """(metric name, matchers) of every vector selector of `expr`; a bare name has matchers ""."""
    text = re.sub(r"\b(by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)", " ", expr)
    text = re.sub(r"\[[^\]]*\]", " ", text)  # ranges and subqueries
    found = []
    for match in re.finditer(r"([a-zA-Z_:][a-zA-Z0-9_:]*)\s*(\{[^}]*\})?", text):
        name, matchers = match.group(1), match.group(2) or ""
        if matchers or name not in PROMQL_WORDS:
            found.append((name, matchers))
    return found


def test_vector_selectors_are_found():
    expr = 'sum by (run_id) (rate(a_total{run_id!=""}[30s])) or on (run_id) b unless c{x="1"}[1h:10s]'
    assert vector_selectors(expr) == [("a_total", '{run_id!=""}'), ("b", ""), ("c", '{x="1"}')]


@pytest.mark.parametrize("rule", rules(), ids=lambda r: r.get("record") or r["alert"])
def test_every_selector_reads_run_id_so_the_chart_can_select_one_run(rule):
    selectors = vector_selectors(rule["expr"])
    assert selectors
    for name, matchers in selectors:
        assert ALL_RUNS in matchers, f"{name}{matchers} lacks {ALL_RUNS}"


def test_a_runs_prometheus_loads_and_evaluates_the_rules(tmp_path):
    config = scrape_config(run_id="rules-test", exporter_address="127.0.0.1:9")  # nothing to scrape
    server = PrometheusServer(
        config=config,
        config_path=tmp_path / "prometheus.yml",
        data_dir=tmp_path / "tsdb",
        log_path=tmp_path / "prometheus.log",
    )
    server.start()
    try:
        with server.client() as http:

            def loaded() -> list[dict[str, Any]]:
                return [
                    rule
                    for group in http.get("/api/v1/rules").json()["data"]["groups"]
                    for rule in group["rules"]
                ]

            def all_evaluated() -> bool:
                try:
                    return all(rule["health"] != "unknown" for rule in loaded())
                except httpx.HTTPError:
                    return False

            assert wait_until(all_evaluated, timeout=30)
            got = loaded()
        assert sorted(rule["name"] for rule in got) == sorted(r.get("record") or r["alert"] for r in rules())
        assert [(r["name"], r["health"], r.get("lastError", "")) for r in got if r["health"] != "ok"] == []
    finally:
        server.stop()
