"""A schedule that brings its own test (schedules[].files) and keeps its results on a volume.

The chart is installed with one schedule whose profile, locustfile and gate file are values, and
results.persistence on a claim of StorageClass "manual"; a hostPath PersistentVolume of that class
lets the real PV controller bind it. A Job is created from the CronJob's jobTemplate, as `kubectl
create job --from=cronjob/...` does, instead of waiting for the cron minute: the real Job
controller and scheduler place its pod, and the local kubelet runs its `loadctl run
/etc/loadctl/schedule/<profile> --backend k8s --in-cluster` as the schedule's ServiceAccount, which
installs the run's release, whose master and worker pods the same kubelet runs. Each run pushes
its summary to a real Pushgateway (controller.pushgateway.url) that a real Prometheus scrapes.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml

from controller.prom import client as prom
from controller.prom.server import PrometheusServer
from tests.k8s.controlplane import eventually
from tests.k8s.harness import IMAGE, Cluster
from tests.support import (
    CHART,
    DEMO_LOCUSTFILE,
    REPO_ROOT,
    helm,
    prometheus_scraping_pushgateway,
    pushgateway_server,
)

RELEASE = "nightly"
SCHEDULE = "soak"
CRONJOB = f"{RELEASE}-loadctl-{SCHEDULE}"
CLAIM = f"{RELEASE}-loadctl-results"
MOUNTED = "/etc/loadctl/schedule"  # where the chart mounts a schedule's files


def profile(cluster: Cluster, users: int) -> str:
    # relative paths: they resolve against the mounted folder, as beside a profile on a laptop
    return yaml.safe_dump(
        {
            "name": "nightly-files",
            "locustfile": "locustfile.py",
            "host": cluster.target,
            "users": users,
            "spawn_rate": users,
            "duration": "12s",
            "workers": 1,
            "gates": "gates.yaml",
        }
    )


def gates(*rules: str) -> str:
    return "version: 1\nname: nightly\nwindow: run\ngates:\n" + "".join(f"  - {r}\n" for r in rules)


@dataclass
class RunHistory:
    """The Pushgateway the schedule pushes to and the Prometheus that scrapes it."""

    pushgateway: str
    prometheus: PrometheusServer

    def pushed(self, run_id: str) -> dict[str, float]:
        """The run's pushed series as Prometheus holds them: metric{verdict or gate} -> value."""

        def found() -> dict[str, float] | None:
            with self.prometheus.client() as client:
                samples = prom.query(
                    client=client, promql=f'{{__name__=~"loadctl_run_.*",job="loadctl",run_id="{run_id}"}}'
                )
            named = {}
            for sample in samples:
                labels = sample.labels
                key = labels["__name__"] + "".join(
                    f"{{{labels[k]}}}" for k in ("verdict", "gate") if k in labels
                )
                named[key] = sample.value
                assert labels.get("schedule") == SCHEDULE, labels
            return named if "loadctl_run_requests_total" in named else None

        return eventually(found, what=f"run {run_id} in Prometheus via the Pushgateway", timeout=30)


@pytest.fixture
def run_history(tmp_path: Path) -> Iterator[RunHistory]:
    with (
        pushgateway_server(tmp_path / "pushgateway") as url,
        prometheus_scraping_pushgateway(tmp_path / "history-prometheus", url) as prometheus,
    ):
        yield RunHistory(url, prometheus)


def schedule_values(cluster: Cluster, files: dict[str, str], pushgateway: str) -> Path:
    values = {
        "run": {"enabled": False},
        "schedules": [
            # suspended: only the Jobs this test creates run, never one at a cron minute
            {"name": SCHEDULE, "cron": "0 2 * * *", "suspend": True, "profile": "soak.yaml", "files": files}
        ],
        "results": {"persistence": {"enabled": True, "storageClassName": "manual", "size": "1Gi"}},
        "controller": {
            "prometheusUrl": cluster.prometheus_url,
            "pushgateway": {"url": pushgateway},
            # the test's image name and ports (harness.py) reach the run through a file of the schedule
            "extraArgs": ["--image", IMAGE, "--values", f"{MOUNTED}/run-values.yaml"],
        },
    }
    path = cluster.tmp / "schedule-values.yaml"
    path.write_text(yaml.safe_dump(values))
    return path


def deploy(cluster: Cluster, command: str, files: dict[str, str], pushgateway: str) -> None:
    kubeconfig = str(cluster.plane.kubeconfig)
    args = [command, RELEASE, str(CHART), "-n", cluster.namespace, "--kubeconfig", kubeconfig]
    done = helm(*args, "-f", str(schedule_values(cluster, files, pushgateway)))
    assert done.returncode == 0, done.stderr
    assert "PodSecurity" not in done.stderr, done.stderr


@pytest.fixture
def results_volume(cluster: Cluster) -> Iterator[Path]:
    """A hostPath PersistentVolume of StorageClass "manual": its local directory."""
    path = cluster.tmp / "results-volume"
    path.mkdir()
    name = f"results-{cluster.namespace}"
    body = {
        "apiVersion": "v1",
        "kind": "PersistentVolume",
        "metadata": {"name": name},
        "spec": {
            "capacity": {"storage": "1Gi"},
            "accessModes": ["ReadWriteOnce"],
            "storageClassName": "manual",
            "persistentVolumeReclaimPolicy": "Retain",
            "hostPath": {"path": str(path)},
        },
    }
    cluster.core.create_persistent_volume(body)
    try:
        yield path
    finally:
        cluster.core.delete_persistent_volume(name)


