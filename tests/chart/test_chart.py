"""The Helm chart (charts/loadctl), checked offline: helm lint, every ci/ scenario rendered with
`helm template` and every object validated against the Kubernetes 1.31 OpenAPI schemas
(kubernetes-validate, strict), Pod Security "restricted", the run's Jobs and commands, schedules and
RBAC, name lengths, monitoring toggles, and values the schema must reject.
"""

from __future__ import annotations

import copy
import functools
import json
import math
import re
import subprocess
from pathlib import Path
from typing import Any

import jsonschema
import kubernetes_validate
import pytest
import yaml

from controller.prom.binaries import find_promtool
from controller.prom.rules import render_rules
from tests.support import CHART, REPO_ROOT, helm, helm_render

pytestmark = pytest.mark.integration

SCENARIOS = {p.name.removesuffix("-values.yaml"): p for p in sorted((CHART / "ci").glob("*-values.yaml"))}
RUN_SCENARIOS = ["default", "monitoring", "peak"]
K8S_VERSION = "1.31"
RELEASE = "lt"
MAX_RELEASE_NAME = "r" * 53  # helm refuses release names longer than 53 chars

PLUGIN = "/opt/loadctl/locust_workers/plugin.py"
RUN_MOUNT = "/etc/loadctl/run"
DNS_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")
LABEL_NAME = re.compile(r"^([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]$")
LABEL_PREFIX = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$")
LABEL_VALUE = re.compile(r"^(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?$")
RECOMMENDED_LABELS = (
    "app.kubernetes.io/name",
    "app.kubernetes.io/instance",
    "app.kubernetes.io/version",
    "app.kubernetes.io/component",
    "app.kubernetes.io/managed-by",
    "app.kubernetes.io/part-of",
)
MONITORING_KINDS = {"ServiceMonitor", "PodMonitor", "PrometheusRule"}
RESTRICTED_VOLUME_TYPES = {
    "configMap",
    "csi",
    "downwardAPI",
    "emptyDir",
    "ephemeral",
    "persistentVolumeClaim",
    "projected",
    "secret",
}


# --- helm --------------------------------------------------------------------------------------


def template_args(*value_files: Path, release: str = RELEASE, sets: tuple[str, ...] = ()) -> list[str]:
    args = ["template", release, str(CHART), "--namespace", "loadtest"]
    for path in value_files:
        args += ["-f", str(path)]
    for item in sets:
        args += ["--set", item]
    return args


def render(*value_files: Path, release: str = RELEASE, sets: tuple[str, ...] = ()) -> list[dict[str, Any]]:
    return helm_render(*value_files, release=release, sets=sets)


@functools.cache
def _rendered(scenario: str) -> str:
    return yaml.safe_dump_all(render(SCENARIOS[scenario]))


def rendered(scenario: str) -> list[dict[str, Any]]:
    """A ci/ scenario's objects (rendered once per session; a fresh copy per call)."""
    return list(yaml.safe_load_all(_rendered(scenario)))


def write_values(tmp_path: Path, values: dict[str, Any], name: str = "override.yaml") -> Path:
    path = tmp_path / name
    path.write_text(yaml.safe_dump(values))
    return path


# --- values ------------------------------------------------------------------------------------


def deep_merge(base: dict[str, Any], override: dict[str, Any]) -> dict[str, Any]:
    out = copy.deepcopy(base)
    for key, value in override.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = deep_merge(out[key], value)
        else:
            out[key] = copy.deepcopy(value)
    return out


def chart_defaults() -> dict[str, Any]:
    return yaml.safe_load((CHART / "values.yaml").read_text())


def scenario_values(scenario: str) -> dict[str, Any]:
    return deep_merge(chart_defaults(), yaml.safe_load(SCENARIOS[scenario].read_text()) or {})


# --- object helpers ----------------------------------------------------------------------------


def of_kind(objects: list[dict[str, Any]], kind: str) -> list[dict[str, Any]]:
    return [o for o in objects if o["kind"] == kind]


def component(objects: list[dict[str, Any]], kind: str, name: str) -> dict[str, Any]:
    found = [
        o for o in of_kind(objects, kind) if o["metadata"]["labels"]["app.kubernetes.io/component"] == name
    ]
    assert len(found) == 1, (kind, name, [o["metadata"]["name"] for o in found])
    return found[0]


def pod_templates(objects: list[dict[str, Any]]) -> list[tuple[str, dict[str, Any]]]:
    """(where, pod template) of every Job and CronJob."""
    out = []
    for obj in objects:
        where = f"{obj['kind']}/{obj['metadata']['name']}"
        if obj["kind"] == "Job":
            out.append((where, obj["spec"]["template"]))
        elif obj["kind"] == "CronJob":
            out.append((where, obj["spec"]["jobTemplate"]["spec"]["template"]))
        else:
            assert obj["kind"] not in ("Pod", "Deployment", "StatefulSet", "DaemonSet", "ReplicaSet"), where
    return out


def env_of(container: dict[str, Any]) -> dict[str, Any]:
    names = [e["name"] for e in container.get("env", [])]
    assert len(names) == len(set(names)), f"duplicate env vars: {names}"
    return {e["name"]: e.get("value", e.get("valueFrom")) for e in container.get("env", [])}


def all_label_maps(obj: dict[str, Any]) -> list[dict[str, str]]:
    maps = [obj["metadata"].get("labels") or {}]
    for _, template in pod_templates([obj]):
        maps.append(template["metadata"].get("labels") or {})
    return maps


# --- structural schemas of the Prometheus Operator objects (not in kubernetes-validate) --------

