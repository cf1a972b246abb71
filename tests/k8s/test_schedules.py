"""Scheduled runs: the CronJob's ServiceAccount, and `loadctl run --in-cluster` as that account.

The in-cluster mode is run outside a pod but as the real ServiceAccount: a TokenRequest token, the
apiserver's CA and the namespace are written where a pod would have them mounted
(LOADCTL_SERVICEACCOUNT_DIR), with KUBERNETES_SERVICE_HOST/PORT as the kubelet sets them.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
from pathlib import Path
from urllib.parse import urlparse

import kubernetes
import pytest
import yaml

from controller.prom.server import PrometheusServer
from tests.k8s.controlplane import eventually
from tests.k8s.harness import IMAGE, Cluster
from tests.support import CHART, DEMO_LOCUSTFILE, LOADCTL, helm, run_loadctl

SCHEDULE_RELEASE = "nightly"


def install_schedules(cluster: Cluster, run_values: dict[str, object] | None = None) -> str:
    """The chart with one schedule and no run (its run releases get `run_values`: the chart's
    controller.runValues); returns the controller's ServiceAccount name."""
    controller: dict[str, object] = {"prometheusUrl": cluster.prometheus_url}
    if run_values:
        controller["runValues"] = run_values
    values = cluster.tmp / "schedules.yaml"
    values.write_text(
        yaml.safe_dump(
            {
                "run": {"enabled": False},
                "schedules": [{"name": "nightly", "cron": "0 2 * * *", "profile": "peak"}],
                "controller": controller,
            }
        )
    )
    kubeconfig = str(cluster.plane.kubeconfig)
    done = helm(
        "install",
        SCHEDULE_RELEASE,
        str(CHART),
        "-n",
        cluster.namespace,
        "--kubeconfig",
        kubeconfig,
        "-f",
        str(values),
    )
    assert done.returncode == 0, done.stderr
    assert "PodSecurity" not in done.stderr, done.stderr
    cronjob = cluster.batch.read_namespaced_cron_job("nightly-loadctl-nightly", cluster.namespace)
    pod_spec = cronjob.spec.job_template.spec.template.spec
    env = {e.name: e.value for e in pod_spec.containers[0].env}
    assert env["LOADCTL_PROMETHEUS_URL"] == cluster.prometheus_url
    assert pod_spec.containers[0].args[:4] == ["run", "peak", "--backend", "k8s"]
    return pod_spec.service_account_name


def access(
    api: kubernetes.client.ApiClient,
    user: str,
    namespace: str | None,
    verb: str,
    resource: str,
    group: str = "",
    subresource: str = "",
    name: str = "",
) -> bool:
    review = {
        "apiVersion": "authorization.k8s.io/v1",
        "kind": "SubjectAccessReview",
        "spec": {
            "user": user,
            "groups": ["system:serviceaccounts", "system:authenticated"],
            "resourceAttributes": {
                "namespace": namespace,
                "verb": verb,
                "resource": resource,
                "group": group,
                "subresource": subresource,
                "name": name,
            },
        },
    }
    answer = kubernetes.client.AuthorizationV1Api(api).create_subject_access_review(review)
    return bool(answer.status.allowed)


# what `loadctl run --backend k8s --in-cluster` does in its namespace (helm keeps releases in Secrets)
NEEDED = [
    ("create", "jobs", "batch", ""),
    ("watch", "jobs", "batch", ""),
    ("delete", "jobs", "batch", ""),
    ("patch", "jobs", "batch", ""),
    ("watch", "pods", "", ""),
    ("get", "pods", "", ""),
    ("get", "pods", "", "portforward"),  # the websocket port-forward (controller/k8s/port_forward.py)
    ("create", "pods", "", "portforward"),
    ("list", "events", "", ""),
    ("create", "secrets", "", ""),
    ("delete", "secrets", "", ""),
    ("create", "configmaps", "", ""),
    ("create", "services", "", ""),
    # one run per target: its Lease (controller/k8s/lease.py)
    ("get", "leases", "coordination.k8s.io", ""),
    ("create", "leases", "coordination.k8s.io", ""),
    ("update", "leases", "coordination.k8s.io", ""),
    ("delete", "leases", "coordination.k8s.io", ""),
    # each run release's Role + RoleBinding letting its master read that Lease (the heartbeat);
    # RBAC escalation prevention limits what they can grant to what this account holds
    ("create", "roles", "rbac.authorization.k8s.io", ""),
    ("create", "rolebindings", "rbac.authorization.k8s.io", ""),
    ("delete", "roles", "rbac.authorization.k8s.io", ""),
    ("delete", "rolebindings", "rbac.authorization.k8s.io", ""),
]


