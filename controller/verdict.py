"""What a run's verdict is, from everything that happened: one pure function, no I/O.

The verdict is what users take away from a run, so it must never say "pass" when the run cannot
support it. The rules, first match wins (README "Verdicts and exit codes" is the same table):

    skipped        a guardrail kept the run from sending load                       exit 0
    interrupted    Ctrl-C / SIGTERM                                                  exit 130
    inconclusive   the run's Prometheus stopped answering (the load is stopped)      exit 3
    error          the load never started; an
                   infrastructure error; gates asked for but not evaluated;
                   no request sent at all; (no gate file, or gates not failed)
                   no successful request                                             exit 3
    inconclusive   the load generator was sick (master died, a worker lost, users
                   short of the plan, a worker's CPU saturated): its numbers describe
                   the generator, not the target. Gate values are still shown.       exit 3
    fail           a live gate aborted the run; or the locustfile failed it itself,
                   as it would fail plain Locust (its quitting hook set
                   process_exit_code non-zero, or it stopped the test with
                   runner.quit() before the stage table ended), also when every
                   gate passed and with `gates: none`; or a gate failed; or (no gate
                   file) any request failed, as plain Locust judges it               exit 1
    warn           only warn-severity gates were broken                              exit 0
    pass           every gate passed; or no gate file and no failed request;
                   or the profile opted out of judgement (`gates: none`)             exit 0

Why generator health outranks a failed gate: with the only worker killed, "rps 0 < min 5" would
blame the target for a crash of the load generator (argo-rollouts calls such a measurement
Inconclusive). Why no successful request is an error and not a fail: refused connections or
users raising in on_start say nothing about how the target performs.

The locustfile's own judgement (issue 13: a drop-in for Locust users) counts like a failed gate:
it fails a run whose gates passed, and the rows above it (an interrupt, an infrastructure error,
a sick generator) still win -- a fail ratio measured by a crashed worker blames the target for the
generator -- with the locustfile's reason added to theirs. Its reason is Locust's: the code it
asked for and its last warning line (the documented hooks log why), or where it quit. A stop of
its own is a fail even when plain Locust would exit 0 (no failed request): loadctl cannot tell a
threshold from "done early", and the stage table it was asked to run did not run -- unless the
locustfile also set process_exit_code 0, its explicit "this run is fine", which Locust obeys too.
Locust's own failure exit (any failed request) is not the locustfile's: the master runs with
--exit-code-on-error 0 and the gates judge failed requests.
"""

from __future__ import annotations

import signal
from dataclasses import dataclass
from typing import Literal

from controller.errors import EXIT_GATE_FAILED, EXIT_INFRA, EXIT_INTERRUPTED, EXIT_PASS
from controller.gates.evaluate import GateReport
from controller.models import Verdict
from controller.prom.locustfile import LocustfileEnd
from controller.rundir import MASTER_LOG

Ending = Literal["completed", "aborted", "interrupted", "skipped", "error", "prometheus_lost"]
Gates = Literal["file", "none", "absent"]  # a gate file; `gates: none` (opted out); not given


@dataclass(frozen=True)
class Happened:
    """Everything the verdict depends on, gathered by runs.py after teardown."""

    ending: Ending  # how following the load ended
    ending_reason: str | None = None  # the abort, interrupt, skip or error message
    load_started: bool = False  # the exporter reported a test start to Prometheus
    locust_exit_code: int | None = None
    gates: Gates = "absent"
    report: GateReport | None = None  # None when no gate file, or the gates could not be evaluated
    gates_unjudged: str | None = None  # why a gate file's gates were not evaluated
    generator: tuple[str, ...] = ()  # why the load generator's numbers are suspect
    locustfile: tuple[str, ...] = ()  # why the locustfile itself failed the run (locustfile_reasons)
    requests: int | None = None  # Locust's own totals (stats.csv)
    failures: int | None = None
    notes: tuple[str, ...] = ()  # context appended to the reasons (e.g. a missed final scrape)


@dataclass(frozen=True)
class Decision:
    verdict: Verdict
    exit_code: int
    reasons: tuple[str, ...]

    @property
    def reason(self) -> str | None:
        return "; ".join(self.reasons) or None


def master_problem(exit_code: int | None, *, test_stopped: bool, asked: int | None = None) -> str | None:
    """Why the Locust master's end was not the normal end of the stage table, if it was not.

    Locust exits 0 at the end of the table (failed requests too: contract.LocustCommand passes
    --exit-code-on-error 0), else 1; a negative code (local process) or 128+n (a container) means
    it was killed by signal n. Without a stop time it never finished the test. `asked` is the code
    the locustfile asked for (process_exit_code), which Locust exits with: not a crash, even > 128.
    """
    signum = None
    if test_stopped and asked is not None and exit_code == asked:
        return None
    if exit_code is not None and exit_code < 0:
        signum = -exit_code
    elif exit_code is not None and exit_code > 128:
        signum = exit_code - 128
    if signum is not None:
        try:
            name = signal.Signals(signum).name
        except ValueError:
            name = f"signal {signum}"
        return f"the Locust master was killed by {name} before the stage table ended"
    if not test_stopped:
        return f"the Locust master ended (exit code {exit_code}) without stopping the test"
    return None


EARLY_STOP_TOLERANCE_S = 3.0


def early_stop_problem(*, planned_s: float, ran_s: float) -> str | None:
    """The stage table ended early without loadctl stopping it: Locust itself stopped the test
    (e.g. "The last worker went missing, stopping test" when a saturated worker misses heartbeats)."""
    if ran_s >= planned_s - max(EARLY_STOP_TOLERANCE_S, 0.05 * planned_s):
        return None
    return (
        f"the load ran {ran_s:.0f}s of the planned {planned_s:.0f}s: Locust stopped the test early "
        f"(a worker that went missing or quit? see {MASTER_LOG})"
    )


