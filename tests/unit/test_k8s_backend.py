"""K8sBackend's orchestration, driven by an in-memory cluster, Helm and Prometheus API.

The fakes are small and record what the backend asked of them: the order runs.py calls the
backend in (deploy -> health/load_finished -> stop_load -> wait_final_scrape -> teardown ->
collect) and what each step does to the cluster. The same paths against a real API server, Helm
and Prometheus are in tests/k8s.
"""

from __future__ import annotations

import csv
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest

from controller.backends.k8s import LOCUST_FILE_DESTINATIONS, K8sBackend
from controller.backends.options import K8sOptions
from controller.errors import InfraError, RunSkipped
from controller.k8s.lease import Holding, lease_body
from controller.k8s.master_files import MasterFiles
from controller.k8s.release import COMPONENT_LABEL, RUN_LABEL, VERDICT_ANNOTATION
from controller.models import RunPlan, Stage
from controller.prom.server import PrometheusServer
from controller.rundir import EXCEPTIONS_CSV, LOCUST_HTML, RunDir
from controller.runs import final_scrape_timeout
from locust_workers.contract import LOCUST_FILE_NAMES, LOCUST_FILES_PATH
from tests.unit.lease_store import LeaseStore

Obj = dict[str, Any]
RUN_ID = "unit-k8s"
PROMETHEUS = "http://prometheus.test"


# -- fakes ---------------------------------------------------------------------------------------
def _obj(kind: str, name: str, part: str, status: Obj) -> Obj:
    labels = {RUN_LABEL: RUN_ID, COMPONENT_LABEL: part}
    return {"kind": kind, "metadata": {"name": name, "labels": labels}, "status": status}


def pending(name: str, part: str) -> Obj:
    return _obj("Pod", name, part, {"phase": "Pending"})


def running(name: str, part: str) -> Obj:
    return _obj("Pod", name, part, {"phase": "Running", "conditions": [{"type": "Ready", "status": "True"}]})


def succeeded(name: str, part: str) -> Obj:
    terminated = {"state": {"terminated": {"exitCode": 0}}}
    return _obj("Pod", name, part, {"phase": "Succeeded", "containerStatuses": [terminated]})


def oom_killed(name: str, part: str) -> Obj:
    state = {"terminated": {"reason": "OOMKilled", "exitCode": 137}}
    status = {"phase": "Running", "containerStatuses": [{"name": "locust", "state": state}]}
    return _obj("Pod", name, part, status)


@dataclass
class FakeCluster(LeaseStore):
    """A namespace in memory: pods, jobs and Leases by name; every mutating call is recorded."""

    kubeconfig: Path | None = None
    context: str | None = None
    pod_objects: dict[str, Obj] = field(default_factory=dict)
    job_objects: dict[str, Obj] = field(default_factory=dict)
    existing: set[tuple[str, str]] = field(default_factory=set)
    # each watch_pods() call plays the next change (what the kubelet would have done meanwhile)
    on_watch: list[Callable[[FakeCluster], None]] = field(default_factory=list)
    calls: list[tuple[Any, ...]] = field(default_factory=list)
    closed: bool = False

    def set_pods(self, *pods: Obj) -> None:
        self.pod_objects = {p["metadata"]["name"]: p for p in pods}

    def check_namespace(self) -> None:
        self.calls.append(("check_namespace",))

    def exists(self, kind: str, name: str) -> bool:
        return (kind, name) in self.existing

    def pods(self, selector: str) -> list[Obj]:
        assert selector == f"{RUN_LABEL}={RUN_ID}"
        return list(self.pod_objects.values())

    def jobs(self, selector: str) -> list[Obj]:
        assert selector == f"{RUN_LABEL}={RUN_ID}"
        return list(self.job_objects.values())

    def events(self) -> list[Obj]:
        return []

    def watch_pods(self, selector: str, *, timeout_s: float) -> Iterator[None]:
        if self.on_watch:
            self.on_watch.pop(0)(self)
        yield

    def suspend_job(self, name: str) -> None:
        self.calls.append(("suspend_job", name))
        # the Job controller deletes a suspended Job's pods
        self.pod_objects = {n: p for n, p in self.pod_objects.items() if not n.startswith(name)}

    def annotate_job(self, name: str, annotations: dict[str, str]) -> None:
        self.calls.append(("annotate_job", name, annotations))

    def wait_gone(self, run_id: str, *, timeout_s: float) -> list[str]:
        self.calls.append(("wait_gone", run_id))
        return [f"pod/{name}" for name in self.pod_objects] + [f"job/{name}" for name in self.job_objects]

    def close(self) -> None:
        self.closed = True