def test_the_schedules_service_account_can_run_loads_in_its_namespace_only(cluster, k8s_client):
    account = install_schedules(cluster)
    user = f"system:serviceaccount:{cluster.namespace}:{account}"
    for verb, resource, group, sub in NEEDED:
        assert access(k8s_client, user, cluster.namespace, verb, resource, group, sub), (verb, resource, sub)
        assert not access(k8s_client, user, "default", verb, resource, group, sub), (
            "default",
            verb,
            resource,
        )
    for verb, resource, group, sub in [
        ("create", "pods", "", "exec"),
        ("get", "pods", "", "log"),  # pod logs go with the release; the controller never reads them
        ("delete", "pods", "", ""),
        # never more than it holds: no escalate/bind, which would lift the escalation check
        ("escalate", "roles", "rbac.authorization.k8s.io", ""),
        ("bind", "roles", "rbac.authorization.k8s.io", ""),
        ("bind", "clusterroles", "rbac.authorization.k8s.io", ""),
        ("update", "serviceaccounts", "", ""),
        # what only controller.runValues turns on (test_the_schedules_service_account_can_run_...)
        ("get", "serviceaccounts", "", ""),
        ("create", "servicemonitors", "monitoring.coreos.com", ""),
        ("create", "podmonitors", "monitoring.coreos.com", ""),
        ("create", "prometheusrules", "monitoring.coreos.com", ""),
        ("create", "networkpolicies", "networking.k8s.io", ""),
    ]:
        assert not access(k8s_client, user, cluster.namespace, verb, resource, group, sub), (
            verb,
            resource,
            sub,
        )
    for verb, resource, group in [
        ("list", "nodes", ""),
        ("create", "namespaces", ""),
        ("list", "clusterroles", "rbac.authorization.k8s.io"),
    ]:
        assert not access(k8s_client, user, None, verb, resource, group), (verb, resource)


def test_the_schedules_service_account_can_run_what_its_run_values_enable_and_no_more(cluster, k8s_client):
    """No monitoring CRDs are installed here: a SubjectAccessReview answers for any resource."""
    account = install_schedules(
        cluster, {"serviceMonitor": {"enabled": True}, "run": {"serviceAccountName": "runner"}}
    )
    user = f"system:serviceaccount:{cluster.namespace}:{account}"
    group = "monitoring.coreos.com"
    assert access(k8s_client, user, cluster.namespace, "create", "servicemonitors", group)
    assert access(k8s_client, user, cluster.namespace, "delete", "servicemonitors", group)
    assert not access(k8s_client, user, "default", "create", "servicemonitors", group)
    for resource in ("podmonitors", "prometheusrules"):
        assert not access(k8s_client, user, cluster.namespace, "create", resource, group), resource
    assert not access(k8s_client, user, cluster.namespace, "create", "networkpolicies", "networking.k8s.io")
    # the pre-flight reads the run pods' ServiceAccount: that one, nothing else of its kind
    sa = ("get", "serviceaccounts", "", "")
    assert access(k8s_client, user, cluster.namespace, *sa, name="runner")
    assert not access(k8s_client, user, cluster.namespace, *sa, name=account)
    assert not access(k8s_client, user, cluster.namespace, *sa)


def as_service_account(cluster: Cluster, account: str) -> dict[str, str]:
    """The environment of a pod running as `account` (token, CA and namespace 'mounted')."""
    mounted = cluster.tmp / "serviceaccount"
    mounted.mkdir(exist_ok=True)
    request = {"spec": {"expirationSeconds": 3600}}
    token = cluster.core.create_namespaced_service_account_token(
        account, cluster.namespace, request
    ).status.token
    (mounted / "token").write_text(token)
    (mounted / "ca.crt").write_text(cluster.plane.ca_file.read_text())
    (mounted / "namespace").write_text(cluster.namespace)
    server = urlparse(cluster.plane.server)
    return dict(
        os.environ,
        KUBERNETES_SERVICE_HOST=str(server.hostname),
        KUBERNETES_SERVICE_PORT=str(server.port),
        LOADCTL_SERVICEACCOUNT_DIR=str(mounted),
        KUBECONFIG=str(cluster.tmp / "no-kubeconfig"),  # nothing but the ServiceAccount to fall back on
    )


