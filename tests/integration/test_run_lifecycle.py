"""runs.execute driven in-process by a fake Backend, against a real Prometheus.

The generator is fake (a collector whose series the test scripts), everything else is real: the
Prometheus server scraping it, runs.follow/finish, verdict.decide, the results folder. Each case
is one way a run ends; teardown must run exactly once on every one of them.
"""

from __future__ import annotations

import io
import os
import signal
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any
from wsgiref.simple_server import WSGIRequestHandler, make_server

import httpx
import pytest
from prometheus_client import CollectorRegistry, make_wsgi_app
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from rich.console import Console

from controller.backends.base import RecordFields
from controller.errors import InfraError
from controller.models import RunPlan, Stage
from controller.processes import free_port
from controller.prom.client import wait_for_scrapes_after
from controller.prom.server import run_prometheus
from controller.runs import execute
from tests.support import REPO_ROOT

pytestmark = pytest.mark.integration

LOCUSTFILE = REPO_ROOT / "tests" / "integration" / "locustfiles" / "faults.py"
STATS_HEADER = "Type,Name,Request Count,Failure Count\n"


class FakeGenerator:
    """The exporter's series for a run whose numbers the test controls (2 workers, 10 rps)."""

    def __init__(self, run_id: str) -> None:
        self.run_id = run_id
        self.started: float | None = None
        self.stopped: float | None = None
        self.rps = 10.0
        self.serving = True

    def requests(self) -> int:
        if self.started is None:
            return 0
        return int(self.rps * ((self.stopped or time.time()) - self.started))

    def collect(self) -> Iterator[Any]:
        if not self.serving:
            raise RuntimeError("the fake master is dead")  # makes the scrape fail, like a dead exporter
        run = [self.run_id]
        requests = CounterMetricFamily("locust_requests", "", labels=["run_id", "name", "method"])
        requests.add_metric([*run, "search", "GET"], self.requests())
        yield requests
        users = GaugeMetricFamily("locust_users", "", labels=["run_id"])
        users.add_metric(run, 4 if self.started and not self.stopped else 0)
        yield users
        workers = GaugeMetricFamily("locust_workers", "", labels=["run_id", "state"])
        workers.add_metric([*run, "running"], 2)
        yield workers
        info = GaugeMetricFamily("locust_run_info", "", labels=["run_id", "profile", "phase"])
        info.add_metric([*run, "p", "steady" if self.started and not self.stopped else "stopped"], 1)
        yield info
        if self.started is not None:
            stages = GaugeMetricFamily(
                "locust_stage_start_timestamp_seconds", "", labels=["run_id", "stage", "phase"]
            )
            stages.add_metric([*run, "0", "steady"], self.started)
            yield stages
            for name, value in (("start", self.started), ("stop", self.stopped)):
                if value is not None:
                    family = GaugeMetricFamily(f"locust_test_{name}_timestamp_seconds", "", labels=["run_id"])
                    family.add_metric(run, value)
                    yield family


class _Quiet(WSGIRequestHandler):
    def log_message(self, *_args: Any) -> None:
        pass


class FakeBackend:
    """Backend protocol over the fake generator; `script(backend, elapsed)` plays the run's events."""

    name = "fake"

    def __init__(
        self, plan: RunPlan, script: Callable[[FakeBackend, float], None], *, fail_deploy: bool = False
    ):
        self.plan = plan
        self.script = script
        self.fail_deploy = fail_deploy
        self.generator = FakeGenerator(plan.run_id)
        self.problem: str | None = None
        self.finished = False
        self.exit_code: int | None = None
        self.teardowns: list[str | None] = []
        self.stop_load_calls = 0
        self.deployed_at = 0.0
        registry = CollectorRegistry(auto_describe=False)
        registry.register(self.generator)
        self.port = free_port()
        self.server = make_server("127.0.0.1", self.port, make_wsgi_app(registry), handler_class=_Quiet)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        self.prometheus = run_prometheus(
            run_id=plan.run_id,
            run_dir=plan.run_dir,
            exporter_address=f"127.0.0.1:{self.port}",
            targets=(),
            probes_address=None,
            latency_buckets="standard",  # the classic buckets this test serves
        )

    @property
    def prometheus_url(self) -> str:
        return self.prometheus.url

    @property
    def scrape_interval_s(self) -> float:
        return 1.0

    def deploy(self) -> None:
        self.plan.run_dir.mkdir(parents=True, exist_ok=True)
        self.prometheus.start()
        if self.fail_deploy:
            raise InfraError("the fake master would not start")
        self.deployed_at = time.monotonic()
        self.generator.started = time.time()

    def health(self) -> str | None:
        self.script(self, time.monotonic() - self.deployed_at)
        return self.problem

    def load_finished(self) -> bool:
        return self.finished

    def stop_load(self) -> None:
        self.stop_load_calls += 1
        if self.generator.serving and self.generator.stopped is None and self.generator.started:
            self.generator.stopped = time.time()
            self.exit_code = 0 if self.exit_code is None else self.exit_code

    def wait_final_scrape(self, client: httpx.Client, *, moment: float, timeout: float) -> bool:
        return wait_for_scrapes_after(client=client, moment=moment, timeout=timeout)

    def teardown(self, *, verdict: str | None = None) -> None:
        self.teardowns.append(verdict)
        self.prometheus.stop()
        self.server.shutdown()
        self.server.server_close()

    def collect(self) -> tuple[str, ...]:
        requests = self.generator.requests()
        (self.plan.run_dir / "stats.csv").write_text(f"{STATS_HEADER},Aggregated,{requests},0\n")
        return ("stats.csv",)

    @property
    def record_fields(self) -> RecordFields:
        return {"stats_source": None, "release": None, "namespace": None}

    @property
    def locust_exit_code(self) -> int | None:
        return self.exit_code

    def locust_warnings(self) -> tuple[str, ...]:
        return ()