@dataclass
class FakeHelm:
    """Installing creates the release's Jobs and (pending) pods in the fake cluster."""

    cluster: FakeCluster
    calls: list[tuple[Any, ...]] = field(default_factory=list)
    values: Mapping[str, Any] = field(default_factory=dict)

    def install(self, release: str, values: Mapping[str, Any], *, timeout_s: float) -> None:
        self.calls.append(("install", release))
        self.values = values
        for part in ("master", "worker"):
            name = f"{release}-{part}"
            self.cluster.job_objects[name] = _obj("Job", name, part, {"active": 1})
        self.cluster.set_pods(
            pending(f"{release}-master-x", "master"),
            pending(f"{release}-worker-a", "worker"),
            pending(f"{release}-worker-b", "worker"),
        )

    def uninstall(self, release: str, *, wait: bool = True, timeout_s: float = 120) -> None:
        self.calls.append(("uninstall", release))
        self.cluster.pod_objects.clear()
        self.cluster.job_objects.clear()


@dataclass
class FakePrometheus:
    """The query API over the run's final totals; the stop time appears once `stopped` is set."""

    stopped: float | None = None
    last_scrape: float = 0.0  # of the one target a port-forward's private Prometheus would have
    queries: list[str] = field(default_factory=list)

    def transport(self) -> httpx.MockTransport:
        return httpx.MockTransport(self.handle)

    def handle(self, request: httpx.Request) -> httpx.Response:
        if request.url.path == "/api/v1/targets":
            scraped = datetime.fromtimestamp(self.last_scrape, UTC).isoformat().replace("+00:00", "Z")
            targets = {"activeTargets": [{"health": "down", "lastScrape": scraped}]}
            return httpx.Response(200, json={"status": "success", "data": targets})
        assert request.url.path == "/api/v1/query", request.url
        promql = request.url.params["query"]
        self.queries.append(promql)
        result = [
            {"metric": labels, "value": [time.time(), str(value)]} for labels, value in self.answer(promql)
        ]
        return httpx.Response(
            200, json={"status": "success", "data": {"resultType": "vector", "result": result}}
        )

    def answer(self, promql: str) -> list[tuple[dict[str, str], float]]:
        endpoint = {"method": "GET", "name": "/search"}
        if promql == "vector(1)":
            return [({}, 1.0)]
        if "histogram_quantile" in promql:
            return [(endpoint if "method" in promql else {}, 0.25)]
        if "locust_test_stop_timestamp_seconds" in promql:
            return [] if self.stopped is None else [({}, self.stopped)]
        if "locust_test_start_timestamp_seconds" in promql:
            return [({}, 1_764_000_000.0)]
        if "locust_request_failures_total" in promql:
            return [(endpoint | {"status": "500"}, 3.0)]
        if "locust_requests_total" in promql:
            return [(endpoint, 120.0)]
        if "locust_response_time_seconds_sum" in promql:
            return [(endpoint, 12.0)]
        raise AssertionError(f"unexpected query {promql}")


@dataclass
class RecordingEvents:
    lines: list[tuple[str, str]] = field(default_factory=list)

    def note(self, message: str) -> None:
        self.lines.append(("note", message))

    def progress(self, message: str) -> None:
        self.lines.append(("progress", message))

    def warning(self, message: str) -> None:
        self.lines.append(("warning", message))


# -- the run under test ----------------------------------------------------------------------------
RELEASE = f"lt-{RUN_ID}"


def everything_runs(cluster: FakeCluster) -> None:
    cluster.set_pods(
        running(f"{RELEASE}-master-x", "master"),
        running(f"{RELEASE}-worker-a", "worker"),
        running(f"{RELEASE}-worker-b", "worker"),
    )


def master_done(cluster: FakeCluster) -> None:
    cluster.pod_objects[f"{RELEASE}-master-x"] = succeeded(f"{RELEASE}-master-x", "master")


