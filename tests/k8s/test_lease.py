"""One run per target and a load that dies with its controller, on the real control plane.

(a) a second run on the same host waits --wait-for-lock and exits 3 naming the first; another
    host in the same namespace is not blocked; two runs racing for an expired Lease get one winner;
(b) SIGKILL of the controller mid-run: the master's heartbeat stops the load within 60 s (its log
    says why), the pods' processes exit; the measured time is printed;
(c) the Lease the killed run left expires and the next run on that host takes it over.
"""

from __future__ import annotations

import re
import signal
import subprocess
import threading
import time
from pathlib import Path

import httpx

from controller.k8s.cluster import Cluster as ApiCluster
from controller.k8s.lease import (
    LEASE_DURATION_S,
    Holding,
    LockHeld,
    TargetLease,
    lease_body,
    lease_name,
    target_key,
)
from tests.k8s.controlplane import eventually
from tests.k8s.harness import Cluster
from tests.support import LOADCTL, run_loadctl

# what the demo target counts, but the load did not send
NOT_LOAD = ('route="/metrics"', 'route="/health"')


def output(done: subprocess.CompletedProcess[str]) -> str:
    return done.stdout + done.stderr


def start_run(cluster: Cluster, run_id: str, log: Path) -> subprocess.Popen[bytes]:
    """A long `loadctl run --backend k8s` in the background, followed until its workers run."""
    args = [*cluster.run_args(run_id, duration="5m"), "--prometheus", cluster.prometheus_url]
    with open(log, "w") as out:
        process = subprocess.Popen([LOADCTL, *args], stdout=out, stderr=subprocess.STDOUT)
    eventually(lambda: "workers 2/2 running" in log.read_text(), what=f"run {run_id}'s pods", timeout=120)
    return process


def api(cluster: Cluster) -> ApiCluster:
    return ApiCluster(namespace=cluster.namespace, kubeconfig=cluster.plane.kubeconfig)


def requests_served(target: str) -> float:
    """The demo target's request counter, the load's routes only."""
    text = httpx.get(f"{target}/metrics", timeout=5).text
    lines = [line for line in text.splitlines() if line.startswith("demo_http_requests_total{")]
    return sum(float(line.rsplit(" ", 1)[1]) for line in lines if not any(r in line for r in NOT_LOAD))


def test_a_second_run_on_the_same_host_waits_then_exits_3_naming_the_first(cluster):
    first = start_run(cluster, "k8s-first", cluster.tmp / "first.log")
    try:
        started = time.monotonic()
        second = run_loadctl(
            [
                *cluster.run_args("k8s-second"),
                "--wait-for-lock",
                "5s",
                "--prometheus",
                cluster.prometheus_url,
            ],
            timeout=120,
        )
        waited = time.monotonic() - started
        text = output(second)
        assert second.returncode == 3, text
        assert "is held by run k8s-first" in text and "waiting up to" in text, text
        assert f"Lease {cluster.namespace}/loadctl-target-127-0-0-1-" in text
        assert "gave up after waiting 5s (--wait-for-lock)" in text
        assert "helm install lt-k8s-second" not in text and waited >= 5
        # another host in the same namespace is not blocked
        with api(cluster) as connection:
            other = TargetLease(connection, target="other.example:8080", holder="k8s-other")
            other.acquire(wait_s=0, progress=print)
            other.release()
            assert connection.read_lease(other.name) is None
    finally:
        first.send_signal(signal.SIGINT)
        first.wait(timeout=180)
    assert first.returncode == 130, (cluster.tmp / "first.log").read_text()
    with api(cluster) as connection:
        assert connection.read_lease(lease_name(target_key(cluster.target))) is None  # released
    assert cluster.leftovers() == []


