"""The Kubernetes backend: one run = one Helm release of charts/loadctl, followed until it ends.

deploy:   guardrails (namespace busy, alerts firing) -> pre-flight (ServiceAccount, Secrets) ->
          helm install -> watch the pods until the master is Ready and every worker runs, failing
          fast with the pod's own reason (ImagePullBackOff, CrashLoopBackOff, OOMKilled,
          Unschedulable, a Job that cannot create pods) or after --timeout.
follow:   progress and live gates from the cluster's Prometheus (--prometheus); when none is given
          or reachable, a local Prometheus scrapes the master's exporter through
          `kubectl port-forward` (its TSDB stays in the run directory, like a local run's).
teardown: reads the run's stats back from Prometheus (the master's own CSVs die with its pod),
          then `helm uninstall --wait`, unless --keep-on-fail and the verdict is fail.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
from rich.console import Console

from controller.errors import InfraError, PrometheusError, RunSkipped
from controller.k8s.cluster import Cluster
from controller.k8s.helm import Helm, deep_merge, find_tool
from controller.k8s.pod_health import (
    RunPods,
    component,
    diagnose,
    master_exit_code,
    master_finished,
    run_pods,
)
from controller.k8s.release import (
    RUN_LABEL,
    VERDICT_ANNOTATION,
    release_name,
    run_files,
    run_selector,
    run_values,
)
from controller.models import RunPlan, Verdict
from controller.processes import ManagedProcess, free_port, wait_until
from controller.prom import client as prom
from controller.prom.config import scrape_config
from controller.prom.server import PrometheusServer
from controller.prom.stats import write_stats_from_prometheus

DEFAULT_EXPORTER_PORT = 9646
DEFAULT_PROBES_PORT = 9647
# The master waits this long for a final scrape (chart: run.finalScrapeTimeoutSeconds) + margin.
STOP_GRACE_S = 45
# A cluster Prometheus scrapes every 5-30 s; the chart's master waits 15 s for it.
FINAL_SCRAPE_TIMEOUT_S = 30.0
OBSERVE_EVERY_S = 1.0


@dataclass(frozen=True)
class K8sOptions:
    namespace: str | None = None
    kubeconfig: Path | None = None
    context: str | None = None
    in_cluster: bool = False
    prometheus_url: str | None = None
    image: str | None = None
    ready_timeout_s: float = 300.0
    keep_on_fail: bool = False
    values: dict[str, Any] = field(default_factory=dict)  # from --values files, under ours


def busy_runs(master_jobs: Sequence[dict[str, Any]], *, own_run_id: str) -> list[str]:
    """Run ids whose master Job is still going (no Complete/Failed condition yet)."""
    busy = []
    for job in master_jobs:
        conditions = job.get("status", {}).get("conditions") or ()
        done = any(c.get("type") in ("Complete", "Failed") and c.get("status") == "True" for c in conditions)
        run_id = job["metadata"].get("labels", {}).get(RUN_LABEL)
        if not done and run_id and run_id != own_run_id:
            busy.append(run_id)
    return sorted(set(busy))


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
        *,
        console: Console,
        cluster: Cluster | None = None,
        helm: Helm | None = None,
    ) -> None:
        self.plan = plan
        self.options = options
        self.console = console
        self.cluster = cluster or Cluster(
            namespace=options.namespace,
            kubeconfig=options.kubeconfig,
            context=options.context,
            in_cluster=options.in_cluster,
        )
        self.namespace = self.cluster.namespace
        self.helm = helm or Helm(
            namespace=self.namespace, kubeconfig=self.cluster.kubeconfig, context=self.cluster.context
        )
        self.release = release_name(plan.run_id)
        self.selector = run_selector(plan.run_id)
        self.values = deep_merge(
            options.values,
            run_values(
                plan, files=run_files(plan), image=options.image, prometheus_url=options.prometheus_url
            ),
        )
        self.installed = False
        self.local_prometheus: PrometheusServer | None = None
        self.port_forward: ManagedProcess | None = None
        self._prometheus_url: str | None = None
        self._pods: list[dict[str, Any]] = []
        self._jobs: list[dict[str, Any]] = []
        self._observed_at = 0.0
        self._stats_written = False
        self._last_exit_code: int | None = None

    # -- what runs.py reads -------------------------------------------------------------------
    @property
    def prometheus_url(self) -> str | None:
        return self._prometheus_url

    @property
    def record_fields(self) -> dict[str, Any]:
        return {
            "release": self.release,
            "namespace": self.namespace,
            "stats_source": "prometheus" if self._stats_written else None,
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
            find_tool("kubectl", "KUBECTL_BIN")  # the port-forward needs it: fail before installing
        self.console.print(f"helm install {self.release} in namespace {self.namespace}", highlight=False)
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
        with httpx.Client(base_url=url, timeout=5.0) as client:
            try:
                prom.query(client=client, promql="vector(1)")
                return url
            except PrometheusError as e:
                self.console.print(
                    f"[yellow]Prometheus {url} not reachable ({e}); following the master through a "
                    "port-forward instead[/]",
                    highlight=False,
                )
                return None

    def _guardrails(self, prometheus_url: str | None) -> None:
        """Another live run in the namespace, or alerts the profile names: a scheduled run skips."""
        busy = busy_runs(self.cluster.master_jobs(), own_run_id=self.plan.run_id)
        if busy:
            reason = f"namespace {self.namespace} is held by run {', '.join(busy)}"
            if self.options.in_cluster:
                raise RunSkipped(reason)
            raise InfraError(
                f"{reason}; wait for it, or remove it with `loadctl teardown --run-id {busy[0]}`"
            )
        if not self.plan.skip_if_alerts:
            return
        if prometheus_url is None:
            alerts = ", ".join(self.plan.skip_if_alerts)
            raise RunSkipped(f"cannot check skip_if_alerts ({alerts}): no reachable Prometheus")
        with httpx.Client(base_url=prometheus_url, timeout=10.0) as client:
            try:
                firing = prom.firing_alerts(client=client) & set(self.plan.skip_if_alerts)
            except PrometheusError as e:
                raise RunSkipped(f"cannot check skip_if_alerts: {e}") from e
        if firing:
            raise RunSkipped(
                f"alerts firing that the profile lists under skip_if_alerts: {', '.join(sorted(firing))}"
            )

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

    def _observe(self, *, force: bool = False) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
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
                self.console.print(f"pods: {shown}", highlight=False)
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
        """A local Prometheus (TSDB in the run directory) scraping the master via kubectl port-forward."""
        master = next((p for p in self._pods if component(p) == "master"), None)
        if master is None:
            raise InfraError("no master pod to port-forward to")
        run = self.values.get("run", {})
        local = free_port()
        pairs = [f"{local}:{int(run.get('exporterPort', DEFAULT_EXPORTER_PORT))}"]
        # the probes sidecar shares the master pod: one forward carries both ports
        local_probes = free_port() if self.plan.probes else None
        if local_probes is not None:
            pairs.append(f"{local_probes}:{int(run.get('probesPort', DEFAULT_PROBES_PORT))}")
        argv = [find_tool("kubectl", "KUBECTL_BIN"), "port-forward", "--address", "127.0.0.1"]
        argv += ["-n", self.namespace, f"pod/{master['metadata']['name']}", *pairs]
        if self.cluster.kubeconfig:
            argv += ["--kubeconfig", str(self.cluster.kubeconfig)]
        if self.cluster.context:
            argv += ["--context", self.cluster.context]
        logs = self.plan.run_dir / "logs"
        forward = self.port_forward = ManagedProcess(
            "kubectl port-forward", argv, log_path=logs / "port-forward.log"
        )
        if not wait_until(lambda: "Forwarding from" in forward.log_tail(2000), timeout=30, watch=[forward]):
            raise InfraError(f"kubectl port-forward to the master failed: {forward.log_tail()}")
        self.local_prometheus = PrometheusServer(
            config=scrape_config(
                run_id=self.plan.run_id,
                exporter_address=f"127.0.0.1:{local}",
                targets=self.plan.scrape_targets,
                probes_address=None if local_probes is None else f"127.0.0.1:{local_probes}",
            ),
            config_path=self.plan.run_dir / "prometheus.yml",
            data_dir=self.plan.run_dir / "tsdb",
            log_path=logs / "prometheus.log",
        )
        self.local_prometheus.start()
        self.console.print(
            "following the master's exporter through a port-forward "
            f"(local Prometheus {self.local_prometheus.url})",
            highlight=False,
        )
        return self.local_prometheus.url

    # -- follow ---------------------------------------------------------------------------------
    def health(self) -> str | None:
        if self.load_finished():
            return None
        return self._problem()

    def load_finished(self) -> bool:
        pods, jobs = self._observe()
        return master_finished(pods, jobs)

    def wait_final_scrape(self, client: httpx.Client, *, moment: float, timeout: float) -> bool:
        # The master's exporter holds the process until it was scraped once more after the load
        # (plugin.py), so its stop timestamp in Prometheus means the totals there are final.
        return prom.wait_for_stop_scraped(
            client=client,
            run_id=self.plan.run_id,
            lookback_s=self.plan.duration + 300,
            timeout=FINAL_SCRAPE_TIMEOUT_S,
        )

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
                self.console.print(
                    f"stopping the load: suspending job {job['metadata']['name']}", highlight=False
                )
                self.cluster.suspend_job(job["metadata"]["name"])

        def master_gone() -> bool:
            pods, jobs = self._observe(force=True)
            masters = [p for p in pods if component(p) == "master"]
            return not masters or master_finished(pods, jobs)

        wait_until(master_gone, timeout=STOP_GRACE_S + 5)

    def teardown(self, *, verdict: Verdict | None = None) -> None:
        try:
            if self.installed:
                self._write_stats()
                if self.options.keep_on_fail and verdict == "fail":
                    self._keep(verdict)
                else:
                    self._uninstall()
        finally:
            if self.port_forward is not None:
                self.port_forward.stop(timeout=5.0)
            if self.local_prometheus is not None:
                self.local_prometheus.stop()
            self.cluster.close()

    def _write_stats(self) -> None:
        if self._prometheus_url is None or self._stats_written:
            return
        try:
            with httpx.Client(base_url=self._prometheus_url, timeout=10.0) as client:
                self._stats_written = write_stats_from_prometheus(
                    client, run_id=self.plan.run_id, run_dir=self.plan.run_dir, lookback_s=self.plan.duration
                )
        except PrometheusError as e:
            self.console.print(f"[yellow]stats.csv not rebuilt: {e}[/]", highlight=False)

    def _keep(self, verdict: str) -> None:
        for job in self._observe(force=True)[1]:
            if component(job) == "master":
                self.cluster.annotate_job(job["metadata"]["name"], {VERDICT_ANNOTATION: verdict})
        self.console.print(
            f"[yellow]--keep-on-fail: kept release {self.release} in namespace {self.namespace}[/]; "
            f"inspect: kubectl -n {self.namespace} get pods -l {self.selector}; "
            f"remove: loadctl teardown -n {self.namespace} --run-id {self.plan.run_id}",
            highlight=False,
        )

    def _uninstall(self) -> None:
        self.console.print(f"helm uninstall {self.release}", highlight=False)
        self.helm.uninstall(self.release, wait=True)
        left = self.cluster.wait_gone(self.plan.run_id, timeout_s=60)
        if left:
            raise InfraError(f"after helm uninstall {self.release}, still present: {', '.join(left)}")
        self.installed = False

    def collect(self) -> tuple[str, ...]:
        if not self.plan.run_dir.exists():
            return ()
        return tuple(sorted(p.name for p in self.plan.run_dir.iterdir()))
