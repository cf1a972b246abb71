"""A live-abort gate stops a real run early; run.json records the gate; exit code 1."""

from __future__ import annotations

import json

import pytest

from tests.support import DEMO_LOCUSTFILE, demo_server, run_loadctl

pytestmark = pytest.mark.integration

GATES = """version: 1
name: abort
window: run
abort_grace: 10s
gates:
  - {name: impossible_throughput, metric: rps, min: 100000, abort: true}
  - {name: search_p95, metric: latency_p95_ms, labels: 'name="recipes_search"', max: 60000}
"""


def test_abort_gate_stops_the_run_early(tmp_path):
    gates = tmp_path / "gates.yaml"
    gates.write_text(GATES)
    with demo_server(tmp_path / "target.log") as target:
        done = run_loadctl(
            [
                "run",
                "-f",
                str(DEMO_LOCUSTFILE),
                "--host",
                target,
                "-u",
                "5",
                "-r",
                "5",
                "-t",
                "3m",
                "--workers",
                "1",
                "--gates",
                str(gates),
                "--run-id",
                "aborted",
                "--results-dir",
                str(tmp_path / "r"),
            ],
            timeout=170,
        )
    assert done.returncode == 1, done.stdout + done.stderr
    run_dir = tmp_path / "r" / "aborted"
    record = json.loads((run_dir / "run.json").read_text())
    assert record["verdict"] == "fail" and record["aborted_by"] == "impossible_throughput"
    assert "aborted by gate impossible_throughput" in record["reason"]
    # stopped long before the planned 3 minutes: grace 10 s plus a check every 5 s
    assert record["ended_at"] - record["started_at"] < 60
    report = {g["name"]: g for g in json.loads((run_dir / "gates.json").read_text())["gates"]}
    # measured (not "no data"), and far below the impossible minimum
    assert report["impossible_throughput"]["verdict"] == "fail"
    assert report["impossible_throughput"]["value"] is not None
    assert report["impossible_throughput"]["value"] < 100000
    assert report["search_p95"]["verdict"] == "pass"
    assert "aborted by gate impossible_throughput" in done.stdout
