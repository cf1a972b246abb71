"""The local backend: Prometheus, the probes (if any), a Locust master and N workers on this machine."""

from __future__ import annotations

import os
import re
import signal
import sys
from pathlib import Path

import httpx

from controller.backends.base import BackendEvents, RecordFields
from controller.backends.options import LocalOptions
from controller.errors import InfraError
from controller.latency import latency_layout
from controller.models import RunPlan, Verdict
from controller.processes import ManagedProcess, free_port, wait_until
from controller.prom.binaries import binary_version, find_prometheus
from controller.prom.client import wait_for_scrapes_after
from controller.prom.config import SCRAPE_INTERVAL_S
from controller.prom.server import run_prometheus
from controller.rundir import RunDir, write_atomic
from locust_workers.contract import LocustCommand, locustfile_arg, probes_args, run_env
from locust_workers.probes.config import dump_config


def locust_env(plan: RunPlan, *, exporter_port: int, base: dict[str, str] | None = None) -> dict[str, str]:
    """Environment for every Locust process of the run (see locust_workers/plugin.py)."""
    env = dict(os.environ if base is None else base)
    env.update(
        run_env(
            run_id=plan.run_id,
            profile=plan.profile,
            stages=plan.stages,
            user_weights=plan.user_weights,
            exporter_host="127.0.0.1",
            exporter_port=exporter_port,
            latency_buckets=plan.latency_buckets,
            # the master publishes them (loadctl_gate_threshold): the dashboards' lines are this run's
            gate_thresholds=plan.gate_thresholds,
        )
    )
    return env