_DURATION = {
    "type": "string",
    "pattern": r"^(0|([0-9]+y)?([0-9]+w)?([0-9]+d)?([0-9]+h)?([0-9]+m)?([0-9]+s)?([0-9]+ms)?)$",
}
_STRING_MAP = {"type": "object", "additionalProperties": {"type": "string"}}
_METADATA = {
    "type": "object",
    "additionalProperties": False,
    "required": ["name", "namespace", "labels"],
    "properties": {
        "name": {"type": "string", "pattern": DNS_LABEL.pattern, "maxLength": 63},
        "namespace": {"type": "string"},
        "labels": _STRING_MAP,
        "annotations": _STRING_MAP,
    },
}
_SELECTOR = {
    "type": "object",
    "additionalProperties": False,
    "required": ["matchLabels"],
    "properties": {"matchLabels": {**_STRING_MAP, "minProperties": 1}},
}
_NAMESPACE_SELECTOR = {
    "type": "object",
    "additionalProperties": False,
    "properties": {
        "any": {"type": "boolean"},
        "matchNames": {"type": "array", "minItems": 1, "items": {"type": "string"}},
    },
}
_RELABELING = {
    "type": "object",
    "additionalProperties": False,
    "properties": {
        "sourceLabels": {
            "type": "array",
            "items": {"type": "string", "pattern": r"^[a-zA-Z_][a-zA-Z0-9_]*$"},
        },
        "targetLabel": {"type": "string"},
        "action": {"enum": ["replace", "keep", "drop", "labelmap", "labeldrop", "labelkeep"]},
        "regex": {"type": "string"},
        "replacement": {"type": "string"},
        "separator": {"type": "string"},
    },
}


def _endpoint(extra: dict[str, Any]) -> dict[str, Any]:
    return {
        "type": "object",
        "additionalProperties": False,
        "required": ["port", "path", "interval"],
        "properties": {
            "port": {"type": "string"},
            "path": {"type": "string", "pattern": "^/"},
            "interval": _DURATION,
            "honorLabels": {"type": "boolean"},
            "relabelings": {"type": "array", "items": _RELABELING},
            **extra,
        },
    }


def _crd_object(kind: str, spec: dict[str, Any]) -> dict[str, Any]:
    return {
        "type": "object",
        "additionalProperties": False,
        "required": ["apiVersion", "kind", "metadata", "spec"],
        "properties": {
            "apiVersion": {"const": "monitoring.coreos.com/v1"},
            "kind": {"const": kind},
            "metadata": _METADATA,
            "spec": spec,
        },
    }


_RULE = {
    "type": "object",
    "additionalProperties": False,
    "required": ["expr"],
    "oneOf": [{"required": ["record"]}, {"required": ["alert"]}],
    "properties": {
        "record": {"type": "string", "pattern": r"^[a-zA-Z_:][a-zA-Z0-9_:]*$"},
        "alert": {"type": "string", "pattern": r"^[A-Za-z][A-Za-z0-9]*$"},
        "expr": {"type": "string", "minLength": 1},
        "for": _DURATION,
        "labels": _STRING_MAP,
        "annotations": _STRING_MAP,
    },
}
CRD_SCHEMAS = {
    "ServiceMonitor": _crd_object(
        "ServiceMonitor",
        {
            "type": "object",
            "additionalProperties": False,
            "required": ["selector", "endpoints"],
            "properties": {
                "selector": _SELECTOR,
                "namespaceSelector": _NAMESPACE_SELECTOR,
                "endpoints": {
                    "type": "array",
                    "minItems": 1,
                    "items": _endpoint({"scrapeTimeout": _DURATION}),
                },
            },
        },
    ),
    "PodMonitor": _crd_object(
        "PodMonitor",
        {
            "type": "object",
            "additionalProperties": False,
            "required": ["selector", "podMetricsEndpoints"],
            "properties": {
                "selector": _SELECTOR,
                "namespaceSelector": _NAMESPACE_SELECTOR,
                "podMetricsEndpoints": {"type": "array", "minItems": 1, "items": _endpoint({})},
            },
        },
    ),
    "PrometheusRule": _crd_object(
        "PrometheusRule",
        {
            "type": "object",
            "additionalProperties": False,
            "required": ["groups"],
            "properties": {
                "groups": {
                    "type": "array",
                    "minItems": 1,
                    "items": {
                        "type": "object",
                        "additionalProperties": False,
                        "required": ["name", "rules"],
                        "properties": {
                            "name": {"type": "string", "minLength": 1},
                            "rules": {"type": "array", "minItems": 1, "items": _RULE},
                        },
                    },
                }
            },
        },
    ),
}


def validate_object(obj: dict[str, Any]) -> None:
    where = f"{obj.get('kind')}/{obj.get('metadata', {}).get('name')}"
    if obj["kind"] in CRD_SCHEMAS:
        errors = sorted(jsonschema.Draft7Validator(CRD_SCHEMAS[obj["kind"]]).iter_errors(obj), key=str)
        assert not errors, f"{where}: " + "; ".join(f"{list(e.absolute_path)}: {e.message}" for e in errors)
        return
    try:
        kubernetes_validate.validate(obj, K8S_VERSION, strict=True)
    except kubernetes_validate.ValidationError as e:
        pytest.fail(f"{where} is not a valid {K8S_VERSION} object at {list(e.absolute_path)}: {e.message}")
    except kubernetes_validate.SchemaNotFoundError as e:
        pytest.fail(f"{where}: {e.message}")


# --- lint and render ---------------------------------------------------------------------------


def test_the_ci_scenarios_exist():
    assert set(SCENARIOS) >= {"default", "monitoring", "schedules", "peak", "shared"}


@pytest.mark.parametrize("scenario", [None, *SCENARIOS])
def test_helm_lint_strict(scenario):
    args = ["lint", "--strict", str(CHART)]
    if scenario:
        args += ["-f", str(SCENARIOS[scenario])]
    done = helm(*args)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "0 chart(s) failed" in done.stdout


@pytest.mark.parametrize("scenario", SCENARIOS)
def test_every_object_is_valid_for_kubernetes_1_31(scenario):
    objects = rendered(scenario)
    assert objects
    for obj in objects:
        validate_object(obj)