def locustfile_reasons(end: LocustfileEnd, *, started: float, planned_s: float) -> tuple[str, ...]:
    """Why the locustfile itself failed the run, in Locust's terms; empty when it did not.

    A non-zero process_exit_code fails it; so does a stop of its own (runner.quit()), unless the
    locustfile also set process_exit_code 0: its explicit word that the run is fine.
    """
    reasons = []
    if end.exit_code:
        said = f": {end.exit_message}" if end.exit_message else f" (see {MASTER_LOG})"
        reasons.append(f"the locustfile set process_exit_code {end.exit_code} (Locust's quitting hook){said}")
    if end.stopped_at is not None and end.exit_code != 0:
        said = f": {end.stop_message}" if end.stop_message else f" (see {MASTER_LOG})"
        reasons.append(
            f"the locustfile stopped the test at {end.stopped_at - started:.0f}s of the planned "
            f"{planned_s:.0f}s ({end.stopped_by}){said}"
        )
    return tuple(reasons)


def _successes(happened: Happened) -> int | None:
    if happened.requests is None:
        return None
    return happened.requests - (happened.failures or 0)


def _no_success_reason(happened: Happened) -> str | None:
    successes = _successes(happened)
    if successes is None or successes > 0:
        return None
    if not happened.requests:
        return "no request was sent (did every user fail in on_start, or no task run?)"
    return f"no successful request: all {happened.requests:,} requests failed (is the target up?)"


def _judged_without_gates(happened: Happened) -> Decision:
    """No gate file: judged like plain Locust, where any failed request exits 1."""
    if happened.requests is None:
        return Decision("error", EXIT_INFRA, ("no gate file and Locust's totals are missing: not judged",))
    no_success = _no_success_reason(happened)
    if no_success:
        return Decision("error", EXIT_INFRA, (no_success,))
    failures = happened.failures or 0
    if failures:
        share = failures / happened.requests
        return Decision(
            "fail",
            EXIT_GATE_FAILED,
            (
                f"{failures:,} of {happened.requests:,} requests failed ({share:.2%}); with no gate file "
                "any failure fails the run, as in plain Locust (set `gates: none` in the profile to opt out)",
            ),
        )
    return Decision("pass", EXIT_PASS, (f"no gate file: none of {happened.requests:,} requests failed",))


def decide(happened: Happened) -> Decision:
    """The one verdict of a run. See the module docstring for the table."""
    decision = _decide(happened)
    locustfile = tuple(r for r in happened.locustfile if r not in decision.reasons)  # where others won
    return Decision(decision.verdict, decision.exit_code, (*decision.reasons, *locustfile, *happened.notes))


def _decide(happened: Happened) -> Decision:
    why = (happened.ending_reason,) if happened.ending_reason else ()
    generator = happened.generator
    if happened.ending == "skipped":
        return Decision("skipped", EXIT_PASS, why)
    if happened.ending == "interrupted":
        return Decision("interrupted", EXIT_INTERRUPTED, (*why, *generator))
    if happened.ending == "prometheus_lost":  # before the start check: its data is gone with it
        return Decision(
            "inconclusive", EXIT_INFRA, (*why, "the load was stopped: nothing could measure or judge it")
        )
    if not happened.load_started:
        code = happened.locust_exit_code
        started = f"the load never started (locust exit code {code})"
        return Decision("error", EXIT_INFRA, (*why, started) if happened.ending == "error" else (started,))
    if happened.ending == "error":
        return Decision("error", EXIT_INFRA, (*why, *generator))
    if happened.gates == "file" and (happened.report is None or happened.report.verdict == "error"):
        detail = happened.gates_unjudged or (happened.report.reason if happened.report else None)
        return Decision(
            "error", EXIT_INFRA, ("gates were not evaluated" + (f": {detail}" if detail else ""), *generator)
        )
    if happened.requests == 0:  # users that all raised in on_start: the generator never loaded
        return Decision("error", EXIT_INFRA, (_no_success_reason(happened) or "", *generator))
    if generator:
        return Decision(
            "inconclusive",
            EXIT_INFRA,
            ("the load generator was not healthy, its numbers are suspect", *generator, *why),
        )
    if happened.ending == "aborted":
        return Decision("fail", EXIT_GATE_FAILED, why)
    if happened.locustfile:
        failed_gates = (
            _broken_gates(happened.report) if happened.report and happened.report.verdict == "fail" else ()
        )
        return Decision("fail", EXIT_GATE_FAILED, (*happened.locustfile, *failed_gates))
    if happened.gates == "none":
        return Decision("pass", EXIT_PASS, ("not judged: the profile says `gates: none`",))
    if happened.report is None:
        return _judged_without_gates(happened)
    no_success = _no_success_reason(happened)
    if no_success and happened.report.verdict != "fail":
        return Decision("error", EXIT_INFRA, (no_success,))
    report = happened.report
    return Decision(report.verdict, report.exit_code, _broken_gates(report))


def _broken_gates(report: GateReport) -> tuple[str, ...]:
    """The report's reason, then the first gates that gave it its verdict, each with why."""
    broken = [g for g in report.gates if g.verdict == report.verdict != "pass"]
    why_broken = tuple(f"{g.name}: {g.reason}" for g in broken[:5])
    return (*((report.reason,) if report.reason else ()), *why_broken)
