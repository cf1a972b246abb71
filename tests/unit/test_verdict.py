"""controller/verdict.py: every row of the verdict table, and the order in which they win."""

from __future__ import annotations

import pytest

from controller.gates.evaluate import GateReport, GateResult
from controller.prom.locustfile import LocustfileEnd
from controller.verdict import (
    Decision,
    Happened,
    decide,
    early_stop_problem,
    locustfile_reasons,
    master_problem,
)


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


HOOK = "the locustfile set process_exit_code 1 (Locust's quitting hook): fail ratio 5.0% > 1%"
QUIT = "the locustfile stopped the test at 9s of the planned 30s (runner.quit() from own.py:23)"


@pytest.mark.parametrize(
    ("happened", "verdict", "code", "first"),
    [
        # the locustfile's own fail wins over passing gates, `gates: none`, and no gate file
        (run(gates="file", report=PASSED, locustfile=(HOOK,)), "fail", 1, HOOK),
        (run(gates="file", report=WARNED, locustfile=(QUIT,)), "fail", 1, QUIT),
        (run(gates="none", locustfile=(HOOK,)), "fail", 1, HOOK),
        (run(gates="absent", failures=0, locustfile=(QUIT,)), "fail", 1, QUIT),
        # ...and, like a failed gate, over "no successful request" (a dead target fails its check)
        (run(gates="absent", failures=100, locustfile=(HOOK,)), "fail", 1, HOOK),
        # a failed gate and the locustfile: both reasons, the locustfile's first
        (run(gates="file", report=FAILED, locustfile=(HOOK,)), "fail", 1, HOOK),
        (
            run(ending="aborted", ending_reason="aborted by gate p95", locustfile=(HOOK,)),
            "fail",
            1,
            "aborted",
        ),
        # the rows above it still win, its reason added to theirs
        (
            run(gates="file", report=PASSED, generator=("worker 1 lost",), locustfile=(HOOK,)),
            "inconclusive",
            3,
            None,
        ),
        (run(gates="file", report=None, gates_unjudged="no data", locustfile=(HOOK,)), "error", 3, None),
        (
            run(ending="interrupted", ending_reason="interrupted by SIGINT", locustfile=(HOOK,)),
            "interrupted",
            130,
            None,
        ),
        (run(requests=0, locustfile=(QUIT,)), "error", 3, None),
    ],
)
def test_the_locustfiles_own_fail(happened: Happened, verdict: str, code: int, first: str | None):
    decision = decide(happened)
    assert (decision.verdict, decision.exit_code) == (verdict, code), decision
    if first is not None:
        assert decision.reasons[0].startswith(first), decision.reasons
    for reason in happened.locustfile:  # said once, whoever won
        assert decision.reasons.count(reason) == 1, decision.reasons
    if happened.report is FAILED:
        assert "p95: 900 > max 500" in decision.reasons


def test_the_locustfiles_fail_never_passes_whatever_the_gates_say():
    for gates, rep in (("file", PASSED), ("file", WARNED), ("absent", None), ("none", None)):
        for reasons in ((HOOK,), (QUIT,), (HOOK, QUIT)):
            assert decide(run(gates=gates, report=rep, locustfile=reasons)).exit_code == 1, (gates, reasons)


@pytest.mark.parametrize(
    ("end", "says"),
    [
        (LocustfileEnd(), ()),
        (LocustfileEnd(exit_code=0, exit_message="all fine"), ()),  # its explicit "pass" is no fail
        (
            LocustfileEnd(exit_code=1, exit_message="Test failed due to failure ratio > 1%"),
            (
                "the locustfile set process_exit_code 1 (Locust's quitting hook): "
                "Test failed due to failure ratio > 1%",
            ),
        ),
        (
            LocustfileEnd(exit_code=3),
            ("the locustfile set process_exit_code 3 (Locust's quitting hook) (see logs/master.log)",),
        ),
        (
            LocustfileEnd(
                stopped_at=1009.4,
                stopped_by="runner.quit() from own.py:23",
                stop_message="fail ratio 0.31 > 0.2",
            ),
            (
                "the locustfile stopped the test at 9s of the planned 30s (runner.quit() from own.py:23): "
                "fail ratio 0.31 > 0.2",
            ),
        ),
        # stopped, but it also said the run is fine (process_exit_code 0): Locust exits 0, so do we
        (LocustfileEnd(exit_code=0, stopped_at=1009.4, stopped_by="runner.stop() from own.py:23"), ()),
        (
            LocustfileEnd(
                exit_code=2,
                exit_message="too slow",
                stopped_at=1020.0,
                stopped_by="runner.quit() from a greenlet",
            ),
            (
                "the locustfile set process_exit_code 2 (Locust's quitting hook): too slow",
                "the locustfile stopped the test at 20s of the planned 30s "
                "(runner.quit() from a greenlet) (see logs/master.log)",
            ),
        ),
    ],
)
def test_locustfile_reasons_say_what_locust_said(end: LocustfileEnd, says: tuple[str, ...]):
    assert locustfile_reasons(end, started=1000.0, planned_s=30) == says


def test_an_exit_code_the_locustfile_asked_for_is_not_a_signal():
    assert master_problem(137, test_stopped=True, asked=137) is None
    assert "killed by SIGKILL" in (master_problem(137, test_stopped=True, asked=1) or "")
    assert "without stopping the test" in (master_problem(1, test_stopped=False, asked=1) or "")