@pytest.mark.parametrize("scenario", SCENARIOS)
def test_pods_meet_the_restricted_pod_security_standard(scenario):
    templates = pod_templates(rendered(scenario))
    assert templates
    for where, template in templates:
        spec = template["spec"]
        pod_sc = spec.get("securityContext") or {}
        for key in ("hostNetwork", "hostPID", "hostIPC"):
            assert not spec.get(key, False), (where, key)
        for volume in spec.get("volumes", []):
            kinds = set(volume) - {"name"}
            assert kinds <= RESTRICTED_VOLUME_TYPES, (where, volume)
        assert "sysctls" not in pod_sc, where
        assert pod_sc.get("runAsUser", 1) != 0, where
        containers = [
            *spec.get("initContainers", []),
            *spec["containers"],
            *spec.get("ephemeralContainers", []),
        ]
        for container in containers:
            sc = container.get("securityContext") or {}
            at = (where, container["name"])
            assert sc.get("privileged", False) is False, at
            assert sc.get("allowPrivilegeEscalation") is False, at
            assert sc.get("readOnlyRootFilesystem") is True, at  # ours, stricter than the standard
            assert "ALL" in sc.get("capabilities", {}).get("drop", []), at
            assert set(sc.get("capabilities", {}).get("add", [])) <= {"NET_BIND_SERVICE"}, at
            non_root = sc.get("runAsNonRoot", pod_sc.get("runAsNonRoot"))
            assert non_root is True, at
            assert sc.get("runAsUser", pod_sc.get("runAsUser", 1)) != 0, at
            seccomp = (sc.get("seccompProfile") or pod_sc.get("seccompProfile") or {}).get("type")
            assert seccomp in ("RuntimeDefault", "Localhost"), at
            assert sc.get("procMount", "Default") == "Default", at
            for port in container.get("ports", []):
                assert not port.get("hostPort"), at
            mounts = {m["mountPath"]: m for m in container.get("volumeMounts", [])}
            assert "/tmp" in mounts, f"{at}: a read-only root needs a writable /tmp"


@pytest.mark.parametrize("scenario", SCENARIOS)
def test_no_cluster_wide_rbac(scenario):
    kinds = {o["kind"] for o in rendered(scenario)}
    assert not kinds & {"ClusterRole", "ClusterRoleBinding"}
    for obj in rendered(scenario):
        assert obj["metadata"].get("namespace") == "loadtest", (obj["kind"], obj["metadata"]["name"])


# --- the run -----------------------------------------------------------------------------------


def expected_stages(values: dict[str, Any]) -> list[dict[str, Any]]:
    return [
        {
            "duration": s["duration"],
            "users": s["users"],
            "spawn_rate": s["spawnRate"],
            "phase": s.get("phase", "steady"),
        }
        for s in values["run"]["stages"]
    ]


@pytest.mark.parametrize("scenario", RUN_SCENARIOS)
def test_master_and_worker_jobs(scenario):
    from locust_workers.contract import decode_stages

    values = scenario_values(scenario)
    run = values["run"]
    objects = rendered(scenario)
    master_job, worker_job = component(objects, "Job", "master"), component(objects, "Job", "worker")
    service = component(objects, "Service", "master")
    deadline = math.ceil(sum(s["duration"] for s in run["stages"])) + run["deadlineGraceSeconds"]

    for job in (master_job, worker_job):
        assert job["spec"]["backoffLimit"] == 0
        assert job["spec"]["activeDeadlineSeconds"] == deadline
        assert job["spec"]["ttlSecondsAfterFinished"] == run["ttlSecondsAfterFinished"]
        pod = job["spec"]["template"]["spec"]
        assert pod["restartPolicy"] == "Never"
        assert pod["automountServiceAccountToken"] is False
        labels = job["spec"]["template"]["metadata"]["labels"]
        assert labels["loadctl.io/run-id"] == run["id"]
        assert labels["loadctl.io/profile"] == run["profile"]
    assert worker_job["spec"]["parallelism"] == worker_job["spec"]["completions"] == run["workers"]
    assert "parallelism" not in master_job["spec"]
    # a SIGTERM'd master still waits for the final scrape and, meanwhile, for the fetch of Locust's files
    held = max(run["finalScrapeTimeoutSeconds"], run["locustFilesTimeoutSeconds"])
    assert master_job["spec"]["template"]["spec"]["terminationGracePeriodSeconds"] == math.ceil(held) + 30

    master = master_job["spec"]["template"]["spec"]["containers"][0]
    worker = worker_job["spec"]["template"]["spec"]["containers"][0]
    files = f"{RUN_MOUNT}/{run['locustfile']},{PLUGIN}"
    assert master["command"] == worker["command"] == ["locust"]
    assert master["args"] == [
        "-f", files, "--master", "--headless", "--only-summary", "--exit-code-on-error", "0",
        "--expect-workers", str(run["workers"]),
        "--expect-workers-max-wait", str(run["expectWorkersMaxWait"]),
        "--master-bind-host", "0.0.0.0", "--master-bind-port", str(run["masterPort"]),
        "--web-port", str(run["webPort"]), "--host", run["host"],
        "--csv", "/tmp/loadctl/locust", "--csv-full-history", "--html", "/tmp/loadctl/report.html",
    ]  # fmt: skip
    assert worker["args"] == [
        "-f", files, "--worker", "--master-host", service["metadata"]["name"],
        "--master-port", str(run["masterPort"]), "--host", run["host"],
    ]  # fmt: skip

    for container in (master, worker):
        env = env_of(container)
        assert env["LOADCTL_RUN_ID"] == run["id"]
        assert env["LOADCTL_PROFILE"] == run["profile"]
        assert env["LOADCTL_EXPORTER_HOST"] == "0.0.0.0"
        assert env["LOADCTL_EXPORTER_PORT"] == str(run["exporterPort"])
        assert json.loads(env["LOADCTL_STAGES"]) == expected_stages(values)
        assert len(decode_stages(env["LOADCTL_STAGES"])) == len(run["stages"])
        assert json.loads(env["LOADCTL_USER_WEIGHTS"]) == run["userWeights"]
        assert float(env["LOADCTL_FINAL_SCRAPE_TIMEOUT"]) == run["finalScrapeTimeoutSeconds"]
        assert float(env["LOADCTL_LOCUST_FILES_TIMEOUT"]) == run["locustFilesTimeoutSeconds"]
        assert env["LOADCTL_LATENCY_BUCKETS"] == run["latencyBuckets"]
        assert env["PYTHONUNBUFFERED"] == env["PYTHONDONTWRITEBYTECODE"] == "1"
        assert env["HOME"] == "/tmp"
        for item in values["secretEnv"]:
            assert env[item["name"]] == {"secretKeyRef": {"name": item["secretName"], "key": item["key"]}}
        for item in values["extraEnv"]:
            assert env[item["name"]] == item["value"]
        assert container.get("envFrom", []) == values["envFrom"]
        assert all("secretRef" in source for source in container.get("envFrom", []))
        mounts = {m["mountPath"]: m for m in container["volumeMounts"]}
        assert mounts[RUN_MOUNT]["readOnly"] is True

    config = component(objects, "ConfigMap", "run")
    assert config["data"] == run["files"]
    for job in (master_job, worker_job):
        volumes = {v["name"]: v for v in job["spec"]["template"]["spec"]["volumes"]}
        mounts = {
            m["mountPath"]: m["name"]
            for m in job["spec"]["template"]["spec"]["containers"][0]["volumeMounts"]
        }
        assert volumes[mounts[RUN_MOUNT]]["configMap"]["name"] == config["metadata"]["name"]
        assert volumes[mounts["/tmp"]] == {"name": mounts["/tmp"], "emptyDir": {}}


