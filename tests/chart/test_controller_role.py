"""The scheduled controller's Role, derived from controller.runValues: the values of the run
releases its CronJobs install (a ConfigMap mounted into the controller, `loadctl run --values`).
Rendered offline with `helm template`; the run releases themselves are rendered from the same
values, so the Role is checked against what they really contain.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from controller.k8s.helm import load_values_files
from tests.chart.test_chart import MAX_RELEASE_NAME, SCENARIOS, of_kind, render, template_args, write_values
from tests.podexec import write_configmap_volume
from tests.support import helm

pytestmark = pytest.mark.integration

SCHEDULE = {"name": "nightly", "cron": "0 2 * * *", "profile": "peak"}
MOUNTED = "/etc/loadctl/run-values"
VALUES_FILE = f"{MOUNTED}/values.yaml"
WRITE = {"get", "list", "create", "patch", "delete"}
# what every run needs, whatever runValues says (see the comments in role.yaml)
PLAIN_RUN = {
    ("batch", "jobs"): {"get", "list", "watch", "create", "delete", "patch"},
    ("", "pods"): {"get", "list", "watch"},
    ("", "pods/portforward"): {"get", "create"},  # get: the websocket port-forward
    ("", "services"): {"get", "list", "watch", "create", "update", "patch", "delete"},
    ("", "configmaps"): {"get", "list", "watch", "create", "update", "patch", "delete"},
    ("", "secrets"): {"get", "list", "watch", "create", "update", "patch", "delete"},
    ("", "events"): {"get", "list", "watch"},
    ("coordination.k8s.io", "leases"): {"get", "create", "update", "delete"},
    ("rbac.authorization.k8s.io", "roles"): WRITE,
    ("rbac.authorization.k8s.io", "rolebindings"): WRITE,
}
MONITORS = {
    "serviceMonitor": "servicemonitors",
    "podMonitor": "podmonitors",
    "prometheusRule": "prometheusrules",
}
# kind of a run release's object -> (API group, resource) the controller needs to create it
RESOURCE_OF_KIND = {
    "Job": ("batch", "jobs"),
    "Service": ("", "services"),
    "ConfigMap": ("", "configmaps"),
    "Role": ("rbac.authorization.k8s.io", "roles"),
    "RoleBinding": ("rbac.authorization.k8s.io", "rolebindings"),
    "ServiceMonitor": ("monitoring.coreos.com", "servicemonitors"),
    "PodMonitor": ("monitoring.coreos.com", "podmonitors"),
    "PrometheusRule": ("monitoring.coreos.com", "prometheusrules"),
    "NetworkPolicy": ("networking.k8s.io", "networkpolicies"),
}


def schedules_release(tmp_path: Path, run_values: dict[str, Any], **more: Any) -> list[dict[str, Any]]:
    values = {"run": {"enabled": False}, "schedules": [SCHEDULE], "controller": {"runValues": run_values}}
    return render(write_values(tmp_path, {**values, **more}, "schedules.yaml"))


def grants(objects: list[dict[str, Any]]) -> dict[tuple[str, str], set[str]]:
    """(API group, resource) -> verbs of the controller's Role."""
    (role,) = of_kind(objects, "Role")
    granted: dict[tuple[str, str], set[str]] = {}
    for rule in role["rules"]:
        for group in rule["apiGroups"]:
            for resource in rule["resources"]:
                granted.setdefault((group, resource), set()).update(rule["verbs"])
    return granted


def rule_for(objects: list[dict[str, Any]], resource: str) -> dict[str, Any]:
    (role,) = of_kind(objects, "Role")
    (rule,) = [r for r in role["rules"] if resource in r["resources"]]
    return dict(rule)


def controller_container(objects: list[dict[str, Any]]) -> tuple[dict[str, Any], dict[str, Any]]:
    """(the controller container, the pod spec) of the one CronJob."""
    (cronjob,) = of_kind(objects, "CronJob")
    pod = cronjob["spec"]["jobTemplate"]["spec"]["template"]["spec"]
    (container,) = pod["containers"]
    return container, pod


