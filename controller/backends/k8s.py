"""The Kubernetes backend: one run = one Helm release of charts/loadctl, followed until it ends.

deploy:   guardrails (the target's Lease held by another run -- waiting up to --wait-for-lock --,
          alerts firing) -> pre-flight (ServiceAccount, Secrets) ->
          helm install -> watch the pods until the master is Ready and every worker runs, failing
          fast with the pod's own reason (ImagePullBackOff, CrashLoopBackOff, OOMKilled,
          Unschedulable, a Job that cannot create pods) or after --timeout.
follow:   progress and live gates from the cluster's Prometheus (--prometheus); when none is given
          or reachable, a local Prometheus scrapes the master's exporter through a port-forward
          (controller/k8s/port_forward.py; its TSDB stays in the run directory, like a local run's).
locust:   through the port-forward, the master serves Locust's own CSVs and HTML once the load has
          stopped and holds until they are fetched (controller/k8s/master_files.py), which the
          backend does while it polls the run and while it stops the load.
teardown: without those files, reads the run's stats back from Prometheus (the master's own CSVs
          die with its pod; a port-forward's Prometheus dies here too), then `helm uninstall
          --wait`, unless --keep-on-fail and the verdict is fail; last, releases the Lease.
collect:  writes Locust's files (stats_source "locust"), else the stats read back from
          Prometheus as stats.csv and failures.csv (stats_source "prometheus").

The target's Lease (controller/k8s/lease.py) is renewed from a thread for the whole run; the
master reads it as its heartbeat and stops the load when it goes stale (locust_workers/heartbeat.py).

The cluster and Helm come in as collaborators (ClusterApi, HelmApi): the factory passes the real
ones (controller/k8s/cluster.py, helm.py), unit tests small in-memory fakes.
"""

from __future__ import annotations

import time
from collections.abc import Iterator, Mapping
from typing import Any, Literal, Protocol

import httpx

from controller.backends.base import BackendEvents, RecordFields
from controller.backends.options import K8sOptions
from controller.errors import InfraError, PrometheusError, RunSkipped
from controller.k8s.helm import deep_merge
from controller.k8s.lease import LEASE_DURATION_S, LeaseApi, LockHeld, TargetLease, target_key
from controller.k8s.master_files import MasterFiles
from controller.k8s.pod_health import (
    RunPods,
    component,
    diagnose,
    master_exit_code,
    master_finished,
    run_pods,
)
from controller.k8s.port_forward import PortForward
from controller.k8s.release import (
    VERDICT_ANNOTATION,
    release_name,
    run_files,
    run_selector,
    run_values,
)
from controller.latency import cluster_latency_layout
from controller.models import RunPlan, Verdict
from controller.processes import wait_until
from controller.prom import client as prom
from controller.prom.config import SCRAPE_INTERVAL_S
from controller.prom.server import PrometheusServer, run_prometheus
from controller.prom.stats import (
    FAILURE_COLUMNS,
    STATS_COLUMNS,
    StatsTables,
    read_stats_from_prometheus,
)
from controller.rundir import (
    EXCEPTIONS_CSV,
    FAILURES_CSV,
    LOCUST_HTML,
    STATS_CSV,
    RunDir,
    write_atomic,
    write_csv,
)
from locust_workers.contract import EXPORTER_PORT, PROBES_PORT

# The chart's run.finalScrapeTimeoutSeconds: how long the master waits for a scrape after the load.
CHART_FINAL_SCRAPE_TIMEOUT_S = 15.0
# The master waits this long for a final scrape (chart: run.finalScrapeTimeoutSeconds) + margin.
STOP_GRACE_S = 45
OBSERVE_EVERY_S = 1.0
# How long the master serves Locust's files after the load (chart: run.locustFilesTimeoutSeconds)
# when the backend follows it through a port-forward; it asks every poll, seconds apart.
LOCUST_FILES_TIMEOUT_S = 60
# Each file the master serves (contract.LOCUST_FILE_NAMES) -> its name in the results folder.
LOCUST_FILE_DESTINATIONS = {
    "stats.csv": STATS_CSV,
    "failures.csv": FAILURES_CSV,
    "exceptions.csv": EXCEPTIONS_CSV,
    "locust.html": LOCUST_HTML,
}
Obj = dict[str, Any]