@pytest.mark.parametrize("scenario", RUN_SCENARIOS)
def test_master_service_ports_and_scrape_annotations(scenario):
    run = scenario_values(scenario)["run"]
    objects = rendered(scenario)
    service = component(objects, "Service", "master")
    master_template = component(objects, "Job", "master")["spec"]["template"]
    container_ports = {
        p["name"]: p["containerPort"] for p in master_template["spec"]["containers"][0]["ports"]
    }
    assert container_ports == {
        "master": run["masterPort"],
        "web": run["webPort"],
        "metrics": run["exporterPort"],
    }
    ports = {p["name"]: p for p in service["spec"]["ports"]}
    assert {name: (p["port"], p["targetPort"]) for name, p in ports.items()} == {
        name: (port, name) for name, port in container_ports.items()
    }
    assert service["spec"]["type"] == "ClusterIP"
    selector = service["spec"]["selector"]
    assert selector["app.kubernetes.io/instance"] == RELEASE
    assert selector["app.kubernetes.io/component"] == "master"
    assert selector.items() <= master_template["metadata"]["labels"].items()
    worker_labels = component(objects, "Job", "worker")["spec"]["template"]["metadata"]["labels"]
    assert not selector.items() <= worker_labels.items()
    annotations = master_template["metadata"].get("annotations", {})
    values = scenario_values(scenario)
    if values["serviceMonitor"]["enabled"] or values["podMonitor"]["enabled"]:
        # one scrape path: a monitor, so no annotations (a second path would double every counter)
        assert not any(key.startswith("prometheus.io/") for key in annotations)
    else:
        assert annotations["prometheus.io/scrape"] == "true"
        assert annotations["prometheus.io/port"] == str(run["exporterPort"])
        assert annotations["prometheus.io/path"] == "/metrics"
    # an HTTP probe on /metrics would count as the final scrape the exporter waits for
    probe = master_template["spec"]["containers"][0].get("readinessProbe", {})
    assert "httpGet" not in probe


def master_annotations(tmp_path: Path, override: dict[str, Any]) -> dict[str, str]:
    objects = render(SCENARIOS["default"], write_values(tmp_path, override))
    annotations: dict[str, str] = component(objects, "Job", "master")["spec"]["template"]["metadata"].get(
        "annotations", {}
    )
    return annotations


@pytest.mark.parametrize(
    ("override", "annotated"),
    [
        ({}, True),
        ({"master": {"scrapeAnnotations": "auto"}}, True),
        ({"master": {"scrapeAnnotations": None}}, True),
        ({"serviceMonitor": {"enabled": True}}, False),
        ({"podMonitor": {"enabled": True}}, False),
        ({"master": {"scrapeAnnotations": True}, "serviceMonitor": {"enabled": True}}, True),
        ({"master": {"scrapeAnnotations": True}, "podMonitor": {"enabled": True}}, True),
        ({"master": {"scrapeAnnotations": False}}, False),
    ],
    ids=[
        "default",
        "auto",
        "null-is-auto",
        "servicemonitor",
        "podmonitor",
        "forced-with-servicemonitor",
        "forced-with-podmonitor",
        "forced-off",
    ],
)
def test_scrape_annotations_only_when_no_monitor_scrapes(tmp_path, override, annotated):
    master = override.get("master", {}) | {"podAnnotations": {"team": "sre"}}
    annotations = master_annotations(tmp_path, override | {"master": master})
    assert annotations["team"] == "sre"  # the user's own annotations stay, whatever the toggle
    port = scenario_values("default")["run"]["exporterPort"]
    expected = {
        "prometheus.io/scrape": "true",
        "prometheus.io/port": str(port),
        "prometheus.io/path": "/metrics",
    }
    scrape = {key: value for key, value in annotations.items() if key.startswith("prometheus.io/")}
    assert scrape == (expected if annotated else {})


def test_no_scrape_annotations_and_no_extra_ones_render_no_annotations_key(tmp_path):
    objects = render(SCENARIOS["default"], write_values(tmp_path, {"master": {"scrapeAnnotations": False}}))
    assert "annotations" not in component(objects, "Job", "master")["spec"]["template"]["metadata"]


