"""The verdict under attack: real Locust, Prometheus and demo target, with processes killed mid-run.

Each case is a bullet of issue 10: a run whose numbers cannot support a verdict must not pass.
  kill -9 one worker / the only worker / the master  -> inconclusive, exit 3, the cause named
  kill -9 the run's Prometheus                      -> inconclusive, exit 3, Prometheus named, load stopped
  no gate file: one failed request -> fail (1); no successful request -> error (3)
  a worker whose CPU is saturated for 30 s          -> inconclusive, exit 3
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
from pathlib import Path

import psutil
import pytest

from controller.errors import EXIT_GATE_FAILED, EXIT_INFRA
from controller.processes import free_port
from tests.support import LOADCTL, REPO_ROOT, demo_server, run_loadctl, served_requests, wait_for

pytestmark = pytest.mark.integration

FAULTS = REPO_ROOT / "tests" / "integration" / "locustfiles" / "faults.py"
RPS_GATES = """version: 1
name: faults
window: run
gates:
  - {name: rps, metric: rps, min: 5}
  - {name: p95, metric: latency_p95_ms, max: 5000}
"""


def loadctl_args(target: str, results: Path, run_id: str, *extra: str) -> list[str]:
    return [
        "run",
        "-f",
        str(FAULTS),
        "--host",
        target,
        "--run-id",
        run_id,
        "--results-dir",
        str(results),
        *extra,
    ]


def record_of(results: Path, run_id: str) -> dict:
    return json.loads((results / run_id / "run.json").read_text())


def child(controller: psutil.Process, *words: str) -> list[psutil.Process]:
    found = []
    for process in controller.children(recursive=True):
        try:
            line = " ".join(process.cmdline())
        except psutil.Error:
            continue
        if all(word in line for word in words):
            found.append(process)
    return found


def start_run(args: list[str], mode: str = "steady") -> subprocess.Popen[str]:
    return subprocess.Popen(
        [LOADCTL, *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        cwd=REPO_ROOT,
        env={**os.environ, "FAULTS_MODE": mode},
    )


def finish(run: subprocess.Popen[str], timeout: float = 120) -> str:
    try:
        output, _ = run.communicate(timeout=timeout)
    finally:
        if run.poll() is None:
            run.kill()
            run.wait()
    return output


def kill_when_loaded(run: subprocess.Popen[str], target: str, *words: str, only_one: bool = False) -> float:
    """SIGKILL the run's child process(es) matching `words` once the target has served some load."""
    controller = psutil.Process(run.pid)
    assert wait_for(lambda: served_requests(target) > 50 and child(controller, *words), timeout=60)
    time.sleep(8)  # well into the stage table: the windows judged up to the kill are long enough
    victims = child(controller, *words)
    for victim in victims[:1] if only_one else victims:
        victim.send_signal(signal.SIGKILL)
    return time.monotonic()


@pytest.mark.parametrize(
    ("words", "workers", "cause"),
    [
        (("--worker",), 2, "worker"),  # one of two: its users are never replaced
        (("--master",), 2, "master was killed by SIGKILL"),
    ],
    ids=["one-worker", "master"],
)
def test_a_killed_locust_process_makes_the_run_inconclusive(tmp_path, words, workers, cause):
    with demo_server(tmp_path / "target.log") as target:
        results = tmp_path / "results"
        gates = tmp_path / "gates.yaml"
        gates.write_text(RPS_GATES)
        args = loadctl_args(target, results, "killed", "-u", "10", "-r", "10", "-t", "40s")
        run = start_run([*args, "--workers", str(workers), "--gates", str(gates)])
        killed_at = kill_when_loaded(run, target, *words, only_one=True)
        output = finish(run)
        stopped_after = time.monotonic() - killed_at
        record = record_of(results, "killed")
    assert run.returncode == EXIT_INFRA, output
    assert record["verdict"] == "inconclusive", record["reason"]
    assert any(cause in problem for problem in record["generator_problems"]), record["generator_problems"]
    assert cause in record["reason"]
    # every gate value is still computed and shown, the report says the numbers are suspect
    gates_json = json.loads((results / "killed" / "gates.json").read_text())
    assert {g["name"] for g in gates_json["gates"]} == {"rps", "p95"}
    assert all(g["value"] is not None for g in gates_json["gates"]), gates_json
    report = (results / "killed" / "report.md").read_text()
    assert "The load generator was not healthy" in report and "INCONCLUSIVE" in report
    assert "verdict: inconclusive" in output
    # the 40 s stage table was not run to its end with a broken generator
    print(f"kill -9 {cause}: {record['verdict']}, exit {run.returncode}, run over {stopped_after:.1f}s later")
    assert stopped_after < 30, f"the run went on {stopped_after:.0f}s after the kill"


def test_the_only_worker_killed_is_inconclusive_not_a_failed_rps_gate(tmp_path):
    with demo_server(tmp_path / "target.log") as target:
        results = tmp_path / "results"
        gates = tmp_path / "gates.yaml"
        gates.write_text(RPS_GATES)
        args = loadctl_args(target, results, "alone", "-u", "5", "-r", "5", "-t", "40s", "--workers", "1")
        run = start_run([*args, "--gates", str(gates)])
        kill_when_loaded(run, target, "--worker")
        output = finish(run)
        record = record_of(results, "alone")
    assert run.returncode == EXIT_INFRA, output
    assert (
        record["verdict"] == "inconclusive" and "worker 0 of 1 exited (killed by SIGKILL)" in record["reason"]
    )


