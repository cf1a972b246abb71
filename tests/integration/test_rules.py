"""The Prometheus rules file (charts/loadctl/rules/loadctl.rules.yaml) with the real promtool.

promtool's own rule unit tests (tests/rules/loadctl.rules.test.yaml) give every recording rule a
value and every alert a firing and a quiet case; they run here with `promtool test rules` of
Prometheus 2.x and 3.x, on the rules and the tests both rendered for 1 s samples (the local
Prometheus) and 30 s samples (kube-prometheus-stack's default). Besides: the unit tests cover every
rule, every selector reads `run_id!=""` (the chart narrows exactly that string to one run), every
alert has a runbook in the README, and the local Prometheus of a run loads and evaluates the file.
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
from controller.processes import wait_until
from controller.prom.binaries import find_promtool
from controller.prom.config import RULES_FILE_NAME, rules_text, scrape_config
from controller.prom.rules import RUNBOOKS_TOKEN, WINDOW_TOKEN, prom_duration, rule_window_s
from controller.prom.server import PrometheusServer
from tests.support import CHART, REPO_ROOT

# promtool and a run's Prometheus, both real processes
pytestmark = pytest.mark.integration

RULES_FILE = rules_file()

RULE_TESTS = REPO_ROOT / "tests" / "rules" / "loadctl.rules.test.yaml"
ALL_RUNS = 'run_id!=""'
# the local Prometheus' interval and kube-prometheus-stack's default
SAMPLE_INTERVALS_S = (1, 30)

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
    text = rules_text(SAMPLE_INTERVALS_S[0])
    return [rule for group in yaml.safe_load(text)["groups"] for rule in group["rules"]]


def render_rule_tests(template: str, *, interval_s: int, rules_path: str, promtool_major: int = 2) -> str:
    """tests/rules/loadctl.rules.test.yaml for samples every `interval_s` (its header lists the tokens)."""

    def number(value: float) -> str:
        return f"{value:g}"

    def token(match: re.Match[str]) -> str:
        name, arg = match.group(1), match.group(2)
        if name == "rate":
            return number(float(arg) * interval_s)
        if name == "samples":
            return str(int(arg) // interval_s)
        return {"interval": f"{interval_s}s", "window": prom_duration(rule_window_s(interval_s)),
                "rules": rules_path,
                "fuzzy": "fuzzy_compare: true" if promtool_major >= 3 else ""}[name]  # fmt: skip

    return re.sub(r"<<(\w+)(?::([\d.]+))?>>", token, template)


def run_rule_tests(
    folder: Path, *, interval_s: int, rules: str, promtool_major: int
) -> subprocess.CompletedProcess[str]:
    (folder / "rules.yaml").write_text(rules)
    tests = render_rule_tests(
        RULE_TESTS.read_text(), interval_s=interval_s, rules_path="rules.yaml", promtool_major=promtool_major
    )
    (folder / "rules.test.yaml").write_text(tests)
    return subprocess.run(
        [find_promtool(), "test", "rules", "rules.test.yaml"],
        capture_output=True, text=True, timeout=120, cwd=folder, check=False,
    )  # fmt: skip


def test_render_rule_tests():
    template = "interval: <<interval>> '0+<<rate:0.1>>x<<samples:600>>' <<window>> <<rules>>"
    at_30s = render_rule_tests(template, interval_s=30, rules_path="r.yaml")
    at_1s = render_rule_tests(template, interval_s=1, rules_path="r.yaml")
    assert (at_30s, at_1s) == ("interval: 30s '0+3x20' 2m r.yaml", "interval: 1s '0+0.1x600' 30s r.yaml")


def test_rule_window_is_at_least_four_scrapes_and_30s():
    assert [rule_window_s(s) for s in (1, 5, 7, 30, 60)] == [30, 30, 30, 120, 240]
    assert [prom_duration(s) for s in (30, 120, 90)] == ["30s", "2m", "90s"]
    rendered = rules_text(30)
    assert WINDOW_TOKEN not in rendered and RUNBOOKS_TOKEN not in rendered
    assert "[2m]" in rendered and "[30s]" not in rendered


def test_the_local_prometheus_and_the_chart_use_the_same_file(tmp_path):
    assert RULES_FILE == CHART / "rules" / "loadctl.rules.yaml"
    assert scrape_config(run_id="r", exporter_address="127.0.0.1:9646")["rule_files"] == [RULES_FILE_NAME]
    template = RULES_FILE.read_text()
    assert rules_text(1) == template.replace(WINDOW_TOKEN, "30s").replace(RUNBOOKS_TOKEN, "README.md")


@pytest.mark.parametrize("interval_s", SAMPLE_INTERVALS_S)
def test_promtool_check_rules(tmp_path, interval_s, prometheus_version):
    rendered = tmp_path / "rules.yaml"
    rendered.write_text(rules_text(interval_s))
    done = promtool("check", "rules", str(rendered))
    assert done.returncode == 0, done.stdout + done.stderr
    assert f"SUCCESS: {len(rules())} rules found" in done.stdout


@pytest.mark.parametrize("interval_s", SAMPLE_INTERVALS_S)
def test_promtool_rule_unit_tests_pass(tmp_path, interval_s, prometheus_version):
    done = run_rule_tests(
        tmp_path, interval_s=interval_s, rules=rules_text(interval_s), promtool_major=prometheus_version.major
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert "SUCCESS" in done.stdout


def test_the_unit_tests_cover_every_recording_rule_and_alert():
    rendered = render_rule_tests(RULE_TESTS.read_text(), interval_s=1, rules_path="r.yaml")
    tests = yaml.safe_load(rendered)["tests"]
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
                    annotations = set(alert["exp_annotations"])
                    assert annotations == {"summary", "description", "runbook_url"}, rule["alert"]


def readme_anchors(text: str) -> set[str]:
    """GitHub's anchors of the Markdown headings in `text`."""
    anchors = set()
    for heading in re.findall(r"^#+ (.+)$", text, flags=re.MULTILINE):
        anchors.add(re.sub(r"[^\w\- ]", "", heading.strip().lower()).replace(" ", "-"))
    return anchors


def test_every_alert_has_a_runbook_in_the_readme():
    anchors = readme_anchors((REPO_ROOT / "README.md").read_text())
    alerts = [rule for rule in rules() if "alert" in rule]
    assert alerts
    for alert in alerts:
        base, _, anchor = alert["annotations"]["runbook_url"].partition("#")
        assert base == "README.md" and anchor in anchors, alert["alert"]


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


def test_a_runs_prometheus_loads_and_evaluates_the_rules(tmp_path, prometheus_version):
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
        # rendered for the run's 1 s scrapes, next to its config
        assert (tmp_path / RULES_FILE_NAME).read_text() == rules_text(1)
    finally:
        server.stop()
