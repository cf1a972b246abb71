"""The chart's schedules bringing their own test (schedules[].files / configMap) and keeping their
results on a PersistentVolumeClaim (results.persistence), rendered offline with `helm template`.
ci/shared-values.yaml is the scenario (it also goes through test_chart.py's lint, Kubernetes-schema
and Pod Security checks with every other ci/ file).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.chart.test_chart import (
    DNS_LABEL,
    MAX_RELEASE_NAME,
    SCENARIOS,
    of_kind,
    render,
    rendered,
    template_args,
    validate_object,
    write_values,
)
from tests.podexec import write_configmap_volume
from tests.support import helm, run_loadctl

pytestmark = pytest.mark.integration

MOUNTED = "/etc/loadctl/schedule"
RESULTS = "/opt/loadctl/results"
CLAIM = "lt-loadctl-results"


def shared_values() -> dict[str, Any]:
    return yaml.safe_load(SCENARIOS["shared"].read_text())


def cronjob_pods(objects: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """schedule name -> the pod template of its CronJob."""
    return {
        c["metadata"]["labels"]["loadctl.io/schedule"]: c["spec"]["jobTemplate"]["spec"]["template"]
        for c in of_kind(objects, "CronJob")
    }


def volumes_and_mounts(pod: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    """(volume name -> volume, mountPath -> mount) of the controller container."""
    (container,) = pod["spec"]["containers"]
    volumes = {v["name"]: v for v in pod["spec"]["volumes"]}
    return volumes, {m["mountPath"]: m for m in container["volumeMounts"]}


def args_of(pod: dict[str, Any]) -> list[str]:
    (container,) = pod["spec"]["containers"]
    return list(container["args"])


def option(args: list[str], name: str) -> str | None:
    return args[args.index(name) + 1] if name in args else None


def test_each_schedule_runs_its_test_from_files_a_configmap_or_the_image():
    objects = rendered("shared")
    pods = cronjob_pods(objects)
    schedules = {s["name"]: s for s in shared_values()["schedules"]}
    assert set(pods) == set(schedules)

    # files: rendered into a ConfigMap of its own, mounted read-only, the profile named inside it
    config_maps = {c["metadata"]["name"]: c for c in of_kind(objects, "ConfigMap")}
    assert set(config_maps) == {"lt-loadctl-nightly-soak-files", "loadctl-policy"}  # and the policy's
    config_map = config_maps["lt-loadctl-nightly-soak-files"]
    assert config_map["metadata"]["labels"]["loadctl.io/schedule"] == "nightly-soak"
    assert config_map["data"] == schedules["nightly-soak"]["files"]
    volumes, mounts = volumes_and_mounts(pods["nightly-soak"])
    assert volumes["schedule-files"]["configMap"] == {"name": "lt-loadctl-nightly-soak-files"}
    assert mounts[MOUNTED] == {"name": "schedule-files", "mountPath": MOUNTED, "readOnly": True}
    args = args_of(pods["nightly-soak"])
    assert args[:2] == ["run", f"{MOUNTED}/soak.yaml"] and "--gates" not in args  # the profile's own

    # configMap: the user's, mounted the same way; nothing rendered for it; gates inside it too
    volumes, mounts = volumes_and_mounts(pods["weekly-stress"])
    assert volumes["schedule-files"]["configMap"] == {"name": "checkout-stress-test"}
    assert mounts[MOUNTED]["readOnly"] is True
    args = args_of(pods["weekly-stress"])
    assert args[:2] == ["run", f"{MOUNTED}/stress.yaml"]
    assert option(args, "--gates") == f"{MOUNTED}/stress-gates.yaml"

    # neither: the profile name as before, nothing mounted
    volumes, mounts = volumes_and_mounts(pods["hourly-baseline"])
    assert "schedule-files" not in volumes and MOUNTED not in mounts
    assert args_of(pods["hourly-baseline"])[:2] == ["run", "baseline"]

    # mounted, not copied: no checksum annotation (the next Job reads the current ConfigMap anyway)
    for pod in pods.values():
        assert "annotations" not in pod["metadata"]

    # every night reports to the Pushgateway, labelled with its schedule
    pushgateway = shared_values()["controller"]["pushgateway"]["url"]
    for name, pod in pods.items():
        env = {e["name"]: e.get("value") for e in pod["spec"]["containers"][0]["env"]}
        assert env["LOADCTL_PUSHGATEWAY_URL"] == pushgateway and env["LOADCTL_SCHEDULE"] == name


def test_every_schedule_writes_its_results_to_the_kept_claim():
    objects = rendered("shared")
    (claim,) = of_kind(objects, "PersistentVolumeClaim")
    assert claim["metadata"]["name"] == CLAIM
    assert claim["metadata"]["annotations"] == {"helm.sh/resource-policy": "keep"}
    assert claim["metadata"]["labels"]["app.kubernetes.io/component"] == "results"
    assert claim["spec"]["accessModes"] == ["ReadWriteMany"]
    assert claim["spec"]["resources"] == {"requests": {"storage": "20Gi"}}
    assert "storageClassName" not in claim["spec"]  # the cluster's default
    for name, pod in cronjob_pods(objects).items():
        volumes, mounts = volumes_and_mounts(pod)
        assert volumes["results"] == {"name": "results", "persistentVolumeClaim": {"claimName": CLAIM}}, name
        assert mounts[RESULTS] == {"name": "results", "mountPath": RESULTS}, name
        assert option(args_of(pod), "--results-dir") == RESULTS, name  # the mount, not ./results
        assert pod["spec"]["securityContext"]["fsGroup"] == 10001, name  # the volume writable


@pytest.mark.parametrize(("given", "rendered_as"), [("manual", "manual"), ("-", ""), ("", None)])
def test_storage_class_name(tmp_path, given, rendered_as):
    override = write_values(tmp_path, {"results": {"persistence": {"storageClassName": given}}})
    (claim,) = of_kind(render(SCENARIOS["shared"], override), "PersistentVolumeClaim")
    assert claim["spec"].get("storageClassName") == rendered_as


def test_an_existing_claim_is_mounted_not_created(tmp_path):
    override = write_values(tmp_path, {"results": {"persistence": {"existingClaim": "soak-results"}}})
    objects = render(SCENARIOS["shared"], override)
    assert not of_kind(objects, "PersistentVolumeClaim")
    for pod in cronjob_pods(objects).values():
        volumes, _ = volumes_and_mounts(pod)
        assert volumes["results"]["persistentVolumeClaim"] == {"claimName": "soak-results"}


def test_without_persistence_results_go_with_the_pod():
    objects = rendered("schedules")
    assert not of_kind(objects, "PersistentVolumeClaim")
    for pod in cronjob_pods(objects).values():
        volumes, mounts = volumes_and_mounts(pod)
        assert volumes["results"] == {"name": "results", "emptyDir": {}}
        assert mounts[RESULTS]["name"] == "results"


def test_only_a_release_without_a_run_or_with_schedules_creates_the_claim(tmp_path):
    persistence = {"results": {"persistence": {"enabled": True}}}
    # a run release (what `loadctl run --backend k8s` installs, maybe with the user's --values)
    run_release = render(SCENARIOS["default"], write_values(tmp_path, persistence))
    assert not of_kind(run_release, "PersistentVolumeClaim")
    # a release holding only the claim, for `loadctl run --in-cluster` in the user's own pods
    alone = render(write_values(tmp_path, {**persistence, "run": {"enabled": False}}, "alone.yaml"))
    assert [o["kind"] for o in alone] == ["PersistentVolumeClaim"]


def test_the_mounted_profile_finds_its_locustfile_and_gates_beside_it(tmp_path):
    """The controller's own check of the files as the pod sees them: a kubelet's configMap volume
    (links through ..data), the profile's relative paths resolved against its folder."""
    objects = rendered("shared")
    (config_map,) = [c for c in of_kind(objects, "ConfigMap") if c["metadata"]["name"].endswith("-files")]
    mounted = tmp_path / "schedule"
    write_configmap_volume(mounted, config_map["data"])
    profile = args_of(cronjob_pods(objects)["nightly-soak"])[1].replace(MOUNTED, str(mounted))
    elsewhere = tmp_path / "workdir"
    elsewhere.mkdir()
    done = run_loadctl(["validate", profile], cwd=elsewhere, timeout=60)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "ok (2 stages, 7500s, 4 workers)" in done.stdout
    # and without the locustfile beside it, the same check names the missing file
    (mounted / "locustfile.py").unlink()
    done = run_loadctl(["validate", profile], cwd=elsewhere, timeout=60)
    assert done.returncode == 2 and "locustfile not found" in done.stdout + done.stderr


