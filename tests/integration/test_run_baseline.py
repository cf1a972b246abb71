"""`loadctl run --baseline`: relative gates judged against an earlier run's kept TSDB after the load."""

from __future__ import annotations

import json

import pytest

from tests.support import DEMO_LOCUSTFILE, demo_server, run_loadctl

pytestmark = pytest.mark.integration

# Peak users: exact in both runs (2), unlike request counts of a 6 s run; `$run_id` becomes each
# run's own id, so the baseline value can only come from the first run's tsdb.
PEAK_USERS = 'max(max_over_time(locust_users{run_id="$run_id"}[$__range]))'
GATES = f"""version: 1
name: relative
window: run
gates:
  - {{name: users, promql: '{PEAK_USERS}', min: 1}}
  - {{name: users_kept, promql: '{PEAK_USERS}', min_change: "-50%"}}
"""


def test_a_run_is_judged_against_its_baseline(tmp_path):
    gates = tmp_path / "relative.yaml"
    gates.write_text(GATES)
    results = tmp_path / "results"
    with demo_server(tmp_path / "target.log") as target:
        common = ["run", "-f", str(DEMO_LOCUSTFILE), "--host", target, "-u", "2", "-r", "2", "-t", "6s"]
        common += ["--workers", "1", "--results-dir", str(results)]
        first = run_loadctl([*common, "--run-id", "first"], timeout=120)
        assert first.returncode == 0, first.stdout + first.stderr
        refused = run_loadctl([*common, "--run-id", "second", "--gates", str(gates)], timeout=60)
        assert refused.returncode == 2 and "--baseline" in refused.stderr, refused.stderr
        assert not (results / "second").exists()
        second = run_loadctl(
            [*common, "--run-id", "second", "--gates", str(gates), "--baseline", str(results / "first")],
            timeout=120,
        )
    assert second.returncode == 0, second.stdout + second.stderr
    report = json.loads((results / "second" / "gates.json").read_text())
    assert report["verdict"] == "pass" and report["baseline_run_id"] == "first"
    by_name = {g["name"]: g for g in report["gates"]}
    assert by_name["users_kept"]["baseline"] == 2 and by_name["users_kept"]["value"] == 2
    assert json.loads((results / "second" / "run.json").read_text())["verdict"] == "pass"
    # `gates eval --baseline` shares the same baseline code: judged again offline, same verdict
    judge = ["gates", "eval", "--gates", str(gates), "--run", str(results / "second")]
    again = run_loadctl([*judge, "--baseline", str(results / "first"), "--format", "json"], timeout=120)
    assert again.returncode == 0, again.stdout + again.stderr
    assert json.loads(again.stdout)["baseline_run_id"] == "first"
    (tmp_path / "empty").mkdir()
    bad = run_loadctl(
        [
            "gates",
            "eval",
            "--gates",
            str(gates),
            "--run",
            str(results / "second"),
            "--baseline",
            str(tmp_path / "empty"),
        ]
    )
    assert bad.returncode == 2 and bad.stderr.strip().splitlines() == [
        f"loadctl: error: command line: --baseline: {tmp_path / 'empty'} has no run.json: "
        "not a finished loadctl run's results folder"
    ]