def in_cluster_args(cluster: Cluster, run_id: str, *profile: str, duration: str = "12s") -> list[str]:
    load = (
        []
        if profile
        else ["-f", str(DEMO_LOCUSTFILE), "--host", cluster.target, "-u", "4", "-r", "4", "-t", duration]
    )
    return [
        "run",
        *profile,
        *load,
        "--workers",
        "2",
        "--run-id",
        run_id,
        "--results-dir",
        str(cluster.results),
        "--backend",
        "k8s",
        "--in-cluster",
        "--image",
        IMAGE,
        "--values",
        str(cluster.values_file),
        "--prometheus",
        cluster.prometheus_url,
    ]


def test_an_in_cluster_run_as_the_schedules_account_runs_end_to_end(cluster):
    env = as_service_account(cluster, install_schedules(cluster))
    done = run_loadctl(in_cluster_args(cluster, "k8s-scheduled"), env=env, timeout=240)
    text = done.stdout + done.stderr
    assert done.returncode == 0, (text, cluster.kubelet.log_tails())
    assert f"helm install lt-k8s-scheduled in namespace {cluster.namespace}" in text
    run = json.loads((cluster.results / "k8s-scheduled" / "run.json").read_text())
    assert run["namespace"] == cluster.namespace and run["requests"] > 0
    assert cluster.leftovers() == []


def test_a_scheduled_run_skips_while_another_run_holds_the_target(cluster):
    env = as_service_account(cluster, install_schedules(cluster))
    first = cluster.tmp / "first.log"
    with open(first, "w") as out:
        holder = subprocess.Popen(
            [LOADCTL, *in_cluster_args(cluster, "k8s-holder", duration="5m")],
            stdout=out,
            stderr=subprocess.STDOUT,
            env=dict(env, PYTHONUNBUFFERED="1"),
        )
        try:
            eventually(lambda: "workers 2/2 running" in first.read_text(), what="the first run", timeout=120)
            done = run_loadctl(in_cluster_args(cluster, "k8s-skipped"), env=env, timeout=120)
        finally:
            holder.send_signal(signal.SIGINT)
            holder.wait(timeout=120)
    text = done.stdout + done.stderr
    assert done.returncode == 0, text
    assert "run skipped, no load sent" in text and "is held by run k8s-holder" in text
    assert "Lease " in text and "loadctl-target-127-0-0-1-" in text
    run = json.loads((cluster.results / "k8s-skipped" / "run.json").read_text())
    assert run["verdict"] == "skipped" and "held by run k8s-holder" in run["reason"]
    assert "helm install lt-k8s-skipped" not in text
    assert cluster.leftovers() == []


@pytest.fixture
def firing_prometheus(tmp_path: Path):
    rules = tmp_path / "rules.yaml"
    rules.write_text(
        yaml.safe_dump(
            {
                "groups": [
                    {"name": "staging", "rules": [{"alert": "StagingDatabaseDown", "expr": "vector(1)"}]}
                ]
            }
        )
    )
    server = PrometheusServer(
        config={"global": {"evaluation_interval": "1s"}, "rule_files": [str(rules)], "scrape_configs": []},
        config_path=tmp_path / "alerting.yml",
        data_dir=tmp_path / "alerting-tsdb",
        log_path=tmp_path / "alerting.log",
    )
    server.start()
    try:
        with server.client() as client:
            eventually(
                lambda: client.get("/api/v1/alerts").json()["data"]["alerts"], what="the alert to fire"
            )
        yield server.url
    finally:
        server.stop()


def test_a_scheduled_run_skips_while_a_listed_alert_fires(cluster, firing_prometheus):
    env = as_service_account(cluster, install_schedules(cluster))
    profile = cluster.tmp / "guarded.yaml"
    profile.write_text(
        yaml.safe_dump(
            {
                "name": "guarded",
                "locustfile": str(DEMO_LOCUSTFILE),
                "host": cluster.target,
                "users": 2,
                "duration": "10s",
                "skip_if_alerts": ["StagingDatabaseDown", "SomethingElse"],
            }
        )
    )
    args = in_cluster_args(cluster, "k8s-alerting", str(profile))
    args[args.index("--prometheus") + 1] = firing_prometheus
    done = run_loadctl(args, env=env, timeout=120)
    text = done.stdout + done.stderr
    assert done.returncode == 0, text
    assert "alerts firing that the profile lists under skip_if_alerts: StagingDatabaseDown" in text
    assert json.loads((cluster.results / "k8s-alerting" / "run.json").read_text())["verdict"] == "skipped"
    assert cluster.leftovers() == []
