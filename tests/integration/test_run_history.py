"""Run history with real parts: short local runs push their summary to a real Pushgateway
(Debian package prometheus-pushgateway) that a real Prometheus scrapes with honor_labels: true.

Two runs against the demo target push two run_id groups (the history across runs); a third, to a
Pushgateway that is not there, warns and keeps its exit code. Then the pushed series are read
back three ways: the Pushgateway's API, Prometheus, and every query of the "runs over time"
dashboard (variables substituted); `loadctl history` lists the runs from Prometheus and from the
results folder tree.
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path
from typing import Any

import httpx
import pytest

from controller.cli.options import PUSHGATEWAY_URL_ENV, SCHEDULE_ENV
from controller.processes import free_port
from controller.prom.client import query
from controller.pushgateway.push import group_url
from dashboards import generate as generator
from dashboards import runs_over_time
from tests.support import (
    DEMO_LOCUSTFILE,
    demo_server,
    prometheus_scraping_pushgateway,
    pushgateway_server,
    run_loadctl,
    wait_for,
)

pytestmark = pytest.mark.integration

PROFILE = "history"
RUN_IDS = ("history-1", "history-2")
UNREACHABLE_RUN = "history-3"
# gate names are [A-Za-z0-9_.:-]: dots and colons, which a regex or a label matcher could trip on
ODD_GATE = "p95.all:edge-1"
GATES = f"""version: 1
name: history
window: run
gates:
  - {{name: {json.dumps(ODD_GATE)}, metric: latency_p95_ms, max: 60000}}
  - {{name: errors, metric: error_rate, max: 0.9}}
  - {{name: throughput, metric: rps, min: 0.1, severity: warn}}
"""


def write_profile(root: Path, target: str) -> Path:
    gates = root / "gates.yaml"
    gates.write_text(GATES)
    profile = root / f"{PROFILE}.yaml"
    profile.write_text(
        f"name: {PROFILE}\nlocustfile: {DEMO_LOCUSTFILE}\nhost: {target}\nworkers: 1\ngates: {gates}\n"
        "users: 4\nspawn_rate: 4\nduration: 8s\n"  # 8 s: the gates need 3 scrapes or more
    )
    return profile


def loadctl_run(profile: Path, root: Path, run_id: str, *args: str, env: dict[str, str]) -> dict[str, Any]:
    done = run_loadctl(
        ["run", str(profile), "--run-id", run_id, "--results-dir", str(root / "results"), *args],
        timeout=180,
        env={**os.environ, **env},
    )
    run_json = root / "results" / run_id / "run.json"
    assert run_json.exists(), f"exit {done.returncode}: {done.stdout}{done.stderr}"
    return {"done": done, "record": json.loads(run_json.read_text()), "run_dir": run_json.parent}


@pytest.fixture(scope="module")
def history(tmp_path_factory: pytest.TempPathFactory) -> Any:
    root = tmp_path_factory.mktemp("history")
    with (
        pushgateway_server(root / "pushgateway") as pushgateway,
        prometheus_scraping_pushgateway(root / "prometheus", pushgateway) as prometheus,
        demo_server(root / "target.log") as target,
    ):
        profile = write_profile(root, target)
        pushed_from = time.time()
        first = loadctl_run(
            profile, root, RUN_IDS[0], "--pushgateway", pushgateway, env={SCHEDULE_ENV: "nightly"}
        )
        # the second takes the URL from the environment, as the chart's CronJob gives it
        second = loadctl_run(
            profile, root, RUN_IDS[1], env={PUSHGATEWAY_URL_ENV: pushgateway, SCHEDULE_ENV: ""}
        )
        nowhere = f"http://127.0.0.1:{free_port()}"
        third = loadctl_run(profile, root, UNREACHABLE_RUN, "--pushgateway", nowhere, env={})
        yield {
            "root": root,
            "pushgateway": pushgateway,
            "prometheus": prometheus.url,
            "runs": {RUN_IDS[0]: first, RUN_IDS[1]: second},
            "unreachable": third,
            "nowhere": nowhere,
            "pushed_from": pushed_from,
        }


def stats_p95_s(run_dir: Path) -> float:
    import csv

    with open(run_dir / "stats.csv", newline="") as handle:
        (total,) = [row for row in csv.DictReader(handle) if row["Name"] == "Aggregated"]
    return float(total["95%"]) / 1000


def test_each_run_pushes_its_group_and_records_where(history):
    for run_id, run in history["runs"].items():
        done, record = run["done"], run["record"]
        assert done.returncode == 0, done.stdout + done.stderr
        assert record["verdict"] == "pass"
        url = group_url(history["pushgateway"], run_id)
        assert record["pushgateway"] == {"url": url, "pushed": True, "error": None}
        assert f"summary pushed to {url}" in done.stdout


def pushgateway_groups(url: str) -> dict[str, dict[str, Any]]:
    """run_id -> {metric name: [(labels, value)]} from the Pushgateway's own API."""
    groups = {}
    for group in httpx.get(f"{url}/api/v1/metrics", timeout=5).json()["data"]:
        families = {
            name: [(m["labels"], float(m["value"])) for m in family["metrics"]]
            for name, family in group.items()
            if isinstance(family, dict) and "metrics" in family
        }
        groups[group["labels"]["run_id"]] = families | {"labels": group["labels"]}
    return groups