class ClusterApi(LeaseApi, Protocol):
    """What the backend needs from the cluster (controller/k8s/cluster.py's Cluster)."""

    namespace: str
    api: Any  # a kubernetes.client.ApiClient: the port-forward opens its streams with its configuration

    def check_namespace(self) -> None: ...
    def exists(self, kind: str, name: str) -> bool: ...
    def pods(self, selector: str) -> list[Obj]: ...
    def jobs(self, selector: str) -> list[Obj]: ...
    def events(self) -> list[Obj]: ...
    def watch_pods(self, selector: str, *, timeout_s: float) -> Iterator[None]: ...
    def suspend_job(self, name: str) -> None: ...
    def annotate_job(self, name: str, annotations: dict[str, str]) -> None: ...
    def wait_gone(self, run_id: str, *, timeout_s: float) -> list[str]: ...
    def close(self) -> None: ...


class HelmApi(Protocol):
    """What the backend needs from Helm (controller/k8s/helm.py's Helm)."""

    def install(self, release: str, values: Mapping[str, Any], *, timeout_s: float) -> None: ...
    def uninstall(self, release: str, *, wait: bool = True, timeout_s: float = 120) -> None: ...


def referenced_secrets(values: dict[str, Any]) -> list[str]:
    """Secrets the run's pods need: envFrom secretRefs, secretEnv and imagePullSecrets."""
    names = [s["secretRef"]["name"] for s in values.get("envFrom", []) if "secretRef" in s]
    names += [s["secretName"] for s in values.get("secretEnv", [])]
    names += [s["name"] for s in values.get("imagePullSecrets", []) if "name" in s]
    return sorted(set(names))


