"""A master as pods run it (the contract's command lines, a real worker, the demo target) serves
Locust's own CSVs and HTML after the load until they are fetched, or until its timeout."""

from __future__ import annotations

import csv
import http.client
import io
import os
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from controller.processes import ManagedProcess, free_port
from locust_workers.contract import (
    LOCUST_FILE_NAMES,
    LOCUST_FILES_PATH,
    LocustCommand,
    StageRow,
    locustfile_arg,
    run_env,
)
from tests.support import DEMO_LOCUSTFILE, demo_server, wait_for

pytestmark = pytest.mark.integration

LOAD_S = 4


@dataclass
class Master:
    process: ManagedProcess
    worker: ManagedProcess
    url: str  # the exporter's
    csv_prefix: Path


@contextmanager
def pod_like_master(tmp_path: Path, *, files_timeout_s: float) -> Iterator[Master]:
    exporter_port, master_port = free_port(), free_port()
    env = dict(
        os.environ,
        **run_env(
            run_id="files",
            profile="files",
            stages=[StageRow(duration=LOAD_S, users=4, spawn_rate=4, phase="steady")],
            user_weights={},
            exporter_host="127.0.0.1",
            exporter_port=exporter_port,
            final_scrape_timeout_s=0,  # no Prometheus here: only the files hold the master
            locust_files_timeout_s=files_timeout_s,
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
        master, worker = (
            ManagedProcess(role, [*locust, *args], log_path=tmp_path / f"{role}.log", env=env, cwd=tmp_path)
            for role, args in (("master", command.master_args()), ("worker", command.worker_args()))
        )
        try:
            yield Master(master, worker, f"http://127.0.0.1:{exporter_port}", tmp_path / "pod")
        finally:
            master.stop(timeout=5)
            worker.stop(timeout=5)


def status_of(url: str, name: str) -> int:
    try:
        return httpx.get(f"{url}{LOCUST_FILES_PATH}{name}", timeout=2).status_code
    except httpx.HTTPError:
        return 0  # not listening yet


def raw_status(url: str, path: str) -> int:
    """The status of GET `path` sent as written (httpx would normalise `..` away)."""
    host, port = url.removeprefix("http://").split(":")
    connection = http.client.HTTPConnection(host, int(port), timeout=5)
    try:
        connection.request("GET", path)
        return connection.getresponse().status
    finally:
        connection.close()


HOSTILE = (
    f"{LOCUST_FILES_PATH}../metrics",
    f"{LOCUST_FILES_PATH}..%2fmetrics",
    f"{LOCUST_FILES_PATH}%2e%2e/{LOCUST_FILE_NAMES[0]}",
    f"{LOCUST_FILES_PATH}/etc/passwd",
    f"{LOCUST_FILES_PATH}/{LOCUST_FILE_NAMES[0]}",
    f"{LOCUST_FILES_PATH}stats_history.csv",
    f"{LOCUST_FILES_PATH}STATS.CSV",
    f"{LOCUST_FILES_PATH}{LOCUST_FILE_NAMES[0]}/..",
    LOCUST_FILES_PATH,
)


def aggregated(text: str) -> dict[str, str]:
    return next(r for r in csv.DictReader(io.StringIO(text)) if r["Name"] == "Aggregated")


def test_the_master_serves_locusts_files_after_the_load_and_exits_once_they_are_fetched(tmp_path):
    with pod_like_master(tmp_path, files_timeout_s=60) as master:
        listening = wait_for(lambda: status_of(master.url, "stats.csv") != 0, timeout=30)
        assert listening, master.process.log_tail()
        assert status_of(master.url, "stats.csv") == 503  # the load still runs: nothing final yet
        assert [raw_status(master.url, path) for path in HOSTILE] == [404] * len(HOSTILE)
        assert wait_for(lambda: status_of(master.url, "stats.csv") == 200, timeout=LOAD_S + 30)
        fetched = {n: httpx.get(f"{master.url}{LOCUST_FILES_PATH}{n}", timeout=5) for n in LOCUST_FILE_NAMES}
        # the master still holds: its timeout is a minute away and nobody said "done"
        time.sleep(2)
        assert master.process.poll() is None
        assert [raw_status(master.url, path) for path in HOSTILE] == [404] * len(HOSTILE)
        done_at = time.monotonic()
        assert httpx.post(f"{master.url}{LOCUST_FILES_PATH}", timeout=5).status_code == 204
        assert master.process.wait(15) == 0, master.process.log_tail()
        exit_after_done_s = time.monotonic() - done_at
    assert all(r.status_code == 200 for r in fetched.values()), {n: r.status_code for n, r in fetched.items()}
    stats = fetched["stats.csv"].text
    assert stats.startswith("Type,Name,Request Count,Failure Count,Median Response Time,")
    requests = int(aggregated(stats)["Request Count"])
    assert requests > 10
    assert fetched["failures.csv"].text.startswith("Method,Name,Error,Occurrences")
    assert fetched["exceptions.csv"].text.startswith("Count,Message,Traceback,Nodes")
    html = fetched["locust.html"]
    assert html.headers["content-type"].startswith("text/html")
    assert "<title>Locust</title>" in html.text and '"history"' in html.text
    assert f'"num_requests": {requests}' in html.text  # the same run's totals
    print(f"master exited {exit_after_done_s:.2f}s after the controller's POST")
    assert exit_after_done_s < 5


def test_the_master_waits_no_longer_than_its_timeout_for_a_fetch(tmp_path):
    timeout_s = 3
    with pod_like_master(tmp_path, files_timeout_s=timeout_s) as master:
        assert wait_for(lambda: status_of(master.url, "stats.csv") == 200, timeout=LOAD_S + 60)
        ready_at = time.monotonic()
        served = httpx.get(f"{master.url}{LOCUST_FILES_PATH}stats.csv", timeout=5).content
        assert master.process.wait(timeout_s + 15) == 0, master.process.log_tail()
        held_s = time.monotonic() - ready_at
        assert master.worker.wait(15) is not None
    print(f"master held {held_s:.2f}s with nobody fetching (timeout {timeout_s}s)")
    assert timeout_s - 1 < held_s < timeout_s + 3
    # what it served is Locust's own stats.csv of the run (its --csv file, final once Locust closed it)
    assert served == master.csv_prefix.with_name(f"{master.csv_prefix.name}_stats.csv").read_bytes()
    assert "Locust's files not fetched within 3s" in master.process.log_tail(20000)