SOAK = {"name": "soak", "cron": "@daily"}
INVALID = {
    "files-and-configmap": (
        {**SOAK, "profile": "p.yaml", "files": {"p.yaml": "x"}, "configMap": "theirs"},
        "schedules soak: give files or configMap, not both",
    ),
    "profile-not-in-files": (
        {**SOAK, "profile": "q.yaml", "files": {"p.yaml": "x"}},
        'schedules soak: files has no "q.yaml": with files, profile names one of them (have: p.yaml)',
    ),
    "gates-not-in-files": (
        {**SOAK, "profile": "p.yaml", "gates": "g.yaml", "files": {"p.yaml": "x"}},
        'schedules soak: files has no "g.yaml": with files, gates names one of them (have: p.yaml)',
    ),
    "profile-path-with-configmap": (
        {**SOAK, "profile": "profiles/p.yaml", "configMap": "theirs"},
        'schedules soak: profile "profiles/p.yaml": with files or configMap, profile names a file in them',
    ),
    "gates-path-with-files": (
        {**SOAK, "profile": "p.yaml", "gates": "gates/g.yaml", "files": {"p.yaml": "x"}},
        'schedules soak: gates "gates/g.yaml": with files or configMap, gates names a file in them',
    ),
    "file-name-with-directory": (
        {**SOAK, "profile": "p.yaml", "files": {"p.yaml": "x", "lib/helpers.py": "y"}},
        "schedules.0.files",
    ),
    "no-files": ({**SOAK, "profile": "p.yaml", "files": {}}, "schedules.0.files"),
    "configmap-name": ({**SOAK, "profile": "p.yaml", "configMap": "Theirs"}, "schedules.0.configMap"),
    "no-profile": ({**SOAK, "files": {"p.yaml": "x"}}, "profile is required"),
}


