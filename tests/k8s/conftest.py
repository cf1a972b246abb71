"""Fixtures for the tests that need Kubernetes: one loopback control plane per session.

The control plane never skips: missing binaries are an error (scripts/ensure-k8s.sh builds them;
`make test-k8s` runs it first). Everything collected under tests/k8s is marked `k8s`.
"""

from __future__ import annotations

import re
import secrets
from collections.abc import Iterator
from pathlib import Path

import kubernetes
import pytest

from tests.k8s.controlplane import ControlPlane, eventually, service_account_exists
from tests.k8s.harness import Cluster, namespace_world

HERE = Path(__file__).resolve().parent

RESTRICTED_NAMESPACE_LABELS = {
    "pod-security.kubernetes.io/enforce": "restricted",
    "pod-security.kubernetes.io/enforce-version": "latest",
}


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    # This hook sees the whole session's items, not just this directory's.
    for item in items:
        if item.path.is_relative_to(HERE):
            item.add_marker(pytest.mark.k8s)


@pytest.fixture(scope="session")
def control_plane(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ControlPlane]:
    with ControlPlane(tmp_path_factory.mktemp("k8s")) as plane:
        yield plane


@pytest.fixture(scope="session")
def k8s_client(control_plane: ControlPlane) -> Iterator[kubernetes.client.ApiClient]:
    with control_plane.api_client() as client:
        yield client


@pytest.fixture
def core_api(k8s_client: kubernetes.client.ApiClient) -> kubernetes.client.CoreV1Api:
    return kubernetes.client.CoreV1Api(k8s_client)


@pytest.fixture
def batch_api(k8s_client: kubernetes.client.ApiClient) -> kubernetes.client.BatchV1Api:
    return kubernetes.client.BatchV1Api(k8s_client)


@pytest.fixture
def namespace(request: pytest.FixtureRequest, core_api: kubernetes.client.CoreV1Api) -> Iterator[str]:
    """A fresh namespace enforcing the `restricted` Pod Security Standard, with its `default` SA."""
    # The test's name in the namespace makes a leftover object easy to trace back.
    slug = re.sub(r"[^a-z0-9]+", "-", request.node.name.lower()).strip("-")[:40].strip("-")
    name = f"{slug}-{secrets.token_hex(3)}"
    metadata = kubernetes.client.V1ObjectMeta(name=name, labels=RESTRICTED_NAMESPACE_LABELS)
    core_api.create_namespace(kubernetes.client.V1Namespace(metadata=metadata))
    try:
        # Pods cannot be created before the ServiceAccount controller has made `default`.
        eventually(lambda: service_account_exists(core_api, name), what=f"ServiceAccount {name}/default")
        yield name
    finally:
        # Not waiting for the namespace to go: the controllers finish that in the background.
        core_api.delete_namespace(name)


@pytest.fixture
def cluster(
    control_plane: ControlPlane, namespace: str, k8s_client: kubernetes.client.ApiClient, tmp_path: Path
) -> Iterator[Cluster]:
    """A namespace with a local kubelet, the demo target and a Prometheus (harness.py)."""
    with namespace_world(control_plane, namespace, k8s_client, tmp_path) as world:
        yield world
