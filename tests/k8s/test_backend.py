"""`loadctl run --backend k8s`, `ls` and `teardown` against the real control plane (harness.py)."""

from __future__ import annotations

import json
import os
import signal
import subprocess

import yaml

from tests.k8s.controlplane import MISSING_IMAGE, eventually
from tests.k8s.harness import Cluster
from tests.support import CHART, DEMO_LOCUSTFILE, LOADCTL, helm, run_loadctl


def output(done: subprocess.CompletedProcess[str]) -> str:
    return done.stdout + done.stderr


def record(cluster: Cluster, run_id: str) -> dict:
    return json.loads((cluster.results / run_id / "run.json").read_text())


def test_run_waits_for_ready_pods_follows_judges_and_uninstalls(cluster):
    gates = cluster.tmp / "gates.yaml"
    gates.write_text(
        "version: 1\nname: k8s\nwindow: run\ngates:\n"
        "  - {name: some_load, metric: rps, min: 0.1}\n"
        "  - {name: few_errors, metric: error_rate, max: 0.5}\n"
    )
    done = run_loadctl(
        [*cluster.run_args("k8s-happy"), "--prometheus", cluster.prometheus_url, "--gates", str(gates)],
        timeout=240,
    )
    text = output(done)
    assert done.returncode == 0, (text, cluster.kubelet.log_tails())
    assert "pods: master ready, workers 2/2 running" in text
    assert "helm install lt-k8s-happy" in text and "helm uninstall lt-k8s-happy" in text
    assert "phase " in text  # the live progress line
    run = record(cluster, "k8s-happy")
    assert run["backend"] == "k8s" and run["release"] == "lt-k8s-happy"
    assert run["namespace"] == cluster.namespace and run["verdict"] == "pass"
    assert run["stats_source"] == "prometheus" and run["requests"] > 0
    assert [p["phase"] for p in run["phases"]] == ["ramp_up", "steady"]
    assert {"stats.csv", "failures.csv", "gates.json", "junit.xml", "report.md"} <= set(run["files"])
    gates_json = json.loads((cluster.results / "k8s-happy" / "gates.json").read_text())
    assert [g["verdict"] for g in gates_json["gates"]] == ["pass", "pass"]
    assert cluster.leftovers() == []
    # the master and both workers really ran, and ended with their pods
    assert len(cluster.kubelet.processes) == 3
    assert all(p.poll() == 0 for p in cluster.kubelet.processes.values()), cluster.kubelet.log_tails()


def test_a_pod_that_never_becomes_ready_fails_fast_and_leaves_nothing(cluster):
    args = cluster.run_args("k8s-bad-image", "--timeout", "10m")
    args[args.index("--image") + 1] = MISSING_IMAGE
    done = run_loadctl(args, timeout=180)
    text = output(done)
    assert done.returncode == 3, text
    assert "ImagePullBackOff" in text and MISSING_IMAGE in text
    assert "not ready after" not in text  # diagnosed, not timed out
    assert record(cluster, "k8s-bad-image")["verdict"] == "error"
    assert cluster.leftovers() == []


def test_a_missing_service_account_fails_before_anything_is_installed(cluster):
    values = yaml.safe_load(cluster.values_file.read_text())
    values["run"]["serviceAccountName"] = "ghost"
    cluster.values_file.write_text(yaml.safe_dump(values))
    done = run_loadctl(cluster.run_args("k8s-no-sa"), timeout=120)
    text = output(done)
    assert done.returncode == 3, text
    assert f"namespace {cluster.namespace} has no ServiceAccount 'ghost'" in text
    assert "helm install" not in text
    assert cluster.leftovers() == []


def test_an_unschedulable_pod_fails_fast_with_the_schedulers_reason(cluster):
    values = yaml.safe_load(cluster.values_file.read_text())
    values["worker"] = {"nodeSelector": {"pool": "does-not-exist"}}
    cluster.values_file.write_text(yaml.safe_dump(values))
    done = run_loadctl(cluster.run_args("k8s-unschedulable", "--timeout", "10m"), timeout=180)
    text = output(done)
    assert done.returncode == 3, text
    assert "worker pod" in text and "Unschedulable" in text and "node affinity/selector" in text
    assert cluster.leftovers() == []


