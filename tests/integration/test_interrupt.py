"""Ctrl-C and SIGTERM on a real run: the load stops, every child is gone, run.json is still written."""

from __future__ import annotations

import json
import signal
import subprocess
import time

import psutil
import pytest

from controller.errors import EXIT_INTERRUPTED
from tests.support import DEMO_LOCUSTFILE, LOADCTL, REPO_ROOT, demo_server, served_requests, wait_for

pytestmark = pytest.mark.integration


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM])
def test_interrupt_stops_everything_and_keeps_results(tmp_path, signum):
    with demo_server(tmp_path / "target.log") as target:
        results = tmp_path / "results"
        run = subprocess.Popen(
            [
                LOADCTL,
                "run",
                "-f",
                str(DEMO_LOCUSTFILE),
                "--host",
                target,
                "-u",
                "10",
                "-r",
                "10",
                "-t",
                "5m",
                "--workers",
                "2",
                "--run-id",
                "cut",
                "--results-dir",
                str(results),
            ],
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            cwd=REPO_ROOT,
        )
        try:
            controller = psutil.Process(run.pid)
            # running: Prometheus, a master and two workers, and the target is receiving load
            assert wait_for(
                lambda: len(controller.children()) >= 4 and served_requests(target) > 50, timeout=60
            )
            children = controller.children(recursive=True)
            assert {"prometheus"} <= {c.name() for c in children}

            served_before_signal = served_requests(target)
            run.send_signal(signum)
            output, _ = run.communicate(timeout=60)
        finally:
            if run.poll() is None:
                run.kill()
                run.wait()

        assert run.returncode == EXIT_INTERRUPTED, output
        _gone, alive = psutil.wait_procs(children, timeout=5)
        assert not alive, f"left behind: {[p.pid for p in alive]}"

        # no load left behind: the target's request counter stands still
        before = served_requests(target)
        time.sleep(2)
        assert served_requests(target) == before

    record = json.loads((results / "cut" / "run.json").read_text())
    assert record["verdict"] == "interrupted" and record["exit_code"] == EXIT_INTERRUPTED
    assert record["reason"].startswith(f"interrupted by {signal.Signals(signum).name}")
    # what Locust collected covers the load the target had served when the signal came (a request
    # in flight at the stop can be served yet never recorded, hence not an equality)
    assert record["requests"] is not None and record["requests"] >= 0.9 * served_before_signal > 0
    assert record["phases"] and record["phases"][0]["phase"] == "ramp_up"
    assert (results / "cut" / "stats.csv").exists() and (results / "cut" / "locust_report.html").exists()
    assert "verdict: interrupted" in output
