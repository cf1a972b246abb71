"""The Grafana dashboards (dashboards/*.py -> dashboards/*.json and charts/loadctl/dashboards/*.json).

The committed JSON must be what the generator produces now; every panel has queries, every query
selects the dashboard's run and parses in a real Prometheus; the metrics they use are in the
contracts of the exporter, the probes and the demo target. The gate lines are queries of the
thresholds a run publishes: served by the master's collector from two different gate files and
scraped by a real Prometheus, every line equals its gate file's bound; the probe rows' variables
list the probes a real probe process serves, and nothing for a type it has none of. Whether each
query returns data from a real run: tests/integration/test_dashboards_data.py.
"""

from __future__ import annotations

import json
import os
import re
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from prometheus_client import CollectorRegistry, start_http_server

from controller.gates.load import load_gate_file
from controller.gates.thresholds import gate_thresholds
from controller.processes import ManagedProcess, free_port, wait_until
from controller.prom.config import empty_config
from controller.prom.server import PrometheusServer, run_prometheus
from dashboards import generate as generator
from dashboards import load_overview, runs_over_time, system_under_test
from locust_workers.contract import GATE_THRESHOLD, probes_args
from locust_workers.gate_thresholds import GateThresholdCollector
from tests.support import CHART, REPO_ROOT

# the generator checks the gate files' PromQL with promtool; the queries run in a real Prometheus
pytestmark = pytest.mark.integration

# Grafana's variables, as a test substitutes them: any run id and window parse the same way.
VARIABLES = {
    "$run_id": "dashboards-test",
    "$profile": ".*",  # runs over time: All
    "$schedule": ".*",
    "$gate": ".*",
    **{f"${system_under_test.probe_variable(t)}": ".+" for t in system_under_test.PROBE_ROWS},
    "$__rate_interval": "30s",
    "$__interval": "5s",
    "$__range": "5m",
}


def substitute(expr: str, variables: dict[str, str] = VARIABLES) -> str:
    # longest first: $__range must not eat the start of a longer name
    for name in sorted(variables, key=len, reverse=True):
        expr = expr.replace(name, variables[name])
    return expr


@pytest.fixture(scope="module")
def generated() -> dict[str, str]:
    return generator.generate()


def boards(files: dict[str, str]) -> dict[str, dict[str, Any]]:
    return {name: json.loads(text) for name, text in files.items()}


def panels(board: dict[str, Any]) -> list[dict[str, Any]]:
    return [panel for panel in board["panels"] if panel["type"] != "row"]