@dataclass
class World:
    backend: K8sBackend
    cluster: FakeCluster
    helm: FakeHelm
    prometheus: FakePrometheus
    events: RecordingEvents


def world(tmp_path: Path, **options: Any) -> World:
    locustfile = tmp_path / "user.py"
    locustfile.write_text("from locust import HttpUser\n")
    plan = RunPlan(
        run_id=RUN_ID,
        profile="unit",
        locustfile=locustfile,
        host="http://127.0.0.1:8000",
        stages=(Stage(duration=30, users=10, spawn_rate=5),),
        workers=2,
        results_dir=tmp_path / "results",
    )
    cluster = FakeCluster(on_watch=[everything_runs])
    helm, prometheus, events = FakeHelm(cluster), FakePrometheus(), RecordingEvents()
    backend = K8sBackend(
        plan,
        K8sOptions(prometheus_url=PROMETHEUS, **options),
        events,
        cluster=cluster,
        helm=helm,
        prometheus_transport=prometheus.transport(),
    )
    return World(backend, cluster, helm, prometheus, events)


def client(w: World) -> httpx.Client:
    return httpx.Client(base_url=PROMETHEUS, transport=w.prometheus.transport())


def test_a_run_deploys_follows_reads_its_totals_and_uninstalls(tmp_path):
    w = world(tmp_path)
    w.backend.deploy()
    assert w.helm.calls == [("install", RELEASE)]
    assert w.backend.prometheus_url == PROMETHEUS
    assert w.events.lines[:4] == [
        ("note", f"holding Lease loadtest/{w.backend.lease.name} for target 127.0.0.1:8000"),
        ("note", f"helm install {RELEASE} in namespace loadtest"),
        ("progress", "pods: master Pending, workers 0/2 running"),
        ("progress", "pods: master ready, workers 2/2 running"),
    ]
    assert (w.backend.health(), w.backend.load_finished()) == (None, False)

    master_done(w.cluster)
    w.prometheus.stopped = time.time()
    # health() reads the pods afresh; load_finished() may reuse them for a second (OBSERVE_EVERY_S)
    assert w.backend.health() is None  # the master ending is the normal end of the load
    assert w.backend.load_finished() is True
    w.backend.stop_load()
    assert ("suspend_job", f"{RELEASE}-master") not in w.cluster.calls  # it had ended on its own
    with client(w) as http:
        assert w.backend.wait_final_scrape(http, moment=time.time(), timeout=5.0) is True

    w.backend.teardown(verdict="pass")
    assert w.helm.calls[-1] == ("uninstall", RELEASE) and w.cluster.closed
    assert ("note", f"helm uninstall {RELEASE}") in w.events.lines
    assert w.backend.record_fields["stats_source"] is None  # read, not yet written

    files = w.backend.collect()
    assert {"stats.csv", "failures.csv"} <= set(files)
    with open(w.backend.plan.run_dir / "stats.csv", newline="") as handle:
        rows = {row["Name"]: row for row in csv.DictReader(handle)}
    assert rows["/search"]["Request Count"] == "120" and rows["Aggregated"]["Failure Count"] == "3"
    assert w.backend.record_fields == {
        "stats_source": "prometheus",
        "release": RELEASE,
        "namespace": "loadtest",
    }
    assert w.backend.locust_exit_code == 0


def test_wait_final_scrape_gives_up_after_the_timeout_it_is_given(tmp_path):
    w = world(tmp_path)
    w.backend.deploy()
    with client(w) as http:
        started = time.monotonic()
        assert w.backend.wait_final_scrape(http, moment=time.time(), timeout=0.6) is False
        waited = time.monotonic() - started
    assert 0.6 <= waited < 2.0
    assert all(f'run_id="{RUN_ID}"' in q for q in w.prometheus.queries if "stop_timestamp" in q)


def test_the_final_scrape_timeout_follows_the_scrape_interval_the_chart_allows(tmp_path):
    assert final_scrape_timeout(world(tmp_path).backend.scrape_interval_s) == 30.0  # the chart's 15 s x 2
    slow = world(tmp_path, values={"run": {"finalScrapeTimeoutSeconds": 40}})
    assert final_scrape_timeout(slow.backend.scrape_interval_s) == 80.0


