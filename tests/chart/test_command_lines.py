"""The chart starts Locust and the probes exactly as locust_workers/contract.py builds them.

The chart cannot import the contract, so this renders it (real `helm template`) from the values the
controller gives it for a run and compares the master's, the workers' and the probes' command lines
and environment with the contract's for the same run; and the chart's defaults with the contract's.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from controller.backends.k8s import CHART_FINAL_SCRAPE_TIMEOUT_S
from controller.k8s.release import release_name, run_values
from controller.models import RunPlan, Stage
from locust_workers.contract import (
    DEFAULT_LATENCY_BUCKETS,
    EXPECT_WORKERS_MAX_WAIT_S,
    EXPORTER_PORT,
    PROBES_PORT,
    LocustCommand,
    locustfile_arg,
    probes_args,
    run_env,
)
from tests.support import CHART, helm_render

pytestmark = pytest.mark.integration

# Where the pods find things: the run's ConfigMap, the image's copy of locust_workers, an emptyDir.
RUN_MOUNT = "/etc/loadctl/run"
IMAGE_PLUGIN = "/opt/loadctl/locust_workers/plugin.py"
SCRATCH = "/tmp/loadctl"
# What every loadctl container gets for a read-only root filesystem, beyond the run's own variables.
CONTAINER_ONLY_ENV = {"PYTHONDONTWRITEBYTECODE": "1", "HOME": "/tmp"}


def plan_of(tmp_path: Path, **changes: Any) -> RunPlan:
    fields: dict[str, Any] = {
        "run_id": "contract-7f3a",
        "profile": "staged",
        "locustfile": tmp_path / "checkout.py",
        "host": "https://staging.example.com",
        "stages": (
            Stage(duration="1m", users=40, spawn_rate=2.5, phase="ramp_up"),
            Stage(duration=12.5, users=40, spawn_rate=1, phase="steady"),
            Stage(duration=30, users=0, spawn_rate=40, phase="ramp_down"),
        ),
        "workers": 3,
        "user_weights": {"Shopper": 3, "Browser": 1},
        "results_dir": tmp_path / "results",
    }
    return RunPlan(**{**fields, **changes})


def rendered(plan: RunPlan, tmp_path: Path) -> list[dict[str, Any]]:
    values = run_values(plan, files={plan.locustfile.name: "from locust import User\n"}, image=None)
    path = tmp_path / "values.yaml"
    path.write_text(yaml.safe_dump(values))
    return helm_render(path, release=release_name(plan.run_id))


def one(objects: list[dict[str, Any]], kind: str, component: str) -> dict[str, Any]:
    (found,) = [
        o for o in objects
        if o["kind"] == kind and o["metadata"]["labels"].get("app.kubernetes.io/component") == component
    ]  # fmt: skip
    return found


def plain_env(container: dict[str, Any]) -> dict[str, str]:
    """The container's variables with a value (secretEnv/extraEnv aside: none are set here)."""
    items = container.get("env", [])
    assert len({e["name"] for e in items}) == len(items), "duplicate variables"
    return {e["name"]: e["value"] for e in items if "value" in e}


def chart_defaults() -> dict[str, Any]:
    return yaml.safe_load((CHART / "values.yaml").read_text())["run"]


def test_the_chart_defaults_are_the_contracts():
    run = chart_defaults()
    assert run["exporterPort"] == EXPORTER_PORT
    assert run["probesPort"] == PROBES_PORT
    assert run["expectWorkersMaxWait"] == EXPECT_WORKERS_MAX_WAIT_S
    assert run["latencyBuckets"] == DEFAULT_LATENCY_BUCKETS
    # the k8s backend waits for the final scrape as long as the chart's master does
    assert run["finalScrapeTimeoutSeconds"] == CHART_FINAL_SCRAPE_TIMEOUT_S


# The user's own Locust arguments: none; a profile's locust_options, an alias and what followed
# `--`, with user classes (values that YAML would read as other types, quoted or not).
USER_ARGS = (
    {},
    {
        "locust_options": {"stop-timeout": 10, "reset-stats": True, "tags": ["checkout", "yes"]},
        "locust_args": ("--loglevel", "WARNING", "--my-flag", "0.50"),
        "user_classes": ("Shopper", "Browser"),
    },
)


@pytest.mark.parametrize("user_args", USER_ARGS, ids=["loadctl-only", "user-args"])
def test_master_and_workers_run_the_contracts_command_lines(tmp_path: Path, user_args: dict[str, Any]):
    plan = plan_of(tmp_path, **user_args)
    objects = rendered(plan, tmp_path)
    master = one(objects, "Job", "master")["spec"]["template"]["spec"]["containers"][0]
    worker = one(objects, "Job", "worker")["spec"]["template"]["spec"]["containers"][0]
    defaults = chart_defaults()  # what the controller leaves to the chart (ports, waits)

    command = LocustCommand(
        locustfile=locustfile_arg(f"{RUN_MOUNT}/{plan.locustfile.name}", plugin=IMAGE_PLUGIN),
        host=plan.host,
        workers=plan.workers,
        master_host=one(objects, "Service", "master")["metadata"]["name"],
        bind_host="0.0.0.0",
        master_port=defaults["masterPort"],
        csv_prefix=f"{SCRATCH}/locust",
        html_path=f"{SCRATCH}/report.html",
        web_port=defaults["webPort"],
        extra_args=plan.user_locust_args,
        user_classes=plan.user_classes,
    )
    assert master["command"] == worker["command"] == ["locust"]
    # Locust runs where the run's files are mounted (locally: the user's folder)
    assert master["workingDir"] == worker["workingDir"] == RUN_MOUNT
    assert master["args"] == command.master_args()
    assert worker["args"] == command.worker_args()

    env = run_env(
        run_id=plan.run_id,
        profile=plan.profile,
        stages=plan.stages,
        user_weights=plan.user_weights,
        exporter_host="0.0.0.0",
        final_scrape_timeout_s=defaults["finalScrapeTimeoutSeconds"],
        locust_files_timeout_s=defaults["locustFilesTimeoutSeconds"],
    )
    for container in (master, worker):
        assert plain_env(container) == {**env, **CONTAINER_ONLY_ENV}


def test_the_probes_sidecar_runs_the_contracts_command_line(tmp_path: Path):
    plan = plan_of(tmp_path, probes=[{"name": "cache", "type": "redis", "url_env": "STAGING_REDIS_URL"}])
    pod = one(rendered(plan, tmp_path), "Job", "master")["spec"]["template"]["spec"]
    (sidecar,) = pod["initContainers"]
    assert sidecar["command"] == ["python"]
    assert sidecar["args"] == probes_args(
        config=f"{RUN_MOUNT}/probes.json", port=PROBES_PORT, bind_host="0.0.0.0", run_id=plan.run_id
    )