def test_peak_scenario_scheduling_settings():
    values = scenario_values("peak")
    objects = rendered("peak")
    worker_pod = component(objects, "Job", "worker")["spec"]["template"]
    master_pod = component(objects, "Job", "master")["spec"]["template"]
    assert worker_pod["spec"]["containers"][0]["resources"] == values["worker"]["resources"]
    assert master_pod["spec"]["containers"][0]["resources"] == values["master"]["resources"]
    for pod, part in ((worker_pod, "worker"), (master_pod, "master")):
        assert pod["spec"]["nodeSelector"] == values[part]["nodeSelector"]
        assert pod["spec"]["tolerations"] == values[part]["tolerations"]
    constraints = worker_pod["spec"]["topologySpreadConstraints"]
    assert len(constraints) == len(values["worker"]["topologySpreadConstraints"])
    for constraint in constraints:
        # filled in by the chart: this release's worker pods
        assert constraint["labelSelector"]["matchLabels"].items() <= worker_pod["metadata"]["labels"].items()
        assert constraint["labelSelector"]["matchLabels"]["app.kubernetes.io/component"] == "worker"
    assert worker_pod["metadata"]["annotations"] == values["worker"]["podAnnotations"]
    assert component(objects, "Job", "worker")["spec"]["parallelism"] == 8
    stages = json.loads(env_of(master_pod["spec"]["containers"][0])["LOADCTL_STAGES"])
    assert max(s["users"] for s in stages) == 1000
    assert {s["spawn_rate"] for s in stages if s["phase"] != "ramp_down"} == {50}


# --- schedules and RBAC ------------------------------------------------------------------------


def test_schedules_render_cronjobs_with_a_namespaced_role():
    values = scenario_values("schedules")
    objects = rendered("schedules")
    assert not of_kind(objects, "Job") and not of_kind(objects, "Service")  # run.enabled: false
    cronjobs = {c["metadata"]["labels"]["loadctl.io/schedule"]: c for c in of_kind(objects, "CronJob")}
    assert set(cronjobs) == {s["name"] for s in values["schedules"]}
    (account,) = of_kind(objects, "ServiceAccount")
    (role,) = of_kind(objects, "Role")
    (binding,) = of_kind(objects, "RoleBinding")
    for schedule in values["schedules"]:
        cronjob = cronjobs[schedule["name"]]
        assert cronjob["metadata"]["name"].endswith(schedule["name"])
        assert len(cronjob["metadata"]["name"]) <= 52
        spec = cronjob["spec"]
        assert spec["schedule"] == schedule["cron"]
        assert spec["concurrencyPolicy"] == "Forbid"
        assert spec.get("timeZone") == schedule.get("timeZone")
        assert spec["suspend"] is schedule.get("suspend", False)
        assert spec["jobTemplate"]["spec"]["backoffLimit"] == 0
        pod = spec["jobTemplate"]["spec"]["template"]["spec"]
        assert pod["serviceAccountName"] == account["metadata"]["name"]
        (container,) = pod["containers"]
        assert container["command"] == ["loadctl"]
        gates = ["--gates", schedule["gates"]] if "gates" in schedule else []
        assert container["args"] == [
            "run",
            schedule["profile"],
            "--backend",
            "k8s",
            "--in-cluster",
            *gates,
            "--results-dir",
            "/opt/loadctl/results",
            "--values",  # controller.runValues (test_controller_role.py)
            "/etc/loadctl/run-values/values.yaml",
            *values["controller"]["extraArgs"],
        ]
    assert binding["roleRef"] == {
        "apiGroup": "rbac.authorization.k8s.io",
        "kind": "Role",
        "name": role["metadata"]["name"],
    }
    assert binding["subjects"] == [
        {"kind": "ServiceAccount", "name": account["metadata"]["name"], "namespace": "loadtest"}
    ]
    granted: dict[tuple[str, str], set[str]] = {}
    for rule in role["rules"]:
        for group in rule["apiGroups"]:
            for resource in rule["resources"]:
                granted.setdefault((group, resource), set()).update(rule["verbs"])
    assert "*" not in {v for verbs in granted.values() for v in verbs}
    assert not any("*" in key for key in granted)
    assert granted[("batch", "jobs")] == {"get", "list", "watch", "create", "delete", "patch"}
    assert granted[("", "pods")] == {"get", "list", "watch"}
    assert granted[("", "pods/portforward")] == {"get", "create"}  # get: the websocket port-forward
    for resource in ("services", "configmaps", "secrets"):
        assert granted[("", resource)] == {"get", "list", "watch", "create", "update", "patch", "delete"}
    assert granted[("", "events")] == {"get", "list", "watch"}
    # only what controller.runValues makes the run releases render (test_controller_role.py)
    assert {r for g, r in granted if g == "monitoring.coreos.com"} == {"servicemonitors"}
    assert granted[("monitoring.coreos.com", "servicemonitors")] == {
        "get",
        "list",
        "create",
        "patch",
        "delete",
    }
    assert ("", "serviceaccounts") not in granted
    # the controller never reads pod logs (they go with the release) nor execs into pods
    assert not any(resource in ("pods/exec", "pods/log") for _, resource in granted)


def test_no_schedules_no_rbac():
    for scenario in RUN_SCENARIOS:
        kinds = {o["kind"] for o in rendered(scenario)}
        assert not kinds & {"CronJob", "ServiceAccount", "Role", "RoleBinding"}, scenario


# --- names and labels --------------------------------------------------------------------------


@pytest.mark.parametrize(
    "sets",
    [(), (f"fullnameOverride={'f' * 63}",), (f"nameOverride={'n' * 63}",)],
    ids=["release-name", "fullnameOverride", "nameOverride"],
)
def test_names_fit_with_the_longest_release_name(tmp_path, sets):
    everything = write_values(
        tmp_path,
        {
            "run": {"enabled": True},
            "schedules": [
                {"name": "a-schedule-name-of-forty-characters-long", "cron": "@daily", "profile": "peak"},
                {"name": "x", "cron": "*/5 * * * *", "profile": "baseline"},
            ],
        },
    )
    files = (SCENARIOS["peak"], SCENARIOS["monitoring"], SCENARIOS["schedules"], everything)
    objects = render(*files, release=MAX_RELEASE_NAME, sets=sets)
    assert {"Job", "CronJob", "Service", "ServiceMonitor", "NetworkPolicy", "Role"} <= {
        o["kind"] for o in objects
    }
    names = [(o["kind"], o["metadata"]["name"]) for o in objects]
    assert len(names) == len(set(names)), names
    for kind, name in names:
        assert DNS_LABEL.match(name), (kind, name)
        assert len(name) <= (52 if kind == "CronJob" else 63), (kind, name)
    for obj in objects:
        validate_object(obj)
        for labels in all_label_maps(obj):
            for key, value in labels.items():
                prefix, _, name = key.rpartition("/")
                assert LABEL_NAME.match(name) and len(name) <= 63, key
                assert not prefix or (LABEL_PREFIX.match(prefix) and len(prefix) <= 253), key
                assert LABEL_VALUE.match(str(value)) and len(str(value)) <= 63, (key, value)


