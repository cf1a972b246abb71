"""Gate values against Locust's own numbers, on real runs: real Locust, real Prometheus.

Two short `loadctl run`s with one worker:

  spread   a tiny loopback target sleeps as long as each request asks (log-uniform 5-500 ms);
           exactly one request of the run fails (HTTP 500). The gates over `run` must equal
           stats.csv / failures.csv exactly (requests, failures, a status count); rps within 1 %;
           p50/p95/p99 within 2 % of Locust's percentiles (or, where the exporter's buckets are
           coarser than 2 %, within the bucket that holds Locust's value: histogram.py). The
           profile asks for `latency_buckets: fine`, so the setting reaches the master too.
           `failures max: 0` and `error_rate max: 0` must see the single failure and fail the run.
  refused  a loopback port nobody listens on: every request fails fast. p95 and rps gates judge
           successful requests by default and fail; with `outcome: all` they pass as before.
"""

from __future__ import annotations

import csv
import json
import threading
import time
from bisect import bisect_left
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qs, urlparse

import pytest
import yaml

from controller.processes import free_port
from controller.prom.config import EXPORTER_JOB
from locust_workers.histogram import bucket_bounds_ms, resolution_of
from tests.prom_versions import prometheus_build, using
from tests.support import REPO_ROOT, run_loadctl, served_run

pytestmark = pytest.mark.integration

LOCUSTFILES = REPO_ROOT / "tests" / "integration" / "locustfiles"

SPREAD_GATES = """version: 1
name: spread
window: run
gates:
  - {name: failures_zero, metric: failures, max: 0}
  - {name: error_rate_zero, metric: error_rate, max: 0}
  - {name: status_500, metric: failures, labels: 'status="500"', max: 1000}
  - {name: requests, metric: requests, min: 1}
  - {name: requests_spread, metric: requests, labels: 'name="spread"', min: 1}
  - {name: rps_all, metric: rps, outcome: all, min: 0}
  - {name: rps, metric: rps, min: 0}
  - {name: p50, metric: latency_p50_ms, labels: 'name="spread"', max: 60000}
  - {name: p95, metric: latency_p95_ms, labels: 'name="spread"', max: 60000}
  - {name: p99, metric: latency_p99_ms, labels: 'name="spread"', max: 60000}
  - {name: p95_aggregate_all, metric: latency_p95_ms, outcome: all, max: 60000}
"""

REFUSED_GATES = """version: 1
name: refused
window: run
gates:
  - {name: p95, metric: latency_p95_ms, max: 1000}
  - {name: rps, metric: rps, min: 1}
  - {name: p95_all, metric: latency_p95_ms, outcome: all, max: 1000}
  - {name: rps_all, metric: rps, outcome: all, min: 1}
"""


class _Sleeper(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def do_GET(self) -> None:
        url = urlparse(self.path)
        status = 500 if url.path == "/fail" else 200
        if url.path == "/sleep":
            time.sleep(float(parse_qs(url.query)["ms"][0]) / 1000)
        self.send_response(status)
        self.send_header("Content-Length", "2")
        self.end_headers()
        self.wfile.write(b"ok")

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture(scope="module")
def sleeper() -> Iterator[str]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Sleeper)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


BUCKETS = "fine"  # the accuracy gates can have: their bound is the bucket (4 %)


def loadctl_run(
    root: Path,
    name: str,
    *,
    locustfile: Path,
    host: str,
    gates: str,
    users: int,
    duration: str,
    buckets: str = BUCKETS,
):
    (root / f"{name}-gates.yaml").write_text(gates)
    profile = root / f"{name}.yaml"
    profile.write_text(
        f"name: {name}\nlocustfile: {locustfile}\nhost: {host}\nworkers: 1\n"
        f"gates: {root / f'{name}-gates.yaml'}\n"
        f"users: {users}\nspawn_rate: {users}\nduration: {duration}\nlatency_buckets: {buckets}\n"
    )
    done = run_loadctl(
        ["run", str(profile), "--run-id", name, "--results-dir", str(root / "results")], timeout=120
    )
    run_dir = root / "results" / name
    assert (run_dir / "gates.json").exists(), f"exit {done.returncode}: {done.stdout}{done.stderr}"
    gates_json = json.loads((run_dir / "gates.json").read_text())
    return done, run_dir, {g["name"]: g for g in gates_json["gates"]}