@pytest.mark.parametrize("case", INVALID)
def test_invalid_schedules_are_rejected(tmp_path, case):
    schedule, message = INVALID[case]
    override = write_values(tmp_path, {"run": {"enabled": False}, "schedules": [schedule]})
    done = helm(*template_args(override))
    assert done.returncode != 0, f"{case} was accepted"
    assert message in done.stderr, done.stderr


@pytest.mark.parametrize(
    ("persistence", "message"),
    [
        ({"size": "lots"}, "results.persistence.size"),
        ({"accessModes": ["ReadOnlyMany"]}, "results.persistence.accessModes.0"),
        ({"accessModes": []}, "results.persistence.accessModes"),
        ({"existingClaim": "Soak_Results"}, "results.persistence.existingClaim"),
        ({"storageClassName": "Fast SSD"}, "results.persistence.storageClassName"),
        ({"enable": True}, "enable"),
    ],
)
def test_invalid_persistence_is_rejected(tmp_path: Path, persistence, message):
    override = write_values(tmp_path, {"results": {"persistence": persistence}})
    done = helm(*template_args(SCENARIOS["shared"], override))
    assert done.returncode != 0, f"{persistence} was accepted"
    assert message in done.stderr, done.stderr


def test_names_fit_with_the_longest_release_and_schedule_names(tmp_path):
    longest = "a-schedule-name-of-forty-characters-long"
    values = {
        "run": {"enabled": False},
        "schedules": [{"name": longest, "cron": "@daily", "profile": "p.yaml", "files": {"p.yaml": "x"}}],
        "results": {"persistence": {"enabled": True}},
    }
    objects = render(write_values(tmp_path, values), release=MAX_RELEASE_NAME)
    names = {o["kind"]: o["metadata"]["name"] for o in objects}
    assert names["ConfigMap"].endswith(f"-{longest}-files") and len(names["ConfigMap"]) <= 63
    assert len(names["PersistentVolumeClaim"]) <= 63 and names["PersistentVolumeClaim"].endswith("-results")
    for obj in objects:
        assert DNS_LABEL.match(obj["metadata"]["name"]), obj["metadata"]["name"]
        validate_object(obj)
