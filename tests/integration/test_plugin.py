"""The plugin as pods run it (plain `locust` commands, no controller): metrics served, SIGTERM graceful."""

from __future__ import annotations

import csv
import json
import os
import signal
import sys

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from controller.locustfile_check import locustfile_arg
from controller.processes import ManagedProcess, free_port
from tests.support import DEMO_LOCUSTFILE, demo_server, wait_for

pytestmark = pytest.mark.integration


def exporter_requests(url: str) -> float:
    try:
        text = httpx.get(url, timeout=2).text
    except httpx.HTTPError:
        return 0.0
    return sum(
        s.value
        for f in text_string_to_metric_families(text)
        for s in f.samples
        if s.name == "locust_requests_total"
    )


def test_master_stops_gracefully_on_sigterm_during_a_shape_test(tmp_path):
    exporter_port, master_port = free_port(), free_port()
    env = dict(
        os.environ,
        PYTHONUNBUFFERED="1",
        LOADCTL_RUN_ID="pod",
        LOADCTL_EXPORTER_HOST="127.0.0.1",
        LOADCTL_EXPORTER_PORT=str(exporter_port),
        LOADCTL_FINAL_SCRAPE_TIMEOUT="1",
        LOADCTL_STAGES=json.dumps([{"duration": 120, "users": 4, "spawn_rate": 4, "phase": "steady"}]),
    )
    files = locustfile_arg(DEMO_LOCUSTFILE)
    with demo_server(tmp_path / "target.log") as target:
        base = [sys.executable, "-m", "locust", "-f", files, "--host", target]
        master = ManagedProcess(
            "master",
            [
                *base,
                "--master",
                "--headless",
                "--expect-workers",
                "1",
                "--master-bind-host",
                "127.0.0.1",
                "--master-bind-port",
                str(master_port),
                "--csv",
                str(tmp_path / "pod"),
            ],
            log_path=tmp_path / "master.log",
            env=env,
            cwd=tmp_path,
        )
        worker = ManagedProcess(
            "worker",
            [*base, "--worker", "--master-port", str(master_port)],
            log_path=tmp_path / "worker.log",
            env=env,
            cwd=tmp_path,
        )
        try:
            url = f"http://127.0.0.1:{exporter_port}/metrics"
            assert wait_for(lambda: exporter_requests(url) > 20, timeout=60), master.log_tail()
            master.send_signal(signal.SIGTERM)  # what Kubernetes sends when the pod is deleted
            code = master.wait(30)
            assert code is not None, "master did not stop after SIGTERM"
            assert worker.wait(15) is not None, "worker did not follow the master's quit"
        finally:
            master.stop(timeout=5)
            worker.stop(timeout=5)
    with open(tmp_path / "pod_stats.csv", newline="") as handle:
        aggregated = next(r for r in csv.DictReader(handle) if r["Name"] == "Aggregated")
    assert int(aggregated["Request Count"]) > 20  # final stats were collected and written
    assert "Shutting down" in (tmp_path / "master.log").read_text()