def test_through_a_port_forward_every_target_must_be_scraped_after_the_moment(tmp_path):
    w = world(tmp_path)
    w.backend.deploy()
    # as _scrape_through_port_forward leaves it (it needs an API server: tests/k8s/test_port_forward.py)
    w.backend.local_prometheus = PrometheusServer(
        config={}, config_path=tmp_path / "p.yml", data_dir=tmp_path, log_path=tmp_path / "p.log", binary="-"
    )
    assert final_scrape_timeout(w.backend.scrape_interval_s) == 5.0  # it scrapes every second
    w.prometheus.stopped = moment = time.time()
    w.prometheus.last_scrape = moment - 0.5
    with client(w) as http:
        assert w.backend.wait_final_scrape(http, moment=moment, timeout=0.5) is False
        w.prometheus.last_scrape = moment + 0.2  # a failed scrape counts: the pod is gone
        assert w.backend.wait_final_scrape(http, moment=moment, timeout=0.5) is True


def test_a_pod_failure_while_the_load_runs_is_reported_by_health(tmp_path):
    w = world(tmp_path)
    w.backend.deploy()
    w.cluster.pod_objects[f"{RELEASE}-worker-b"] = oom_killed(f"{RELEASE}-worker-b", "worker")
    problem = w.backend.health()
    assert problem is not None
    assert f"worker pod {RELEASE}-worker-b" in problem and "OOMKilled" in problem


def test_a_pod_that_cannot_start_fails_deploy_and_teardown_still_uninstalls(tmp_path):
    w = world(tmp_path)

    def image_pull_backoff(cluster: FakeCluster) -> None:
        waiting = {"reason": "ImagePullBackOff", "message": "no such image"}
        status = {
            "phase": "Pending",
            "containerStatuses": [{"name": "locust", "state": {"waiting": waiting}}],
        }
        cluster.pod_objects[f"{RELEASE}-master-x"] = _obj("Pod", f"{RELEASE}-master-x", "master", status)

    w.cluster.on_watch = [image_pull_backoff]
    with pytest.raises(InfraError, match="ImagePullBackOff: no such image"):
        w.backend.deploy()
    w.backend.stop_load()
    w.backend.teardown(verdict="error")
    assert w.helm.calls == [("install", RELEASE), ("uninstall", RELEASE)]
    assert w.backend.collect() == ()  # nothing was written: the run never reached Prometheus


def test_stop_load_suspends_a_running_master_job(tmp_path):
    w = world(tmp_path)
    w.backend.deploy()
    w.backend.stop_load()
    assert ("suspend_job", f"{RELEASE}-master") in w.cluster.calls
    assert ("note", f"stopping the load: suspending job {RELEASE}-master") in w.events.lines


def test_keep_on_fail_keeps_a_failed_release_and_marks_its_verdict(tmp_path):
    w = world(tmp_path, keep_on_fail=True)
    w.backend.deploy()
    master_done(w.cluster)
    w.backend.teardown(verdict="fail")
    assert w.helm.calls == [("install", RELEASE)]  # no uninstall
    assert ("annotate_job", f"{RELEASE}-master", {VERDICT_ANNOTATION: "fail"}) in w.cluster.calls
    kept = [message for kind, message in w.events.lines if kind == "warning"]
    assert len(kept) == 1 and f"kept release {RELEASE} in namespace loadtest" in kept[0]
    assert f"loadctl teardown -n loadtest --run-id {RUN_ID}" in kept[0]
    assert w.cluster.closed
    assert "stats.csv" in w.backend.collect()  # a kept release still leaves its results


def test_keep_on_fail_uninstalls_a_release_that_did_not_fail(tmp_path):
    w = world(tmp_path, keep_on_fail=True)
    w.backend.deploy()
    w.backend.teardown(verdict="pass")
    assert w.helm.calls[-1] == ("uninstall", RELEASE)


def test_another_run_holding_the_target_stops_deploy_before_installing(tmp_path):
    w = world(tmp_path)
    name = w.backend.lease.name
    w.cluster.create_lease(lease_body(name, holder="other", now=time.time()))
    with pytest.raises(InfraError, match=r"is held by run other .*nothing was installed"):
        w.backend.deploy()
    w.backend.teardown(verdict="error")
    assert w.helm.calls == [] and w.cluster.closed
    assert Holding.of(w.cluster.leases[name]).holder == "other"  # not ours to release


