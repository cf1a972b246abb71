"""Every panel query of every dashboard returns data from a real run's TSDB.

A short `loadctl run` of the demo profile, with its probes (the crawler's JSON stats page through
http_json, the demo target's process), against the demo target; the demo target uses no Redis, so
the profile also gets a redis probe of a redis-server this test starts and sends lookups to, and a
postgres probe of a real PostgreSQL server (test_probes.py's, started the same way). The
harvest rate limit is tight so that some requests fail (429) and the failure panels have data.
Then the run's tsdb is served by a real Prometheus (as `loadctl prometheus` does), Grafana's
variables are filled in ($run_id, $__rate_interval, ...) and every query of every panel runs over
the run's window: each must return at least one series. The run is judged by a gate file of its own
(lenient bounds, fail and warn on every metric a panel draws): the gate lines of the dashboards are
that file's thresholds, as the run published them; each probe row's variable lists the run's probe.
"""

from __future__ import annotations

import json
import os
import shutil
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from controller.processes import ManagedProcess, free_port, wait_until
from dashboards import runs_over_time, system_under_test
from dashboards.generate import generate
from tests.integration.test_dashboards import expected_lines, gate_line_queries
from tests.integration.test_probes import postgres  # noqa: F401 (a fixture: the run's PostgreSQL)
from tests.support import DEMO_LOCUSTFILE, REPO_ROOT, demo_server, run_loadctl, served_run

pytestmark = [pytest.mark.integration, pytest.mark.slow]

RUN_ID = "dashboards-data"
REDIS_ENV = "LOADCTL_TEST_REDIS_URL"
PG_ENV = "LOADCTL_TEST_PG_DSN"
# A 1 s scrape interval: Grafana would make $__rate_interval at least 4 scrapes long.
VARIABLES = {"$run_id": RUN_ID, "$__rate_interval": "10s", "$__interval": "1s", "$__range": "1m"}
# All of each probe row's probes (the variables' "All" value)
VARIABLES |= {f"${system_under_test.probe_variable(t)}": ".+" for t in system_under_test.PROBE_ROWS}
# Lenient (the run passes), with a fail and a warn bound on every metric a panel draws, so that every
# gate line query has data.
GATES = """version: 1
name: dashboards-data
window: run
gates:
  - {name: rps_floor, metric: rps, min: 0.01}
  - {name: rps_soft, metric: rps, min: 0.02, severity: warn}
  - {name: errors, metric: error_rate, max: 0.95}
  - {name: errors_soft, metric: error_rate, max: 0.9, severity: warn}
  - {name: throttled, metric: status_rate, status: "429", max: 0.97}
  - {name: p50, metric: latency_p50_ms, max: 30000}
  - {name: p50_soft, metric: latency_p50_ms, max: 20000, severity: warn}
  - {name: p95, metric: latency_p95_ms, max: 40000}
  - {name: p95_soft, metric: latency_p95_ms, max: 25000, severity: warn}
  - {name: p99, metric: latency_p99_ms, max: 50000}
  - {name: p99_soft, metric: latency_p99_ms, max: 35000, severity: warn}
"""


def substitute(expr: str) -> str:
    for name in sorted(VARIABLES, key=len, reverse=True):
        expr = expr.replace(name, VARIABLES[name])
    return expr


