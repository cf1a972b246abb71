"""A real Kubernetes control plane on 127.0.0.1 for tests, with KWOK playing the kubelets.

Like controller-runtime's envtest (etcd + kube-apiserver) plus kube-controller-manager,
kube-scheduler and KWOK fake nodes, so the real Job controller, garbage collector, ServiceAccount
admission, PodSecurity admission and scheduler act on what the tests create. Pods never run: KWOK
moves them through the phases in kwok-stages.yaml (Running+Ready once scheduled; ImagePullBackOff
for MISSING_IMAGE; Succeeded/Failed once a test sets EXIT_CODE_ANNOTATION; gone once deleted).
KWOK also plays the nodes' kubelet API, so `kubectl port-forward` works: the nodes' address and
kubelet port are KWOK's server, which forwards the ports forwarding_ports() names to 127.0.0.1.

Binaries come from $LOADCTL_K8S_ASSETS, else from scripts/ensure-k8s.sh (which builds them once).
Every process is a ManagedProcess (own session, PDEATHSIG) and is stopped by PID, newest first.
"""

from __future__ import annotations

import os
import secrets
import shutil
import ssl
import subprocess
import time
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path
from types import TracebackType
from typing import Any, TypeVar

import httpx
import kubernetes
import yaml
from kubernetes.client.exceptions import ApiException

from controller.errors import InfraError
from controller.processes import ManagedProcess, free_port, wait_until

REPO_ROOT = Path(__file__).resolve().parents[2]
ENSURE_K8S = REPO_ROOT / "scripts" / "ensure-k8s.sh"
KWOK_STAGES = Path(__file__).with_name("kwok-stages.yaml")
KWOK_PORT_FORWARD_CRD = Path(__file__).with_name("kwok-portforward.yaml")
KWOK_GROUP, KWOK_VERSION, CLUSTER_PORT_FORWARDS = "kwok.x-k8s.io", "v1alpha1", "clusterportforwards"
BINARIES = ("etcd", "kube-apiserver", "kube-controller-manager", "kube-scheduler", "kwok")

FAKE_NODE_ANNOTATION = "kwok.x-k8s.io/node"
FAKE_NODE_LABELS = {"type": "kwok"}
# A pod whose first container has this image gets ImagePullBackOff instead of starting.
MISSING_IMAGE = "registry.invalid/loadctl:missing"
# Set on a Running pod to make it exit with that code (the test plays kubelet).
EXIT_CODE_ANNOTATION = "loadctl.test/exit-code"

START_TIMEOUT = 60.0

T = TypeVar("T")


def k8s_assets() -> Path:
    """The directory with the five binaries: $LOADCTL_K8S_ASSETS, else what ensure-k8s.sh prints."""
    explicit = os.environ.get("LOADCTL_K8S_ASSETS")
    if explicit:
        assets = Path(explicit)
    else:
        # Progress goes to our stderr; a cold build takes minutes and should not look like a hang.
        result = subprocess.run(
            [str(ENSURE_K8S)], stdout=subprocess.PIPE, text=True, check=False, cwd=REPO_ROOT
        )
        if result.returncode != 0:
            raise InfraError(f"{ENSURE_K8S.name} failed (exit {result.returncode}); see its output above")
        assets = Path(result.stdout.strip())
    missing = [name for name in BINARIES if not os.access(assets / name, os.X_OK)]
    if missing:
        raise InfraError(f"{assets} lacks {', '.join(missing)}: run scripts/ensure-k8s.sh")
    return assets


