"""A stand-in for the kubelet's "run the container" part, for pods on KWOK's fake nodes.

KWOK gives pods their node, IP and Running/Ready status, but runs nothing. This class runs the
container of every Running loadctl pod of one namespace -- a run's master and workers, and the
chart's scheduled controller pods -- as a local process (tests/podexec.py maps the pod's paths and
Service names), and when the process exits it sets the annotation
`loadctl.test/exit-code`, on which the KWOK stage `pod-exit` (kwok-stages.yaml) marks the pod
Succeeded or Failed -- so the real Job controller sees the Jobs complete. A pod that is deleted
gets SIGTERM, like a kubelet gives it, and its grace period to exit. A pod with
automountServiceAccountToken gets its ServiceAccount's token (a real TokenRequest), the API server's
CA and its namespace where a pod would have them (LOADCTL_SERVICEACCOUNT_DIR points there), and
KUBERNETES_SERVICE_HOST/PORT as the kubelet sets them. Volumes: a configMap is written as the
kubelet lays it out when the pod starts (so the next pod sees a changed ConfigMap), a
persistentVolumeClaim is its bound PersistentVolume's local path (hostPath or local; the same
directory for every pod of the claim, so it outlives them), anything else a fresh directory.
"""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

from kubernetes import client
from kubernetes.client.exceptions import ApiException

from controller.processes import ManagedProcess
from tests.k8s.controlplane import EXIT_CODE_ANNOTATION
from tests.podexec import local_argv, local_env, pod_mounts, write_configmap_volume

RUN_LABEL = "loadctl.io/run-id"
COMPONENT_LABEL = "app.kubernetes.io/component"


def runs_here(pod: Any) -> bool:
    """A run's pod (master, workers) or a scheduled controller pod; other pods are left alone."""
    labels = pod.metadata.labels or {}
    return RUN_LABEL in labels or labels.get(COMPONENT_LABEL) == "controller"


