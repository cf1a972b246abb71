"""`kubectl port-forward` through the test control plane, and a k8s run that follows its master by it.

kubectl -> kube-apiserver (pods/portforward) -> the node's kubelet endpoint, which is KWOK's server
-> 127.0.0.1:<port>, where the pod's process listens (controlplane.forwarding_ports).
"""

from __future__ import annotations

import csv
import json
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import kubernetes
import yaml

from controller.k8s.helm import find_tool
from controller.processes import ManagedProcess, free_port, wait_until
from controller.prom.client import query
from controller.rundir import EXCEPTIONS_CSV, LOCUST_HTML
from tests.k8s.controlplane import ControlPlane, eventually, forwarding_ports
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
def greeter() -> Iterator[int]:
    """A local HTTP server standing in for a pod's process; yields its loopback port."""
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Greeter)
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


@contextmanager
def kubectl_port_forward(
    plane: ControlPlane, namespace: str, pod: str, port: int, log: Path
) -> Iterator[int]:
    """`kubectl port-forward pod/<pod> LOCAL:<port>` as loadctl runs it; yields LOCAL."""
    local = free_port()
    argv = [find_tool("kubectl", "KUBECTL_BIN"), "port-forward", "--address", "127.0.0.1"]
    argv += ["-n", namespace, f"pod/{pod}", f"{local}:{port}", "--kubeconfig", str(plane.kubeconfig)]
    forward = ManagedProcess("kubectl port-forward", argv, log_path=log)
    try:
        listening = wait_until(
            lambda: "Forwarding from" in forward.log_tail(2000), timeout=30, watch=[forward]
        )
        assert listening, forward.log_tail()
        yield local
    finally:
        forward.stop(timeout=5)


def running(core: kubernetes.client.CoreV1Api, name: str, namespace: str) -> bool:
    status = core.read_namespaced_pod(name, namespace).status
    return status is not None and status.phase == "Running"


def test_kubectl_port_forward_reaches_the_pods_port(
    control_plane: ControlPlane,
    k8s_client: kubernetes.client.ApiClient,
    core_api: kubernetes.client.CoreV1Api,
    namespace: str,
    tmp_path: Path,
) -> None:
    core_api.create_namespaced_pod(namespace, restricted_pod("web"))
    # kubectl refuses to forward to a pod that is not Running
    eventually(lambda: running(core_api, "web", namespace), what="pod web Running")
    with (
        greeter() as port,
        forwarding_ports(k8s_client, namespace, [port]),
        kubectl_port_forward(control_plane, namespace, "web", port, tmp_path / "pf.log") as local,
        httpx.Client(trust_env=False, timeout=10.0) as client,  # loopback: never via a proxy
    ):
        # twice: each connection is its own stream through the apiserver and kwok
        for _ in range(2):
            response = client.get(f"http://127.0.0.1:{local}/")
            assert response.status_code == 200 and response.content == GREETING


def port_forwards_of(namespace: str) -> list[str]:
    """Command lines of live `kubectl port-forward` processes into `namespace` (from /proc)."""
    found = []
    for cmdline in Path("/proc").glob("[0-9]*/cmdline"):
        try:
            argv = cmdline.read_bytes().split(b"\0")
        except OSError:  # the process ended meanwhile
            continue
        if b"port-forward" in argv and namespace.encode() in argv:
            found.append(b" ".join(argv).decode(errors="replace"))
    return found


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
    assert "Handling connection for" in (run_dir / "logs" / "port-forward.log").read_text()
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
    assert port_forwards_of(cluster.namespace) == []
