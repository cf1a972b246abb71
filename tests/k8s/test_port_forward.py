"""loadctl's port-forward through the test control plane, and a k8s run that follows its master by it.

controller.k8s.port_forward (the kubernetes client's websocket portforward) -> kube-apiserver
(pods/portforward) -> the node's kubelet endpoint, which is KWOK's server -> 127.0.0.1:<port>, where
the pod's process listens (controlplane.forwarding_ports).
"""

from __future__ import annotations

import csv
import json
import socket
import sys
import threading
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import kubernetes
import pytest
import yaml

from controller.errors import InfraError
from controller.k8s.port_forward import PortForward
from controller.processes import ManagedProcess, free_port, wait_until
from controller.prom.client import query
from controller.rundir import EXCEPTIONS_CSV, LOCUST_HTML
from tests.k8s.controlplane import eventually, forwarding_ports
from tests.k8s.harness import Cluster
from tests.support import run_loadctl, served_run

GREETING = b"hello through the port-forward\n"


class _Greeter(BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        self.send_response(200)
        self.send_header("Content-Length", str(len(GREETING)))
        self.end_headers()
        self.wfile.write(GREETING)

    def log_message(self, format: str, *args: object) -> None:
        pass  # keep pytest's output clean


@contextmanager
def greeter(port: int = 0) -> Iterator[int]:
    """A local HTTP server standing in for a pod's process; yields its loopback port."""
    server = ThreadingHTTPServer(("127.0.0.1", port), _Greeter)
    thread = threading.Thread(target=server.serve_forever, name="greeter", daemon=True)
    thread.start()
    try:
        yield server.server_address[1]
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


def restricted_pod(name: str) -> Any:  # the client sends a dict as-is
    """A pod the `restricted` Pod Security Standard admits; KWOK makes it Running, nothing runs it."""
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": name},
        "spec": {
            "securityContext": {
                "runAsNonRoot": True,
                "runAsUser": 1000,
                "seccompProfile": {"type": "RuntimeDefault"},
            },
            "containers": [
                {
                    "name": "web",
                    "image": "registry.example/web:test",
                    "securityContext": {
                        "allowPrivilegeEscalation": False,
                        "capabilities": {"drop": ["ALL"]},
                    },
                }
            ],
        },
    }


def running(core: kubernetes.client.CoreV1Api, name: str, namespace: str) -> bool:
    status = core.read_namespaced_pod(name, namespace).status
    return status is not None and status.phase == "Running"


@pytest.fixture
def web(core_api: kubernetes.client.CoreV1Api, namespace: str) -> str:
    """A Running pod `web` in `namespace` (what a master pod is to the forwarder)."""
    core_api.create_namespaced_pod(namespace, restricted_pod("web"))
    eventually(lambda: running(core_api, "web", namespace), what="pod web Running")
    return "web"


def forward(api: kubernetes.client.ApiClient, namespace: str, port: int, log: Path) -> PortForward:
    return PortForward(api=api, namespace=namespace, pod="web", port=port, log_path=log)


def get(local: int) -> httpx.Response:
    # a client per request: a new TCP connection, hence a new stream, each time (as each scrape of
    # a Prometheus that closes idle connections); loopback: never via a proxy
    with httpx.Client(trust_env=False, timeout=10.0) as client:
        return client.get(f"http://127.0.0.1:{local}/")


def forwarding_threads() -> list[str]:
    """Threads of port forwards: ours and the kubernetes client's stream proxies."""
    prefixes = ("port-forward", "Kubernetes port forward proxy")
    return [t.name for t in threading.enumerate() if t.name.startswith(prefixes)]


def open_fds() -> int:
    return len(list(Path("/proc/self/fd").iterdir()))


def test_forwards_real_bytes_through_the_api_server(
    k8s_client: kubernetes.client.ApiClient, namespace: str, web: str, tmp_path: Path
) -> None:
    log = tmp_path / "pf.log"
    with (
        greeter() as port,
        forwarding_ports(k8s_client, namespace, [port]),
        forward(k8s_client, namespace, port, log) as forwarder,
    ):
        # twice: each connection is its own stream through the apiserver and kwok
        for _ in range(2):
            response = get(forwarder.local_port)
            assert response.status_code == 200 and response.content == GREETING
    text = log.read_text()
    assert f"forwarding 127.0.0.1:{forwarder.local_port} -> pod {namespace}/web port {port}" in text
    assert text.count("connection closed") == 2, text
    assert "closed after 2 connections" in text


def test_a_refused_connection_ends_that_connection_not_the_forward(
    k8s_client: kubernetes.client.ApiClient, namespace: str, web: str, tmp_path: Path
) -> None:
    log = tmp_path / "pf.log"
    port = free_port()  # nothing listens there yet, as an exporter not started
    with (
        forwarding_ports(k8s_client, namespace, [port]),
        forward(k8s_client, namespace, port, log) as forwarder,
    ):
        with pytest.raises(httpx.HTTPError):
            get(forwarder.local_port)
        with greeter(port):
            response = get(forwarder.local_port)
        assert response.status_code == 200 and response.content == GREETING
    assert "error:" in log.read_text(), log.read_text()


@contextmanager
def greeter_process(tmp_path: Path) -> Iterator[int]:
    """The greeting from another process, as a pod's is: its sockets are not in our fd count."""
    (tmp_path / "www").mkdir()
    (tmp_path / "www" / "index.html").write_bytes(GREETING)
    port = free_port()
    argv = [sys.executable, "-m", "http.server", "--bind", "127.0.0.1", str(port)]
    argv += ["--directory", str(tmp_path / "www")]
    server = ManagedProcess("greeter", argv, log_path=tmp_path / "greeter.log")
    try:
        assert wait_until(lambda: listening(port), timeout=30, watch=[server]), server.log_tail()
        yield port
    finally:
        server.stop()


