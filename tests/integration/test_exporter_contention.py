"""A 200-name run on a machine whose cores are busy: the exporter must not starve the master.

Issue 15: families of 200 names were built on the master's gevent loop (a second per scrape);
with the CPU contended, runs ended as "all 2 workers exited" or lost most of their scrapes. Here
two busy-loop processes hold the machine's two cores for the whole run (started and killed by
this test, by PID), and the run must finish cleanly with every scrape of the exporter successful.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from controller.prom.client import query
from controller.prom.config import EXPORTER_JOB
from tests.support import LOADCTL, demo_server, served_run, wait_for

pytestmark = pytest.mark.integration

LOCUSTFILE = Path(__file__).parent / "locustfiles" / "many_names.py"
RUN_ID = "contended"
DURATION_S = 20
BUSY_LOOPS = 2


def busy_loops() -> list[subprocess.Popen]:
    return [subprocess.Popen([sys.executable, "-c", "while True: pass"]) for _ in range(BUSY_LOOPS)]


@pytest.fixture(scope="module")
def contended_run(tmp_path_factory: pytest.TempPathFactory) -> dict:
    root = tmp_path_factory.mktemp("contended")
    with demo_server(root / "target.log") as target:
        profile = root / "names.yaml"
        profile.write_text(
            f"name: names\nlocustfile: {LOCUSTFILE}\nhost: {target}\nworkers: 2\ngates: none\n"
            f"users: 20\nspawn_rate: 20\nduration: {DURATION_S}s\n"
        )
        run_dir = root / "results" / RUN_ID
        args = [LOADCTL, "run", str(profile), "--run-id", RUN_ID, "--results-dir", str(root / "results")]
        loops = busy_loops()
        try:
            with subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True) as run:
                # the contention lasts as long as the load: Locust writes stats.csv when it has
                # stopped (the report of 200 names that follows needs no busy neighbours)
                wait_for(lambda: (run_dir / "stats.csv").exists() or run.poll() is not None, timeout=180)
                stop(loops)
                output, _ = run.communicate(timeout=180)
        finally:
            stop(loops)
    assert (run_dir / "run.json").exists(), f"exit {run.returncode}: {output}"
    record = json.loads((run_dir / "run.json").read_text())
    return {"returncode": run.returncode, "output": output, "run_dir": run_dir, "record": record}


def stop(processes: list[subprocess.Popen]) -> None:
    for process in processes:
        if process.poll() is None:
            process.kill()
            process.wait()


def test_the_run_ends_cleanly_with_every_name_exported(contended_run):
    record = contended_run["record"]
    assert contended_run["returncode"] == 0 and record["exit_code"] == 0, contended_run["output"]
    with served_run(contended_run["run_dir"]) as prom:
        names = query(
            client=prom,
            promql=f'count(count by (name) (locust_requests_total{{run_id="{RUN_ID}"}}))',
            at=record["ended_at"],
        )
        assert names[0].value == 200
        missing = query(
            client=prom,
            promql=f'max_over_time(locust_workers{{run_id="{RUN_ID}",state="missing"}}[10m])',
            at=record["ended_at"],
        )
        assert missing[0].value == 0


def test_every_scrape_of_the_run_succeeded_and_carried_its_series(contended_run):
    record = contended_run["record"]
    window = f"{int(record['ended_at'] - record['started_at'])}s"
    selector = f'job="{EXPORTER_JOB}"'
    with served_run(contended_run["run_dir"]) as prom:

        def value(promql: str) -> float:
            found = query(client=prom, promql=promql, at=record["ended_at"])
            assert found, promql
            return found[0].value

        scrapes = value(f"count_over_time(up{{{selector}}}[{window}])")
        assert value(f"min_over_time(up{{{selector}}}[{window}])") == 1  # no scrape failed or timed out
        # every scrape held the run's series (a scrape too slow would have left a sample out)
        assert value(f'count_over_time(locust_users{{run_id="{RUN_ID}"}}[{window}])') == scrapes
        # Prometheus scrapes every second: a scrape per second of the run, a couple at its edges aside
        assert scrapes >= DURATION_S - 2
