"""What one run looks like as a Helm release of charts/loadctl: its name, labels and values. Pure.

The run's files (locustfile, its sibling helper modules, gates, profile) travel inside the values
(run.files -> one ConfigMap), so a release needs no image rebuild and no shared volume.
"""

from __future__ import annotations

import ast
import hashlib
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from controller.errors import InputError
from controller.latency import cluster_latency_layout
from controller.models import RunPlan
from locust_workers.contract import encode_gate_thresholds

RUN_LABEL = "loadctl.io/run-id"
COMPONENT_LABEL = "app.kubernetes.io/component"
VERDICT_ANNOTATION = "loadctl.io/verdict"
RELEASE_PREFIX = "lt-"
# Helm release names are DNS-1123 labels of at most 53 characters.
RELEASE_NAME_MAX = 53
# A ConfigMap holds at most 1 MiB; leave room for the keys and Helm's own metadata.
FILES_MAX_BYTES = 900 * 1024
_CONFIGMAP_KEY = re.compile(r"^[-._a-zA-Z0-9]+$")


def release_name(run_id: str) -> str:
    """`lt-<run id>` as a valid release name; long ids keep a hash so two runs never collide."""
    name = RELEASE_PREFIX + re.sub(r"[^a-z0-9-]+", "-", run_id).strip("-")
    if len(name) <= RELEASE_NAME_MAX:
        return name
    digest = hashlib.sha256(run_id.encode()).hexdigest()[:8]
    return f"{name[: RELEASE_NAME_MAX - 9].rstrip('-')}-{digest}"


def run_selector(run_id: str) -> str:
    return f"{RUN_LABEL}={run_id}"


def image_values(image: str) -> dict[str, str]:
    """`repo[:tag]` (a registry port is not a tag) -> the chart's image.repository / image.tag."""
    repository, _, tag = image.rpartition(":")
    if not repository or "/" in tag:
        return {"repository": image}
    return {"repository": repository, "tag": tag}


def local_imports(source: str) -> set[str]:
    """Top-level module names a locustfile imports (candidates for sibling helper modules)."""
    names: set[str] = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            names.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names.add(node.module.split(".")[0])
    return names


def run_values(
    plan: RunPlan,
    *,
    files: Mapping[str, str],
    image: str | None,
    prometheus_url: str | None = None,
    heartbeat: tuple[str, int] | None = None,
) -> dict[str, object]:
    """The values that make charts/loadctl one run of `plan` (user --values files go underneath)."""
    total = sum(len(name) + len(content.encode()) for name, content in files.items())
    if total > FILES_MAX_BYTES:
        raise InputError(
            f"the run's files are {total // 1024} KiB, more than a ConfigMap can hold "
            f"({FILES_MAX_BYTES // 1024} KiB): ship large data in the image instead",
            source=str(plan.locustfile),
            field="locustfile",
        )
    for name in files:
        if not _CONFIGMAP_KEY.match(name):
            raise InputError(f"file name {name!r} cannot be a ConfigMap key", source=name, field="files")
    values: dict[str, Any] = {
        "run": {
            "enabled": True,
            "id": plan.run_id,
            "profile": plan.profile,
            "host": plan.host,
            "workers": plan.workers,
            "stages": [
                {"duration": s.duration, "users": s.users, "spawnRate": s.spawn_rate, "phase": s.phase}
                for s in plan.stages
            ],
            "userWeights": dict(plan.user_weights),
            "latencyBuckets": cluster_latency_layout(plan.latency_buckets),
            # the master serves them (loadctl_gate_threshold): the dashboards' lines are this run's
            "gateThresholds": encode_gate_thresholds(plan.gate_thresholds) if plan.gate_thresholds else "",
            "locustfile": plan.locustfile.name,
            "files": dict(files),
        }
    }
    if plan.user_locust_args:
        values["run"]["locustArgs"] = list(plan.user_locust_args)
    if plan.user_classes:
        values["run"]["userClasses"] = list(plan.user_classes)
    if plan.probes:  # the master pod's probes sidecar; only names of credential variables in here
        values["run"]["probes"] = [probe.model_dump(mode="json") for probe in plan.probes]
    if heartbeat is not None:  # (Lease name, seconds): the master stops the load when it goes stale
        values["run"]["heartbeat"] = {"lease": heartbeat[0], "timeoutSeconds": heartbeat[1]}
    if image:
        values["image"] = image_values(image)
    if prometheus_url:
        values["controller"] = {"prometheusUrl": prometheus_url}
    return values


def run_files(plan: RunPlan) -> dict[str, str]:
    """The files a run ships: the locustfile, sibling modules it imports, gates.yaml, profile.yaml."""
    locustfile = plan.locustfile
    if locustfile.is_dir() or plan.more_locustfiles:
        raise InputError(
            "a folder or a list of locustfiles runs with the local backend only "
            "(k8s ships one locustfile and the modules it imports from its folder)",
            source="command line",
            field="-f",
        )
    source = locustfile.read_text(encoding="utf-8")
    files = {locustfile.name: source}
    try:
        imported = local_imports(source)
    except SyntaxError as e:
        raise InputError(f"cannot parse: {e.msg} (line {e.lineno})", source=str(locustfile)) from e
    for name in sorted(imported):
        sibling = locustfile.parent / f"{name}.py"
        if sibling.is_file() and sibling != locustfile:
            files[sibling.name] = sibling.read_text(encoding="utf-8")
    if plan.gates is not None:
        files["gates.yaml"] = Path(plan.gates).read_text(encoding="utf-8")
    if plan.profile_file is not None:
        files["profile.yaml"] = Path(plan.profile_file).read_text(encoding="utf-8")
    return files
