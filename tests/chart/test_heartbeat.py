"""run.heartbeat: what the chart renders for the master's watchdog (locust_workers/heartbeat.py).

With a Lease named, only the master mounts a token, and that token may `get` that one Lease;
without one (a plain `helm install`), nothing changes: no token, no Role, no heartbeat env.
"""

from __future__ import annotations

from typing import Any

from tests.support import CHART, helm_render

DEFAULT = CHART / "ci" / "default-values.yaml"
LEASE = "loadctl-target-staging-example-com-86cf238fdb"


def of_kind(objects: list[dict[str, Any]], kind: str) -> list[dict[str, Any]]:
    return [o for o in objects if o["kind"] == kind]


def pod_spec(objects: list[dict[str, Any]], part: str) -> dict[str, Any]:
    (job,) = [j for j in of_kind(objects, "Job") if j["metadata"]["name"].endswith(f"-{part}")]
    return dict(job["spec"]["template"]["spec"])


def env(spec: dict[str, Any]) -> dict[str, str]:
    return {e["name"]: e.get("value") for e in spec["containers"][0]["env"]}


def test_a_named_lease_gives_the_master_alone_a_token_that_reads_only_that_lease():
    objects = helm_render(DEFAULT, sets=(f"run.heartbeat.lease={LEASE}", "run.serviceAccountName=runner"))
    master, worker = pod_spec(objects, "master"), pod_spec(objects, "worker")
    assert master["automountServiceAccountToken"] is True
    assert worker["automountServiceAccountToken"] is False
    assert env(master)["LOADCTL_HEARTBEAT_LEASE"] == LEASE
    assert env(master)["LOADCTL_HEARTBEAT_TIMEOUT"] == "30"
    (role,) = of_kind(objects, "Role")
    assert role["rules"] == [
        {
            "apiGroups": ["coordination.k8s.io"],
            "resources": ["leases"],
            "resourceNames": [LEASE],
            "verbs": ["get"],
        }
    ]
    (binding,) = of_kind(objects, "RoleBinding")
    assert binding["roleRef"]["name"] == role["metadata"]["name"]
    assert binding["subjects"] == [{"kind": "ServiceAccount", "name": "runner", "namespace": "loadtest"}]


def test_without_a_lease_nothing_changes():
    objects = helm_render(DEFAULT)
    assert pod_spec(objects, "master")["automountServiceAccountToken"] is False
    assert "LOADCTL_HEARTBEAT_LEASE" not in env(pod_spec(objects, "master"))
    assert not of_kind(objects, "Role") and not of_kind(objects, "RoleBinding")


def test_rbac_create_false_renders_no_heartbeat_role():
    objects = helm_render(DEFAULT, sets=(f"run.heartbeat.lease={LEASE}", "rbac.create=false"))
    assert pod_spec(objects, "master")["automountServiceAccountToken"] is True
    assert not of_kind(objects, "Role")