class ControlPlane:
    """etcd, kube-apiserver, kube-controller-manager, kube-scheduler and kwok on free loopback ports.

    Use as a context manager, or call start() and stop(). State and logs live under `workdir`.
    """

    def __init__(self, workdir: Path, *, assets: Path | None = None, fake_nodes: int = 2) -> None:
        self.workdir = workdir
        self.assets = assets
        self.fake_nodes = fake_nodes
        self.token = secrets.token_urlsafe(32)
        self.kubeconfig = workdir / "kubeconfig"
        self.server = ""
        self._pki = workdir / "pki"
        self._logs = workdir / "logs"
        self._processes: list[ManagedProcess] = []
        self.startup_seconds = 0.0

    def __enter__(self) -> ControlPlane:
        self.start()
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()

    @property
    def ca_file(self) -> Path:
        """The apiserver's self-signed serving cert bundle (leaf + its CA); verifies 127.0.0.1."""
        return self._pki / "apiserver.crt"

    def start(self) -> None:
        assets = self.assets or k8s_assets()
        started = time.monotonic()
        try:
            self._pki.mkdir(parents=True, exist_ok=True)
            etcd_url = self._start_etcd(assets)
            self._start_apiserver(assets, etcd_url)
            self._write_kubeconfig()
            self._start_controller_manager(assets)
            self._start_scheduler(assets)
            self._install_port_forward_crd()
            self._start_kwok(assets)
            self._create_fake_nodes()
            self._wait_until_usable()
        except BaseException:
            self.stop()
            raise
        self.startup_seconds = time.monotonic() - started

    def stop(self) -> None:
        """Stops every component by PID, newest first (kwok ... etcd), so nothing logs a dead etcd."""
        while self._processes:
            self._processes.pop().stop(timeout=10)

    def api_client(self) -> kubernetes.client.ApiClient:
        """A new client with the admin token, from the kubeconfig; close it (it is a context manager)."""
        configuration = kubernetes.client.Configuration()
        kubernetes.config.load_kube_config(
            config_file=str(self.kubeconfig), client_configuration=configuration
        )
        # Loopback only: a proxy from the environment must never see this traffic.
        configuration.proxy = None
        return kubernetes.client.ApiClient(configuration)

    def log_tails(self) -> str:
        return "\n".join(f"--- {p.name} ---\n{p.log_tail()}" for p in self._processes)

    # --- components -------------------------------------------------------------------------

    def _launch(self, name: str, argv: list[str]) -> ManagedProcess:
        process = ManagedProcess(name, argv, log_path=self._logs / f"{name}.log", cwd=self.workdir)
        self._processes.append(process)
        return process

    def _await(self, what: str, predicate: Callable[[], bool], *suspects: ManagedProcess) -> None:
        """Waits for `predicate`. Fails with the log tail of a component that exits meanwhile, or on
        timeout with those of the `suspects` (the components that make `predicate` come true)."""
        if not wait_until(predicate, timeout=START_TIMEOUT, interval=0.2, watch=self._processes):
            tails = "\n".join(f"--- {p.name} ---\n{p.log_tail()}" for p in suspects)
            raise InfraError(f"not {what} after {START_TIMEOUT:.0f} s; log tail:\n{tails}")

    def _start_etcd(self, assets: Path) -> str:
        client_url = f"http://127.0.0.1:{free_port()}"
        peer_url = f"http://127.0.0.1:{free_port()}"  # etcd would take :2380 otherwise
        etcd = self._launch(
            "etcd",
            [
                str(assets / "etcd"),
                "--name=loadctl-test",
                f"--data-dir={self.workdir / 'etcd'}",
                f"--listen-client-urls={client_url}",
                f"--advertise-client-urls={client_url}",
                f"--listen-peer-urls={peer_url}",
                f"--initial-advertise-peer-urls={peer_url}",
                f"--initial-cluster=loadctl-test={peer_url}",
                "--logger=zap",
                "--log-level=warn",
            ],
        )
        self._await("etcd healthy", lambda: _http_ok(f"{client_url}/health"), etcd)
        return client_url

    def _start_apiserver(self, assets: Path, etcd_url: str) -> None:
        _write_service_account_keys(self._pki)
        tokens = self.workdir / "tokens.csv"
        tokens.write_text(f'{self.token},admin,admin,"system:masters"\n', encoding="utf-8")
        tokens.chmod(0o600)
        port = free_port()
        self.server = f"https://127.0.0.1:{port}"
        apiserver = self._launch(
            "kube-apiserver",
            [
                str(assets / "kube-apiserver"),
                f"--etcd-servers={etcd_url}",
                f"--cert-dir={self._pki}",
                f"--secure-port={port}",
                "--bind-address=127.0.0.1",
                "--advertise-address=127.0.0.1",
                "--service-account-issuer=https://kubernetes.default.svc",
                f"--service-account-key-file={self._pki / 'sa.pub'}",
                f"--service-account-signing-key-file={self._pki / 'sa.key'}",
                "--authorization-mode=Node,RBAC",
                f"--token-auth-file={tokens}",
                "--service-cluster-ip-range=10.0.0.0/24",
                # The `kubernetes` Service's Endpoints cannot hold a loopback address; without this the
                # apiserver logs that error every 10 s. Nothing in the tests reaches the API in-cluster.
                "--endpoint-reconciler-type=none",
            ],
        )
        headers = {"Authorization": f"Bearer {self.token}"}
        self._await(
            "kube-apiserver ready",
            lambda: self.ca_file.exists() and _http_ok(f"{self.server}/readyz", self._tls(), headers),
            apiserver,
        )

    def _write_kubeconfig(self) -> None:
        config = {
            "apiVersion": "v1",
            "kind": "Config",
            "clusters": [
                {
                    "name": "loadctl-test",
                    "cluster": {"server": self.server, "certificate-authority": str(self.ca_file)},
                }
            ],
            "users": [{"name": "admin", "user": {"token": self.token}}],
            "contexts": [{"name": "loadctl-test", "context": {"cluster": "loadctl-test", "user": "admin"}}],
            "current-context": "loadctl-test",
        }
        self.kubeconfig.write_text(yaml.safe_dump(config), encoding="utf-8")
        self.kubeconfig.chmod(0o600)

    def _start_controller_manager(self, assets: Path) -> None:
        # No serving port: readiness shows in its work (the `default` ServiceAccount, see below).
        self._launch(
            "kube-controller-manager",
            [
                str(assets / "kube-controller-manager"),
                f"--kubeconfig={self.kubeconfig}",
                f"--service-account-private-key-file={self._pki / 'sa.key'}",
                f"--root-ca-file={self.ca_file}",
                "--use-service-account-credentials",
                "--leader-elect=false",
                "--bind-address=127.0.0.1",
                "--secure-port=0",
            ],
        )

    def _start_scheduler(self, assets: Path) -> None:
        port = free_port()
        scheduler = self._launch(
            "kube-scheduler",
            [
                str(assets / "kube-scheduler"),
                f"--kubeconfig={self.kubeconfig}",
                f"--authentication-kubeconfig={self.kubeconfig}",
                f"--authorization-kubeconfig={self.kubeconfig}",
                "--leader-elect=false",
                "--bind-address=127.0.0.1",
                f"--secure-port={port}",
            ],
        )
        # Its serving cert is generated in memory, so there is nothing to verify against.
        healthz = f"https://127.0.0.1:{port}/healthz"
        self._await("kube-scheduler healthy", lambda: _http_ok(healthz, _no_verify()), scheduler)

    def _install_port_forward_crd(self) -> None:
        """kwok's informer for ClusterPortForwards needs their CRD served before kwok starts."""
        crd = yaml.safe_load(KWOK_PORT_FORWARD_CRD.read_text(encoding="utf-8"))
        with self.api_client() as client:
            extensions = kubernetes.client.ApiextensionsV1Api(client)
            extensions.create_custom_resource_definition(crd)
            name = crd["metadata"]["name"]
            by_name = {p.name: p for p in self._processes}
            self._await(
                f"CRD {name} established",
                lambda: _crd_established(extensions, name),
                by_name["kube-apiserver"],
            )

    def _start_kwok(self, assets: Path) -> None:
        port = free_port()
        kwok = self._launch(
            "kwok",
            [
                str(assets / "kwok"),
                f"--kubeconfig={self.kubeconfig}",
                "--manage-all-nodes=false",
                f"--manage-nodes-with-annotation-selector={FAKE_NODE_ANNOTATION}=fake",
                f"--server-address=127.0.0.1:{port}",
                # The nodes' InternalIP and kubelet port (node-initialize stage): the apiserver sends
                # pods/portforward there. It speaks TLS with kwok's built-in test certificate, which
                # it accepts because it has no --kubelet-certificate-authority to verify it with.
                "--node-ip=127.0.0.1",
                f"--node-port={port}",
                # Port forwards come from the API (forwarding_ports), not --config: the ports to
                # forward are only known once a test has picked them.
                "--enable-crds=ClusterPortForward",
                f"--config={KWOK_STAGES}",
                # kwok's default pod CIDR (10.0.0.1/24) overlaps the service range above.
                "--cidr=10.244.0.1/16",
            ],
        )
        self._await("kwok healthy", lambda: _http_ok(f"http://127.0.0.1:{port}/healthz"), kwok)

    def _create_fake_nodes(self) -> None:
        resources = {"cpu": "32", "memory": "256Gi", "pods": "110"}
        with self.api_client() as client:
            core = kubernetes.client.CoreV1Api(client)
            for index in range(self.fake_nodes):
                name = f"kwok-node-{index}"
                node: Any = {  # the client sends a dict as-is
                    "apiVersion": "v1",
                    "kind": "Node",
                    "metadata": {
                        "name": name,
                        "annotations": {FAKE_NODE_ANNOTATION: "fake"},
                        "labels": {
                            **FAKE_NODE_LABELS,
                            "kubernetes.io/hostname": name,
                            "kubernetes.io/os": "linux",
                            "kubernetes.io/arch": "amd64",
                        },
                    },
                    "status": {"allocatable": resources, "capacity": resources},
                }
                core.create_node(node)

    def _wait_until_usable(self) -> None:
        """Nodes Ready and untainted (schedulable), and the controllers at work."""
        with self.api_client() as client:
            core = kubernetes.client.CoreV1Api(client)

            def nodes_schedulable() -> bool:
                nodes = core.list_node(label_selector="type=kwok").items
                return len(nodes) == self.fake_nodes and all(map(_schedulable, nodes))

            by_name = {p.name: p for p in self._processes}
            kwok, controllers = by_name["kwok"], by_name["kube-controller-manager"]
            # kwok makes the nodes Ready; the node lifecycle controller then lifts the not-ready taint.
            self._await("fake nodes Ready and untainted", nodes_schedulable, kwok, controllers)
            self._await(
                "ServiceAccount default/default created",
                lambda: service_account_exists(core, "default"),
                controllers,
            )

    def _tls(self) -> ssl.SSLContext:
        return ssl.create_default_context(cafile=str(self.ca_file))