def job_from_cronjob(cluster: Cluster, name: str) -> str:
    """What `kubectl create job NAME --from=cronjob/CRONJOB` creates: the jobTemplate, owned by it."""
    cronjob = cluster.batch.read_namespaced_cron_job(CRONJOB, cluster.namespace)
    template = cluster.batch.api_client.sanitize_for_serialization(cronjob.spec.job_template)
    owner = {
        "apiVersion": "batch/v1",
        "kind": "CronJob",
        "name": CRONJOB,
        "uid": cronjob.metadata.uid,
        "controller": True,
        "blockOwnerDeletion": True,
    }
    metadata = {
        "name": name,
        "labels": template.get("metadata", {}).get("labels", {}),
        "annotations": {"cronjob.kubernetes.io/instantiate": "manual"},
        "ownerReferences": [owner],
    }
    job = {"apiVersion": "batch/v1", "kind": "Job", "metadata": metadata, "spec": template["spec"]}
    cluster.batch.create_namespaced_job(cluster.namespace, job)
    return name


def finished(cluster: Cluster, job: str) -> str:
    """Waits for the Job to end: "succeeded" or "failed"."""

    def state() -> str | None:
        status = cluster.batch.read_namespaced_job_status(job, cluster.namespace).status
        return "succeeded" if status.succeeded else "failed" if status.failed else None

    return eventually(state, what=f"Job {job} to finish", timeout=300, interval=1)


def new_run(volume: Path, before: set[str]) -> dict[str, Any]:
    """The one run folder that appeared on the volume: its run.json (and the folder as `dir`)."""
    added = {p.name for p in volume.iterdir() if p.is_dir()} - before
    assert len(added) == 1, (sorted(added), sorted(before))
    folder = volume / added.pop()
    return {**json.loads((folder / "run.json").read_text()), "dir": folder}


def claim_phase(cluster: Cluster) -> str:
    return str(cluster.core.read_namespaced_persistent_volume_claim(CLAIM, cluster.namespace).status.phase)


def run_once(cluster: Cluster, volume: Path, job: str) -> dict[str, Any]:
    before = {p.name for p in volume.iterdir()}
    state = finished(cluster, job_from_cronjob(cluster, job))
    assert state == "succeeded", cluster.kubelet.log_tails()
    return new_run(volume, before)


def test_a_schedule_with_files_runs_end_to_end_and_keeps_its_results_on_the_volume(
    cluster: Cluster, results_volume: Path, run_history: RunHistory
) -> None:
    files = {
        "soak.yaml": profile(cluster, users=2),
        "locustfile.py": DEMO_LOCUSTFILE.read_text(),
        "gates.yaml": gates("{name: some_load, metric: rps, min: 0.1}"),
        "run-values.yaml": cluster.values_file.read_text(),
    }
    deploy(cluster, "install", files, run_history.pushgateway)
    eventually(lambda: claim_phase(cluster) == "Bound", what=f"claim {CLAIM} bound", timeout=60)

    first = run_once(cluster, results_volume, "soak-manual-1")
    assert first["verdict"] == "pass" and first["exit_code"] == 0, first
    assert first["requests"] > 0 and first["backend"] == "k8s"
    assert first["namespace"] == cluster.namespace
    assert {"run.json", "report.md", "gates.json"} <= {p.name for p in first["dir"].iterdir()}
    gate_names = [g["name"] for g in json.loads((first["dir"] / "gates.json").read_text())["gates"]]
    assert gate_names == ["some_load"]
    assert not (REPO_ROOT / "results" / first["run_id"]).exists()  # on the volume, not in the image root
    assert cluster.leftovers() == []
    assert first["pushgateway"]["pushed"] is True, first["pushgateway"]
    pushed = run_history.pushed(first["run_id"])
    assert pushed["loadctl_run_verdict{pass}"] == 1 and pushed["loadctl_run_exit_code"] == 0
    assert pushed["loadctl_run_requests_total"] == first["requests"]
    assert pushed["loadctl_run_gate_threshold{some_load}"] == 0.1

    # new files, same CronJob: the next run mounts the ConfigMap as it is now
    generation = cluster.batch.read_namespaced_cron_job(CRONJOB, cluster.namespace).metadata.generation
    files["soak.yaml"] = profile(cluster, users=3)
    files["gates.yaml"] = gates(
        "{name: more_load, metric: rps, min: 0.1}", "{name: few_errors, metric: error_rate, max: 0.5}"
    )
    deploy(cluster, "upgrade", files, run_history.pushgateway)
    assert (
        cluster.batch.read_namespaced_cron_job(CRONJOB, cluster.namespace).metadata.generation == generation
    )

    second = run_once(cluster, results_volume, "soak-manual-2")
    assert second["verdict"] == "pass", second
    peak_users = [max(stage["users"] for stage in run["stages"]) for run in (first, second)]
    assert peak_users == [2, 3]
    gate_names = [g["name"] for g in json.loads((second["dir"] / "gates.json").read_text())["gates"]]
    assert gate_names == ["more_load", "few_errors"]
    assert (first["dir"] / "run.json").is_file()  # the first night's results are still there
    # the second night is a second group beside the first: the runs-over-time view has both
    assert "loadctl_run_gate_value{few_errors}" in run_history.pushed(second["run_id"])
    assert run_history.pushed(first["run_id"])["loadctl_run_requests_total"] == first["requests"]
    assert cluster.leftovers() == []
    # no controller pod left running: both ended with their Jobs
    pods = cluster.core.list_namespaced_pod(
        cluster.namespace, label_selector=f"loadctl.io/schedule={SCHEDULE}"
    )
    assert sorted(p.status.phase for p in pods.items) == ["Succeeded", "Succeeded"]