def test_two_runs_racing_for_an_expired_lease_get_one_winner(cluster):
    with api(cluster) as connection:
        name = lease_name("race.example")
        stale = lease_body(name, holder="crashed", now=time.time() - LEASE_DURATION_S - 5)
        connection.create_lease(stale)
        outcomes: dict[str, str] = {}

        def race(run_id: str) -> None:
            try:
                TargetLease(connection, target="race.example", holder=run_id).acquire(
                    wait_s=0, progress=print
                )
                outcomes[run_id] = "won"
            except LockHeld as e:
                outcomes[run_id] = str(e)

        for _ in range(5):  # a few rounds: the two must really overlap at least once
            connection.delete_lease(
                name, resource_version=Holding.of(connection.read_lease(name) or stale).resource_version
            )
            connection.create_lease(stale)
            outcomes.clear()
            racers = [threading.Thread(target=race, args=(f"racer-{i}",)) for i in range(2)]
            for racer in racers:
                racer.start()
            for racer in racers:
                racer.join(timeout=30)
            winners = [run_id for run_id, outcome in outcomes.items() if outcome == "won"]
            assert len(winners) == 1, outcomes
            holder = Holding.of(connection.read_lease(name) or {}).holder
            assert holder == winners[0]
            loser = next(o for o in outcomes.values() if o != "won")
            assert f"held by run {holder}" in loser


def test_sigkill_of_the_controller_stops_the_load_and_the_next_run_takes_the_lease(cluster):
    controller = start_run(cluster, "k8s-killed", cluster.tmp / "killed.log")
    eventually(lambda: requests_served(cluster.target) > 0, what="load on the target", timeout=60)
    eventually(lambda: len(cluster.kubelet.processes) == 3, what="3 pod processes", timeout=30)
    pods = dict(cluster.kubelet.processes)
    controller.send_signal(signal.SIGKILL)
    killed_at = time.monotonic()
    controller.wait(timeout=10)
    # the counter, every half second, until every pod process has exited (or 120 s)
    last_count, last_change = requests_served(cluster.target), killed_at
    while any(p.poll() is None for p in pods.values()) and time.monotonic() - killed_at < 120:
        time.sleep(0.5)
        count = requests_served(cluster.target)
        if count != last_count:
            last_count, last_change = count, time.monotonic()
    exited_after = time.monotonic() - killed_at
    load_stopped_after = last_change - killed_at
    print(
        f"controller SIGKILL -> last request {load_stopped_after:.1f}s, "
        f"every pod process exited {exited_after:.1f}s"
    )
    assert all(p.poll() is not None for p in pods.values()), cluster.kubelet.log_tails()
    assert load_stopped_after <= 60 and exited_after <= 60, (load_stopped_after, exited_after)
    time.sleep(3)
    assert requests_served(cluster.target) == last_count  # and nothing afterwards
    master = next(name for name in pods if "-master-" in name)
    master_log = (cluster.tmp / "pods" / master / "master.log").read_text()
    assert re.search(
        r"loadctl heartbeat: lease \S+ not renewed for \d+s \(controller gone\?\): stopping the test",
        master_log,
    ), master_log
    assert pods[master].poll() == 4  # HEARTBEAT_EXIT_CODE: the master Job fails, never reads as a pass
    assert all(p.poll() == 0 for name, p in pods.items() if name != master), cluster.kubelet.log_tails()
    connection = ["--kubeconfig", str(cluster.plane.kubeconfig), "-n", cluster.namespace]
    removed = run_loadctl(["teardown", *connection, "--run-id", "k8s-killed"])
    assert removed.returncode == 0, output(removed)
    # (c) the dead run's Lease is still there until it expires; the next run waits and takes it over
    with api(cluster) as api_connection:
        left = api_connection.read_lease(lease_name(target_key(cluster.target)))
        assert left is not None and Holding.of(left).holder == "k8s-killed"
    done = run_loadctl(
        [*cluster.run_args("k8s-next"), "--wait-for-lock", "60s", "--prometheus", cluster.prometheus_url],
        timeout=300,
    )
    assert done.returncode == 0, (output(done), cluster.kubelet.log_tails())
    assert "helm install lt-k8s-next" in output(done)
    assert cluster.leftovers() == []