def service_account_exists(core: kubernetes.client.CoreV1Api, namespace: str, name: str = "default") -> bool:
    try:
        core.read_namespaced_service_account(name, namespace)
    except ApiException as e:
        if e.status == 404:
            return False
        raise
    return True


@contextmanager
def forwarding_ports(
    api: kubernetes.client.ApiClient, namespace: str, ports: Iterable[int]
) -> Iterator[None]:
    """While open, `kubectl port-forward` to port P of any pod in `namespace` reaches 127.0.0.1:P.

    That is where LocalKubelet runs the pod's processes (all pods share loopback), so the forward
    reaches the pod's own process, as kubelet's would. A kwok ClusterPortForward, deleted on exit.
    """
    objects = kubernetes.client.CustomObjectsApi(api)
    name = f"ports-{namespace}"
    forwards = [{"ports": [port], "target": {"address": "127.0.0.1", "port": port}} for port in ports]
    body = {
        "apiVersion": f"{KWOK_GROUP}/{KWOK_VERSION}",
        "kind": "ClusterPortForward",
        "metadata": {"name": name},
        "spec": {"selector": {"matchNamespaces": [namespace]}, "forwards": forwards},
    }
    objects.create_cluster_custom_object(KWOK_GROUP, KWOK_VERSION, CLUSTER_PORT_FORWARDS, body)
    try:
        yield
    finally:
        objects.delete_cluster_custom_object(KWOK_GROUP, KWOK_VERSION, CLUSTER_PORT_FORWARDS, name)