def test_the_pushgateway_holds_one_group_per_run_with_the_run_figures(history):
    groups = pushgateway_groups(history["pushgateway"])
    assert set(groups) == set(RUN_IDS)  # the unreachable run pushed nothing anywhere
    for run_id, run in history["runs"].items():
        group, record = groups[run_id], run["record"]
        assert group["labels"] == {"job": "loadctl", "run_id": run_id}
        verdicts = {labels["verdict"]: value for labels, value in group["loadctl_run_verdict"]}
        assert verdicts["pass"] == 1 and sum(verdicts.values()) == 1
        ((labels, requests),) = group["loadctl_run_requests_total"]
        assert requests == record["requests"] > 0
        assert labels["profile"] == PROFILE
        assert labels["schedule"] == ("nightly" if run_id == RUN_IDS[0] else "")
        ((_, p95),) = group["loadctl_run_latency_p95_seconds"]
        assert p95 == pytest.approx(stats_p95_s(run["run_dir"]))
        gates = json.loads((run["run_dir"] / "gates.json").read_text())["gates"]
        values = {labels["gate"]: value for labels, value in group["loadctl_run_gate_value"]}
        assert values == pytest.approx({g["name"]: g["value"] for g in gates})
        thresholds = {(lb["gate"], lb["bound"]): v for lb, v in group["loadctl_run_gate_threshold"]}
        assert thresholds == {(ODD_GATE, "max"): 60000.0, ("errors", "max"): 0.9, ("throughput", "min"): 0.1}


def prometheus_has_both_runs(http: httpx.Client) -> bool:
    samples = query(client=http, promql='count by (run_id) (loadctl_run_verdict{job="loadctl"})')
    return {s.labels["run_id"] for s in samples} == set(RUN_IDS)


@pytest.fixture(scope="module")
def scraped(history) -> Any:
    with httpx.Client(base_url=history["prometheus"], timeout=10) as http:
        assert wait_for(lambda: prometheus_has_both_runs(http), timeout=30), (
            "Prometheus never scraped both runs"
        )
        time.sleep(2)  # one more scrape: the dashboard's first-seen queries compare two steps
        yield http


def test_prometheus_scrapes_each_runs_verdict_requests_p95_and_gates(history, scraped):
    for run_id, run in history["runs"].items():
        record = run["record"]
        run_sel = f'job="loadctl",run_id="{run_id}"'
        (verdict,) = query(client=scraped, promql=f"loadctl_run_verdict{{{run_sel}}} == 1")
        assert verdict.labels["verdict"] == "pass" and verdict.labels["profile"] == PROFILE
        (requests,) = query(client=scraped, promql=f"loadctl_run_requests_total{{{run_sel}}}")
        assert requests.value == record["requests"]
        (p95,) = query(client=scraped, promql=f"loadctl_run_latency_p95_seconds{{{run_sel}}}")
        assert p95.value == pytest.approx(stats_p95_s(run["run_dir"]))
        (exit_code,) = query(client=scraped, promql=f"loadctl_run_exit_code{{{run_sel}}}")
        assert exit_code.value == record["exit_code"]
        gate = query(client=scraped, promql=f'loadctl_run_gate_threshold{{{run_sel},bound="max"}}')
        assert {s.labels["gate"] for s in gate} == {ODD_GATE, "errors"}