def test_a_scheduled_run_skips_while_another_run_holds_the_target(tmp_path):
    w = world(tmp_path, in_cluster=True)
    w.cluster.create_lease(lease_body(w.backend.lease.name, holder="other", now=time.time()))
    with pytest.raises(RunSkipped, match="held by run other"):
        w.backend.deploy()


def test_the_run_holds_its_targets_lease_tells_the_master_and_releases_it(tmp_path):
    w = world(tmp_path)
    w.backend.deploy()
    name = w.backend.lease.name
    assert Holding.of(w.cluster.leases[name]).holder == RUN_ID
    assert w.helm.values["run"]["heartbeat"] == {"lease": name, "timeoutSeconds": 30}
    w.backend.teardown(verdict="pass")
    assert name not in w.cluster.leases


# -- Locust's own files, fetched from the master (as the port-forward's MasterFiles reaches them) ----
MASTER = "http://master.test"
STATS = b"Type,Name,Request Count,Failure Count\r\nGET,/search,97,2\r\n,Aggregated,97,2\r\n"
SERVED = {
    "stats.csv": STATS,
    "failures.csv": b"Method,Name,Error,Occurrences\r\nGET,/search,HTTPError('500'),2\r\n",
    "exceptions.csv": b"Count,Message,Traceback,Nodes\r\n",
    "locust.html": "<title>Locust</title> r\u00e9sum\u00e9".encode(),
}


@dataclass
class FakeMaster:
    """The master's exporter port: 503 while the load runs, then Locust's files until released."""

    stopped: bool = False
    answers: bool = True
    requests: list[tuple[str, str]] = field(default_factory=list)

    def transport(self) -> httpx.MockTransport:
        return httpx.MockTransport(self.handle)

    def handle(self, request: httpx.Request) -> httpx.Response:
        self.requests.append((request.method, request.url.path))
        if not self.answers:
            raise httpx.ConnectError("connection refused", request=request)
        if request.method == "POST" and request.url.path == LOCUST_FILES_PATH:
            return httpx.Response(204)
        name = request.url.path.removeprefix(LOCUST_FILES_PATH)
        if name not in SERVED:
            return httpx.Response(404)
        return httpx.Response(200, content=SERVED[name]) if self.stopped else httpx.Response(503)


def forwarded_world(tmp_path: Path, master: FakeMaster, **limits: Any) -> World:
    w = world(tmp_path)
    w.backend.deploy()
    # as _scrape_through_port_forward leaves it (it needs an API server: tests/k8s/test_port_forward.py)
    w.backend.master_files = MasterFiles(MASTER, transport=master.transport(), **limits)
    return w


def finish_run(w: World) -> tuple[str, ...]:
    master_done(w.cluster)
    w.prometheus.stopped = time.time()
    assert w.backend.health() is None and w.backend.load_finished() is True
    w.backend.stop_load()
    w.backend.teardown(verdict="pass")
    return w.backend.collect()


def test_the_files_the_master_serves_are_the_controllers_list():
    assert set(LOCUST_FILE_DESTINATIONS) == set(LOCUST_FILE_NAMES) == set(SERVED)


def test_locusts_own_files_fetched_after_the_load_are_the_runs_results(tmp_path):
    master = FakeMaster()
    w = forwarded_world(tmp_path, master)
    w.backend._files_due_at = time.monotonic() + 60  # the stage table cannot have run out yet
    assert w.backend.load_finished() is False and master.requests == []  # so it is not asked
    w.backend._files_due_at = 0.0
    w.backend._observed_at = 0.0
    assert w.backend.load_finished() is False  # the load runs: the master answers 503
    assert master.requests == [("GET", f"{LOCUST_FILES_PATH}stats.csv")]
    master.stopped = True
    assert w.backend.load_finished() is False  # fetched now; the master exits once told
    gets = [("GET", f"{LOCUST_FILES_PATH}{name}") for name in LOCUST_FILE_NAMES]
    assert master.requests[1:] == [*gets, ("POST", LOCUST_FILES_PATH)]
    files = finish_run(w)
    assert len(master.requests) == 1 + len(gets) + 1  # nothing asked again once released
    folder = RunDir(w.backend.plan.run_dir)
    assert folder.stats_csv.read_bytes() == STATS  # byte for byte, \r\n kept
    assert (folder.path / EXCEPTIONS_CSV).read_bytes() == SERVED["exceptions.csv"]
    assert folder.locust_html.read_text(encoding="utf-8") == "<title>Locust</title> r\u00e9sum\u00e9"
    assert {folder.stats_csv.name, folder.failures_csv.name, EXCEPTIONS_CSV, LOCUST_HTML} <= set(files)
    assert w.backend.record_fields["stats_source"] == "locust"
    # Locust's own totals came with the files: the Prometheus rebuild was not needed
    assert not any("locust_requests_total" in q for q in w.prometheus.queries)
    assert [kind for kind, _ in w.events.lines].count("warning") == 0


