"""The chart's pods really run: the rendered master and worker containers, run as local processes.

No container engine here, so the test takes each rendered container's command, args and env,
writes the ConfigMap's files where the pod would mount them (a temporary directory standing in
for /etc/loadctl/run, /tmp), points /opt/loadctl at this checkout (the image's copy of it) and the
master Service's name at 127.0.0.1, and runs them against the demo target.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml
from prometheus_client.parser import text_string_to_metric_families

from controller.processes import ManagedProcess, free_port
from tests.podexec import IMAGE_ROOT, local_argv, local_env
from tests.support import DEMO_LOCUSTFILE, REPO_ROOT, demo_server, helm_render, wait_for

pytestmark = pytest.mark.integration

RUN_ID = "pods-1"


def render(values: dict[str, Any], tmp_path: Path) -> list[dict[str, Any]]:
    path = tmp_path / "values.yaml"
    path.write_text(yaml.safe_dump(values))
    return helm_render(path, release="pods")


def one(objects: list[dict[str, Any]], kind: str, component: str | None = None) -> dict[str, Any]:
    found = [
        o
        for o in objects
        if o["kind"] == kind
        and (component is None or o["metadata"]["labels"].get("app.kubernetes.io/component") == component)
    ]
    assert len(found) == 1, (kind, component, [o["metadata"]["name"] for o in found])
    return found[0]


def test_rendered_master_and_workers_run_to_completion(tmp_path):
    exporter_port, master_port = free_port(), free_port()
    locustfile = DEMO_LOCUSTFILE.read_text()
    with demo_server(tmp_path / "target.log") as target:
        values = {
            "run": {
                "id": RUN_ID,
                "profile": "pods",
                "host": target,
                "workers": 2,
                "stages": [
                    {"duration": 6, "users": 4, "spawnRate": 4, "phase": "ramp_up"},
                    {"duration": 8, "users": 4, "spawnRate": 4, "phase": "steady"},
                ],
                "userWeights": {"SearchUser": 3, "StudioUser": 1},
                "locustfile": "locustfile.py",
                "files": {"locustfile.py": locustfile},
                "exporterPort": exporter_port,
                "masterPort": master_port,
                "finalScrapeTimeoutSeconds": 3,
            },
            "serviceMonitor": {"enabled": True},
            # forced on beside the ServiceMonitor, so both scrape paths are checked against each other
            "master": {"scrapeAnnotations": True},
        }
        objects = render(values, tmp_path)
        master_job, worker_job = one(objects, "Job", "master"), one(objects, "Job", "worker")
        service, config = one(objects, "Service"), one(objects, "ConfigMap")
        monitor = one(objects, "ServiceMonitor")

        # the ConfigMap's files, where the pods would see them
        run_dir, scratch = tmp_path / "etc-loadctl-run", tmp_path / "pod-tmp"
        run_dir.mkdir()
        scratch.mkdir()
        for name, content in config["data"].items():
            (run_dir / name).write_text(content)
        master_pod = master_job["spec"]["template"]
        mount_paths = {m["name"]: m["mountPath"] for m in master_pod["spec"]["containers"][0]["volumeMounts"]}
        config_volume = next(v["name"] for v in master_pod["spec"]["volumes"] if "configMap" in v)
        mounts = {mount_paths[config_volume]: run_dir, "/tmp": scratch, IMAGE_ROOT: REPO_ROOT}

        # where Prometheus would scrape: the pod annotations, and the ServiceMonitor -> Service port
        annotations = master_pod["metadata"]["annotations"]
        assert annotations["prometheus.io/scrape"] == "true"
        endpoint = monitor["spec"]["endpoints"][0]
        service_port = next(p for p in service["spec"]["ports"] if p["name"] == endpoint["port"])
        assert int(annotations["prometheus.io/port"]) == exporter_port
        assert service_port["port"] == exporter_port or service_port["targetPort"] in (
            exporter_port,
            "metrics",
        )
        assert endpoint.get("path", "/metrics") == annotations["prometheus.io/path"]
        metrics_url = (
            f"http://127.0.0.1:{annotations['prometheus.io/port']}{annotations['prometheus.io/path']}"
        )

        master_container = master_pod["spec"]["containers"][0]
        worker_container = worker_job["spec"]["template"]["spec"]["containers"][0]
        service_name = service["metadata"]["name"]
        workers = worker_job["spec"]["parallelism"]
        assert workers == worker_job["spec"]["completions"] == 2

        master = ManagedProcess(
            "master pod",
            local_argv(master_container, mounts, {service_name}),
            log_path=tmp_path / "master.log",
            env=local_env(master_container, scratch),
            cwd=scratch,
        )
        pods = [
            ManagedProcess(
                f"worker pod {i}",
                local_argv(worker_container, mounts, {service_name}),
                log_path=tmp_path / f"worker-{i}.log",
                env=local_env(worker_container, scratch),
                cwd=scratch,
            )
            for i in range(workers)
        ]
        try:
            samples: dict[str, float] = {}

            def exporter_counts() -> bool:
                try:
                    text = httpx.get(metrics_url, timeout=2).text
                except httpx.HTTPError:
                    return False
                for family in text_string_to_metric_families(text):
                    for s in family.samples:
                        if s.name == "locust_requests_total" and s.labels.get("run_id") == RUN_ID:
                            samples[s.labels["name"]] = s.value
                # on_start sends auth/dev-token first: wait until the tasks themselves show up
                return {"recipes_search", "auth/dev-token"} <= set(samples)

            assert wait_for(exporter_counts, timeout=60), master.log_tail()
            deadline = master_job["spec"]["activeDeadlineSeconds"]
            master_code = master.wait(min(deadline, 90))
            worker_codes = [pod.wait(30) for pod in pods]
        finally:
            master.stop(timeout=5)
            for pod in pods:
                pod.stop(timeout=5)

    assert master_code == 0, master.log_tail()
    assert worker_codes == [0] * workers, [pod.log_tail() for pod in pods]
    assert {"recipes_search", "auth/dev-token"} <= set(samples)
    stats = (scratch / "loadctl" / "locust_stats.csv").read_text()
    assert "Aggregated" in stats
    stages = json.loads(next(e["value"] for e in master_container["env"] if e["name"] == "LOADCTL_STAGES"))
    assert [s["phase"] for s in stages] == ["ramp_up", "steady"]