def test_ctrl_c_during_the_run_uninstalls_everything(cluster):
    env = dict(os.environ, PYTHONUNBUFFERED="1")
    argv = [
        LOADCTL,
        *cluster.run_args("k8s-interrupted", duration="5m"),
        "--prometheus",
        cluster.prometheus_url,
    ]
    log = cluster.tmp / "loadctl.log"
    with open(log, "w") as out:
        process = subprocess.Popen(
            argv, stdout=out, stderr=subprocess.STDOUT, env=env, stdin=subprocess.DEVNULL
        )
        try:
            eventually(lambda: "workers 2/2 running" in log.read_text(), what="ready pods", timeout=120)
            eventually(lambda: len(cluster.kubelet.processes) == 3, what="3 pod processes", timeout=30)
            process.send_signal(signal.SIGINT)
            code = process.wait(timeout=180)
        finally:
            if process.poll() is None:
                process.kill()
                process.wait()
    text = log.read_text()
    assert code == 130, text
    assert "helm uninstall lt-k8s-interrupted" in text
    assert record(cluster, "k8s-interrupted")["verdict"] == "interrupted"
    assert cluster.leftovers() == []
    eventually(
        lambda: all(p.poll() is not None for p in cluster.kubelet.processes.values()),
        what="every pod process to end",
    )


def test_keep_on_fail_keeps_the_release_and_teardown_removes_it(cluster):
    gates = cluster.tmp / "gates.yaml"
    gates.write_text(
        "version: 1\nname: k8s\nwindow: run\ngates:\n  - {name: impossible, metric: rps, min: 1000000000}\n"
    )
    connection = ["--kubeconfig", str(cluster.plane.kubeconfig), "-n", cluster.namespace]
    done = run_loadctl(
        [
            *cluster.run_args("k8s-kept"),
            "--prometheus",
            cluster.prometheus_url,
            "--gates",
            str(gates),
            "--keep-on-fail",
        ],
        timeout=240,
    )
    text = output(done)
    assert done.returncode == 1, text
    assert "kept release lt-k8s-kept" in text and "helm uninstall" not in text
    assert "release/lt-k8s-kept" in cluster.leftovers()

    listed = run_loadctl(["ls", *connection])
    assert listed.returncode == 0, output(listed)
    row = next(line for line in listed.stdout.splitlines() if line.startswith("k8s-kept"))
    assert "lt-k8s-kept" in row and "succeeded" in row and row.rstrip().endswith("fail")

    removed = run_loadctl(["teardown", *connection, "--run-id", "k8s-kept"])
    assert removed.returncode == 0, output(removed)
    assert cluster.leftovers() == []
    unknown = run_loadctl(["teardown", *connection, "--run-id", "k8s-kept"])
    assert unknown.returncode == 2 and "no run release k8s-kept" in unknown.stderr


def test_teardown_all_removes_a_release_left_by_a_killed_controller(cluster):
    """A controller that was SIGKILLed cannot uninstall: its release (and running pods) stay."""
    args = [
        "install",
        "lt-orphan",
        str(CHART),
        "-n",
        cluster.namespace,
        "--kubeconfig",
        str(cluster.plane.kubeconfig),
        "-f",
        str(cluster.values_file),
        "--set",
        "run.id=orphan,run.host=http://127.0.0.1:9,image.repository=registry.example/loadctl",
        "--set-json",
        'run.stages=[{"duration": 600, "users": 1, "spawnRate": 1}]',
        "--set-file",
        f"run.files.locustfile\\.py={DEMO_LOCUSTFILE}",
    ]
    assert helm(*args).returncode == 0
    connection = ["--kubeconfig", str(cluster.plane.kubeconfig), "-n", cluster.namespace]
    eventually(lambda: "running" in run_loadctl(["ls", *connection]).stdout, what="the orphan to run")
    removed = run_loadctl(["teardown", *connection, "--all"])
    assert removed.returncode == 0, output(removed)
    assert "removed 1 run(s)" in removed.stdout
    assert cluster.leftovers() == []