def test_a_master_that_does_not_answer_leaves_the_stats_rebuilt_from_prometheus(tmp_path):
    master = FakeMaster(answers=False)
    w = forwarded_world(tmp_path, master)
    assert w.backend.load_finished() is False  # and no exception
    files = finish_run(w)
    assert w.backend.record_fields["stats_source"] == "prometheus"
    assert LOCUST_HTML not in files
    with open(RunDir(w.backend.plan.run_dir).stats_csv, newline="") as handle:
        rows = {row["Name"]: row for row in csv.DictReader(handle)}
    assert rows["Aggregated"]["Request Count"] == "120"  # FakePrometheus' total, not the master's 97
    (warning,) = [m for kind, m in w.events.lines if kind == "warning"]
    assert warning.startswith("Locust's own files not fetched (the master did not answer (ConnectError")
    assert "stats.csv and failures.csv rebuilt from Prometheus" in warning


def test_a_file_over_the_size_cap_gives_up_on_all_of_them_and_releases_the_master(tmp_path):
    master = FakeMaster(stopped=True)
    w = forwarded_world(tmp_path, master, max_bytes=len(STATS) - 1)
    assert w.backend.load_finished() is False
    assert master.requests == [("GET", f"{LOCUST_FILES_PATH}stats.csv"), ("POST", LOCUST_FILES_PATH)]
    files = finish_run(w)
    assert w.backend.record_fields["stats_source"] == "prometheus" and LOCUST_HTML not in files
    (warning,) = [m for kind, m in w.events.lines if kind == "warning"]
    assert "stats.csv is larger than 0 MiB" in warning


def test_a_master_stopped_by_loadctl_is_fetched_while_it_stops(tmp_path):
    master = FakeMaster()
    w = forwarded_world(tmp_path, master)

    def suspend_after_the_fetch(name: str) -> None:
        # the suspended master stops the load and serves its files until released
        master.stopped = True
        w.cluster.calls.append(("suspend_job", name))

    w.cluster.suspend_job = suspend_after_the_fetch  # type: ignore[method-assign]
    w.cluster.on_watch = []
    w.backend._observed_at = 0.0
    released = []

    def exits_once_released(cluster: FakeCluster) -> None:
        if master.requests and master.requests[-1][0] == "POST":
            released.append(True)
            master_done(cluster)

    original_pods = w.cluster.pods

    def pods(selector: str) -> list[Obj]:
        exits_once_released(w.cluster)
        return original_pods(selector)

    w.cluster.pods = pods  # type: ignore[method-assign]
    started = time.monotonic()
    w.backend.stop_load()
    assert released and time.monotonic() - started < 5  # not the whole STOP_GRACE_S
    assert ("POST", LOCUST_FILES_PATH) in master.requests
    w.backend.teardown(verdict="pass")
    w.backend.collect()
    assert w.backend.record_fields["stats_source"] == "locust"


def test_with_the_clusters_prometheus_the_master_serves_no_files_and_the_run_says_so(tmp_path):
    w = world(tmp_path)
    w.backend.deploy()
    assert "locustFilesTimeoutSeconds" not in w.helm.values["run"]  # the chart's 0: nothing waits
    finish_run(w)
    assert w.backend.record_fields["stats_source"] == "prometheus"
    notes = [m for kind, m in w.events.lines if kind == "note"]
    assert any(m.startswith("Locust's own CSVs and HTML are fetched from the master only") for m in notes)