def test_prometheus_killed_stops_the_load_within_10s_and_names_prometheus(tmp_path):
    with demo_server(tmp_path / "target.log") as target:
        results = tmp_path / "results"
        gates = tmp_path / "gates.yaml"
        gates.write_text(RPS_GATES)
        args = loadctl_args(target, results, "blind", "-u", "5", "-r", "5", "-t", "60s", "--workers", "1")
        run = start_run([*args, "--gates", str(gates)])
        killed_at = kill_when_loaded(run, target, "prometheus", "--config.file")

        def load_stopped() -> bool:
            before = served_requests(target)
            time.sleep(1.0)
            return served_requests(target) == before

        assert wait_for(load_stopped, timeout=20, interval=0)
        stopped_after = time.monotonic() - killed_at
        output = finish(run)
        record = record_of(results, "blind")
    assert run.returncode == EXIT_INFRA, output
    assert record["verdict"] == "inconclusive"
    assert "Prometheus" in record["reason"] and "stopped answering" in record["reason"], record["reason"]
    assert "workers exited" not in record["reason"]
    print(
        f"kill -9 prometheus: {record['verdict']}, exit {run.returncode}, "
        f"load stopped {stopped_after:.1f}s later"
    )
    assert stopped_after <= 10 + 1, f"load went on {stopped_after:.1f}s after Prometheus died"
    report = (results / "blind" / "report.md").read_text()
    assert "No gate file was given" not in report and "could not be evaluated" in report


def test_without_gates_one_failed_request_fails_the_run(tmp_path):
    with demo_server(tmp_path / "target.log") as target:
        results = tmp_path / "results"
        args = loadctl_args(target, results, "onefail", "-u", "2", "-r", "2", "-t", "8s", "--workers", "1")
        done = run_loadctl(args, env={**os.environ, "FAULTS_MODE": "one_failure"}, timeout=120)
    record = record_of(results, "onefail")
    assert done.returncode == EXIT_GATE_FAILED, done.stdout + done.stderr
    assert record["verdict"] == "fail" and record["failures"] == 1 and record["requests"] > 10
    assert record["reason"].startswith(f"1 of {record['requests']:,} requests failed")


@pytest.mark.parametrize("mode", ["dead_host", "raise_on_start"])
def test_without_gates_no_successful_request_is_an_error(tmp_path, mode):
    results = tmp_path / "results"
    with demo_server(tmp_path / "target.log") as live_target:
        target = f"http://127.0.0.1:{free_port()}" if mode == "dead_host" else live_target
        args = loadctl_args(target, results, mode, "-u", "2", "-r", "2", "-t", "6s", "--workers", "1")
        done = run_loadctl(args, env={**os.environ, "FAULTS_MODE": mode}, timeout=120)
        served = served_requests(live_target)
    record = record_of(results, mode)
    assert done.returncode == EXIT_INFRA, done.stdout + done.stderr
    assert record["verdict"] == "error"
    if mode == "dead_host":
        assert record["requests"] > 0 and record["failures"] == record["requests"]
        assert "no successful request" in record["reason"]
    else:
        assert record["requests"] == 0 and served == 0
        assert "no request was sent" in record["reason"]


def test_gates_none_opts_out_of_judgement_explicitly(tmp_path):
    with demo_server(tmp_path / "target.log") as target:
        results = tmp_path / "results"
        args = loadctl_args(target, results, "optout", "-u", "2", "-r", "2", "-t", "6s", "--workers", "1")
        done = run_loadctl([*args, "--gates", "none"], env={**os.environ, "FAULTS_MODE": "one_failure"})
    record = record_of(results, "optout")
    assert done.returncode == 0, done.stdout + done.stderr
    assert record["verdict"] == "pass" and record["failures"] == 1 and "gates: none" in record["reason"]


@pytest.mark.slow
def test_a_saturated_worker_makes_the_run_inconclusive(tmp_path):
    # 60 s: Locust's first CPU reading of a worker comes ~15 s in, and saturation must last 30 s
    with demo_server(tmp_path / "target.log") as target:
        results = tmp_path / "results"
        args = loadctl_args(target, results, "hot", "-u", "2", "-r", "2", "-t", "60s", "--workers", "1")
        done = run_loadctl(args, env={**os.environ, "FAULTS_MODE": "burn"}, timeout=180)
    record = record_of(results, "hot")
    assert done.returncode == EXIT_INFRA, done.stdout + done.stderr
    assert record["verdict"] == "inconclusive"
    assert any("CPU for 30s" in p for p in record["generator_problems"]), record["generator_problems"]
    # Locust's own warning and the run's alert say the same, after the run
    assert any("CPU usage above 90%" in w for w in record["locust_warnings"]), record["locust_warnings"]
    assert "locust warned:" in done.stdout