@pytest.fixture(scope="module")
def redis_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    import redis

    binary = shutil.which("redis-server")
    if binary is None:
        pytest.fail("redis-server not found: install the Debian package redis-server (make setup)")
    root = tmp_path_factory.mktemp("redis")
    port = free_port()
    argv = [binary, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"]
    process = ManagedProcess("redis-server", [*argv, "--dir", str(root)], log_path=root / "redis.log")
    url = f"redis://127.0.0.1:{port}/0"

    def answers() -> bool:
        try:
            return bool(redis.Redis.from_url(url, socket_timeout=1).ping())
        except redis.RedisError:
            return False

    try:
        assert wait_until(answers, timeout=15, watch=[process]), process.log_tail()
        yield url
    finally:
        process.stop(timeout=10)


def cache_traffic(url: str, stop: threading.Event) -> None:
    """Hits and misses on the test's Redis for as long as the run lasts (for the hit ratio)."""
    import redis

    client = redis.Redis.from_url(url, socket_timeout=2)
    client.set("recipe:1", "soup")
    while not stop.wait(0.2):
        client.get("recipe:1")
        client.get("recipe:missing")
    client.close()


def demo_profile(target: str, root: Path) -> Path:
    """profiles/demo.yaml, shortened, with its probes and two more: redis and postgres."""
    profile: dict[str, Any] = yaml.safe_load((REPO_ROOT / "profiles" / "demo.yaml").read_text())
    gates = root / "dashboards-data.gates.yaml"
    gates.write_text(GATES)
    profile["gates"] = str(gates)  # lenient: the gate lines are what this test is about
    profile.update(
        name="dashboards-data",
        locustfile=str(DEMO_LOCUSTFILE),
        host=target,
        workers=2,
        stages=[
            {"phase": "ramp_up", "duration": "10s", "users": 11, "spawn_rate": 5},
            {"phase": "steady", "duration": "20s", "users": 11, "spawn_rate": 5},
        ],
    )
    profile["probes"] = [
        *profile.get("probes", []),
        {"name": "cache", "type": "redis", "url_env": REDIS_ENV, "interval": "1s"},
        {"name": "db", "type": "postgres", "dsn_env": PG_ENV, "pool_size": 20, "interval": "1s"},
    ]
    path = root / "dashboards-data.yaml"
    path.write_text(yaml.safe_dump(profile, sort_keys=False))
    return path


@pytest.fixture(scope="module")
def finished_run(
    tmp_path_factory: pytest.TempPathFactory,
    redis_url: str,
    postgres: str,  # noqa: F811 (the fixture imported above)
) -> dict[str, Any]:
    root = tmp_path_factory.mktemp("dashboards-run")
    # 11 users split 5/4/1/1: one harvest user, whose caller soon runs out of tokens (429)
    with demo_server(root / "target.log", "--harvest-rate-per-minute", "6", "--harvest-burst", "1") as target:
        profile = demo_profile(target, root)
        env = {**os.environ, "DEMO_PORT": target.rsplit(":", 1)[1], REDIS_ENV: redis_url, PG_ENV: postgres}
        stop = threading.Event()
        traffic = threading.Thread(target=cache_traffic, args=(redis_url, stop), daemon=True)
        traffic.start()
        try:
            done = run_loadctl(
                ["run", str(profile), "--run-id", RUN_ID, "--results-dir", str(root / "results")],
                timeout=240,
                env=env,
            )
        finally:
            stop.set()
            traffic.join(timeout=10)
    run_dir = root / "results" / RUN_ID
    assert (run_dir / "run.json").exists(), f"exit {done.returncode}: {done.stdout}{done.stderr}"
    return {"done": done, "run_dir": run_dir, "record": json.loads((run_dir / "run.json").read_text())}


def panel_queries() -> list[tuple[str, str, str]]:
    out = []
    for name, text in generate().items():
        if name == f"{runs_over_time.UID}.json":
            continue  # pushed runs, not one run's data: tests/integration/test_run_history.py
        for panel in json.loads(text)["panels"]:
            for query in panel.get("targets", []):
                out.append((name.removesuffix(".json"), panel["title"], query["expr"]))
    return out


def test_the_run_completed(finished_run):
    done = finished_run["done"]
    assert done.returncode == 0, done.stdout + done.stderr
    assert finished_run["record"]["failures"] > 0, "no failed request: the failure panels would be empty"


def test_every_panel_query_returns_data_from_the_run(finished_run):
    record = finished_run["record"]
    queries = panel_queries()
    assert len(queries) > 20
    empty = []
    with served_run(finished_run["run_dir"]) as prometheus:
        for board, title, expr in queries:
            response = prometheus.get(
                "/api/v1/query_range",
                params={
                    "query": substitute(expr),
                    "start": f"{record['started_at'] - 5:.3f}",
                    "end": f"{record['ended_at'] + 5:.3f}",
                    "step": "1s",
                },
            )
            body = response.json()
            assert body["status"] == "success", (board, title, expr, body)
            if not body["data"]["result"]:
                empty.append(f"{board} / {title}: {expr}")
    assert not empty, "panel queries without data in the run's tsdb:\n" + "\n".join(empty)


def test_the_gate_lines_are_the_runs_own_gate_file(finished_run):
    record = finished_run["record"]
    board = json.loads(generate()["loadctl-load-overview.json"])
    drawn = set()
    with served_run(finished_run["run_dir"]) as prometheus:
        for title, severity, expr in gate_line_queries(board):
            at = (record["started_at"] + record["ended_at"]) / 2
            body = prometheus.get(
                "/api/v1/query", params={"query": substitute(expr), "time": f"{at:.3f}"}
            ).json()
            for series in body["data"]["result"]:
                labels = series["metric"]
                drawn.add(
                    (title, labels["gate"], labels["bound"], severity, round(float(series["value"][1]), 9))
                )
    assert record["gates_file"] and Path(record["gates_file"]).name == "dashboards-data.gates.yaml"
    assert drawn == expected_lines(Path(record["gates_file"]))


def test_each_probe_row_lists_the_runs_probes_of_its_type(finished_run):
    board = json.loads(generate()[f"{system_under_test.UID}.json"])
    found = {}
    with served_run(finished_run["run_dir"]) as prometheus:
        for variable in board["templating"]["list"]:
            if variable.get("hide") != 2:
                continue
            selector, label = (
                variable["query"].removeprefix("label_values(").removesuffix(")").rsplit(", ", 1)
            )
            params = {"match[]": substitute(selector)}
            found[variable["name"]] = prometheus.get(f"/api/v1/label/{label}/values", params=params).json()[
                "data"
            ]
    assert found["postgres_probe"] == ["db"] and found["redis_probe"] == ["cache"], found
    assert found["process_probe"] and found["http_json_probe"], found