def plan(tmp_path: Path, *, seconds: float = 8, gates: Path | None = None) -> RunPlan:
    return RunPlan(
        run_id="fake",
        profile="fake",
        locustfile=LOCUSTFILE,
        host="http://127.0.0.1:9",
        stages=(Stage(duration=seconds, users=4, spawn_rate=100, phase="steady"),),
        workers=2,
        gates=gates,
        results_dir=tmp_path / "results",
    )


def run(backend: FakeBackend):
    return execute(backend.plan, backend=backend, console=Console(file=io.StringIO()))


def completes(backend: FakeBackend, elapsed: float) -> None:
    if elapsed >= backend.plan.duration and not backend.finished:  # the stage table ran out
        backend.stop_load()
        backend.finished = True


def test_a_completed_run_without_gates_passes_on_zero_failures(tmp_path):
    backend = FakeBackend(plan(tmp_path), completes)
    record = run(backend)
    assert (record.verdict, record.exit_code) == ("pass", 0), record.reason
    assert record.requests and record.requests > 50
    assert backend.teardowns == ["pass"]


def test_interrupt(tmp_path):
    def interrupt(backend: FakeBackend, elapsed: float) -> None:
        if elapsed >= 4:
            os.kill(os.getpid(), signal.SIGINT)

    backend = FakeBackend(plan(tmp_path), interrupt)
    record = run(backend)
    assert (record.verdict, record.exit_code) == ("interrupted", 130)
    assert backend.stop_load_calls == 1 and len(backend.teardowns) == 1


def test_master_death(tmp_path):
    def die(backend: FakeBackend, elapsed: float) -> None:
        if elapsed >= 6:
            backend.generator.serving = False  # no stop time ever reaches Prometheus
            backend.exit_code = -9
            backend.finished = True

    backend = FakeBackend(plan(tmp_path, seconds=30), die)
    record = run(backend)
    assert (record.verdict, record.exit_code) == ("inconclusive", 3), record.reason
    assert "killed by SIGKILL" in (record.reason or "")
    # the run ends where the exporter was last seen, not when loadctl noticed
    assert record.ended_at is not None and record.started_at is not None
    assert 4 <= record.ended_at - record.started_at <= 9
    assert len(backend.teardowns) == 1


def test_worker_loss(tmp_path):
    def lose(backend: FakeBackend, elapsed: float) -> None:
        if elapsed >= 5:
            backend.problem = "locust worker 1 of 2 exited (killed by SIGKILL)"

    backend = FakeBackend(plan(tmp_path, seconds=30), lose)
    started = time.monotonic()
    record = run(backend)
    assert time.monotonic() - started < 25  # the load was stopped, not run to the end of 30 s
    assert (record.verdict, record.exit_code) == ("inconclusive", 3)
    assert record.generator_problems == (
        "locust worker 1 of 2 exited (killed by SIGKILL) (the load was stopped)",
    )
    assert backend.stop_load_calls == 1 and len(backend.teardowns) == 1


def test_prometheus_loss(tmp_path):
    def kill_prometheus(backend: FakeBackend, elapsed: float) -> None:
        process = backend.prometheus.process
        if elapsed >= 4 and process is not None and process.poll() is None:
            process.send_signal(signal.SIGKILL)
            backend.killed_at = time.monotonic()  # type: ignore[attr-defined]

    backend = FakeBackend(plan(tmp_path, seconds=60), kill_prometheus)
    record = run(backend)
    assert (record.verdict, record.exit_code) == ("inconclusive", 3)
    assert "Prometheus" in (record.reason or "") and "stopped answering" in (record.reason or "")
    assert backend.stop_load_calls == 1 and len(backend.teardowns) == 1


def test_abort_by_a_live_gate(tmp_path):
    gates = tmp_path / "gates.yaml"
    gates.write_text(
        "version: 1\nname: live\nwindow: run\nabort_grace: 1s\n"
        "gates:\n  - {name: rps_floor, metric: rps, min: 1000, abort: true}\n"
    )
    backend = FakeBackend(plan(tmp_path, seconds=60, gates=gates), lambda b, e: None)
    record = run(backend)
    assert (record.verdict, record.exit_code) == ("fail", 1), record.reason
    assert record.aborted_by == "rps_floor" and backend.teardowns == ["fail"]


def test_teardown_runs_when_deploy_fails(tmp_path):
    backend = FakeBackend(plan(tmp_path), completes, fail_deploy=True)
    record = run(backend)
    assert (record.verdict, record.exit_code) == ("error", 3)
    assert "would not start" in (record.reason or "")
    assert len(backend.teardowns) == 1 and (tmp_path / "results" / "fake" / "run.json").exists()