class K8sBackend:
    name = "k8s"

    def __init__(
        self,
        plan: RunPlan,
        options: K8sOptions,
        events: BackendEvents,
        *,
        cluster: ClusterApi,
        helm: HelmApi,
        prometheus_transport: httpx.BaseTransport | None = None,
    ) -> None:
        self.plan = plan
        self.options = options
        self.events = events
        self.cluster = cluster
        self.helm = helm
        self.prometheus_transport = prometheus_transport  # None: real HTTP
        self.namespace = cluster.namespace
        self.release = release_name(plan.run_id)
        self.selector = run_selector(plan.run_id)
        self.lease = TargetLease(cluster, target=target_key(plan.host, plan.hosts), holder=plan.run_id)
        self.values = deep_merge(
            options.values,
            run_values(
                plan,
                files=run_files(plan),
                image=options.image,
                prometheus_url=options.prometheus_url,
                heartbeat=(self.lease.name, LEASE_DURATION_S),
            ),
        )
        self.installed = False
        self.local_prometheus: PrometheusServer | None = None
        self.port_forwards: list[PortForward] = []
        self.master_files: MasterFiles | None = None  # set with the port-forward that reaches them
        # Before this (monotonic) time the stage table cannot have run out: no need to ask for files
        self._files_due_at = 0.0
        self._prometheus_url: str | None = None
        self._pods: list[Obj] = []
        self._jobs: list[Obj] = []
        self._observed_at = 0.0
        self._stats: StatsTables | None = None
        self._stats_written: Literal["locust", "prometheus"] | None = None
        self._last_exit_code: int | None = None

    # -- what runs.py reads -------------------------------------------------------------------
    @property
    def prometheus_url(self) -> str | None:
        return self._prometheus_url

    @property
    def scrape_interval_s(self) -> float:
        if self.local_prometheus is not None:
            return SCRAPE_INTERVAL_S
        # A cluster Prometheus' interval is its own configuration, unknown here. The chart makes the
        # master wait run.finalScrapeTimeoutSeconds for a scrape after the load: a Prometheus that
        # scrapes less often loses the final totals anyway, so that is the longest interval that works.
        run = self.values.get("run", {})
        return float(run.get("finalScrapeTimeoutSeconds", CHART_FINAL_SCRAPE_TIMEOUT_S))

    @property
    def record_fields(self) -> RecordFields:
        return {
            "stats_source": self._stats_written,
            "release": self.release,
            "namespace": self.namespace,
        }

    @property
    def locust_exit_code(self) -> int | None:
        return self._last_exit_code

    def locust_warnings(self) -> tuple[str, ...]:
        return ()  # the pods' logs go with the release; reading them needs pods/log (not granted)

    # -- deploy -------------------------------------------------------------------------------
    def deploy(self) -> None:
        self.plan.run_dir.mkdir(parents=True, exist_ok=True)
        self.cluster.check_namespace()
        cluster_prometheus = self._reachable_prometheus()
        self._guardrails(cluster_prometheus)
        self._preflight_objects()
        if cluster_prometheus is None:
            # the port-forward will reach the master's files: have it serve them (a user's value wins)
            serve = {"run": {"locustFilesTimeoutSeconds": LOCUST_FILES_TIMEOUT_S}}
            self.values = deep_merge(serve, self.values)
        self.events.note(f"helm install {self.release} in namespace {self.namespace}")
        self.installed = True  # from here on, teardown uninstalls (also a half-done install)
        self.helm.install(self.release, self.values, timeout_s=self.options.ready_timeout_s)
        self._wait_ready()
        if cluster_prometheus is not None:
            self._prometheus_url = cluster_prometheus
        else:
            self._prometheus_url = self._scrape_through_port_forward()

    def _reachable_prometheus(self) -> str | None:
        url = self.options.prometheus_url
        if not url:
            return None
        with self._prometheus_client(url, timeout=5.0) as client:
            try:
                prom.query(client=client, promql="vector(1)")
                return url
            except PrometheusError as e:
                self.events.warning(
                    f"Prometheus {url} not reachable ({e}); following the master through a "
                    "port-forward instead"
                )
                return None

    def _prometheus_client(self, url: str, *, timeout: float) -> httpx.Client:
        return httpx.Client(base_url=url, timeout=timeout, transport=self.prometheus_transport)

    def _guardrails(self, prometheus_url: str | None) -> None:
        """Another run holding the target, or alerts the profile names: a scheduled run skips."""
        self._hold_target()
        if not self.plan.skip_if_alerts:
            return
        if prometheus_url is None:
            alerts = ", ".join(self.plan.skip_if_alerts)
            raise RunSkipped(f"cannot check skip_if_alerts ({alerts}): no reachable Prometheus")
        with self._prometheus_client(prometheus_url, timeout=10.0) as client:
            try:
                firing = prom.firing_alerts(client=client) & set(self.plan.skip_if_alerts)
            except PrometheusError as e:
                raise RunSkipped(f"cannot check skip_if_alerts: {e}") from e
        if firing:
            raise RunSkipped(
                f"alerts firing that the profile lists under skip_if_alerts: {', '.join(sorted(firing))}"
            )

    def _hold_target(self) -> None:
        """The target's Lease, kept renewed from here on; held by another run: exit 3 (or skip)."""
        try:
            self.lease.acquire(wait_s=self.options.wait_for_lock_s, progress=self.events.progress)
        except LockHeld as e:
            if self.options.in_cluster:
                raise RunSkipped(str(e)) from None
            waited = f"after waiting {self.options.wait_for_lock_s:.0f}s (--wait-for-lock)"
            raise InfraError(f"{e}; gave up {waited}; nothing was installed") from None
        self.lease.start_renewing()
        self.events.note(f"holding Lease {self.namespace}/{self.lease.name} for target {self.lease.target}")

    def _preflight_objects(self) -> None:
        """Objects the pods will need but Helm does not create: fail now, not after a silent hang."""
        account = self.values.get("run", {}).get("serviceAccountName")
        missing = []
        if account and not self.cluster.exists("ServiceAccount", account):
            missing.append(f"ServiceAccount {account!r} (run.serviceAccountName)")
        missing += [
            f"Secret {name!r}"
            for name in referenced_secrets(self.values)
            if not self.cluster.exists("Secret", name)
        ]
        if missing:
            raise InfraError(
                f"namespace {self.namespace} has no {' and no '.join(missing)}: create it before the run "
                "(nothing was installed)"
            )

    def _observe(self, *, force: bool = False) -> tuple[list[Obj], list[Obj]]:
        if force or time.monotonic() - self._observed_at >= OBSERVE_EVERY_S:
            self._pods = self.cluster.pods(self.selector)
            self._jobs = self.cluster.jobs(self.selector)
            self._observed_at = time.monotonic()
            code = master_exit_code(self._pods)
            if code is not None:
                self._last_exit_code = code
        return self._pods, self._jobs

    def _problem(self) -> str | None:
        pods, jobs = self._observe(force=True)
        return diagnose(pods, jobs, self.cluster.events())

    def _wait_ready(self) -> None:
        deadline = time.monotonic() + self.options.ready_timeout_s
        shown = ""
        state = RunPods(False, None, 0, self.plan.workers)
        while True:
            problem = self._problem()
            if problem:
                raise InfraError(problem)
            state = run_pods(self._pods, workers=self.plan.workers)
            if state.summary() != shown:
                shown = state.summary()
                self.events.progress(f"pods: {shown}")
            if state.ready:
                return
            if master_finished(self._pods, self._jobs):
                return  # a very short run can end before we saw it ready: follow() takes over
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise InfraError(
                    f"pods not ready after {self.options.ready_timeout_s:.0f}s (--timeout): {state.summary()}"
                    f"{self._recent_events()}"
                )
            for _ in self.cluster.watch_pods(self.selector, timeout_s=min(2.0, remaining)):
                break

    def _recent_events(self) -> str:
        names = {o["metadata"]["name"] for o in (*self._pods, *self._jobs)}
        events = [e for e in self.cluster.events() if e.get("involvedObject", {}).get("name") in names]
        shown = [f"{e['involvedObject']['name']}: {e.get('reason')}: {e.get('message')}" for e in events[-3:]]
        return f"; last events: {'; '.join(shown)}" if shown else "; no events"

    def _scrape_through_port_forward(self) -> str:
        """A local Prometheus (TSDB in the run directory) scraping the master through a port-forward."""
        master = next((p for p in self._pods if component(p) == "master"), None)
        if master is None:
            raise InfraError("no master pod to port-forward to")
        run = self.values.get("run", {})
        local = self._forward(master, int(run.get("exporterPort", EXPORTER_PORT)))
        # the probes sidecar shares the master pod: its port gets a forward of its own
        local_probes = (
            self._forward(master, int(run.get("probesPort", PROBES_PORT))) if self.plan.probes else None
        )
        self.master_files = MasterFiles(f"http://127.0.0.1:{local}")
        # Not sooner: the master serves its files once the load stopped; asking before is in vain.
        self._files_due_at = time.monotonic() + self.plan.duration
        self.local_prometheus = run_prometheus(
            run_id=self.plan.run_id,
            run_dir=self.plan.run_dir,
            exporter_address=f"127.0.0.1:{local}",
            targets=self.plan.scrape_targets,
            probes_address=None if local_probes is None else f"127.0.0.1:{local_probes}",
            latency_buckets=cluster_latency_layout(self.plan.latency_buckets),
        )
        self.local_prometheus.start()
        self.events.note(
            "following the master's exporter through a port-forward "
            f"(local Prometheus {self.local_prometheus.url})"
        )
        return self.local_prometheus.url

    def _forward(self, master: Obj, port: int) -> int:
        forward = PortForward(
            api=self.cluster.api,
            namespace=self.namespace,
            pod=master["metadata"]["name"],
            port=port,
            log_path=RunDir(self.plan.run_dir).port_forward_log,
        )
        self.port_forwards.append(forward.start())
        return forward.local_port

    # -- follow ---------------------------------------------------------------------------------
    def health(self) -> str | None:
        if self.lease.lost:  # the master stops the load too (its heartbeat): say why, end the run
            raise InfraError(f"{self.lease.lost}: this run no longer owns its target")
        if self.load_finished():
            return None
        return self._problem()

    def load_finished(self) -> bool:
        pods, jobs = self._observe()
        if master_finished(pods, jobs):
            return True
        if time.monotonic() >= self._files_due_at:
            self._fetch_locust_files()  # a master that stopped the load holds until they are fetched
        return False

    def _fetch_locust_files(self) -> None:
        if self.master_files is not None:
            self.master_files.fetch()

    def wait_final_scrape(self, client: httpx.Client, *, moment: float, timeout: float) -> bool:
        deadline = time.monotonic() + timeout
        # The master's exporter holds its pod until it was scraped once more after the load
        # (plugin.py), so the run's stop time in Prometheus means the totals there are final (the
        # pod may be gone by `moment`: its own target cannot show a scrape after it).
        stop_scraped = prom.wait_for_stop_scraped(
            client=client, run_id=self.plan.run_id, planned_s=self.plan.duration, timeout=timeout
        )
        if not stop_scraped or self.local_prometheus is None:
            return stop_scraped  # a cluster Prometheus' other targets are not the run's to wait for
        # A port-forward's private Prometheus also scrapes the profile's own targets, as a local
        # run's does: their series end with a scrape after `moment`.
        left = max(0.0, deadline - time.monotonic())
        return prom.wait_for_scrapes_after(client=client, moment=moment, timeout=left)

    # -- stop, teardown -------------------------------------------------------------------------
    def stop_load(self) -> None:
        """Suspend a still-running master Job: its pod gets SIGTERM, which stops the load gracefully
        (final stats, final scrape), and -- unlike deleting the pod -- no replacement pod starts."""
        if not self.installed:
            return
        pods, jobs = self._observe(force=True)
        if master_finished(pods, jobs):
            return
        for job in jobs:
            if component(job) == "master":
                self.events.note(f"stopping the load: suspending job {job['metadata']['name']}")
                self.cluster.suspend_job(job["metadata"]["name"])

        def master_gone() -> bool:
            pods, jobs = self._observe(force=True)
            masters = [p for p in pods if component(p) == "master"]
            if not masters or master_finished(pods, jobs):
                return True
            self._fetch_locust_files()
            return False

        wait_until(master_gone, timeout=STOP_GRACE_S + 5)

    def teardown(self, *, verdict: Verdict | None = None) -> None:
        try:
            if self.installed:
                self._fetch_locust_files()  # the last chance: the release and the port-forward go next
                if not self._have_locust_files():
                    self._stats = self._read_stats()  # before the port-forward's Prometheus stops
                if self.options.keep_on_fail and verdict == "fail":
                    self._keep(verdict)
                else:
                    self._uninstall()
        finally:
            for forward in self.port_forwards:
                forward.close()
            if self.local_prometheus is not None:
                self.local_prometheus.stop()
            try:
                self.lease.release()  # last: the next run may load the target once ours is gone
            finally:
                self.cluster.close()

    def _read_stats(self) -> StatsTables | None:
        if self._prometheus_url is None:
            return None
        try:
            with self._prometheus_client(self._prometheus_url, timeout=10.0) as client:
                return read_stats_from_prometheus(
                    client, run_id=self.plan.run_id, planned_s=self.plan.duration
                )
        except PrometheusError as e:
            self.events.warning(f"{RunDir(self.plan.run_dir).stats_csv.name} not rebuilt: {e}")
            return None

    def _keep(self, verdict: str) -> None:
        for job in self._observe(force=True)[1]:
            if component(job) == "master":
                self.cluster.annotate_job(job["metadata"]["name"], {VERDICT_ANNOTATION: verdict})
        self.events.warning(
            f"--keep-on-fail: kept release {self.release} in namespace {self.namespace}; "
            f"inspect: kubectl -n {self.namespace} get pods -l {self.selector}; "
            f"remove: loadctl teardown -n {self.namespace} --run-id {self.plan.run_id}"
        )

    def _uninstall(self) -> None:
        self.events.note(f"helm uninstall {self.release}")
        self.helm.uninstall(self.release, wait=True)
        left = self.cluster.wait_gone(self.plan.run_id, timeout_s=60)
        if left:
            raise InfraError(f"after helm uninstall {self.release}, still present: {', '.join(left)}")
        self.installed = False

    def _have_locust_files(self) -> bool:
        return self.master_files is not None and self.master_files.complete

    def collect(self) -> tuple[str, ...]:
        if not self.plan.run_dir.exists():
            return ()
        folder = RunDir(self.plan.run_dir)
        if self.master_files is not None and self.master_files.complete:
            for name, body in self.master_files.files.items():
                # Locust writes UTF-8; "replace" keeps a stray byte from costing the whole file
                write_atomic(folder.path / LOCUST_FILE_DESTINATIONS[name], text=body.decode(errors="replace"))
            self._stats_written = "locust"
        elif self._stats is not None:
            write_csv(folder.stats_csv, columns=STATS_COLUMNS, rows=self._stats.stats)
            write_csv(folder.failures_csv, columns=FAILURE_COLUMNS, rows=self._stats.failures)
            self._stats_written = "prometheus"
            self._note_missing_locust_files()
        return tuple(sorted(p.name for p in self.plan.run_dir.iterdir()))

    def _note_missing_locust_files(self) -> None:
        rebuilt = f"{STATS_CSV} and {FAILURES_CSV} rebuilt from Prometheus, no {LOCUST_HTML}"
        if self.master_files is None:
            self.events.note(
                "Locust's own CSVs and HTML are fetched from the master only when loadctl follows it "
                f"through a port-forward (no --prometheus): {rebuilt}"
            )
        else:
            self.events.warning(f"Locust's own files not fetched ({self.master_files.problem}): {rebuilt}")