def listening(port: int) -> bool:
    with socket.socket() as probe:
        return probe.connect_ex(("127.0.0.1", port)) == 0


def test_concurrent_connections_and_no_leak_per_connection(
    k8s_client: kubernetes.client.ApiClient, namespace: str, web: str, tmp_path: Path
) -> None:
    with greeter_process(tmp_path) as port, forwarding_ports(k8s_client, namespace, [port]):
        fds = open_fds()
        with forward(k8s_client, namespace, port, tmp_path / "pf.log") as forwarder:
            started = open_fds()  # fds + the listener, the wake-up socket pair, the accept loop's epoll
            with ThreadPoolExecutor(max_workers=8) as pool:
                responses = list(pool.map(lambda _: get(forwarder.local_port), range(32)))
            assert all(r.status_code == 200 and r.content == GREETING for r in responses)
            for _ in range(20):  # one scrape after another, as Prometheus' every second
                assert get(forwarder.local_port).content == GREETING
            eventually(lambda: forwarder.live_connections == 0, what="connections ended")
            # 52 connections left no thread and no socket behind
            assert forwarding_threads() == [f"port-forward {forwarder.local_port}"]
            assert open_fds() == started
        assert forwarder.connections_served == 52
        assert forwarding_threads() == []
        assert open_fds() == fds, started


def test_a_forward_the_api_refuses_is_an_infra_error(
    k8s_client: kubernetes.client.ApiClient, namespace: str, tmp_path: Path
) -> None:
    threads = threading.active_count()
    with pytest.raises(InfraError, match=f"port-forward to pod {namespace}/web port 80 failed: ") as e:
        forward(k8s_client, namespace, 80, tmp_path / "pf.log").start()
    assert "404 Not Found" in str(e.value) and "-+-+-" not in str(e.value)  # status and message only
    assert "\n" not in str(e.value)
    assert threading.active_count() == threads


def aggregated_requests(stats_csv: Path) -> int:
    with stats_csv.open(newline="") as f:
        row = next(r for r in csv.DictReader(f) if r["Name"] == "Aggregated")
    return int(row["Request Count"])


def test_a_run_without_prometheus_follows_the_master_through_a_port_forward(
    cluster: Cluster, k8s_client: kubernetes.client.ApiClient
) -> None:
    values = yaml.safe_load(cluster.values_file.read_text())
    exporter_port = values["run"]["exporterPort"]
    # the master pod's probes sidecar (an http_json probe of the demo target's crawler page)
    probes_port = values["run"]["probesPort"] = free_port()
    cluster.values_file.write_text(yaml.safe_dump(values))
    profile = cluster.tmp / "probed.yaml"
    crawler = {"each": "domains", "label": "domain", "value": "failure_rate"}
    probe = {
        "name": "crawler",
        "type": "http_json",
        "url": f"{cluster.target}/v1/crawler/stats",
        "interval": "1s",
    }
    profile.write_text(
        yaml.safe_dump(
            {"name": "probed", "probes": [{**probe, "fields": {"crawler_domain_failure_rate": crawler}}]}
        )
    )
    args = cluster.run_args("k8s-port-forward")
    args.insert(1, str(profile))  # the profile's probes; the flags give the load
    with forwarding_ports(k8s_client, cluster.namespace, [exporter_port, probes_port]):
        done = run_loadctl(args, timeout=240)
    text = done.stdout + done.stderr
    assert done.returncode == 0, (text, cluster.kubelet.log_tails())
    assert "following the master's exporter through a port-forward" in text
    assert "helm uninstall lt-k8s-port-forward" in text
    run_dir = cluster.results / "k8s-port-forward"
    # what the run read came from its own Prometheus, which scraped only the forwarded local port
    jobs = yaml.safe_load((run_dir / "prometheus.yml").read_text())["scrape_configs"]
    scraped = jobs[0]
    assert scraped["static_configs"][0]["targets"] != [f"127.0.0.1:{exporter_port}"], scraped
    assert [job["job_name"] for job in jobs] == ["loadctl-exporter", "loadctl-probes"]
    forward_log = (run_dir / "logs" / "port-forward.log").read_text()
    assert "-> pod " in forward_log and "connection closed" in forward_log, forward_log
    run = json.loads((run_dir / "run.json").read_text())
    # Locust's own files, fetched from the master through the same port-forward before it ended
    assert run["stats_source"] == "locust" and run["requests"] > 0, run
    assert aggregated_requests(run_dir / "stats.csv") == run["requests"]
    assert (run_dir / EXCEPTIONS_CSV).read_text().startswith("Count,Message,Traceback,Nodes")
    html = (run_dir / LOCUST_HTML).read_text()
    assert "<title>Locust</title>" in html and f'"num_requests": {run["requests"]}' in html
    assert {LOCUST_HTML, EXCEPTIONS_CSV} <= set(run["files"])
    assert "Locust's own files not fetched" not in text
    # the local Prometheus kept its TSDB in the run directory, like a local run's
    assert (run_dir / "tsdb").is_dir() and any((run_dir / "tsdb").iterdir())
    # ...including the sidecar's probe series, through the same port-forward
    with served_run(run_dir) as prom:
        at = run["ended_at"]
        series = query(
            client=prom,
            promql='last_over_time(crawler_domain_failure_rate{run_id="k8s-port-forward"}[10m])',
            at=at,
        )
        (up,) = query(
            client=prom, promql='last_over_time(loadctl_probe_up{run_id="k8s-port-forward"}[10m])', at=at
        )
    assert series and all(s.labels["domain"] for s in series)
    assert up.value == 1
    assert cluster.leftovers() == []
