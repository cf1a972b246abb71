"""The test control plane behaves like a cluster: real controllers, scheduler and admission, and
KWOK stages that start pods, fail image pulls, and exit pods only when a test says so."""

from __future__ import annotations

import secrets
from typing import Any

import kubernetes
from kubernetes.client import BatchV1Api, CoreV1Api

from tests.k8s.controlplane import MISSING_IMAGE, ControlPlane, eventually, exit_pod

IMAGE = "registry.example/x:1"

# API objects are read as Any: the client's models type every field Optional.


def _pod_spec(image: str = IMAGE, **extra: Any) -> dict[str, Any]:
    """A pod spec the `restricted` Pod Security Standard admits (camelCase: the client sends dicts as-is)."""
    container = {
        "name": "main",
        "image": image,
        "command": ["sleep", "3600"],
        "securityContext": {
            "allowPrivilegeEscalation": False,
            "capabilities": {"drop": ["ALL"]},
            "runAsNonRoot": True,
            "runAsUser": 1000,
            "seccompProfile": {"type": "RuntimeDefault"},
        },
    }
    return {"restartPolicy": "Never", "containers": [container], **extra}


def _create_job(batch: BatchV1Api, namespace: str, *, parallelism: int = 1, **pod_extra: Any) -> str:
    name = f"job-{secrets.token_hex(3)}"
    spec = {
        "parallelism": parallelism,
        "completions": parallelism,
        "backoffLimit": 0,
        "template": {"spec": _pod_spec(**pod_extra)},
    }
    body: Any = {"metadata": {"name": name}, "spec": spec}
    batch.create_namespaced_job(namespace, body)
    return name


def _create_pod(core: CoreV1Api, namespace: str, image: str = IMAGE, **extra: Any) -> str:
    name = f"pod-{secrets.token_hex(3)}"
    body: Any = {"metadata": {"name": name}, "spec": _pod_spec(image, **extra)}
    core.create_namespaced_pod(namespace, body)
    return name


def _pod(core: CoreV1Api, namespace: str, name: str) -> Any:
    return core.read_namespaced_pod(name, namespace)


def _job(batch: BatchV1Api, namespace: str, name: str) -> Any:
    return batch.read_namespaced_job(name, namespace)


def _job_pods(core: CoreV1Api, namespace: str, job: str) -> list[Any]:
    return list(core.list_namespaced_pod(namespace, label_selector=f"job-name={job}").items)


def _running_job_pods(core: CoreV1Api, namespace: str, job: str, count: int) -> list[Any]:
    """The Job's pods once there are `count` of them, all Running and Ready; else []."""
    pods = _job_pods(core, namespace, job)
    return pods if len(pods) == count and all(map(_running_and_ready, pods)) else []


def _condition(obj: Any, kind: str) -> Any:
    return next((c for c in obj.status.conditions or [] if c.type == kind), None)


def _condition_true(obj: Any, kind: str) -> bool:
    condition = _condition(obj, kind)
    return condition is not None and condition.status == "True"


def _running_and_ready(pod: Any) -> bool:
    return bool(pod.status.phase == "Running" and _condition_true(pod, "Ready"))


def test_version_is_1_31(control_plane: ControlPlane) -> None:
    with control_plane.api_client() as client:
        assert kubernetes.client.VersionApi(client).get_code().git_version == "v1.31.0"


def test_namespace_gets_default_service_account_and_root_ca(core_api: CoreV1Api, namespace: str) -> None:
    # The fixture waited for `default`; the CA bundle comes from another KCM controller.
    assert core_api.read_namespaced_service_account("default", namespace).metadata is not None
    eventually(
        lambda: (
            core_api.list_namespaced_config_map(
                namespace, field_selector="metadata.name=kube-root-ca.crt"
            ).items
        ),
        what="ConfigMap kube-root-ca.crt",
    )


