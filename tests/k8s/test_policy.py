"""The namespace's target allowlist against the real API server: the platform team's release of the
chart renders policy.allowedHosts into ConfigMap loadctl-policy, and `loadctl run --backend k8s`
(by hand, or in-cluster as the schedules' ServiceAccount) refuses a host outside it, exit 2,
before anything is installed; a host inside it runs as before."""

from __future__ import annotations

import json
import os

import yaml

from tests.k8s.harness import Cluster
from tests.k8s.test_schedules import as_service_account, in_cluster_args
from tests.support import CHART, helm, run_loadctl, served_requests

PLATFORM_RELEASE = "platform"
STAGING_ONLY = ["*.staging.example.com", "staging.example.com"]


def install_policy(cluster: Cluster, allowed_hosts: list[str]) -> str:
    """The platform release: no run, a schedule (for its ServiceAccount) and the policy. Returns
    the schedules' ServiceAccount."""
    values = cluster.tmp / "platform.yaml"
    values.write_text(
        yaml.safe_dump(
            {
                "run": {"enabled": False},
                "schedules": [{"name": "nightly", "cron": "0 2 * * *", "profile": "peak"}],
                "policy": {"allowedHosts": allowed_hosts},
            }
        )
    )
    kubeconfig = str(cluster.plane.kubeconfig)
    done = helm(
        "install",
        PLATFORM_RELEASE,
        str(CHART),
        "-n",
        cluster.namespace,
        "--kubeconfig",
        kubeconfig,
        "-f",
        str(values),
    )
    assert done.returncode == 0, done.stderr
    policy = cluster.core.read_namespaced_config_map("loadctl-policy", cluster.namespace)
    assert policy.data["allowedHosts"].splitlines() == allowed_hosts
    return "platform-loadctl-controller"


def releases(cluster: Cluster) -> list[str]:
    listed = helm("list", "-a", "-n", cluster.namespace, "--kubeconfig", str(cluster.plane.kubeconfig), "-q")
    assert listed.returncode == 0, listed.stderr
    return listed.stdout.split()


def assert_refused(cluster: Cluster, done, run_id: str) -> None:
    """Exit 2, one line naming the ConfigMap and the host; no release, no pod, no request, no folder."""
    assert done.returncode == 2, (done.stdout, done.stderr)
    assert done.stderr.count("\n") == 1, done.stderr
    policy = f"ConfigMap {cluster.namespace}/loadctl-policy: allowedHosts"
    expected = (
        f"loadctl: error: {policy}: target {cluster.target} is not in the allowed hosts "
        f"({', '.join(STAGING_ONLY)}); no load was sent"
    )
    assert done.stderr.strip() == expected
    assert "helm install" not in done.stdout
    assert cluster.leftovers() == []
    assert releases(cluster) == [PLATFORM_RELEASE]
    assert not (cluster.results / run_id).exists()
    assert served_requests(cluster.target) == 0


def test_a_host_outside_the_policy_exits_2_with_no_release_installed(cluster):
    install_policy(cluster, STAGING_ONLY)
    # the test author's own variable allows the demo target: it narrows, it never widens the policy
    env = dict(os.environ, LOADCTL_ALLOWED_HOSTS="127.0.0.0/8", XDG_CONFIG_HOME=str(cluster.tmp / "config"))
    done = run_loadctl(cluster.run_args("k8s-refused"), env=env, timeout=120)
    assert_refused(cluster, done, "k8s-refused")


def test_a_scheduled_run_outside_the_policy_exits_2_too(cluster):
    # as the schedules' own ServiceAccount: its Role lets it read the policy (else exit 3, not 2)
    env = as_service_account(cluster, install_policy(cluster, STAGING_ONLY))
    done = run_loadctl(in_cluster_args(cluster, "k8s-scheduled-refused"), env=env, timeout=120)
    assert_refused(cluster, done, "k8s-scheduled-refused")


def test_a_policy_the_runs_identity_cannot_read_is_exit_3_not_no_policy(cluster):
    install_policy(cluster, STAGING_ONLY)
    # the namespace's `default` ServiceAccount has no Role: it may not read the ConfigMap
    env = as_service_account(cluster, "default")
    done = run_loadctl(in_cluster_args(cluster, "k8s-unreadable"), env=env, timeout=120)
    assert done.returncode == 3, (done.stdout, done.stderr)
    assert done.stderr.strip() == (
        f"loadctl: error: Kubernetes API: read ConfigMap loadctl-policy (the target policy) in namespace "
        f"{cluster.namespace}: 403 Forbidden; the run's identity needs get on configmaps to read it"
    )
    assert cluster.leftovers() == [] and releases(cluster) == [PLATFORM_RELEASE]
    assert not (cluster.results / "k8s-unreadable").exists()


def test_a_host_inside_the_policy_runs(cluster):
    install_policy(cluster, ["*.staging.example.com", "127.0.0.0/8"])
    args = [*cluster.run_args("k8s-allowed"), "--prometheus", cluster.prometheus_url]
    done = run_loadctl(args, timeout=240)
    text = done.stdout + done.stderr
    assert done.returncode == 0, (text, cluster.kubelet.log_tails())
    assert f"helm install lt-k8s-allowed in namespace {cluster.namespace}" in text
    run = json.loads((cluster.results / "k8s-allowed" / "run.json").read_text())
    assert run["requests"] > 0 and served_requests(cluster.target) > 0
    assert cluster.leftovers() == []
    assert releases(cluster) == [PLATFORM_RELEASE]