@pytest.mark.parametrize("scenario", SCENARIOS)
def test_objects_carry_the_recommended_labels(scenario):
    for obj in rendered(scenario):
        for labels in all_label_maps(obj):
            missing = [key for key in RECOMMENDED_LABELS if key not in labels]
            assert not missing, (obj["kind"], obj["metadata"]["name"], missing)
            assert labels["app.kubernetes.io/instance"] == RELEASE
            assert labels["app.kubernetes.io/managed-by"] == "Helm"
            assert labels["app.kubernetes.io/part-of"] == "loadctl"


# --- monitoring --------------------------------------------------------------------------------


def test_cluster_features_are_off_by_default():
    objects = rendered("default")
    kinds = {o["kind"] for o in objects}
    assert not kinds & (MONITORING_KINDS | {"NetworkPolicy", "CronJob", "Role"})
    assert [
        c["metadata"]["labels"]["app.kubernetes.io/component"] for c in of_kind(objects, "ConfigMap")
    ] == ["run"]


def test_monitoring_scenario(tmp_path):
    values = scenario_values("monitoring")
    objects = rendered("monitoring")
    service = component(objects, "Service", "master")
    master_pod = component(objects, "Job", "master")["spec"]["template"]
    service_ports = {p["name"]: p for p in service["spec"]["ports"]}

    (monitor,) = of_kind(objects, "ServiceMonitor")
    (endpoint,) = monitor["spec"]["endpoints"]
    assert endpoint["port"] == "metrics"
    assert service_ports[endpoint["port"]]["port"] == values["run"]["exporterPort"]
    assert endpoint["path"] == "/metrics"
    assert endpoint["interval"] == values["serviceMonitor"]["interval"]
    assert endpoint["honorLabels"] is True
    assert monitor["spec"]["selector"]["matchLabels"].items() <= service["metadata"]["labels"].items()
    assert monitor["metadata"]["labels"].items() >= values["serviceMonitor"]["labels"].items()

    assert not of_kind(objects, "PodMonitor")  # one scrape path: the schema refuses both monitors
    with_pod_monitor = render(
        SCENARIOS["monitoring"],
        write_values(tmp_path, {"serviceMonitor": {"enabled": False}, "podMonitor": {"enabled": True}}),
    )
    assert not of_kind(with_pod_monitor, "ServiceMonitor")
    (pod_monitor,) = of_kind(with_pod_monitor, "PodMonitor")
    assert pod_monitor["metadata"]["labels"].items() >= values["podMonitor"]["labels"].items()
    (pod_endpoint,) = pod_monitor["spec"]["podMetricsEndpoints"]
    assert pod_endpoint["port"] == "metrics" and pod_endpoint["path"] == "/metrics"
    assert pod_endpoint["honorLabels"] is True
    assert pod_monitor["spec"]["selector"]["matchLabels"].items() <= master_pod["metadata"]["labels"].items()
    for relabelings in (endpoint["relabelings"], pod_endpoint["relabelings"]):
        assert {"sourceLabels": ["__meta_kubernetes_pod_label_loadctl_io_run_id"], "targetLabel": "run_id",
                "action": "replace"} in relabelings  # fmt: skip

    (rule,) = of_kind(objects, "PrometheusRule")
    # the rules of charts/loadctl/rules/loadctl.rules.yaml (the local Prometheus' too), for this run only
    this_run = f'run_id="{values["run"]["id"]}"'
    rules_file = (CHART / "rules" / "loadctl.rules.yaml").read_text()
    interval = values.get("prometheusRule", {}).get("scrapeIntervalSeconds", 30)
    shared = yaml.safe_load(render_rules(rules_file.replace(ALL_RUNS, this_run), scrape_interval_s=interval))
    names = [g["name"] for g in rule["spec"]["groups"]]
    assert names == [f"{RELEASE}-loadctl.rules", f"{RELEASE}-loadctl.alerts"]
    assert [g["rules"] for g in rule["spec"]["groups"]] == [g["rules"] for g in shared["groups"]]
    exprs = [r["expr"] for g in rule["spec"]["groups"] for r in g["rules"]]
    assert all(this_run in expr and 'run_id!=""' not in expr for expr in exprs)

    dashboards = [c for c in of_kind(objects, "ConfigMap") if "grafana_dashboard" in c["metadata"]["labels"]]
    shipped = {p.name: p for p in (CHART / "dashboards").glob("*.json")}
    assert len(dashboards) == len(shipped) >= 2  # one ConfigMap per dashboard
    for dashboard in dashboards:
        assert dashboard["metadata"]["labels"]["grafana_dashboard"] == "1"
        assert dashboard["metadata"]["annotations"] == values["grafanaDashboards"]["annotations"]
        ((name, text),) = dashboard["data"].items()
        assert json.loads(text) == json.loads(shipped.pop(name).read_text())
    assert not shipped