class LocalKubelet:
    def __init__(self, api: client.ApiClient, namespace: str, workdir: Path) -> None:
        self.api = api
        self.core = client.CoreV1Api(api)
        self.namespace = namespace
        self.workdir = workdir
        self.processes: dict[str, ManagedProcess] = {}
        self.sidecars: dict[str, list[ManagedProcess]] = {}  # native sidecars (restartPolicy Always)
        self.reported: set[str] = set()
        self.stopping: set[str] = set()  # one SIGTERM per deleted pod, as a kubelet sends it
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name=f"kubelet-{namespace}", daemon=True)
        self.errors: list[str] = []

    def __enter__(self) -> LocalKubelet:
        self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._stop.set()
        self._thread.join(timeout=30)
        for process in self.processes.values():
            process.stop(timeout=15)
        for sidecars in self.sidecars.values():
            for sidecar in sidecars:
                sidecar.stop(timeout=15)

    def log_tails(self) -> dict[str, str]:
        return {name: p.log_tail(600) for name, p in self.processes.items()}

    def _loop(self) -> None:
        while not self._stop.wait(0.3):
            try:
                self._sync()
            except ApiException as e:  # the namespace is going away at the end of a test
                if e.status != 404:
                    self.errors.append(f"{e.status} {e.reason}")
            except Exception as e:  # keep playing kubelet; the test reads .errors
                self.errors.append(repr(e))

    def _sync(self) -> None:
        pods = {
            p.metadata.name: p for p in self.core.list_namespaced_pod(self.namespace).items if runs_here(p)
        }
        for name, process in self.processes.items():
            pod = pods.get(name)
            if pod is None or pod.metadata.deletion_timestamp is not None:
                grace = 30 if pod is None else (pod.metadata.deletion_grace_period_seconds or 30)
                if process.poll() is None and name not in self.stopping:
                    self.stopping.add(name)
                    for each in [process, *self.sidecars.get(name, [])]:
                        threading.Thread(target=each.stop, kwargs={"timeout": grace}, daemon=True).start()
            elif process.poll() is not None and name not in self.reported:
                # as a kubelet does: sidecars end once the main container has
                for sidecar in self.sidecars.get(name, []):
                    sidecar.stop(timeout=10)
                self._report_exit(name, process.poll())
        for name, pod in pods.items():
            if (
                name not in self.processes
                and pod.status.phase == "Running"
                and pod.metadata.deletion_timestamp is None
            ):
                self.processes[name] = self._start(pod)

    def _report_exit(self, name: str, code: int | None) -> None:
        # a container killed by signal N exits 128+N to the kubelet (Popen says -N)
        code = 128 - code if code is not None and code < 0 else code
        body = {"metadata": {"annotations": {EXIT_CODE_ANNOTATION: str(code)}}}
        self.core.patch_namespaced_pod(name, self.namespace, body)
        self.reported.add(name)

    def _start(self, pod: Any) -> ManagedProcess:
        spec = self.api.sanitize_for_serialization(pod.spec)
        home = self.workdir / pod.metadata.name
        volumes = {volume["name"]: self._local_volume(volume, home) for volume in spec.get("volumes", [])}
        services = {s.metadata.name for s in self.core.list_namespaced_service(self.namespace).items}
        hosts = (
            services
            | {f"{s}.{self.namespace}" for s in services}
            | {f"{s}.{self.namespace}.svc.cluster.local" for s in services}
        )
        scratch = volumes.get("tmp", home)

        account_env = (
            self._mount_service_account(spec, home) if spec.get("automountServiceAccountToken") else {}
        )

        def run(container: dict[str, Any]) -> ManagedProcess:
            return ManagedProcess(
                f"pod {pod.metadata.name} container {container['name']}",
                local_argv(container, pod_mounts(container, volumes), hosts),
                log_path=home / f"{container['name']}.log",
                env={**local_env(container, scratch), **account_env},
                cwd=scratch,
            )

        # native sidecars start first, as the kubelet starts them before the main containers
        sidecars = [c for c in spec.get("initContainers", []) if c.get("restartPolicy") == "Always"]
        self.sidecars[pod.metadata.name] = [run(c) for c in sidecars]
        return run(spec["containers"][0])

    def _local_volume(self, volume: dict[str, Any], home: Path) -> Path:
        """The local directory of one of the pod's volumes."""
        if "persistentVolumeClaim" in volume:
            return self._claim_path(volume["persistentVolumeClaim"]["claimName"])
        local = home / "volumes" / volume["name"]
        if "configMap" in volume:
            config_map = self.core.read_namespaced_config_map(volume["configMap"]["name"], self.namespace)
            write_configmap_volume(local, config_map.data or {})
        else:
            local.mkdir(parents=True, exist_ok=True)
        return local

    def _claim_path(self, claim: str) -> Path:
        """The local path of the PersistentVolume bound to `claim` (the scheduler placed the pod, so
        it is bound)."""
        bound = self.core.read_namespaced_persistent_volume_claim(claim, self.namespace).spec.volume_name
        volume = self.core.read_persistent_volume(bound).spec
        source = volume.host_path or volume.local
        assert source is not None, f"PersistentVolume {bound}: only hostPath and local volumes run here"
        return Path(source.path)

    def _mount_service_account(self, spec: dict[str, Any], home: Path) -> dict[str, str]:
        """The pod's ServiceAccount token, CA and namespace 'mounted' in `home`; the env that finds them."""
        account = spec.get("serviceAccountName") or "default"
        request = {"spec": {"expirationSeconds": 3600}}
        token = self.core.create_namespaced_service_account_token(
            account, self.namespace, request
        ).status.token
        mounted = home / "serviceaccount"
        mounted.mkdir(parents=True, exist_ok=True)
        (mounted / "token").write_text(token)
        (mounted / "ca.crt").write_text(Path(self.api.configuration.ssl_ca_cert).read_text())
        (mounted / "namespace").write_text(self.namespace)
        server = urlparse(self.api.configuration.host)
        return {
            "LOADCTL_SERVICEACCOUNT_DIR": str(mounted),
            "KUBERNETES_SERVICE_HOST": str(server.hostname),
            "KUBERNETES_SERVICE_PORT": str(server.port),
        }