def test_job_pods_run_on_fake_nodes_and_complete_when_they_exit(
    core_api: CoreV1Api, batch_api: BatchV1Api, namespace: str
) -> None:
    job = _create_job(batch_api, namespace, parallelism=2)

    pods = eventually(
        lambda: _running_job_pods(core_api, namespace, job, 2), what="2 Job pods Running and Ready"
    )
    fake_nodes = {n.metadata.name for n in core_api.list_node(label_selector="type=kwok").items if n.metadata}
    assert {p.spec.node_name for p in pods} <= fake_nodes
    assert all(p.status.pod_ip for p in pods)

    first, second = (p.metadata.name for p in pods)
    exit_pod(core_api, first, namespace, 0)
    eventually(
        lambda: _pod(core_api, namespace, first).status.phase == "Succeeded", what=f"{first} Succeeded"
    )
    # Nothing completes a pod on its own (KWOK's default pod-complete stage would have by now).
    assert _pod(core_api, namespace, second).status.phase == "Running"
    assert _condition(_job(batch_api, namespace, job), "Complete") is None
    exit_pod(core_api, second, namespace, 0)

    eventually(
        lambda: _condition_true(_job(batch_api, namespace, job), "Complete"), what=f"Job {job} Complete"
    )
    for pod in _job_pods(core_api, namespace, job):
        assert pod.status.phase == "Succeeded"
        state = pod.status.container_statuses[0].state
        assert (state.terminated.exit_code, state.terminated.reason) == (0, "Completed")
        assert state.running is None
        assert not _condition_true(pod, "Ready")


def test_a_nonzero_exit_code_fails_the_pod(core_api: CoreV1Api, namespace: str) -> None:
    pod = _create_pod(core_api, namespace)
    eventually(lambda: _running_and_ready(_pod(core_api, namespace, pod)), what="the pod Running")

    exit_pod(core_api, pod, namespace, 3)

    failed = eventually(
        lambda: (p := _pod(core_api, namespace, pod)).status.phase == "Failed" and p, what="the pod Failed"
    )
    terminated = failed.status.container_statuses[0].state.terminated
    assert (terminated.exit_code, terminated.reason) == (3, "Error")
    assert not _condition_true(failed, "Ready")


def test_deleting_a_job_deletes_its_pods(core_api: CoreV1Api, batch_api: BatchV1Api, namespace: str) -> None:
    job = _create_job(batch_api, namespace, parallelism=2)
    # Once on a node, a pod being deleted waits for its "kubelet": KWOK's pod-delete stage.
    eventually(lambda: _running_job_pods(core_api, namespace, job, 2), what="2 Job pods Running")

    # The API's default for Jobs is to orphan their pods; kubectl and Helm ask for Background.
    batch_api.delete_namespaced_job(job, namespace, propagation_policy="Background")

    eventually(
        lambda: not _job_pods(core_api, namespace, job), what="the garbage collector to delete the pods"
    )


def test_a_missing_image_reports_image_pull_backoff(core_api: CoreV1Api, namespace: str) -> None:
    pod = _create_pod(core_api, namespace, MISSING_IMAGE)

    def waiting() -> Any:
        statuses = _pod(core_api, namespace, pod).status.container_statuses or []
        return statuses and statuses[0].state.waiting

    state = eventually(waiting, what="the container waiting")
    assert state.reason == "ImagePullBackOff"
    assert state.message == f'Back-off pulling image "{MISSING_IMAGE}"'
    current = _pod(core_api, namespace, pod)
    assert current.spec.node_name  # scheduled: it is the pull that fails
    assert current.status.phase == "Pending"
    assert not _condition_true(current, "Ready")


def test_a_pod_no_node_fits_stays_pending_unschedulable(core_api: CoreV1Api, namespace: str) -> None:
    pod = _create_pod(core_api, namespace, nodeSelector={"type": "no-such-node"})

    scheduled = eventually(
        lambda: _condition(_pod(core_api, namespace, pod), "PodScheduled"), what="PodScheduled"
    )
    assert (scheduled.status, scheduled.reason) == ("False", "Unschedulable")
    assert _pod(core_api, namespace, pod).status.phase == "Pending"


def test_a_job_with_a_missing_service_account_creates_no_pods(
    core_api: CoreV1Api, batch_api: BatchV1Api, namespace: str
) -> None:
    job = _create_job(batch_api, namespace, serviceAccountName="no-such-account")

    def failed_create() -> list[Any]:
        selector = f"involvedObject.name={job},reason=FailedCreate"
        return list(core_api.list_namespaced_event(namespace, field_selector=selector).items)

    events = eventually(failed_create, what="a FailedCreate event")
    assert 'serviceaccount "no-such-account" not found' in (events[0].message or "")
    assert _job_pods(core_api, namespace, job) == []