def test_network_policies():
    values = scenario_values("monitoring")
    run = values["run"]
    objects = rendered("monitoring")
    master = component(objects, "NetworkPolicy", "master")
    worker = component(objects, "NetworkPolicy", "worker")
    master_labels = component(objects, "Job", "master")["spec"]["template"]["metadata"]["labels"]
    worker_labels = component(objects, "Job", "worker")["spec"]["template"]["metadata"]["labels"]

    assert master["spec"]["podSelector"]["matchLabels"].items() <= master_labels.items()
    assert master["spec"]["policyTypes"] == ["Ingress"]  # egress open: workers reach the target
    by_port = {rule["ports"][0]["port"]: rule for rule in master["spec"]["ingress"]}
    assert set(by_port) == {run["masterPort"], run["exporterPort"]}
    assert all(len(rule["ports"]) == 1 for rule in master["spec"]["ingress"])
    (from_workers,) = by_port[run["masterPort"]]["from"]
    assert set(from_workers) == {"podSelector"}  # this namespace only
    assert from_workers["podSelector"]["matchLabels"].items() <= worker_labels.items()
    assert from_workers["podSelector"]["matchLabels"]["app.kubernetes.io/instance"] == RELEASE
    (from_prometheus,) = by_port[run["exporterPort"]]["from"]
    assert from_prometheus == values["networkPolicy"]["prometheus"]

    assert worker["spec"]["podSelector"]["matchLabels"].items() <= worker_labels.items()
    assert worker["spec"]["policyTypes"] == ["Ingress"]
    assert worker["spec"]["ingress"] == []


def exporter_metric_names() -> set[str]:
    """Metric families named in the exporter's metric contract (its module docstring)."""
    text = (REPO_ROOT / "locust_workers" / "exporter.py").read_text()
    return set(re.findall(r"\b(locust_[a-z_]+)\{", text))


def referenced_metrics(text: str) -> set[str]:
    names = set()
    # not the middle of a recording rule's name (level:metric:operations)
    for name in re.findall(r"(?<![\w:])(locust_[a-z_]+)\b(?!:)", text):
        names.add(re.sub(r"_(bucket|sum|count)$", "", name) if "response_time" in name else name)
    return names


def test_rules_and_dashboard_use_the_exporters_metrics():
    known = exporter_metric_names()
    assert {"locust_requests_total", "locust_response_time_seconds", "locust_run_info"} <= known
    (rule,) = of_kind(rendered("monitoring"), "PrometheusRule")
    dashboards = [
        p.read_text() for p in sorted((CHART / "dashboards").glob("*.json")) if p.stem != RUNS_OVER_TIME
    ]
    for text in (yaml.safe_dump(rule), *dashboards):
        used = referenced_metrics(text)
        assert used and used <= known, used - known


