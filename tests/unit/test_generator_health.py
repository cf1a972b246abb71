"""The pure parts of the generator-health checks: which stages are judged, how problems read,
and which of Locust's log lines are its warnings."""

from __future__ import annotations

from controller.backends.local import locust_log_warnings
from controller.models import PhaseWindow, Stage
from controller.prom.health import (
    StageCheck,
    cpu_problems,
    stages_to_check,
    users_problems,
    workers_problems,
)


def test_only_stages_long_enough_to_reach_their_users_are_judged():
    stages = (
        Stage(duration=20, users=20, spawn_rate=1, phase="ramp_up"),  # needs 20 s + slack: too short
        Stage(duration=30, users=20, spawn_rate=1, phase="steady"),  # holds: judged
        Stage(duration=10, users=0, spawn_rate=5, phase="ramp_down"),  # no users to reach
    )
    phases = (
        PhaseWindow(stage=0, phase="ramp_up", start=0, end=20),
        PhaseWindow(stage=1, phase="steady", start=20, end=50),
        PhaseWindow(stage=2, phase="ramp_down", start=50, end=60),
    )
    assert stages_to_check(stages, phases) == [(phases[1], 20)]
    # a stage cut short (the master died) is not judged on users it had no time to reach
    assert stages_to_check(stages, (*phases[:1], phases[1].model_copy(update={"end": 22}))) == []


def test_problems_read_as_reasons():
    assert users_problems([StageCheck(1, "steady", 20, 20.0)]) == []
    assert users_problems([StageCheck(1, "steady", 20, 10.0)]) == [
        "users reached 10 of the 20 planned in stage 1 (steady)"
    ]
    assert users_problems([StageCheck(1, "steady", 20, None)])[0].startswith("users reached 0 of the 20")
    assert workers_problems(missing_max=0, planned=2) == []
    assert workers_problems(missing_max=1, planned=2)[0].startswith("1 of 2 workers went missing")
    assert (
        "worker w1 was at >= 90% CPU for 30s in window 'steady'" in cpu_problems([("steady", "w1", 97.0)])[0]
    )


def test_locust_warnings_are_the_warning_and_error_lines_once(tmp_path):
    master = tmp_path / "master.log"
    master.write_text(
        "[2026-11-26 09:00:00,001] vm/INFO/locust.main: Starting Locust 2.47.0\n"
        "[2026-11-26 09:00:01,001] vm/WARNING/locust.runners: Worker w1 exceeded cpu threshold\n"
        "[2026-11-26 09:00:02,001] vm/WARNING/locust.runners: Worker w1 exceeded cpu threshold\n"
        "Traceback (most recent call last):\n"
        "[2026-11-26 09:00:03,001] vm/ERROR/locust.user.users: boom\n"
    )
    assert locust_log_warnings([master, tmp_path / "missing.log"]) == (
        "master: WARNING locust.runners: Worker w1 exceeded cpu threshold",
        "master: ERROR locust.user.users: boom",
    )