def by_title(board: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {panel["title"]: panel for panel in panels(board)}


def exprs(panel: dict[str, Any]) -> list[str]:
    return [t["expr"] for t in panel["targets"]]


def steps(panel: dict[str, Any]) -> list[tuple[float | None, str]]:
    thresholds = panel["fieldConfig"]["defaults"].get("thresholds", {"steps": []})
    return [(step["value"], step["color"]) for step in thresholds["steps"]]


def lines(*values: float, color: str = "red") -> list[tuple[float | None, str]]:
    """Threshold steps of gates drawn as lines: a transparent base, then one step per value."""
    return [(None, "transparent"), *((value, color) for value in values)]


# --- the committed JSON is current --------------------------------------------------------------


def test_the_committed_json_is_what_the_generator_produces(generated):
    assert set(generated) == {
        "loadctl-load-overview.json",
        "loadctl-system-under-test.json",
        "loadctl-runs-over-time.json",
    }
    stale = generator.out_of_date(generated)
    assert not stale, f"run `python -m dashboards.generate`: {[str(p) for p in stale]}"
    for directory in (REPO_ROOT / "dashboards", CHART / "dashboards"):
        assert sorted(p.name for p in directory.glob("*.json")) == sorted(generated)


def test_the_check_finds_edited_missing_and_extra_files(tmp_path, generated):
    one, two = tmp_path / "one", tmp_path / "two"
    assert sorted(generator.write(generated, (one, two))) == sorted(
        d / name for d in (one, two) for name in generated
    )
    assert generator.out_of_date(generated, (one, two)) == []
    name = sorted(generated)[0]
    (one / name).write_text(generated[name].replace("5s", "10s"))  # a hand edit
    (two / sorted(generated)[1]).unlink()
    (two / "old-board.json").write_text("{}")
    wrong = generator.out_of_date(generated, (one, two))
    assert sorted(wrong) == sorted([one / name, two / sorted(generated)[1], two / "old-board.json"])
    generator.write(generated, (one, two))
    assert generator.out_of_date(generated, (one, two)) == []
    assert not (two / "old-board.json").exists()


def test_generate_check_exit_code():
    assert generator.main(["--check"]) == 0


# --- structure ----------------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["loadctl-load-overview.json", "loadctl-system-under-test.json"])
def test_every_panel_has_queries_of_this_run(generated, name):
    board = boards(generated)[name]
    assert board["uid"] == name.removesuffix(".json")
    assert board["refresh"] == "5s"
    variables = {v["name"]: v for v in board["templating"]["list"]}
    assert variables["datasource"]["type"] == "datasource"
    assert variables["datasource"]["query"] == "prometheus"
    assert variables["run_id"]["type"] == "query"
    assert variables["run_id"]["query"] == "label_values(locust_run_info, run_id)"
    assert variables["run_id"]["datasource"]["uid"] == "${datasource}"
    ids = [panel["id"] for panel in board["panels"]]
    assert len(ids) == len(set(ids))
    assert len(panels(board)) >= 10
    for panel in panels(board):
        assert panel["targets"], f"{panel['title']}: no query"
        assert panel["datasource"]["uid"] == "${datasource}", panel["title"]
        assert [t["refId"] for t in panel["targets"]] == [chr(65 + i) for i in range(len(panel["targets"]))]
        for expr in exprs(panel):
            assert 'run_id="$run_id"' in expr, (panel["title"], expr)
            # every selector of the query selects the run: count selectors against run matchers
            # (a bare {...} too: the generic http_json panel selects by label, not by name)
            selectors = re.findall(r"(?:[a-zA-Z_:][a-zA-Z0-9_:]*)?\{[^}]*\}", expr)
            assert selectors and all('run_id="$run_id"' in s for s in selectors), (panel["title"], expr)
    # the run's events, as `loadctl run` annotates them (controller/grafana/annotations.py)
    (events,) = board["annotations"]["list"]
    assert events["target"]["tags"] == ["loadctl", "run_id:$run_id"]


def test_runs_over_time_selects_the_pushed_runs_by_profile_and_schedule(generated):
    """The history board has no run variable: every selector picks the pushed runs (job="loadctl")
    of the chosen profiles and schedules; the panels its data test reads: test_run_history.py."""
    board = boards(generated)[f"{runs_over_time.UID}.json"]
    variables = {v["name"]: v for v in board["templating"]["list"]}
    assert set(variables) == {"datasource", "profile", "schedule", "gate"}
    for name in ("profile", "schedule", "gate"):
        assert variables[name]["includeAll"] and variables[name]["allValue"] == ".*"
    titles = [panel["title"] for panel in panels(board)]
    assert {"Verdicts", "Runs", "Response time p95 and p99 per run", "Error ratio per run"} <= set(titles)
    assert {"Requests/s per run", "Gate $gate"} <= set(titles)
    for panel in panels(board):
        assert panel["targets"], f"{panel['title']}: no query"
        for expr in exprs(panel):
            selectors = re.findall(r"[a-zA-Z_:][a-zA-Z0-9_:]*\{[^}]*\}", expr)
            wanted = ('job="loadctl"', 'profile=~"$profile"', 'schedule=~"$schedule"')
            assert selectors and all(all(w in s for w in wanted) for s in selectors), (panel["title"], expr)


def test_the_load_overview_has_the_panels_sres_watch(generated):
    panels_ = by_title(boards(generated)["loadctl-load-overview.json"])
    want = {
        "Phase": "locust_run_info",
        "Phases": "locust_run_info",
        "Users": "locust_users",
        "Requests/s": "locust_requests_total",
        "Failures/s by status": "locust_request_failures_total",
        "Error ratio": "locust_request_failures_total",
        "Response time p50": "locust_response_time_seconds_bucket",
        "Response time p95": "locust_response_time_seconds_bucket",
        "Response time p99": "locust_response_time_seconds_bucket",
        "Workers by state": "locust_workers",
        "Worker CPU": "locust_worker_cpu_percent",
    }
    for title, metric in want.items():
        assert any(metric + "{" in e for e in exprs(panels_[title])), title
    assert exprs(panels_["Failures/s by status"]) == [
        'sum by (status) (rate(locust_request_failures_total{run_id="$run_id"}[$__rate_interval]))'
    ]
    assert 'sum by (state) (locust_workers{run_id="$run_id"})' in exprs(panels_["Workers by state"])
    for label, q in (("p50", "0.5"), ("p95", "0.95"), ("p99", "0.99")):
        # classic buckets or the native histogram (Prometheus 3)
        assert exprs(panels_[f"Response time {label}"])[0] == (
            f"histogram_quantile({q}, sum by (name, le) "
            '(rate(locust_response_time_seconds_bucket{run_id="$run_id"}[$__rate_interval]))'
            ' or sum by (name, le) (rate(locust_response_time_seconds{run_id="$run_id"}[$__rate_interval])))'
        )


def test_the_system_under_test_board_shows_pool_crawler_redis_processes_probes(generated):
    board = boards(generated)["loadctl-system-under-test.json"]
    used = {m for panel in panels(board) for e in exprs(panel) for m in re.findall(r"(\w+)\{", e)}
    assert used >= {
        "demo_pool_in_use",
        "demo_pool_size",
        "demo_pool_queued",
        "crawler_domain_retryable_jobs",
        "crawler_domain_parser_fallback_rate",
        "crawler_domain_failure_rate",
        "loadctl_redis_keyspace_hit_ratio",
        "loadctl_redis_used_memory_bytes",
        "loadctl_process_cpu_percent",
        "loadctl_process_resident_memory_bytes",
        "loadctl_probe_up",
        "loadctl_postgres_connections",
        "loadctl_postgres_pool_utilization_ratio",
        "loadctl_postgres_locks_waiting",
    }
    rows = [panel["title"] for panel in board["panels"] if panel["type"] == "row"]
    assert rows[0] == "PostgreSQL $postgres_probe" and rows[-1] == "Demo target pool (example)", rows
    generic = [e for panel in panels(board) if panel["title"] == "HTTP JSON gauges" for e in exprs(panel)]
    assert generic and '__name__!~"loadctl_.*"' in generic[0] and "{{__name__}}" in json.dumps(board)


def test_errors_by_endpoint_and_status_on_the_load_overview(generated):
    board = boards(generated)["loadctl-load-overview.json"]
    (panel,) = [p for p in panels(board) if p["title"] == "Errors by endpoint and status"]
    (expr,) = exprs(panel)
    assert expr.startswith("sum by (name, status) (rate(locust_request_failures_total{"), expr


def contract_names(path: Path, prefix: str) -> set[str]:
    return set(re.findall(rf"\b({prefix}[a-z0-9_]+)\{{", path.read_text()))


def test_every_metric_is_in_a_contract(generated):
    """Names checked against where they are defined, so a rename there fails here."""
    demo_metrics = (REPO_ROOT / "examples" / "demo_target" / "metrics.py").read_text()
    demo_profile = (REPO_ROOT / "profiles" / "demo.yaml").read_text()
    known = (
        contract_names(REPO_ROOT / "locust_workers" / "exporter.py", "locust_")
        | contract_names(REPO_ROOT / "locust_workers" / "probes" / "__init__.py", "loadctl_")
        | set(re.findall(r'"(demo_[a-z_]+)"', demo_metrics))
        # the demo profile's http_json probe exports the crawler's per-domain figures
        | set(re.findall(r"^\s+(crawler_domain_[a-z_]+):", demo_profile, re.M))
        # the summary `loadctl run --pushgateway` pushes (runs over time)
        | contract_names(REPO_ROOT / "controller" / "pushgateway" / "summary.py", "loadctl_run_")
        | {GATE_THRESHOLD}  # the run's gate thresholds (locust_workers/gate_thresholds.py)
    )
    for board in boards(generated).values():
        for panel in panels(board):
            for expr in exprs(panel):
                for metric in re.findall(r"(\w+)\{", expr):
                    name = re.sub(r"_bucket$", "", metric)
                    assert name in known, f"{panel['title']}: {metric} is in no metric contract"


# --- gate thresholds: queries of the series the run publishes -----------------------------------

# The panel that draws each gate metric, and the factor from the gate's unit to the panel's.
DRAWN = {
    "rps": ("Requests/s", 1.0),
    "error_rate": ("Error ratio", 1.0),
    "status_rate": ("Error ratio", 1.0),
    "latency_p50_ms": ("Response time p50", 0.001),
    "latency_p95_ms": ("Response time p95", 0.001),
    "latency_p99_ms": ("Response time p99", 0.001),
}
SEVERITY_OF_COLOR = {"red": "fail", "orange": "warn"}
CUSTOM_GATES = (
    "version: 1\nname: custom\ngates:\n"
    "  - {name: slow_p99, metric: latency_p99_ms, max: 2500}\n"
    "  - {name: soft_p99, metric: latency_p99_ms, max: 800, severity: warn}\n"
    "  - {name: errors, metric: error_rate, max: 0.05}\n"
    "  - {name: floor_rps, metric: rps, min: 3, severity: warn}\n"
    "  - {name: relative, metric: latency_p95_ms, max_change: '+10%'}\n"  # no absolute value: no line
)


def expected_lines(gate_path: Path) -> set[tuple[str, str, str, str, float]]:
    """(panel, gate, bound, severity, value in the panel's unit) of every line the gate file
    should draw, read from its YAML (not through the code under test)."""
    out = set()
    for gate in yaml.safe_load(gate_path.read_text())["gates"]:
        if gate.get("metric") not in DRAWN:
            continue
        title, scale = DRAWN[gate["metric"]]
        for bound in ("max", "min"):
            if gate.get(bound) is not None:
                out.add(
                    (title, gate["name"], bound, gate.get("severity", "fail"), round(gate[bound] * scale, 9))
                )
    return out


def gate_line_queries(board: dict[str, Any]) -> list[tuple[str, str, str]]:
    """(panel, severity, expr) of every gate line, the severity read from the line's colour."""
    out = []
    for panel in panels(board):
        colors = {
            o["matcher"]["options"]: {p["id"]: p["value"] for p in o["properties"]}
            for o in panel.get("fieldConfig", {}).get("overrides", [])
            if o["matcher"]["id"] == "byFrameRefID"
        }
        for query in panel["targets"]:
            if GATE_THRESHOLD in query["expr"]:
                style = colors[query["refId"]]
                assert style["custom.lineStyle"]["fill"] == "dash", panel["title"]
                out.append((panel["title"], SEVERITY_OF_COLOR[style["color"]["fixedColor"]], query["expr"]))
    return out


def test_gate_lines_are_dashed_queries_on_the_panels_they_judge(generated):
    board = boards(generated)["loadctl-load-overview.json"]
    queries = gate_line_queries(board)
    assert {(title, severity) for title, severity, _ in queries} == {
        (title, severity) for title, _ in DRAWN.values() for severity in ("fail", "warn")
    }
    assert all('run_id="$run_id"' in expr for _, _, expr in queries)
    # no value is baked in: the only fixed line is the worker CPU alert's (the rules file's)
    baked = {p["title"]: steps(p) for p in panels(board) if p["type"] == "timeseries" and len(steps(p)) > 1}
    assert baked == {"Worker CPU": lines(90, color="orange")}


THRESHOLDS_RUN = "dashboards-thresholds"


@pytest.fixture(scope="module", params=["pilot", "custom"])
def published(request, tmp_path_factory) -> Iterator[tuple[Path, PrometheusServer]]:
    """A real Prometheus scraping the master's gate threshold collector (serving one gate file) and
    a real probe process with one process probe (and no other probe type)."""
    root = tmp_path_factory.mktemp(f"thresholds-{request.param}")
    gate_path = REPO_ROOT / "gates" / "pilot.yaml"
    if request.param == "custom":
        gate_path = root / "custom.yaml"
        gate_path.write_text(CUSTOM_GATES)
    registry = CollectorRegistry(auto_describe=False)
    registry.register(
        GateThresholdCollector(run_id=THRESHOLDS_RUN, thresholds=gate_thresholds(load_gate_file(gate_path)))
    )
    exporter_port, probes_port = free_port(), free_port()
    server, _thread = start_http_server(exporter_port, addr="127.0.0.1", registry=registry)
    config = root / "probes.json"
    config.write_text(json.dumps({"probes": [{"name": "self", "type": "process", "pid": os.getpid()}]}))
    argv = probes_args(config=str(config), port=probes_port, bind_host="127.0.0.1", run_id=THRESHOLDS_RUN)
    probes = ManagedProcess("probes", [sys.executable, *argv], log_path=root / "probes.log")
    prometheus = run_prometheus(
        run_id=THRESHOLDS_RUN,
        run_dir=root,
        exporter_address=f"127.0.0.1:{exporter_port}",
        targets=(),
        probes_address=f"127.0.0.1:{probes_port}",
        latency_buckets="standard",  # the classic buckets this test serves
    )
    try:
        prometheus.start()
        with prometheus.client() as http:

            def scraped() -> bool:
                query = f'count(up{{run_id="{THRESHOLDS_RUN}"}} == 1) == 2 and count(loadctl_probe_up)'
                return bool(http.get("/api/v1/query", params={"query": query}).json()["data"]["result"])

            assert wait_until(scraped, timeout=30, watch=[probes]), probes.log_tail()
        yield gate_path, prometheus
    finally:
        prometheus.stop()
        probes.stop(timeout=10)
        server.shutdown()
        server.server_close()


def test_the_lines_are_the_gate_file_of_the_run(published, generated):
    gate_path, prometheus = published
    board = boards(generated)["loadctl-load-overview.json"]
    drawn = set()
    with prometheus.client() as http:
        for title, severity, expr in gate_line_queries(board):
            body = http.get(
                "/api/v1/query", params={"query": substitute(expr, {"$run_id": THRESHOLDS_RUN})}
            ).json()
            assert body["status"] == "success", (title, expr, body)
            for series in body["data"]["result"]:
                labels, value = series["metric"], float(series["value"][1])
                drawn.add((title, labels["gate"], labels["bound"], severity, round(value, 9)))
    assert drawn == expected_lines(gate_path)
    assert len(drawn) >= 4


def test_probe_rows_repeat_over_the_probes_of_their_type(published, generated):
    _, prometheus = published
    board = boards(generated)["loadctl-system-under-test.json"]
    variables = {v["name"]: v for v in board["templating"]["list"]}
    rows = {p["repeat"]: p["title"] for p in board["panels"] if p["type"] == "row" and p.get("repeat")}
    assert set(rows) == {system_under_test.probe_variable(t) for t in system_under_test.PROBE_ROWS}
    found = {}
    with prometheus.client() as http:
        for name in rows:
            variable = variables[name]
            assert variable["hide"] == 2 and variable["includeAll"] and variable["multi"], variable
            # label_values(metric{...}, label), as Grafana's Prometheus data source asks for it
            match = re.fullmatch(r"label_values\((.+), (\w+)\)", variable["query"])
            assert match, variable["query"]
            selector_, label = match.groups()
            params = {"match[]": substitute(selector_, {"$run_id": THRESHOLDS_RUN})}
            found[name] = http.get(f"/api/v1/label/{label}/values", params=params).json()["data"]
    assert found == {
        "process_probe": ["self"],
        "postgres_probe": [],
        "redis_probe": [],
        "http_json_probe": [],
    }
    # the panels of a repeated row select its probe
    section, titles = None, {}
    for panel in board["panels"]:
        if panel["type"] == "row":
            section = panel.get("repeat")
        elif section:
            titles[panel["title"]] = section
            assert all(f'probe=~"${section}"' in e for e in exprs(panel)), panel["title"]
    assert titles["Process CPU"] == "process_probe" and titles["Waiting locks"] == "postgres_probe"


# --- every query parses in a real Prometheus ----------------------------------------------------


@pytest.fixture(scope="module")
def prometheus(tmp_path_factory) -> Iterator[PrometheusServer]:
    root = tmp_path_factory.mktemp("dashboards-prometheus")
    server = PrometheusServer(
        config=empty_config(),
        config_path=root / "prometheus.yml",
        data_dir=root / "tsdb",
        log_path=root / "prometheus.log",
    )
    server.start()
    try:
        yield server
    finally:
        server.stop()


def all_queries() -> list[tuple[str, str, str]]:
    out = []
    for name, text in generator.generate().items():
        for panel in panels(json.loads(text)):
            for expr in exprs(panel):
                out.append((name.removesuffix(".json"), panel["title"], expr))
    return out


def test_every_query_parses_in_prometheus(prometheus):
    queries = all_queries()
    assert len(queries) > 20
    errors = []
    with prometheus.client() as http:
        for board, title, expr in queries:
            body = http.get("/api/v1/query", params={"query": substitute(expr)}).json()
            if body["status"] != "success":
                errors.append(f"{board} / {title}: {body.get('error')}: {expr}")
        # and a broken query does fail here, so the check is not vacuous
        assert http.get("/api/v1/query", params={"query": "sum by (name (x)"}).json()["status"] == "error"
    assert not errors, "\n".join(errors)


def test_variables_are_substituted():
    assert substitute('rate(x{run_id="$run_id"}[$__rate_interval]) [$__range] [$__interval]') == (
        'rate(x{run_id="dashboards-test"}[30s]) [5m] [5s]'
    )
    assert load_overview.UID != system_under_test.UID
