"""`--workers auto` on Kubernetes: ceil(peak users / users per worker) worker pods, as README's
Worker sizing says, in the worker Job the real API server holds and the pods that really ran."""

from __future__ import annotations

import json
import subprocess
import time

from tests.k8s.harness import Cluster
from tests.support import LOADCTL, REPO_ROOT


def _with(args: list[str], flag: str, value: str) -> list[str]:
    """cluster.run_args with one flag's value replaced."""
    changed = list(args)
    changed[changed.index(flag) + 1] = value
    return changed


def run_reading_the_worker_job(cluster: Cluster, run_id: str, args: list[str]) -> tuple[int, str, int | None]:
    """(exit code, output, the worker Job's parallelism as installed): the Job is read while the
    run goes, since the run uninstalls it at the end."""
    selector = f"loadctl.io/run-id={run_id},app.kubernetes.io/component=worker"
    log = cluster.tmp / f"{run_id}.log"
    parallelism: int | None = None
    with (
        open(log, "w") as out,
        subprocess.Popen([LOADCTL, *args], cwd=REPO_ROOT, stdout=out, stderr=out) as run,
    ):
        deadline = time.monotonic() + 240
        while run.poll() is None and time.monotonic() < deadline:
            jobs = cluster.batch.list_namespaced_job(cluster.namespace, label_selector=selector).items
            if jobs and parallelism is None:
                parallelism = jobs[0].spec.parallelism
            time.sleep(0.2)
        code = run.wait(timeout=max(1.0, deadline - time.monotonic()))
    return code, log.read_text(), parallelism


def test_workers_auto_starts_ceil_of_peak_users_over_users_per_worker(cluster):
    # 7 users at 3 per worker: ceil(7 / 3) = 3 workers (2 would carry 6, 4 would be one too many)
    args = cluster.run_args("k8s-sized", "--users-per-worker", "3", "--prometheus", cluster.prometheus_url)
    args = _with(_with(_with(args, "--workers", "auto"), "-u", "7"), "-r", "7")
    code, out, parallelism = run_reading_the_worker_job(cluster, "k8s-sized", args)
    assert code == 0, (out, cluster.kubelet.log_tails())
    assert parallelism == 3, out
    assert "workers 3/3 running" in out
    assert "a worker carries below" not in out  # 3 users per worker: no capacity warning
    run = json.loads((cluster.results / "k8s-sized" / "run.json").read_text())
    assert run["workers"] == 3
    # the master and the three workers really ran
    assert len(cluster.kubelet.processes) == 4, cluster.kubelet.log_tails()
    assert cluster.leftovers() == []


def test_max_workers_caps_auto(cluster):
    # 7 users at 1 per worker would be 7 workers; --max-workers 2 caps them
    args = cluster.run_args(
        "k8s-capped", "--users-per-worker", "1", "--max-workers", "2", "--prometheus", cluster.prometheus_url
    )
    args = _with(_with(_with(args, "--workers", "auto"), "-u", "7"), "-r", "7")
    code, out, parallelism = run_reading_the_worker_job(cluster, "k8s-capped", args)
    assert code == 0, (out, cluster.kubelet.log_tails())
    assert parallelism == 2, out
    assert "workers 2/2 running" in out
