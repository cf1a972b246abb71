"""A local Prometheus server: find the binary, write its config, start it, wait until ready, stop it."""

from __future__ import annotations

import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx

from controller.errors import InfraError, InputError
from controller.models import ScrapeTarget
from controller.processes import ManagedProcess, free_port, wait_until
from controller.prom import client as prom
from controller.prom.binaries import find_prometheus
from controller.prom.config import RULES_FILE_NAME, SCRAPE_INTERVAL_S, dump, rules_text, scrape_config
from controller.prom.tsdb_copy import copy_tsdb, tsdb_in_use
from controller.rundir import RunDir, write_atomic
from locust_workers.contract import NATIVE_LATENCY


class PrometheusServer:
    """Prometheus on 127.0.0.1 with its TSDB in `data_dir` (kept after the run for later queries)."""

    def __init__(
        self,
        *,
        config: dict[str, Any],
        config_path: Path,
        data_dir: Path,
        log_path: Path,
        port: int | None = None,
        binary: str | None = None,
        rules: str | None = None,
    ) -> None:
        """`rules`: the text written to RULES_FILE_NAME when the config's rule_files names it;
        default rules_text() (windows for SCRAPE_INTERVAL_S, the interval scrape_config defaults to)."""
        self.binary = binary or find_prometheus()
        self.data_dir = data_dir
        self.config_path = config_path
        self.log_path = log_path
        self.port = port or free_port()
        self.config = config
        self.rules = rules
        self.process: ManagedProcess | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def client(self, timeout: float = 10.0) -> httpx.Client:
        return httpx.Client(base_url=self.url, timeout=timeout)

    def start(self, *, ready_timeout: float = 30.0, port_attempts: int = 3) -> None:
        """Start and wait until ready. A free port can be taken by another process between
        free_port() and Prometheus binding it; then it retries on a new free port."""
        for attempt in range(port_attempts):
            try:
                self._start_once(ready_timeout)
                return
            except InfraError:
                log = self.process.log_tail(2000) if self.process is not None else ""
                if "address already in use" not in log or attempt == port_attempts - 1:
                    raise
                self.port = free_port()

    def _start_once(self, ready_timeout: float) -> None:
        self.data_dir.mkdir(parents=True, exist_ok=True)
        if RULES_FILE_NAME in self.config.get("rule_files", ()):
            rules = self.rules if self.rules is not None else rules_text(SCRAPE_INTERVAL_S)
            write_atomic(self.config_path.with_name(RULES_FILE_NAME), text=rules)
        write_atomic(self.config_path, text=dump(self.config))
        argv = [
            self.binary,
            f"--config.file={self.config_path}",
            f"--storage.tsdb.path={self.data_dir}",
            # a kept run must stay queryable however old it gets
            "--storage.tsdb.retention.time=100y",
            f"--web.listen-address=127.0.0.1:{self.port}",
            "--web.enable-admin-api",
        ]
        self.process = ManagedProcess("prometheus", argv, log_path=self.log_path)
        with self.client(timeout=2.0) as http:
            ready = wait_until(
                lambda: prom.is_ready(client=http), timeout=ready_timeout, watch=[self.process]
            )
        if not ready:
            raise InfraError(f"prometheus not ready after {ready_timeout:.0f}s: {self.process.log_tail()}")

    def stop(self) -> None:
        if self.process is not None:
            self.process.stop(timeout=10.0)


def run_prometheus(
    *,
    run_id: str,
    run_dir: Path,
    exporter_address: str,
    targets: tuple[ScrapeTarget, ...],
    probes_address: str | None,
    latency_buckets: str,
) -> PrometheusServer:
    """A run's private Prometheus (not started): scrapes the exporter, the probes and the profile's
    targets every SCRAPE_INTERVAL_S, keeps its config, TSDB and log in the run directory.

    The one recipe for both backends: a local run, and a k8s run following its master through a
    port-forward when no cluster Prometheus is given.
    """
    folder = RunDir(run_dir)
    return PrometheusServer(
        config=scrape_config(
            run_id=run_id,
            exporter_address=exporter_address,
            targets=targets,
            probes_address=probes_address,
            native_histograms=latency_buckets == NATIVE_LATENCY,
        ),
        config_path=folder.prometheus_config,
        data_dir=folder.tsdb,
        log_path=folder.prometheus_log,
    )


@contextmanager
def serve_run_tsdb(
    run_dir: Path, *, port: int | None = None, label: str = "serve"
) -> Iterator[PrometheusServer]:
    """A finished run's TSDB behind a real Prometheus (nothing scraped, queries only), stopped on exit.

    The run's own prometheus.yml records what was scraped, so serving gets a config of its own.
    """
    from controller.prom.config import empty_config

    folder = RunDir(run_dir)
    if not folder.tsdb.is_dir():
        raise InputError(
            f"no {folder.tsdb.name}/ directory: not a loadctl run directory", source=str(run_dir)
        )
    config_path, log_path = folder.served_prometheus(label)
    with tempfile.TemporaryDirectory(prefix="loadctl-tsdb-") as scratch:
        data_dir = folder.tsdb
        if tsdb_in_use(data_dir):  # served elsewhere right now (Prometheus 3 locks it): serve a copy
            data_dir = copy_tsdb(data_dir, Path(scratch) / "tsdb")
        server = PrometheusServer(
            config=empty_config(), config_path=config_path, data_dir=data_dir, log_path=log_path, port=port
        )
        try:
            server.start()
            yield server
        finally:
            server.stop()
