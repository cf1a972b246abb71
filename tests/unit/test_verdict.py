"""controller/verdict.py: every row of the verdict table, and the order in which they win."""

from __future__ import annotations

import pytest

from controller.gates.evaluate import GateReport, GateResult
from controller.verdict import Decision, Happened, decide, early_stop_problem, master_problem


def report(verdict: str, *gates: tuple[str, str, str | None], reason: str | None = None) -> GateReport:
    results = tuple(
        GateResult(name=n, verdict=v, value=1.0, promql="q", window="run", start=0, end=1, reason=r)  # type: ignore[arg-type]
        for n, v, r in gates
    )
    return GateReport(
        verdict=verdict,  # type: ignore[arg-type]
        gates=results,
        gate_file="g.yaml",
        run_id="r",
        evaluated_at=0,
        reason=reason,
    )


PASSED = report("pass", ("p95", "pass", None))
FAILED = report("fail", ("p95", "fail", "900 > max 500"), ("rps", "pass", None))
WARNED = report("warn", ("p95", "warn", "900 > max 500"))
UNREACHABLE = report("error", reason="Prometheus unreachable for 30s")


def run(**fields) -> Happened:
    base = {"ending": "completed", "load_started": True, "requests": 100, "failures": 0}
    return Happened(**(base | fields))


@pytest.mark.parametrize(
    ("happened", "verdict", "code", "says"),
    [
        (run(ending="skipped", ending_reason="skipped: alert firing"), "skipped", 0, "alert firing"),
        (run(ending="interrupted", ending_reason="interrupted by SIGINT"), "interrupted", 130, "SIGINT"),
        (
            run(ending="prometheus_lost", ending_reason="Prometheus stopped answering"),
            "inconclusive",
            3,
            "Prometheus",
        ),
        (
            run(ending="prometheus_lost", load_started=False, ending_reason="Prometheus gone"),
            "inconclusive",
            3,
            "gone",
        ),
        (run(load_started=False, locust_exit_code=1), "error", 3, "never started (locust exit code 1)"),
        (run(ending="error", ending_reason="the run overran"), "error", 3, "overran"),
        (run(gates="file", report=None, gates_unjudged="no data"), "error", 3, "not evaluated: no data"),
        (run(gates="file", report=UNREACHABLE), "error", 3, "unreachable"),
        (run(gates="file", report=PASSED, requests=0), "error", 3, "no request was sent"),
        (run(gates="file", report=PASSED, generator=("worker 1 lost",)), "inconclusive", 3, "worker 1 lost"),
        (run(gates="file", report=FAILED, generator=("worker 1 lost",)), "inconclusive", 3, "worker 1 lost"),
        (run(gates="absent", failures=5, generator=("users short",)), "inconclusive", 3, "users short"),
        (
            run(ending="aborted", ending_reason="aborted by gate p95", gates="file", report=FAILED),
            "fail",
            1,
            "p95",
        ),
        (run(gates="none", failures=100), "pass", 0, "gates: none"),
        (run(gates="absent", failures=0), "pass", 0, "none of 100 requests failed"),
        (run(gates="absent", failures=1), "fail", 1, "1 of 100 requests failed"),
        (run(gates="absent", failures=100), "error", 3, "all 100 requests failed"),
        (run(gates="absent", requests=0, failures=0), "error", 3, "no request was sent"),
        (run(gates="absent", requests=None, failures=None), "error", 3, "totals are missing"),
        (run(gates="file", report=PASSED), "pass", 0, None),
        (run(gates="file", report=WARNED), "warn", 0, "p95: 900 > max 500"),
        (run(gates="file", report=FAILED), "fail", 1, "p95: 900 > max 500"),
        (run(gates="file", report=FAILED, failures=100), "fail", 1, "p95"),  # a dead target fails gates
        (run(gates="file", report=PASSED, failures=100), "error", 3, "no successful request"),
    ],
)
def test_every_row_of_the_table(happened: Happened, verdict: str, code: int, says: str | None):
    decision = decide(happened)
    assert (decision.verdict, decision.exit_code) == (verdict, code), decision
    if says is None:
        assert decision.reason is None
    else:
        assert says in (decision.reason or "")


def test_a_passing_verdict_never_hides_a_problem():
    """Whatever else happened, a sick generator or unjudged gates never end in exit 0."""
    for ending in ("completed", "aborted"):
        for gates, rep in (("file", PASSED), ("file", None), ("absent", None), ("none", None)):
            happened = run(ending=ending, gates=gates, report=rep, generator=("a worker was lost",))
            assert decide(happened).exit_code != 0, (ending, gates)


def test_notes_are_kept_after_the_reasons():
    decision = decide(run(gates="file", report=FAILED, notes=("a target was not scraped again",)))
    assert decision.reasons[-1] == "a target was not scraped again"
    assert decision == Decision("fail", 1, decision.reasons)


@pytest.mark.parametrize(
    ("code", "stopped", "says"),
    [
        (0, True, None),
        (1, True, None),  # Locust's exit code when requests failed
        (-9, True, "killed by SIGKILL"),
        (137, False, "killed by SIGKILL"),  # a container's 128 + 9
        (-15, False, "killed by SIGTERM"),
        (0, False, "without stopping the test"),
    ],
)
def test_master_problem(code, stopped, says):
    problem = master_problem(code, test_stopped=stopped)
    assert problem is None if says is None else says in (problem or "")


def test_early_stop_problem_tolerates_a_few_seconds():
    assert early_stop_problem(planned_s=60, ran_s=58) is None
    assert early_stop_problem(planned_s=600, ran_s=575) is None  # within 5 %
    assert "ran 5s of the planned 45s" in (early_stop_problem(planned_s=45, ran_s=5) or "")