def run_values_config_maps(objects: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [c for c in of_kind(objects, "ConfigMap") if c["metadata"]["name"].endswith("-run-values")]


def test_a_default_schedules_release_grants_a_plain_run_and_nothing_more(tmp_path):
    objects = schedules_release(tmp_path, {})
    assert grants(objects) == PLAIN_RUN  # no monitoring, no networkpolicies, no serviceaccounts
    assert run_values_config_maps(objects) == []
    container, pod = controller_container(objects)
    assert "--values" not in container["args"]
    assert "run-values" not in {v["name"] for v in pod["volumes"]}


@pytest.mark.parametrize("monitor", sorted(MONITORS))
def test_each_monitoring_kind_only_when_run_values_enable_it(tmp_path, monitor):
    objects = schedules_release(tmp_path, {monitor: {"enabled": True}})
    assert grants(objects) == {**PLAIN_RUN, ("monitoring.coreos.com", MONITORS[monitor]): WRITE}


def test_a_service_monitor_and_a_prometheus_rule_together(tmp_path):
    run_values = {"serviceMonitor": {"enabled": True}, "prometheusRule": {"enabled": True}}
    rule = rule_for(schedules_release(tmp_path, run_values), "servicemonitors")
    assert rule["apiGroups"] == ["monitoring.coreos.com"]
    assert rule["resources"] == ["servicemonitors", "prometheusrules"]


def test_network_policies_follow_the_run_values_not_the_releases_own(tmp_path):
    wanted = schedules_release(tmp_path, {"networkPolicy": {"enabled": True}})
    assert grants(wanted) == {**PLAIN_RUN, ("networking.k8s.io", "networkpolicies"): WRITE}
    # this release's own networkPolicy shapes its own run, which the controller never installs
    own = schedules_release(tmp_path, {}, networkPolicy={"enabled": True})
    assert grants(own) == PLAIN_RUN


def test_the_run_service_account_is_readable_only_when_named(tmp_path):
    objects = schedules_release(tmp_path, {"run": {"serviceAccountName": "loadtest-runner"}})
    assert grants(objects) == {**PLAIN_RUN, ("", "serviceaccounts"): {"get"}}
    assert rule_for(objects, "serviceaccounts")["resourceNames"] == ["loadtest-runner"]


def test_without_the_heartbeat_role_no_roles_to_create(tmp_path):
    objects = schedules_release(tmp_path, {"rbac": {"create": False}})
    rbac = {key for key in PLAIN_RUN if key[0] == "rbac.authorization.k8s.io"}
    assert grants(objects) == {key: verbs for key, verbs in PLAIN_RUN.items() if key not in rbac}


RUN_VALUES = {
    "serviceMonitor": {"enabled": True, "labels": {"release": "kube-prometheus-stack"}},
    "worker": {"resources": {"requests": {"cpu": "500m", "memory": "256Mi"}}},
    "image": {"tag": "1.2.0"},
    # values YAML must carry through unchanged: multi-line text, strings that look like other types
    "extraEnv": [
        {"name": "NOTE", "value": "line one\n  indented: not a key\n"},
        {"name": "YES", "value": "yes"},
        {"name": "PORT", "value": "8080"},
        {"name": "EMPTY", "value": ""},
    ],
}


def test_run_values_reach_the_controller_as_a_mounted_values_file(tmp_path):
    extra = ["--values", "/etc/loadctl/schedule/mine.yaml", "--workers", "4"]
    objects = schedules_release(
        tmp_path, RUN_VALUES, controller={"runValues": RUN_VALUES, "extraArgs": extra}
    )
    (config_map,) = run_values_config_maps(objects)
    assert config_map["metadata"]["name"] == "lt-loadctl-run-values"
    assert yaml.safe_load(config_map["data"]["values.yaml"]) == RUN_VALUES  # round-trips
    container, pod = controller_container(objects)
    volumes = {v["name"]: v for v in pod["volumes"]}
    assert volumes["run-values"]["configMap"] == {"name": "lt-loadctl-run-values"}
    mounts = {m["mountPath"]: m for m in container["volumeMounts"]}
    assert mounts[MOUNTED] == {"name": "run-values", "mountPath": MOUNTED, "readOnly": True}
    # before controller.extraArgs: a --values there is read after it
    assert container["args"][-6:] == ["--values", VALUES_FILE, *extra]


def test_a_values_file_in_extra_args_wins_over_run_values(tmp_path):
    """The controller's own reading of the files, in the CronJob's order, as the kubelet mounts them."""
    extra = ["--values", "/etc/loadctl/schedule/mine.yaml"]
    objects = schedules_release(
        tmp_path, RUN_VALUES, controller={"runValues": RUN_VALUES, "extraArgs": extra}
    )
    (config_map,) = run_values_config_maps(objects)
    write_configmap_volume(tmp_path / "run-values", config_map["data"])
    write_configmap_volume(tmp_path / "schedule", {"mine.yaml": "image: {tag: '1.3.0'}\n"})
    container, _ = controller_container(objects)
    args = container["args"]
    files = [args[i + 1] for i, arg in enumerate(args) if arg == "--values"]
    assert files == [VALUES_FILE, "/etc/loadctl/schedule/mine.yaml"]
    local = tuple(tmp_path / Path(f).relative_to("/etc/loadctl") for f in files)
    merged = load_values_files(local)
    assert merged["image"] == {"tag": "1.3.0"}  # the user's later file
    assert merged["serviceMonitor"] == RUN_VALUES["serviceMonitor"]


@pytest.mark.parametrize(
    "run_values",
    [
        {},
        {"serviceMonitor": {"enabled": True}, "prometheusRule": {"enabled": True}},
        {"podMonitor": {"enabled": True}, "networkPolicy": {"enabled": True}},
        {"grafanaDashboards": {"enabled": True}, "run": {"serviceAccountName": "runner"}},
    ],
    ids=["plain", "servicemonitor-rule", "podmonitor-netpol", "dashboards-account"],
)
def test_the_role_grants_exactly_the_kinds_the_run_release_renders(tmp_path, run_values):
    """The run release rendered as the controller installs it: runValues under loadctl's own values
    (a run and its heartbeat Lease). Every kind in it is granted; no optional kind beyond them."""
    objects = schedules_release(tmp_path, run_values)
    granted = grants(objects)
    mounted = tmp_path / "values.yaml"  # what the controller reads (nothing: no values file)
    mounted.write_text("".join(c["data"]["values.yaml"] for c in run_values_config_maps(objects)))
    run_release = render(mounted, SCENARIOS["default"], sets=("run.heartbeat.lease=loadctl-target-x",))
    needed = {RESOURCE_OF_KIND[o["kind"]] for o in run_release}
    assert all("create" in granted.get(resource, set()) for resource in needed), needed - set(granted)
    optional = {RESOURCE_OF_KIND[kind] for kind in ("ServiceMonitor", "PodMonitor", "PrometheusRule")}
    optional.add(RESOURCE_OF_KIND["NetworkPolicy"])
    assert set(granted) & optional == needed & optional


@pytest.mark.parametrize(
    ("run_values", "message"),
    [
        (
            {"serviceMonitor": {"enabled": True}, "podMonitor": {"enabled": True}},
            "controller.runValues: serviceMonitor.enabled and podMonitor.enabled are both true",
        ),
        (
            {"policy": {"allowedHosts": ["*.staging.example.com"]}},
            "controller.runValues: policy belongs to this release",
        ),
        ({"schedules": [SCHEDULE]}, "controller.runValues: schedules belong to this release"),
    ],
    ids=["both-monitors", "policy", "schedules"],
)
def test_run_values_every_run_would_refuse_fail_at_install(tmp_path, run_values, message):
    values = {"run": {"enabled": False}, "schedules": [SCHEDULE], "controller": {"runValues": run_values}}
    done = helm(*template_args(write_values(tmp_path, values)))
    assert done.returncode != 0
    assert message in done.stderr


def test_the_values_config_map_name_fits_the_longest_release_name(tmp_path):
    values = {"run": {"enabled": False}, "schedules": [SCHEDULE], "controller": {"runValues": {"a": 1}}}
    objects = render(write_values(tmp_path, values), release=MAX_RELEASE_NAME)
    (config_map,) = run_values_config_maps(objects)
    name = config_map["metadata"]["name"]
    assert len(name) <= 63 and name.endswith("-run-values"), name
    _, pod = controller_container(objects)
    assert {"name": "run-values", "configMap": {"name": name}} in pod["volumes"]
