"""A real, shortened spike run against the demo target (profiles/spike.yaml's shape at a tiny load):
analysis.json reports the recovery after the spike and the generator's health.

Whether the demo target needs time to recover from 20 users is its business: the test asserts the
recovery is a number within the recovery stage, or null with the reason said, never missing.
"""

from __future__ import annotations

import json
import os

import pytest

from controller.rundir import ANALYSIS_JSON, RUN_RECORD
from tests.support import REPO_ROOT, demo_server, run_loadctl

pytestmark = pytest.mark.integration

RUN_ID = "spike"
LOCUSTFILE = REPO_ROOT / "tests" / "integration" / "locustfiles" / "faults.py"  # steady: GET every 50 ms
STAGES = [("steady", 10, 2), ("spike", 8, 20), ("recovery", 15, 2)]  # phase, seconds, users


@pytest.fixture(scope="module")
def finished_run(tmp_path_factory: pytest.TempPathFactory) -> dict:
    root = tmp_path_factory.mktemp("run")
    stages = "".join(
        f"  - {{duration: {seconds}s, users: {users}, spawn_rate: 20, phase: {phase}}}\n"
        for phase, seconds, users in STAGES
    )
    with demo_server(root / "target.log") as target:
        profile = root / "spike.yaml"
        profile.write_text(
            f"name: spike\nlocustfile: {LOCUSTFILE}\nhost: {target}\nworkers: 1\ngates: none\n"
            f"stages:\n{stages}"
        )
        done = run_loadctl(
            ["run", str(profile), "--run-id", RUN_ID, "--results-dir", str(root / "results")],
            timeout=180,
            env={k: v for k, v in os.environ.items() if k != "FAULTS_MODE"},  # steady
        )
    run_dir = root / "results" / RUN_ID
    assert (run_dir / RUN_RECORD).exists(), f"exit {done.returncode}: {done.stdout}{done.stderr}"
    record = json.loads((run_dir / RUN_RECORD).read_text())
    return {"record": record, "analysis": json.loads((run_dir / ANALYSIS_JSON).read_text())}


def test_the_spike_has_one_recovery_a_number_within_its_stage_or_null_with_the_reason(finished_run):
    analysis, record = finished_run["analysis"], finished_run["record"]
    assert analysis["error"] is None
    (recovery,) = analysis["recovery"]
    spike = next(p for p in record["phases"] if p["phase"] == "spike")
    assert (recovery["spike_phase"], recovery["spike_stage"]) == ("spike", 1)
    assert recovery["spike_end"] == pytest.approx(spike["end"])
    assert (
        recovery["before_p95_ms"] > 0 and recovery["before_error_rate"] == 0
    )  # the demo's search is healthy
    assert recovery["tolerance"] == 0.1 and "10%" in recovery["rule"]
    assert recovery["window_s"] >= 3 and recovery["reason"]
    if recovery["seconds"] is None:
        assert "not back before the stage after the spike ended" in recovery["reason"]
    else:
        assert 0 <= recovery["seconds"] <= 15 - recovery["window_s"]
        assert recovery["reason"].startswith(f"back {recovery['seconds']:g} s after the spike")


def test_the_generator_reached_the_planned_peak_and_lost_no_worker(finished_run):
    generator, record = finished_run["analysis"]["generator"], finished_run["record"]
    assert generator["users_planned"] == generator["users_reached"] == 20
    assert generator["workers_planned"] == 1 and generator["workers_lost"] == 0
    assert generator["max_worker_cpu_percent"] is not None and generator["max_worker_cpu_percent"] >= 0
    assert list(generator["problems"]) == [] == list(record["generator_problems"])
