"""Helpers shared by the integration tests: real processes, always stopped by PID."""

from __future__ import annotations

import functools
import os
import subprocess
import sys
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
import yaml

from controller.k8s.helm import find_tool
from controller.models import RunRecord
from controller.processes import ManagedProcess, free_port, wait_until
from controller.prom.server import PrometheusServer, serve_run_tsdb

REPO_ROOT = Path(__file__).resolve().parents[1]
LOADCTL = str(Path(sys.executable).parent / "loadctl")
DEMO_LOCUSTFILE = REPO_ROOT / "locust_workers" / "scenarios" / "demo.py"


def run_record(**fields: Any) -> RunRecord:
    """A run.json record for tests that need one without a run: neutral values, `fields` win."""
    base: dict[str, Any] = {
        "run_id": "r1",
        "profile": "test",
        "profile_file": None,
        "locustfile": "demo.py",
        "host": "http://127.0.0.1:1",
        "backend": "local",
        "workers": 1,
        "planned_duration_s": 60.0,
        "started_at": 1_764_000_000.0,
        "ended_at": 1_764_000_060.0,
        "phases": (),
        "verdict": "pass",
        "exit_code": 0,
        "loadctl_version": "0.1.0",
    }
    return RunRecord(**(base | fields))


def served_requests(target: str) -> float:
    """Load requests the demo target served: not Prometheus' scrapes, not health checks."""
    from prometheus_client.parser import text_string_to_metric_families

    text = httpx.get(f"{target}/metrics", timeout=5).text
    return sum(
        sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
        if sample.name == "demo_http_requests_total"
        and sample.labels.get("route") not in ("/metrics", "/health")
    )


def _healthy(url: str) -> bool:
    try:
        return httpx.get(url, timeout=1.0).status_code == 200
    except httpx.HTTPError:
        return False


@contextmanager
def demo_server(log_path: Path, *flags: str) -> Iterator[str]:
    """The demo target on a free loopback port; yields its base URL."""
    port = free_port()
    # Flags fully describe the server under test; stray DEMO_* settings must not leak in.
    env = {k: v for k, v in os.environ.items() if not k.startswith("DEMO_")}
    argv = [sys.executable, "-m", "examples.demo_target", "--host", "127.0.0.1", "--port", str(port), *flags]
    process = ManagedProcess("demo target", argv, log_path=log_path, env=env, cwd=REPO_ROOT)
    try:
        base_url = f"http://127.0.0.1:{port}"
        if not wait_until(lambda: _healthy(f"{base_url}/health"), timeout=15, watch=[process]):
            raise AssertionError(f"demo target did not become healthy: {process.log_tail()}")
        yield base_url
    finally:
        process.stop(timeout=10)


def run_loadctl(
    args: Sequence[str], *, cwd: Path = REPO_ROOT, timeout: float = 300, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [LOADCTL, *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=timeout,
        env=env,
        stdin=subprocess.DEVNULL,
    )


@contextmanager
def served_run(run_dir: Path) -> Iterator[httpx.Client]:
    """A finished run's TSDB served by a real Prometheus, as `loadctl prometheus` does."""
    with serve_run_tsdb(run_dir, label="test") as server, server.client() as client:
        yield client


def wait_for(predicate, *, timeout: float, interval: float = 0.2) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(interval)
    return bool(predicate())


CHART = REPO_ROOT / "charts" / "loadctl"


@functools.cache
def helm_bin() -> str:
    """helm as the project's set-up installs it ($HELM_BIN under make, else .tools/bin/helm)."""
    return find_tool("helm", "HELM_BIN")


def helm(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([helm_bin(), *args], capture_output=True, text=True, timeout=60, check=False)


def helm_render(*value_files: Path, release: str = "lt", sets: tuple[str, ...] = ()) -> list[dict[str, Any]]:
    """`helm template` of charts/loadctl as a list of objects; fails the test on a render error."""
    args = ["template", release, str(CHART), "--namespace", "loadtest"]
    for path in value_files:
        args += ["-f", str(path)]
    for item in sets:
        args += ["--set", item]
    done = helm(*args)
    assert done.returncode == 0, done.stderr
    return [doc for doc in yaml.safe_load_all(done.stdout) if doc]


# --- a Pushgateway, and a Prometheus that scrapes it (the run history's real parts) ----------------

PUSHGATEWAY_ENV = "PUSHGATEWAY_BIN"  # the Makefile's set-up: scripts/ensure-tool.sh prometheus-pushgateway


@contextmanager
def pushgateway_server(root: Path, *, port: int | None = None) -> Iterator[str]:
    """A real Pushgateway (Debian package prometheus-pushgateway) on a free loopback port, its log and
    persistence file under `root`; yields its base URL, stopped by PID on exit."""
    binary = find_tool("prometheus-pushgateway", PUSHGATEWAY_ENV)
    port = port or free_port()
    argv = [
        binary,
        f"--web.listen-address=127.0.0.1:{port}",
        f"--persistence.file={root / 'pushgateway.data'}",  # not the package's /var/lib default
        "--web.enable-admin-api",  # tests may wipe it between cases (PUT /api/v1/admin/wipe)
    ]
    root.mkdir(parents=True, exist_ok=True)
    process = ManagedProcess("pushgateway", argv, log_path=root / "pushgateway.log")
    try:
        url = f"http://127.0.0.1:{port}"
        if not wait_until(lambda: _healthy(f"{url}/-/ready"), timeout=15, watch=[process]):
            raise AssertionError(f"pushgateway did not become ready: {process.log_tail()}")
        yield url
    finally:
        process.stop(timeout=10)


def pushgateway_scrape_config(pushgateway_url: str, *, interval: str = "1s") -> dict[str, Any]:
    """Prometheus' config for a Pushgateway as batch jobs use one: honor_labels keeps the pushed job
    and run_id instead of the scrape's own."""
    return {
        "global": {"scrape_interval": interval, "evaluation_interval": interval},
        "scrape_configs": [
            {
                "job_name": "pushgateway",
                "honor_labels": True,
                "static_configs": [{"targets": [pushgateway_url.removeprefix("http://")]}],
            }
        ],
    }


@contextmanager
def prometheus_scraping_pushgateway(root: Path, pushgateway_url: str) -> Iterator[PrometheusServer]:
    """A real Prometheus scraping `pushgateway_url` every second (honor_labels: true), under `root`."""
    server = PrometheusServer(
        config=pushgateway_scrape_config(pushgateway_url),
        config_path=root / "prometheus.yml",
        data_dir=root / "tsdb",
        log_path=root / "prometheus.log",
    )
    server.start()
    try:
        yield server
    finally:
        server.stop()
