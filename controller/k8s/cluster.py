"""The Kubernetes API calls a run needs, through the official client. Objects come back as API JSON.

Connection: a kubeconfig (--kubeconfig, else $KUBECONFIG or ~/.kube/config; --context) or, with
--in-cluster, the pod's ServiceAccount token. A missing kubeconfig or context is an input error
(exit 2); an API that does not answer is an infrastructure error (exit 3).
"""

from __future__ import annotations

import os
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, TypeVar

import urllib3
import yaml
from kubernetes import client, config, watch
from kubernetes.client.exceptions import ApiException
from kubernetes.config.config_exception import ConfigException
from kubernetes.config.incluster_config import InClusterConfigLoader

from controller.errors import InfraError, InputError
from controller.k8s.lease import LeaseConflict
from controller.k8s.release import COMPONENT_LABEL, RUN_LABEL, run_selector
from locust_workers.contract import service_account_dir

T = TypeVar("T")
Obj = dict[str, Any]


def _message(e: ApiException) -> str:
    return f"{e.status} {e.reason}"


class Cluster:
    def __init__(
        self,
        *,
        namespace: str | None = None,
        kubeconfig: Path | None = None,
        context: str | None = None,
        in_cluster: bool = False,
    ) -> None:
        configuration = client.Configuration()
        self.kubeconfig, self.context = kubeconfig, context
        self._tool_kubeconfig: Path | None = None
        try:
            if in_cluster:
                account_dir = service_account_dir(os.environ)
                InClusterConfigLoader(
                    token_filename=str(account_dir / "token"), cert_filename=str(account_dir / "ca.crt")
                ).load_and_set(configuration)
                default_namespace = (account_dir / "namespace").read_text().strip()
                self._tool_kubeconfig = self._in_cluster_kubeconfig(configuration.host, account_dir)
                self.kubeconfig, self.context = self._tool_kubeconfig, None
            else:
                config.load_kube_config(
                    config_file=str(kubeconfig) if kubeconfig else None,
                    context=context,
                    client_configuration=configuration,
                )
                default_namespace = self._context_namespace(kubeconfig, context)
        except (ConfigException, OSError) as e:
            source = "--in-cluster" if in_cluster else str(kubeconfig or "kubeconfig")
            field = "--context" if context else None
            raise InputError(" ".join(str(e).split()), source=source, field=field) from e
        # One quick attempt per call: the backend has its own timeouts and retry loops.
        configuration.retries = 1
        self.namespace = namespace or default_namespace
        self.server = configuration.host
        self.api = client.ApiClient(configuration)
        self.core = client.CoreV1Api(self.api)
        self.batch = client.BatchV1Api(self.api)
        self.coordination = client.CoordinationV1Api(self.api)

    @staticmethod
    def _context_namespace(kubeconfig: Path | None, context: str | None) -> str:
        contexts, current = config.list_kube_config_contexts(
            config_file=str(kubeconfig) if kubeconfig else None
        )
        chosen = next((c for c in contexts if c["name"] == context), current) if context else current
        return str((chosen or {}).get("context", {}).get("namespace") or "default")

    @staticmethod
    def _in_cluster_kubeconfig(server: str, account_dir: Path) -> Path:
        """A kubeconfig for helm pointing at the mounted token *file* (no secret copied;
        client-go re-reads it as the kubelet rotates it), so helm and the client use the same identity."""
        document = {
            "apiVersion": "v1",
            "kind": "Config",
            "clusters": [
                {
                    "name": "in-cluster",
                    "cluster": {"server": server, "certificate-authority": str(account_dir / "ca.crt")},
                }
            ],
            "users": [{"name": "service-account", "user": {"tokenFile": str(account_dir / "token")}}],
            "contexts": [
                {"name": "in-cluster", "context": {"cluster": "in-cluster", "user": "service-account"}}
            ],
            "current-context": "in-cluster",
        }
        handle, name = tempfile.mkstemp(prefix="loadctl-kubeconfig-", suffix=".yaml")
        with os.fdopen(handle, "w") as out:
            yaml.safe_dump(document, out)
        return Path(name)

    def close(self) -> None:
        self.api.close()
        if self._tool_kubeconfig is not None:
            self._tool_kubeconfig.unlink(missing_ok=True)
            self._tool_kubeconfig = None

    def __enter__(self) -> Cluster:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()

    def call(self, what: str, fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        """One API call; transport and API failures become InfraError naming what was attempted."""
        try:
            return fn(*args, **kwargs)
        except ApiException as e:
            raise InfraError(f"Kubernetes API: {what} in namespace {self.namespace}: {_message(e)}") from e
        except urllib3.exceptions.HTTPError as e:
            raise InfraError(f"Kubernetes API at {self.server} unreachable ({what}): {e}") from e

    def _json(self, obj: Any) -> Any:
        return self.api.sanitize_for_serialization(obj)

    def check_namespace(self) -> None:
        try:
            self.core.read_namespace(self.namespace)
        except ApiException as e:
            if e.status == 404:
                raise InputError(
                    f"namespace {self.namespace!r} does not exist", field="--namespace"
                ) from None
            if e.status != 403:  # a namespaced ServiceAccount may not read Namespaces: that is fine
                raise InfraError(f"Kubernetes API: read namespace {self.namespace}: {_message(e)}") from e
        except urllib3.exceptions.HTTPError as e:
            raise InfraError(f"Kubernetes API at {self.server} unreachable: {e}") from e

    def pods(self, selector: str) -> list[Obj]:
        found = self.call("list pods", self.core.list_namespaced_pod, self.namespace, label_selector=selector)
        return list(self._json(found)["items"])

    def jobs(self, selector: str) -> list[Obj]:
        found = self.call(
            "list jobs", self.batch.list_namespaced_job, self.namespace, label_selector=selector
        )
        return list(self._json(found)["items"])

    def events(self) -> list[Obj]:
        found = self.call("list events", self.core.list_namespaced_event, self.namespace)
        return list(self._json(found)["items"])

    def watch_pods(self, selector: str, *, timeout_s: float) -> Iterator[None]:
        """Yields after every change to the selected pods, or after `timeout_s` without one."""
        stream = watch.Watch()
        try:
            for _ in stream.stream(
                self.core.list_namespaced_pod,
                self.namespace,
                label_selector=selector,
                timeout_seconds=max(1, int(timeout_s)),
            ):
                yield
        except ApiException as e:
            raise InfraError(
                f"Kubernetes API: watch pods in namespace {self.namespace}: {_message(e)}"
            ) from e
        except urllib3.exceptions.HTTPError as e:
            raise InfraError(f"Kubernetes API at {self.server} unreachable (watch pods): {e}") from e
        finally:
            stream.stop()
        yield

    def suspend_job(self, name: str) -> None:
        """The Job controller then deletes the Job's pods (graceful) and creates no new ones."""
        body = {"spec": {"suspend": True}}
        self.call(f"suspend job {name}", self.batch.patch_namespaced_job, name, self.namespace, body)

    def annotate_job(self, name: str, annotations: dict[str, str]) -> None:
        body = {"metadata": {"annotations": annotations}}
        self.call(f"annotate job {name}", self.batch.patch_namespaced_job, name, self.namespace, body)

    def exists(self, kind: str, name: str) -> bool:
        """Whether a ServiceAccount or Secret exists (a 403 counts as 'cannot tell': assumed yes)."""
        read = {
            "ServiceAccount": self.core.read_namespaced_service_account,
            "Secret": self.core.read_namespaced_secret,
        }[kind]
        try:
            read(name, self.namespace)
        except ApiException as e:
            if e.status == 404:
                return False
            if e.status == 403:
                return True
            raise InfraError(f"Kubernetes API: read {kind} {name}: {_message(e)}") from e
        except urllib3.exceptions.HTTPError as e:
            raise InfraError(f"Kubernetes API at {self.server} unreachable: {e}") from e
        return True

    def run_objects(self, run_id: str) -> list[str]:
        """Names of the run's Jobs and pods still present (what teardown must bring to none)."""
        selector = run_selector(run_id)
        jobs = [f"job/{j['metadata']['name']}" for j in self.jobs(selector)]
        return jobs + [f"pod/{p['metadata']['name']}" for p in self.pods(selector)]

    def wait_gone(self, run_id: str, *, timeout_s: float) -> list[str]:
        """Wait until the run's Jobs and pods are gone; returns what is left after the timeout."""
        deadline = time.monotonic() + timeout_s
        left = self.run_objects(run_id)
        while left and time.monotonic() < deadline:
            time.sleep(0.5)
            left = self.run_objects(run_id)
        return left

    def master_jobs(self) -> list[Obj]:
        """The master Jobs of every run in the namespace (one per run)."""
        return self.jobs(f"{RUN_LABEL},{COMPONENT_LABEL}=master")

    # -- the target's Lease (controller/k8s/lease.py) ------------------------------------------
    def read_lease(self, name: str) -> Obj | None:
        try:
            return dict(self._json(self.coordination.read_namespaced_lease(name, self.namespace)))
        except ApiException as e:
            if e.status == 404:
                return None
            raise InfraError(
                f"Kubernetes API: read lease {name} in namespace {self.namespace}: {_message(e)}"
            ) from e
        except urllib3.exceptions.HTTPError as e:
            raise InfraError(f"Kubernetes API at {self.server} unreachable (read lease): {e}") from e

    def _lease_write(self, what: str, fn: Callable[..., Any], *args: Any) -> Any:
        """A create or update; 409 (AlreadyExists, stale resourceVersion) is LeaseConflict."""
        try:
            return fn(*args)
        except ApiException as e:
            if e.status == 409:
                raise LeaseConflict(_message(e)) from e
            raise InfraError(f"Kubernetes API: {what} in namespace {self.namespace}: {_message(e)}") from e
        except urllib3.exceptions.HTTPError as e:
            raise InfraError(f"Kubernetes API at {self.server} unreachable ({what}): {e}") from e

    def create_lease(self, body: Obj) -> Obj:
        name = body["metadata"]["name"]
        created = self._lease_write(
            f"create lease {name}", self.coordination.create_namespaced_lease, self.namespace, body
        )
        return dict(self._json(created))

    def replace_lease(self, name: str, body: Obj) -> Obj:
        replaced = self._lease_write(
            f"update lease {name}", self.coordination.replace_namespaced_lease, name, self.namespace, body
        )
        return dict(self._json(replaced))

    def delete_lease(self, name: str, *, resource_version: str) -> None:
        """Delete it as read (a Lease renewed or taken over since is left alone); gone is fine."""
        options = client.V1DeleteOptions(
            preconditions=client.V1Preconditions(resource_version=resource_version)
        )
        try:
            self.coordination.delete_namespaced_lease(name, self.namespace, body=options)
        except ApiException as e:
            if e.status not in (404, 409):
                raise InfraError(f"Kubernetes API: delete lease {name}: {_message(e)}") from e
        except urllib3.exceptions.HTTPError as e:
            raise InfraError(f"Kubernetes API at {self.server} unreachable (delete lease): {e}") from e