def csv_rows(path: Path) -> list[dict[str, str]]:
    with open(path, newline="") as handle:
        return list(csv.DictReader(handle))


@pytest.fixture(scope="module")
def spread(tmp_path_factory: pytest.TempPathFactory, sleeper: str):
    root = tmp_path_factory.mktemp("spread")
    return loadctl_run(
        root,
        "spread",
        locustfile=LOCUSTFILES / "spread.py",
        host=sleeper,
        gates=SPREAD_GATES,
        users=12,
        duration="20s",
    )


@pytest.fixture(scope="module")
def spread_native(tmp_path_factory: pytest.TempPathFactory, sleeper: str):
    """The same run on Prometheus 3 with the default `latency_buckets: auto`: native histograms."""
    root = tmp_path_factory.mktemp("spread-native")
    with using(prometheus_build(3)):
        return loadctl_run(
            root,
            "spread-native",
            locustfile=LOCUSTFILES / "spread.py",
            host=sleeper,
            gates=SPREAD_GATES,
            users=12,
            duration="20s",
            buckets="auto",
        )


@pytest.fixture(scope="module")
def refused(tmp_path_factory: pytest.TempPathFactory):
    root = tmp_path_factory.mktemp("refused")
    host = f"http://127.0.0.1:{free_port()}"
    return loadctl_run(
        root,
        "refused",
        locustfile=LOCUSTFILES / "refused.py",
        host=host,
        gates=REFUSED_GATES,
        users=4,
        duration="12s",
    )


def test_a_single_failure_fails_zero_failure_gates(spread):
    done, _, gates = spread
    assert (gates["failures_zero"]["verdict"], gates["failures_zero"]["value"]) == ("fail", 1)
    assert gates["error_rate_zero"]["verdict"] == "fail" and gates["error_rate_zero"]["value"] > 0
    assert done.returncode == 1, done.stdout + done.stderr


def test_counts_over_the_run_equal_locusts(spread):
    _, run_dir, gates = spread
    stats = {r["Name"]: r for r in csv_rows(run_dir / "stats.csv")}
    aggregated = stats["Aggregated"]
    assert gates["requests"]["value"] == int(aggregated["Request Count"]) > 500
    assert gates["requests_spread"]["value"] == int(stats["spread"]["Request Count"])
    assert gates["failures_zero"]["value"] == int(aggregated["Failure Count"]) == 1
    [failure] = csv_rows(run_dir / "failures.csv")
    assert "500" in failure["Error"] and gates["status_500"]["value"] == int(failure["Occurrences"]) == 1
    assert gates["error_rate_zero"]["value"] == pytest.approx(1 / int(aggregated["Request Count"]), rel=1e-9)


def test_rps_is_every_request_locust_counted_over_the_gates_window(spread):
    # Locust's own Requests/s divides by its first-to-last-request span, which can start a second
    # before the window run.json records (69.2 vs 75.0 rps in one CI run): compare counts over the
    # gate's own window instead, the definition the gate promises.
    _, run_dir, gates = spread
    aggregated = next(r for r in csv_rows(run_dir / "stats.csv") if r["Name"] == "Aggregated")
    window = gates["rps_all"]["window"]
    seconds = window["end"] - window["start"]
    assert seconds > 10
    # rel 1e-4: the gate's PromQL spells the window's ends to the millisecond
    assert gates["rps_all"]["value"] == pytest.approx(int(aggregated["Request Count"]) / seconds, rel=1e-4)
    # the default judges successful requests: one failure fewer over the same seconds
    requests = int(aggregated["Request Count"])
    assert gates["rps"]["value"] == pytest.approx(
        gates["rps_all"]["value"] * (requests - 1) / requests, rel=1e-9
    )


