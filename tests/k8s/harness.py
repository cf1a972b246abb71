"""The world a k8s backend test runs in: one namespace, a local kubelet, the demo target, a Prometheus.

The run's release is installed by real helm into a namespace enforcing the restricted Pod Security
Standard; the real Job controller and scheduler create and place its pods on KWOK nodes; the
pods' containers run as local processes (kubelet.py) against the demo target on loopback, and a
real Prometheus scrapes the master's exporter as a cluster Prometheus would (pod annotations).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import kubernetes
import yaml

from controller.processes import free_port
from controller.prom.config import scrape_config
from controller.prom.server import PrometheusServer
from tests.k8s.controlplane import ControlPlane
from tests.k8s.kubelet import LocalKubelet
from tests.support import DEMO_LOCUSTFILE, demo_server, helm

IMAGE = "registry.example/loadctl:test"
RUN_LABEL = "loadctl.io/run-id"


@dataclass
class Cluster:
    """One namespace of the test control plane, with a local kubelet, a target and a Prometheus."""

    plane: ControlPlane
    namespace: str
    tmp: Path
    target: str
    prometheus_url: str
    kubelet: LocalKubelet
    values_file: Path
    core: kubernetes.client.CoreV1Api
    batch: kubernetes.client.BatchV1Api
    results: Path = field(init=False)

    def __post_init__(self) -> None:
        self.results = self.tmp / "results"

    def run_args(self, run_id: str, *extra: str, duration: str = "16s") -> list[str]:
        return [
            "run",
            "-f",
            str(DEMO_LOCUSTFILE),
            "--host",
            self.target,
            "-u",
            "4",
            "-r",
            "4",
            "-t",
            duration,
            "--workers",
            "2",
            "--run-id",
            run_id,
            "--results-dir",
            str(self.results),
            "--backend",
            "k8s",
            "--kubeconfig",
            str(self.plane.kubeconfig),
            "-n",
            self.namespace,
            "--image",
            IMAGE,
            "--values",
            str(self.values_file),
            *extra,
        ]

    def leftovers(self) -> list[str]:
        """Every trace of a run: releases, Jobs, pods, ConfigMaps and Services of any run."""
        listed = helm("list", "-a", "-n", self.namespace, "--kubeconfig", str(self.plane.kubeconfig), "-q")
        assert listed.returncode == 0, listed.stderr
        # run releases only: a schedules release (test_schedules.py) is meant to stay
        found = [f"release/{name}" for name in listed.stdout.split() if name.startswith("lt-")]
        for kind, lister in (
            ("job", self.batch.list_namespaced_job),
            ("pod", self.core.list_namespaced_pod),
            ("configmap", self.core.list_namespaced_config_map),
            ("service", self.core.list_namespaced_service),
        ):
            found += [
                f"{kind}/{o.metadata.name}" for o in lister(self.namespace, label_selector=RUN_LABEL).items
            ]
        return found


@contextmanager
def namespace_world(
    control_plane: ControlPlane,
    namespace: str,
    api: kubernetes.client.ApiClient,
    tmp_path: Path,
) -> Iterator[Cluster]:
    exporter_port = free_port()
    values_file = tmp_path / "test-values.yaml"
    # ports free on this machine (every pod's process shares loopback); short waits for the tests
    values = {
        "run": {
            "exporterPort": exporter_port,
            "masterPort": free_port(),
            "finalScrapeTimeoutSeconds": 5,
            "expectWorkersMaxWait": 60,
        }
    }
    values_file.write_text(yaml.safe_dump(values))
    prometheus = PrometheusServer(
        # A cluster Prometheus finds the master by its prometheus.io/* pod annotations; the master
        # process of every test run listens on this same loopback port.
        config=scrape_config(run_id="k8s-tests", exporter_address=f"127.0.0.1:{exporter_port}"),
        config_path=tmp_path / "prometheus.yml",
        data_dir=tmp_path / "tsdb",
        log_path=tmp_path / "prometheus.log",
    )
    with (
        demo_server(tmp_path / "target.log") as target,
        LocalKubelet(api, namespace, tmp_path / "pods") as kubelet,
    ):
        prometheus.start()
        try:
            yield Cluster(
                plane=control_plane,
                namespace=namespace,
                tmp=tmp_path,
                target=target,
                prometheus_url=prometheus.url,
                kubelet=kubelet,
                values_file=values_file,
                core=kubernetes.client.CoreV1Api(api),
                batch=kubernetes.client.BatchV1Api(api),
            )
        finally:
            prometheus.stop()
    assert not kubelet.errors, kubelet.errors
