"""The plugin as pods run it (the contract's `locust` commands, no controller): metrics, graceful SIGTERM."""

from __future__ import annotations

import csv
import os
import signal
import sys

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from controller.processes import ManagedProcess, free_port
from locust_workers.contract import LocustCommand, StageRow, locustfile_arg, run_env
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
        **run_env(
            run_id="pod",
            profile="pod",
            stages=[StageRow(duration=120, users=4, spawn_rate=4, phase="steady")],
            user_weights={},
            exporter_host="127.0.0.1",
            exporter_port=exporter_port,
            final_scrape_timeout_s=1,
        ),
    )
    with demo_server(tmp_path / "target.log") as target:
        command = LocustCommand(
            locustfile=locustfile_arg(DEMO_LOCUSTFILE),
            host=target,
            workers=1,
            master_host="127.0.0.1",
            bind_host="127.0.0.1",
            master_port=master_port,
            csv_prefix=str(tmp_path / "pod"),
            html_path=str(tmp_path / "pod.html"),
        )
        locust = [sys.executable, "-m", "locust"]
        master = ManagedProcess(
            "master",
            [*locust, *command.master_args()],
            log_path=tmp_path / "master.log",
            env=env,
            cwd=tmp_path,
        )
        worker = ManagedProcess(
            "worker",
            [*locust, *command.worker_args()],
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