class LocalBackend:
    name = "local"

    def __init__(self, plan: RunPlan, options: LocalOptions, events: BackendEvents) -> None:
        # `auto` becomes native histograms when this run's Prometheus is 3.x (the one it starts)
        version = binary_version(find_prometheus())
        latency = latency_layout(plan.latency_buckets, version[0] if version else None)
        self.plan = plan = plan.model_copy(update={"latency_buckets": latency})
        self.options = options
        self.events = events  # nothing to tell yet: the run's own lines say it all
        self.run_dir = plan.run_dir
        self.folder = RunDir(plan.run_dir)
        self.exporter_port = free_port()
        self.master_port = free_port()
        self.probes_port = free_port() if plan.probes else None
        self.prometheus = run_prometheus(
            run_id=plan.run_id,
            run_dir=self.run_dir,
            exporter_address=f"127.0.0.1:{self.exporter_port}",
            targets=plan.scrape_targets,
            probes_address=f"127.0.0.1:{self.probes_port}" if self.probes_port else None,
            latency_buckets=latency,
        )
        self.master: ManagedProcess | None = None
        self.workers: list[ManagedProcess] = []
        self.probes: ManagedProcess | None = None

    @property
    def prometheus_url(self) -> str:
        return self.prometheus.url

    @property
    def scrape_interval_s(self) -> float:
        return SCRAPE_INTERVAL_S

    @property
    def record_fields(self) -> RecordFields:
        written = self.folder.stats_csv.exists()
        return {"stats_source": "locust" if written else None, "release": None, "namespace": None}

    @property
    def exporter_url(self) -> str:
        return f"http://127.0.0.1:{self.exporter_port}/metrics"

    def deploy(self) -> None:
        self.run_dir.mkdir(parents=True, exist_ok=True)
        self.prometheus.start()
        if self.probes_port is not None:
            self._start_probes(self.probes_port)
        env = locust_env(self.plan, exporter_port=self.exporter_port)
        shape = self.plan.shape
        command = LocustCommand(
            locustfile=locustfile_arg(self.plan.locustfile_arg),
            host=self.plan.host,
            workers=self.plan.workers,
            master_host="127.0.0.1",
            bind_host="127.0.0.1",
            master_port=self.master_port,
            csv_prefix=str(self.folder.locust_csv_prefix),
            html_path=str(self.folder.locust_html),
            extra_args=self.plan.user_locust_args,
            user_classes=self.plan.user_classes,
            # -u/-r/-t for the locustfile's own shape, as the user gave them
            users=shape.users if shape else None,
            spawn_rate=shape.spawn_rate if shape else None,
            run_time_s=shape.run_time_s if shape else None,
        )
        locust = [sys.executable, "-m", "locust"]
        self.master = ManagedProcess(
            "locust master",
            [*locust, *command.master_args()],
            log_path=self.folder.master_log,
            env=env,
            # The user's folder, as plain `locust` runs: its locust.conf, pyproject.toml, relative
            # data files and sibling modules. Every path loadctl passes is absolute.
            cwd=self.plan.workdir,
        )
        for index in range(self.plan.workers):
            self.workers.append(
                ManagedProcess(
                    f"locust worker {index}",
                    [*locust, *command.worker_args()],
                    log_path=self.folder.worker_log(index),
                    env=env,
                    cwd=self.plan.workdir,
                )
            )
        self._wait_for_exporter(self.master)

    def _wait_for_exporter(self, master: ManagedProcess) -> None:
        with httpx.Client(timeout=2.0) as http:
            ready = wait_until(lambda: _answers(http, self.exporter_url), timeout=60, watch=[master])
        if not ready:
            raise InfraError(f"locust master exporter not serving after 60s: {master.log_tail()}")

    def _start_probes(self, port: int) -> None:
        # Their own process, never inside Locust's gevent loop; credentials reach it only through
        # the environment (the config names variables), so probes.json is safe to keep.
        config = write_atomic(self.folder.probes_config, text=dump_config(self.plan.probes))
        argv = probes_args(config=str(config), port=port, bind_host="127.0.0.1", run_id=self.plan.run_id)
        self.probes = ManagedProcess(
            "probes",
            [sys.executable, *argv],
            log_path=self.folder.probes_log,
            env={**os.environ, "PYTHONUNBUFFERED": "1"},
            cwd=self.run_dir,
        )
        url = f"http://127.0.0.1:{port}/metrics"
        with httpx.Client(timeout=2.0) as http:
            ready = wait_until(lambda: _answers(http, url), timeout=30, watch=[self.probes])
        if not ready:
            raise InfraError(f"probes not serving after 30s: {self.probes.log_tail()}")

    def health(self) -> str | None:
        if self.master is None:
            return "not deployed"
        if self.master.poll() is not None:
            return None  # the master ending is the normal end of the load
        # A worker quits with 0 when the master tells it to (the test ended); any other exit while
        # the master runs loses that worker's users, which Locust does not move to the others.
        for index, worker in enumerate(self.workers):
            code = worker.poll()
            if code is not None and code != 0:
                if code < 0:  # killed: its log ends mid-run and says nothing about why
                    how = f"killed by {_signal_name(-code)}"
                    return f"locust worker {index} of {len(self.workers)} exited ({how})"
                return (
                    f"locust worker {index} of {len(self.workers)} exited (exit code {code}): "
                    f"{worker.log_tail(200) or 'no output'}"
                )
        return None

    def load_finished(self) -> bool:
        return self.master is not None and self.master.poll() is not None

    def stop_load(self) -> None:
        # SIGINT makes the master stop the workers, take their final stats and write its CSVs; its
        # exporter then waits for one more scrape (plugin.py) before the process exits. (SIGINT, not
        # SIGTERM: Locust handles SIGINT gracefully at every point of a shape test.)
        if self.master is not None and self.master.poll() is None:
            self.master.send_signal(signal.SIGINT)
            self.master.wait(15.0)

    def wait_final_scrape(self, client: httpx.Client, *, moment: float, timeout: float) -> bool:
        # every target of this private Prometheus (the exporter and the profile's own targets)
        return wait_for_scrapes_after(client=client, moment=moment, timeout=timeout)

    def teardown(self, *, verdict: Verdict | None = None) -> None:
        if self.master is not None:
            self.master.stop(timeout=10.0)
        for worker in self.workers:
            worker.stop(timeout=5.0)
        if self.probes is not None:  # after the final scrape, so the last samples are in the tsdb
            self.probes.stop(timeout=10.0)
        self.prometheus.stop()

    def collect(self) -> tuple[str, ...]:
        self.folder.keep_locust_csvs()
        return tuple(sorted(p.name for p in self.run_dir.iterdir()))

    @property
    def locust_exit_code(self) -> int | None:
        return None if self.master is None else self.master.poll()

    def locust_warnings(self) -> tuple[str, ...]:
        logs = [self.folder.master_log, *(self.folder.worker_log(i) for i in range(self.plan.workers))]
        return locust_log_warnings(logs)


MAX_WARNINGS = 20
# Locust's log lines: "[2026-11-26 09:00:00,123] host/WARNING/locust.runners: message"
_LOG_LEVEL = re.compile(r"^\[[^\]]*\] [^/\s]*/(WARNING|ERROR|CRITICAL)/([\w.]+): (.*)$")


def locust_log_warnings(paths: list[Path]) -> tuple[str, ...]:
    """Distinct WARNING/ERROR lines of Locust's logs, first MAX_WARNINGS, each cut to 300 chars."""
    found: dict[str, None] = {}
    for path in paths:
        try:
            lines = path.read_text(encoding="utf-8", errors="replace").splitlines()
        except OSError:
            continue
        for line in lines:
            match = _LOG_LEVEL.match(line)
            if match:
                found.setdefault(f"{path.stem}: {match.group(1)} {match.group(2)}: {match.group(3)[:300]}")
            if len(found) >= MAX_WARNINGS:
                return tuple(found)
    return tuple(found)


def _signal_name(signum: int) -> str:
    try:
        return signal.Signals(signum).name
    except ValueError:
        return f"signal {signum}"


def _answers(http: httpx.Client, url: str) -> bool:
    try:
        return http.get(url).status_code == 200
    except httpx.HTTPError:
        return False