def exit_pod(core: kubernetes.client.CoreV1Api, name: str, namespace: str, code: int = 0) -> None:
    """Plays kubelet: the Running pod's containers exit with `code` (KWOK stage pod-exit)."""
    core.patch_namespaced_pod(
        name, namespace, {"metadata": {"annotations": {EXIT_CODE_ANNOTATION: str(code)}}}
    )


def eventually(probe: Callable[[], T], *, what: str, timeout: float = 30.0, interval: float = 0.2) -> T:
    """Polls `probe` until it returns something truthy, and returns that; AssertionError on timeout."""
    deadline = time.monotonic() + timeout
    while True:
        value = probe()
        if value:
            return value
        if time.monotonic() >= deadline:
            raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what} (last: {value!r})")
        time.sleep(interval)


def _crd_established(extensions: kubernetes.client.ApiextensionsV1Api, name: str) -> bool:
    status = extensions.read_custom_resource_definition(name).status
    conditions = (status and status.conditions) or []
    return any(c.type == "Established" and c.status == "True" for c in conditions)


def _schedulable(node: Any) -> bool:
    """Ready, and without the not-ready taint a new Node gets from admission (TaintNodesByCondition)."""
    ready = any(c.type == "Ready" and c.status == "True" for c in node.status.conditions or [])
    return ready and not node.spec.taints


def _no_verify() -> ssl.SSLContext:
    context = ssl.create_default_context()
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    return context


def _http_ok(url: str, tls: ssl.SSLContext | None = None, headers: dict[str, str] | None = None) -> bool:
    # trust_env=False: loopback traffic must never go to a proxy from the environment.
    try:
        with httpx.Client(verify=tls or True, trust_env=False, timeout=2.0) as client:
            return client.get(url, headers=headers).status_code == 200
    except httpx.HTTPError:
        return False


def _write_service_account_keys(pki: Path) -> None:
    """The RSA key pair that signs and verifies ServiceAccount tokens (apiserver and controller-manager)."""
    openssl = os.environ.get("OPENSSL_BIN") or shutil.which("openssl")
    if openssl is None:
        raise InfraError("openssl not found: install it (Debian: apt-get install openssl) or set OPENSSL_BIN")
    key, pub = pki / "sa.key", pki / "sa.pub"
    for argv in (
        [openssl, "genrsa", "-out", str(key), "2048"],
        [openssl, "rsa", "-in", str(key), "-pubout", "-out", str(pub)],
    ):
        result = subprocess.run(argv, capture_output=True, text=True, check=False)
        if result.returncode != 0:
            raise InfraError(f"{' '.join(argv[:2])} failed: {result.stderr.strip()}")