@pytest.mark.parametrize("run_enabled", [True, False], ids=["per-run", "all-runs"])
def test_prometheus_rules_pass_promtool(tmp_path, run_enabled):
    files = [SCENARIOS["monitoring"]] if run_enabled else [SCENARIOS["schedules"]]
    objects = render(*files, sets=("prometheusRule.enabled=true",))
    (rule,) = of_kind(objects, "PrometheusRule")
    exprs = [r["expr"] for g in rule["spec"]["groups"] for r in g["rules"]]
    assert all(("run_id=" if run_enabled else 'run_id!=""') in expr for expr in exprs)
    rules_file = tmp_path / "rules.yaml"
    rules_file.write_text(yaml.safe_dump(rule["spec"]))
    done = subprocess.run(
        [find_promtool(), "check", "rules", str(rules_file)], capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0, done.stdout + done.stderr


RUNBOOKS = "https://example.com/loadctl/README.md"
ALL_RUNS = 'run_id!=""'


@pytest.mark.parametrize(("interval_s", "window"), [(30, "2m"), (15, "1m"), (5, "30s")])
def test_prometheus_rule_windows_follow_the_scrape_interval(interval_s, window):
    """The chart's window is controller/prom/rules.py's, so the rules tested with promtool at 1 s and
    30 s samples (tests/integration/test_rules.py) are the ones a cluster gets."""
    sets = ("prometheusRule.enabled=true", f"prometheusRule.scrapeIntervalSeconds={interval_s}",
            f"prometheusRule.runbookBaseUrl={RUNBOOKS}")  # fmt: skip
    (rule,) = of_kind(render(SCENARIOS["schedules"], sets=sets), "PrometheusRule")
    template = (CHART / "rules" / "loadctl.rules.yaml").read_text()
    expected = yaml.safe_load(render_rules(template, scrape_interval_s=interval_s, runbooks=RUNBOOKS))
    assert [g["rules"] for g in rule["spec"]["groups"]] == [g["rules"] for g in expected["groups"]]
    rules = [r for g in rule["spec"]["groups"] for r in g["rules"]]
    text = yaml.safe_dump(rule)
    assert f"[{window}]" in text and "__" not in text
    assert re.findall(r"\[(\w+)\]", text) and set(re.findall(r"\[(\w+)\]", text)) == {window}
    alerts = [r for r in rules if "alert" in r]
    assert {r["for"] for r in alerts} == {"1m", window}
    assert all(r["annotations"]["runbook_url"].startswith(f"{RUNBOOKS}#") for r in alerts)


def test_prometheus_rule_scrape_interval_must_be_a_positive_integer():
    sets = ["run.enabled=false", "prometheusRule.enabled=true", "prometheusRule.scrapeIntervalSeconds=0"]
    done = helm("template", "x", str(CHART), *[arg for item in sets for arg in ("--set", item)])
    assert done.returncode != 0 and "scrapeIntervalSeconds" in done.stderr


# one point per pushed run (controller/pushgateway), no run variable: dashboards/runs_over_time.py
RUNS_OVER_TIME = "loadctl-runs-over-time"


@pytest.mark.parametrize("path", sorted((CHART / "dashboards").glob("*.json")), ids=lambda p: p.name)
def test_dashboard_json(path):
    """What the chart ships; the dashboards' content is tested with their generator (tests/unit)."""
    dashboard = json.loads(path.read_text())
    assert dashboard["schemaVersion"] >= 39
    assert dashboard["uid"] == path.stem and dashboard["title"]
    variables = {v["name"]: v for v in dashboard["templating"]["list"]}
    per_run = path.stem != RUNS_OVER_TIME
    if per_run:
        assert variables["run_id"]["query"] == "label_values(locust_run_info, run_id)"
    assert variables["datasource"]["type"] == "datasource"
    panels = [panel for panel in dashboard["panels"] if panel["type"] != "row"]
    exprs = [t["expr"] for panel in panels for t in panel["targets"]]
    assert exprs and all(('run_id="$run_id"' if per_run else 'job="loadctl"') in e for e in exprs)
    ids = [panel["id"] for panel in dashboard["panels"]]
    assert len(ids) == len(set(ids))
    for panel in dashboard["panels"]:
        assert {"x", "y", "w", "h"} <= set(panel["gridPos"]), panel["title"]
    for panel in panels:
        assert [t["refId"] for t in panel["targets"]] == sorted({t["refId"] for t in panel["targets"]})


# --- rejected values ---------------------------------------------------------------------------


INVALID = {
    "workers-0": ("default", {"run": {"workers": 0}}, "run.workers"),
    "users-negative": (
        "default",
        {"run": {"stages": [{"duration": 60, "users": -1, "spawnRate": 1}]}},
        "run.stages.0.users",
    ),
    "spawn-rate-0": (
        "default",
        {"run": {"stages": [{"duration": 60, "users": 1, "spawnRate": 0}]}},
        "run.stages.0.spawnRate",
    ),
    "duration-0": (
        "default",
        {"run": {"stages": [{"duration": 0, "users": 1, "spawnRate": 1}]}},
        "run.stages.0.duration",
    ),
    "stage-unknown-key": (
        "default",
        {"run": {"stages": [{"duration": 5, "users": 1, "spawnRate": 1, "spawn_rate": 1}]}},
        "spawn_rate",
    ),
    "unknown-top-level-key": ("default", {"replicaCount": 3}, "replicaCount"),
    "unknown-run-key": ("default", {"run": {"user": 10}}, "user"),
    "pull-policy": ("default", {"image": {"pullPolicy": "Sometimes"}}, "image.pullPolicy"),
    "scrape-annotations-word": (
        "default",
        {"master": {"scrapeAnnotations": "yes"}},
        "master.scrapeAnnotations",
    ),
    "port-range": ("default", {"run": {"exporterPort": 70000}}, "run.exporterPort"),
    "user-weight-0": ("default", {"run": {"userWeights": {"HealthUser": 0}}}, "run.userWeights.HealthUser"),
    "envfrom-configmap": ("default", {"envFrom": [{"configMapRef": {"name": "creds"}}]}, "envFrom.0"),
    "missing-run-id": ("default", {"run": {"id": ""}}, "run.id is required"),
    "missing-run-host": ("default", {"run": {"host": ""}}, "run.host is required"),
    "no-stages": ("default", {"run": {"stages": []}}, "run.stages needs at least one stage"),
    "locustfile-not-in-files": ("default", {"run": {"locustfile": "other.py"}}, "run.files has no"),
    "schedule-name-capitals": (
        "schedules",
        {"schedules": [{"name": "Nightly", "cron": "0 2 * * *", "profile": "peak"}]},
        "schedules.0.name",
    ),
    "schedule-bad-cron": (
        "schedules",
        {"schedules": [{"name": "nightly", "cron": "CRON_TZ=UTC 0 2 * * *", "profile": "peak"}]},
        "schedules.0.cron",
    ),
    "schedule-duplicate": (
        "schedules",
        {
            "schedules": [
                {"name": "dup", "cron": "@daily", "profile": "a"},
                {"name": "dup", "cron": "@daily", "profile": "b"},
            ]
        },
        "used twice",
    ),
}


@pytest.mark.parametrize("case", INVALID)
def test_invalid_values_are_rejected(tmp_path, case):
    scenario, override, message = INVALID[case]
    done = helm(*template_args(SCENARIOS[scenario], write_values(tmp_path, override)))
    assert done.returncode != 0, f"{case} was accepted"
    assert message in done.stderr, done.stderr


def test_defaults_alone_ask_for_the_run_id():
    done = helm(*template_args())
    assert done.returncode != 0
    assert "run.id is required when run.enabled" in done.stderr


# --- values.yaml is the documented contract ----------------------------------------------------

PASS_THROUGH = ("podSecurityContext", "securityContext", "grafanaDashboards.labels")


def test_every_value_is_commented():
    stack: list[tuple[int, str]] = []
    previous = ""
    uncommented = []
    for line in (CHART / "values.yaml").read_text().splitlines():
        match = re.match(r"^( *)([A-Za-z_][\w.-]*):", line)
        if match:
            indent, key = len(match.group(1)), match.group(2)
            while stack and stack[-1][0] >= indent:
                stack.pop()
            path = ".".join([*(k for _, k in stack), key])
            stack.append((indent, key))
            passed_through = any(path.startswith(p + ".") for p in PASS_THROUGH)
            if not passed_through and not previous.lstrip().startswith("#"):
                uncommented.append(path)
        if line.strip():
            previous = line
    assert not uncommented


def test_schema_and_values_list_the_same_keys():
    schema = json.loads((CHART / "values.schema.json").read_text())
    assert schema["$schema"] == "http://json-schema.org/draft-07/schema#"

    def ours(node: dict[str, Any], prefix: str = "") -> set[str]:
        out = set()
        for key, sub in node.get("properties", {}).items():
            path = prefix + key
            out.add(path)
            if sub.get("additionalProperties") is False and "properties" in sub and "Selector" not in key:
                out |= ours(sub, path + ".")
        return out

    def keys(values: dict[str, Any], schema_node: dict[str, Any], prefix: str = "") -> set[str]:
        out = set()
        for key, value in values.items():
            path = prefix + key
            out.add(path)
            sub = schema_node.get("properties", {}).get(key, {})
            if isinstance(value, dict) and sub.get("additionalProperties") is False:
                out |= keys(value, sub, path + ".")
        return out

    assert ours(schema) - {"global"} == keys(chart_defaults(), schema)