def bucket_slack(locust_ms: float) -> float:
    """How far histogram_quantile can be from a Locust key: the width of the bucket holding it."""
    bounds = bucket_bounds_ms(resolution_of(BUCKETS))
    index = bisect_left(bounds, locust_ms)
    return locust_ms - (bounds[index - 1] if index else 0.0)


@pytest.mark.parametrize(("gate", "column"), [("p50", "50%"), ("p95", "95%"), ("p99", "99%")])
def test_latency_gates_within_2_percent_of_locusts_percentiles(spread, gate, column):
    _, run_dir, gates = spread
    locust_ms = float(next(r for r in csv_rows(run_dir / "stats.csv") if r["Name"] == "spread")[column])
    value = gates[gate]["value"]
    allowed = max(0.02 * locust_ms, bucket_slack(locust_ms))
    assert abs(value - locust_ms) <= allowed, (gate, value, locust_ms, allowed)
    assert 5 <= locust_ms <= 600  # the spread reached the quantile asked for


def test_aggregate_latency_of_all_requests(spread):
    _, run_dir, gates = spread
    locust_ms = float(next(r for r in csv_rows(run_dir / "stats.csv") if r["Name"] == "Aggregated")["95%"])
    value = gates["p95_aggregate_all"]["value"]
    assert abs(value - locust_ms) <= max(0.02 * locust_ms, bucket_slack(locust_ms)), (value, locust_ms)


def test_a_dead_target_fails_latency_and_rps_gates(refused):
    done, run_dir, gates = refused
    aggregated = next(r for r in csv_rows(run_dir / "stats.csv") if r["Name"] == "Aggregated")
    assert int(aggregated["Request Count"]) == int(aggregated["Failure Count"]) > 20
    assert (gates["p95"]["verdict"], gates["p95"]["value"]) == ("fail", None)
    assert gates["p95"]["reason"] == "no successful requests in the window"
    assert (gates["rps"]["verdict"], gates["rps"]["value"]) == ("fail", 0)
    assert done.returncode == 1, done.stdout + done.stderr


def test_a_dead_target_with_outcome_all_measures_every_request(refused):
    _, run_dir, gates = refused
    aggregated = next(r for r in csv_rows(run_dir / "stats.csv") if r["Name"] == "Aggregated")
    assert gates["p95_all"]["verdict"] == "pass" and gates["p95_all"]["value"] < 1000
    assert gates["rps_all"]["verdict"] == "pass"
    # every request over the gate's own window; Locust's Requests/s divides by its own span (first
    # stats reset to last request), which starts up to a second earlier on a busy machine
    window = gates["rps_all"]["window"]
    counted = gates["rps_all"]["value"] * (window["end"] - window["start"])
    assert counted == pytest.approx(int(aggregated["Request Count"]), rel=0.01)


def test_auto_on_prometheus_3_scrapes_native_histograms_one_series_per_name_and_method(spread_native):
    _, run_dir, _ = spread_native
    config = yaml.safe_load((run_dir / "prometheus.yml").read_text())
    [exporter] = [job for job in config["scrape_configs"] if job["job_name"] == EXPORTER_JOB]
    assert exporter["scrape_native_histograms"] is True
    with using(prometheus_build(3)), served_run(run_dir) as client:
        series = client.get(
            "/api/v1/series",
            params={"match[]": '{__name__=~"locust_(failed_)?response_time_seconds.*", name="spread"}'},
        ).json()["data"]
    # latency, plus failed latency only for a name that failed: "spread" never did
    assert [s["__name__"] for s in series] == ["locust_response_time_seconds"]


@pytest.mark.parametrize(("gate", "column"), [("p50", "50%"), ("p95", "95%"), ("p99", "99%")])
def test_native_latency_gates_within_2_percent_of_locusts_percentiles(spread_native, gate, column):
    """The issue's bound for native histograms, on a 5-500 ms spread (schema 6: 1.09 % buckets)."""
    _, run_dir, gates = spread_native
    locust_ms = float(next(r for r in csv_rows(run_dir / "stats.csv") if r["Name"] == "spread")[column])
    value = gates[gate]["value"]
    assert abs(value - locust_ms) <= 0.02 * locust_ms, (gate, value, locust_ms)
