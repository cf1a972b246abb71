"""The `status` label through real Locust: a worker's errors reach the master as repr strings.

A gRPC-style client raises errors whose repr starts with '<' (grpc's _InactiveRpcError) or is
object's own '<module.Class object at 0x...>'; the master's exporter must label them by class.
"""

from __future__ import annotations

import csv
import os
import sys
from pathlib import Path

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from controller.processes import ManagedProcess, free_port
from locust_workers.contract import LocustCommand, StageRow, locustfile_arg, run_env
from tests.support import wait_for

pytestmark = pytest.mark.integration

RPC_LOCUSTFILE = Path(__file__).parent / "locustfiles" / "rpc_errors.py"


def scrape(url: str) -> dict[str, list]:
    try:
        text = httpx.get(url, timeout=2).text
    except httpx.HTTPError:
        return {}
    samples: dict[str, list] = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            samples.setdefault(sample.name, []).append(sample)
    return samples


def failures_by_status(samples: dict[str, list]) -> dict[tuple[str, str], float]:
    return {
        (s.labels["name"], s.labels["status"]): s.value
        for s in samples.get("locust_request_failures_total", [])
    }


def test_master_labels_failures_by_the_class_of_a_workers_exception(tmp_path):
    exporter_port, master_port, closed_port = free_port(), free_port(), free_port()
    env = dict(
        os.environ,
        **run_env(
            run_id="labels",
            profile="labels",
            stages=[StageRow(duration=6, users=2, spawn_rate=2, phase="steady")],
            user_weights={},
            exporter_host="127.0.0.1",
            exporter_port=exporter_port,
            final_scrape_timeout_s=1,
        ),
    )
    command = LocustCommand(
        locustfile=locustfile_arg(RPC_LOCUSTFILE),
        host=f"rpc://127.0.0.1:{closed_port}",
        workers=1,
        master_host="127.0.0.1",
        bind_host="127.0.0.1",
        master_port=master_port,
        csv_prefix=str(tmp_path / "rpc"),
        html_path=str(tmp_path / "rpc.html"),
    )
    locust = [sys.executable, "-m", "locust"]
    master = ManagedProcess(
        "master", [*locust, *command.master_args()], log_path=tmp_path / "master.log", env=env, cwd=tmp_path
    )
    worker = ManagedProcess(
        "worker", [*locust, *command.worker_args()], log_path=tmp_path / "worker.log", env=env, cwd=tmp_path
    )
    url = f"http://127.0.0.1:{exporter_port}/metrics"
    try:

        def both_tasks_failed_a_few_times() -> bool:
            failures = failures_by_status(scrape(url))
            return len(failures) == 2 and min(failures.values()) >= 5

        assert wait_for(both_tasks_failed_a_few_times, timeout=40), master.log_tail()
        samples = scrape(url)
        assert master.wait(40) is not None, "the 6-s run did not end"
    finally:
        master.stop(timeout=5)
        worker.stop(timeout=5)

    failures = failures_by_status(samples)
    assert set(failures) == {("SayHello", "_InactiveRpcError"), ("SayGoodbye", "OpaqueClientError")}
    requests = sum(s.value for s in samples["locust_requests_total"])
    assert sum(failures.values()) == requests  # every call failed, and every failure has its class

    # Locust's own record of the same errors: what the master held was the worker's repr string
    with open(tmp_path / "rpc_failures.csv", newline="") as handle:
        errors = {row["Name"]: row["Error"] for row in csv.DictReader(handle)}
    assert errors["SayHello"].startswith("<_InactiveRpcError of RPC"), errors
    assert errors["SayGoodbye"].startswith("<rpc_errors.OpaqueClientError object at 0x"), errors
