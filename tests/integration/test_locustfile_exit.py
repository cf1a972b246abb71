"""A locustfile's own verdict (issue 13, item 5): Locust's documented ways to fail a run fail
`loadctl run` too, with Locust's reason, also when every gate passes -- and plain `locust
--headless` on the same file is the reference.

  a quitting hook setting process_exit_code 1 (fail ratio > 1 %)  -> exit 1, not 0
  the same hook on a clean run (process_exit_code 0)              -> exit 0 (the control)
  runner.quit() from a checker greenlet on its own threshold      -> exit 1 "fail", not 3
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

import pytest

from controller.errors import EXIT_GATE_FAILED, EXIT_PASS
from tests.locust_compat import loadctl_locust, plain_locust
from tests.support import REPO_ROOT, demo_server

pytestmark = pytest.mark.integration

OWN_VERDICT = REPO_ROOT / "tests" / "integration" / "locustfiles" / "own_verdict.py"
PASSING_GATES = """version: 1
name: own-verdict
window: run
gates:
  - {name: rps, metric: rps, min: 1}
  - {name: p95, metric: latency_p95_ms, max: 5000}
"""


def run_both(tmp_path: Path, mode: str, *, duration: str, workers: int, plain_args: tuple[str, ...] = ()):
    """The locustfile in `mode` through loadctl (with gates that pass) and through plain Locust."""
    env = {**os.environ, "OWN_VERDICT": mode}
    gates = tmp_path / "gates.yaml"
    gates.write_text(PASSING_GATES)
    load = ("-u", "4", "-r", "4", "-t", duration)
    with demo_server(tmp_path / "target.log") as target:
        loadctl = loadctl_locust(
            [
                "-f",
                str(OWN_VERDICT),
                "--host",
                target,
                *load,
                "--workers",
                str(workers),
                "--gates",
                str(gates),
            ],
            cwd=tmp_path,
            results_dir=tmp_path / "results",
            run_id=mode,
            env=env,
        )
        began = time.monotonic()
        plain = plain_locust(
            ["-f", str(OWN_VERDICT), "-H", target, *load, *plain_args], cwd=tmp_path, env=env
        )
        plain_s = time.monotonic() - began
    record = json.loads((tmp_path / "results" / mode / "run.json").read_text())
    gates_json = json.loads((tmp_path / "results" / mode / "gates.json").read_text())
    assert [g["verdict"] for g in gates_json["gates"]] == ["pass", "pass"], gates_json
    return loadctl, record, plain, plain_s


@pytest.mark.parametrize(
    ("mode", "code", "reason"),
    [
        (
            "hook",
            EXIT_GATE_FAILED,
            "the locustfile set process_exit_code 1 (Locust's quitting hook): "
            "Test failed due to failure ratio > 1%",
        ),
        ("clean", EXIT_PASS, None),
    ],
)
def test_a_quitting_hook_decides_the_exit_code_over_passing_gates(tmp_path, mode, code, reason):
    # plain Locust with loadctl's own --exit-code-on-error 0: only the hook can make it exit 1
    loadctl, record, plain, _ = run_both(
        tmp_path, mode, duration="8s", workers=1, plain_args=("--exit-code-on-error", "0")
    )
    assert plain.exit_code == code, plain.output[-2000:]
    assert loadctl.exit_code == code, loadctl.output[-2000:]
    assert record["verdict"] == ("fail" if reason else "pass"), record["reason"]
    assert record["generator_problems"] == []
    if reason:
        assert record["reason"].startswith(reason), record["reason"]
        assert "verdict: fail (exit 1)" in loadctl.output
        assert sum(plain.failures.values()) > 0 and sum(loadctl.failures.values()) > 0
    else:
        assert "process_exit_code" not in (record["reason"] or "")
        assert sum(plain.failures.values()) == sum(loadctl.failures.values()) == 0


def test_a_locustfile_quitting_on_its_own_threshold_fails_the_run_not_inconclusive(tmp_path):
    loadctl, record, plain, plain_s = run_both(tmp_path, "quit", duration="40s", workers=2)
    # plain Locust: the checker quits well before -t, and the failed requests make it exit 1
    assert plain.exit_code != 0, plain.output[-2000:]
    assert plain_s < 25 and "quitting" in plain.output
    assert loadctl.exit_code == EXIT_GATE_FAILED, loadctl.output[-2000:]
    assert record["verdict"] == "fail", record["reason"]
    assert record["generator_problems"] == [], record["generator_problems"]
    ran_s = record["ended_at"] - record["started_at"]
    assert ran_s < 25, ran_s
    reason = record["reason"]
    assert reason.startswith("the locustfile stopped the test at "), reason
    assert "of the planned 40s (runner.quit() from own_verdict.py:" in reason
    assert ": fail ratio was 0." in reason and reason.split(";")[0].endswith(", quitting"), reason
    print(
        f"runner.quit(): loadctl {reason!r}, ran {ran_s:.1f}s; "
        f"plain locust exit {plain.exit_code} after {plain_s:.1f}s"
    )