def test_an_unreachable_pushgateway_warns_and_keeps_the_exit_code(history):
    run = history["unreachable"]
    done, record = run["done"], run["record"]
    # the same exit code as the runs that pushed, and the one run.json recorded with its verdict
    assert done.returncode == record["exit_code"] == history["runs"][RUN_IDS[0]]["done"].returncode
    assert record["verdict"] == "pass"
    assert f"warning: could not push the run's summary to {history['nowhere']}" in done.stdout
    assert "Traceback" not in done.stdout + done.stderr
    pushed = record["pushgateway"]
    assert pushed["pushed"] is False and pushed["error"]
    assert pushed["url"] == group_url(history["nowhere"], UNREACHABLE_RUN)


# --- the runs-over-time dashboard's queries return data from the pushed series -------------------

VARIABLES = {"$profile": ".*", "$schedule": ".*", "$gate": ".*", "$__interval": "1s", "$__range": "1h"}


def substitute(expr: str) -> str:
    for name in sorted(VARIABLES, key=len, reverse=True):
        expr = expr.replace(name, VARIABLES[name])
    return expr


def board_queries() -> list[tuple[str, dict[str, Any]]]:
    board = json.loads(generator.generate()[f"{runs_over_time.UID}.json"])
    return [(panel["title"], t) for panel in board["panels"] for t in panel.get("targets", [])]


def test_every_panel_query_returns_data_from_the_pushed_runs(history, scraped):
    queries = board_queries()
    assert len(queries) >= 10
    empty = []
    for title, query_ in queries:
        expr = substitute(query_["expr"])
        if query_.get("instant"):
            params = {"query": expr}
            body = scraped.get("/api/v1/query", params=params).json()
        else:
            # step = $__interval, as Grafana asks
            params = {
                "query": expr,
                "start": f"{history['pushed_from']:.3f}",
                "end": f"{time.time():.3f}",
                "step": "1s",
            }
            body = scraped.get("/api/v1/query_range", params=params).json()
        assert body["status"] == "success", (title, expr, body)
        if not body["data"]["result"]:
            empty.append(f"{title}: {expr}")
    assert not empty, "\n".join(empty)


def test_the_trend_has_one_point_per_run(history, scraped):
    """first_seen puts a run's value at the step its group first shows, not at every scrape after."""
    (p95_query, _) = [t["expr"] for title, t in board_queries() if title.startswith("Response time")]
    params = {
        "query": substitute(p95_query),
        "start": f"{history['pushed_from']:.3f}",
        "end": f"{time.time():.3f}",
        "step": "1s",
    }
    result = scraped.get("/api/v1/query_range", params=params).json()["data"]["result"]
    points = [value for series in result for value in series["values"]]
    assert len(points) == len(RUN_IDS), points


# --- loadctl history ----------------------------------------------------------------------------


def test_history_from_prometheus_lists_both_runs_newest_first(history, scraped):
    done = run_loadctl(["history", "--prometheus", history["prometheus"], "--json"])
    assert done.returncode == 0, done.stderr
    rows = json.loads(done.stdout)
    assert [row["run_id"] for row in rows] == list(reversed(RUN_IDS))
    for row in rows:
        record = history["runs"][row["run_id"]]["record"]
        assert row["verdict"] == "pass" and row["profile"] == PROFILE
        assert row["requests"] == record["requests"]
        assert row["started_at"] == pytest.approx(record["started_at"])
    table = run_loadctl(["history", "--prometheus", history["prometheus"], "--limit", "1"])
    lines = table.stdout.strip().splitlines()
    assert len(lines) == 2 and lines[0].startswith("RUN ID") and lines[1].startswith(RUN_IDS[1])


def test_history_from_the_results_folder_lists_every_run(history):
    done = run_loadctl(["history", str(history["root"] / "results")])
    assert done.returncode == 0, done.stderr
    lines = done.stdout.strip().splitlines()
    assert [line.split()[0] for line in lines[1:]] == [UNREACHABLE_RUN, *reversed(RUN_IDS)]
    assert all(" pass " in line for line in lines[1:])


def test_a_bad_pushgateway_url_is_an_input_error_before_any_load(tmp_path):
    done = run_loadctl(
        [
            "run",
            "-f",
            str(DEMO_LOCUSTFILE),
            "--host",
            "http://127.0.0.1:1",
            "-u",
            "1",
            "-t",
            "5s",
            "--pushgateway",
            "ftp://nowhere",
            "--results-dir",
            str(tmp_path / "results"),
        ],
        cwd=tmp_path,
    )
    assert done.returncode == 2, done.stdout + done.stderr
    (line,) = done.stderr.strip().splitlines()
    assert "--pushgateway" in line and "ftp://nowhere" in line
    assert not (tmp_path / "results").exists()
