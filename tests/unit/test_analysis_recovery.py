"""Recovery after a spike, the generator's health and the bins of a linear ramp, on synthetic data
with known answers (and the profiles' own stage tables)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from controller.analysis.generator import generator_health
from controller.analysis.models import WindowFigures
from controller.analysis.recovery import MAX_PROBES, probe_windows, recovery, spikes
from controller.analysis.steps import judge_steps, min_bin_seconds, slo_used, step_windows
from controller.models import PhaseWindow, Stage
from controller.profiles import load_profile
from tests.support import REPO_ROOT

ENV = {"TARGET_HOST": "http://127.0.0.1:1", "TARGET_METRICS_URL": "http://127.0.0.1:1/metrics"}
SPIKE = (
    Stage(duration=60, users=2, spawn_rate=2, phase="steady"),  # 1 s ramp, then 59 s at 2 users
    Stage(duration=30, users=20, spawn_rate=18, phase="spike"),
    Stage(duration=60, users=2, spawn_rate=18, phase="recovery"),
)


def ran(stages: tuple[Stage, ...], start: float = 0.0) -> tuple[PhaseWindow, ...]:
    """Each stage's window, run back to back from `start`."""
    windows, at = [], start
    for index, stage in enumerate(stages):
        windows.append(PhaseWindow(stage=index, phase=stage.phase, start=at, end=at + stage.duration))
        at += stage.duration
    return tuple(windows)


def window(start: float, *, p95: float | None, errors: float = 0.0, requests: float = 200.0) -> WindowFigures:
    failed = errors * requests
    return WindowFigures(
        start=start,
        end=start + 5,
        requests=requests,
        failures_by_status={"500": failed} if failed else {},
        p95_ms=p95,
    )


def only_spike():
    (spike,) = spikes(ran(SPIKE), SPIKE, min_before_s=5)
    return spike


def probes(p95_at, errors_at=lambda _s: 0.0) -> list[WindowFigures]:
    """The spike's probe windows (5 s, 1 s apart), each figure a function of seconds since its end."""
    spike = only_spike()
    return [
        window(start, p95=p95_at(start - spike.end), errors=errors_at(start - spike.end))
        for start, _ in probe_windows(spike, window_s=5, step_s=1)
    ]


def test_a_spike_is_a_stage_above_both_neighbours_measured_against_the_stage_before_it():
    spike = only_spike()
    assert (spike.stage, spike.phase, spike.end, spike.until) == (1, "spike", 90, 150)
    assert spike.before == (1, 60)  # the hold at 2 users, after its 1-s ramp
    windows = probe_windows(spike, window_s=5, step_s=1)
    assert windows[0] == (90, 95) and windows[-1] == (145, 150) and len(windows) == 56


def test_p95_back_to_within_10_percent_12_s_after_the_spike_is_a_12_s_recovery():
    # 100 ms before, 400 ms while the spike's queue drains, 105 ms (within 10 %) from 12 s on
    after = probes(lambda s: 400.0 if s < 12 else 105.0)
    found = recovery(only_spike(), window(1, p95=100), after, window_s=5, step_s=1)
    assert found.seconds == 12 and found.before_p95_ms == 100 and found.before_error_rate == 0
    assert found.tolerance == 0.1 and "back 12 s after the spike" in found.reason
    assert "10%" in found.rule and "5-s windows sliding by 1 s" in found.rule


def test_within_10_percent_means_at_most_110_percent_of_a_100_ms_baseline():
    at_110 = recovery(
        only_spike(), window(1, p95=100), probes(lambda s: 120 if s < 3 else 110), window_s=5, step_s=1
    )
    at_111 = recovery(only_spike(), window(1, p95=100), probes(lambda s: 111.0), window_s=5, step_s=1)
    assert at_110.seconds == 3 and at_111.seconds is None


def test_a_p95_that_never_comes_back_is_none_with_the_reason():
    found = recovery(only_spike(), window(1, p95=100), probes(lambda s: 150.0), window_s=5, step_s=1)
    assert found.seconds is None
    assert "not back before the stage after the spike ended" in found.reason
    assert "p95 150 ms" in found.reason and "at most p95 110 ms" in found.reason


def test_a_zero_error_baseline_is_back_within_the_absolute_floor():
    # no errors before; 5 % errors after the spike, then 0.5 % (under the 1-point floor) from 8 s on
    after = probes(lambda s: 20.0, lambda s: 0.05 if s < 8 else 0.005)
    found = recovery(only_spike(), window(1, p95=20), after, window_s=5, step_s=1)
    assert found.before_error_rate == 0 and found.seconds == 8
    # a near-zero p95 baseline: 2 ms before, 6 ms after is within the 5-ms floor (10 % would be 2.2)
    assert recovery(only_spike(), window(1, p95=2), probes(lambda s: 6.0), window_s=5, step_s=1).seconds == 0
    assert (
        recovery(only_spike(), window(1, p95=2), probes(lambda s: 8.0), window_s=5, step_s=1).seconds is None
    )


def test_windows_without_requests_are_not_back_and_no_baseline_is_said():
    after = [window(s, p95=None, requests=0) for s, _ in probe_windows(only_spike(), window_s=5, step_s=1)]
    assert recovery(only_spike(), window(1, p95=100), after, window_s=5, step_s=1).seconds is None
    nothing_before = recovery(only_spike(), window(1, p95=None, requests=0), after, window_s=5, step_s=1)
    assert (
        nothing_before.seconds is None and "no successful requests before the spike" in nothing_before.reason
    )


def test_the_probe_windows_are_consumed_only_up_to_the_first_one_back():
    measured: list[float] = []

    def lazily() -> Iterator[WindowFigures]:
        for figures in probes(lambda s: 400.0 if s < 3 else 100.0):
            measured.append(figures.start - 90)
            yield figures

    assert recovery(only_spike(), window(1, p95=100), lazily(), window_s=5, step_s=1).seconds == 3
    assert measured == [0, 1, 2, 3, 4, 5, 6, 7, 8]  # back at 3 and still back in the window starting at 8


def test_one_lucky_window_is_no_recovery_it_must_stay_back_for_a_window_length():
    # back at 2 s only, still 400 ms from 3 s to 9 s, back for good from 10 s
    after = probes(lambda s: 100.0 if s == 2 or s >= 10 else 400.0)
    found = recovery(only_spike(), window(1, p95=100), after, window_s=5, step_s=1)
    assert found.seconds == 10 and "stayed back" in found.reason
    # back only in the last 3 windows of the stage (52..55 s): back for every window left
    late = recovery(
        only_spike(), window(1, p95=100), probes(lambda s: 100.0 if s >= 53 else 400.0), window_s=5, step_s=1
    )
    assert late.seconds == 53


def test_a_long_recovery_stage_is_probed_at_most_max_probes_times():
    stages = (*SPIKE[:2], Stage(duration=3600, users=2, spawn_rate=18, phase="recovery"))
    (spike,) = spikes(ran(stages), stages, min_before_s=5)
    windows = probe_windows(spike, window_s=5, step_s=1)
    assert len(windows) == MAX_PROBES and windows[-1][1] == pytest.approx(spike.until)
    short = (*SPIKE[:2], Stage(duration=4, users=2, spawn_rate=18, phase="recovery"))
    (cut,) = spikes(ran(short), short, min_before_s=5)
    assert probe_windows(cut, window_s=5, step_s=1) == ()
    found = recovery(cut, window(1, p95=100), [], window_s=5, step_s=1)
    assert found.seconds is None and "shorter than one 5-s window" in found.reason


def test_a_spike_in_two_stages_ramp_then_hold_is_one_spike_measured_against_the_stage_before_both():
    stages = (
        SPIKE[0],
        Stage(duration=10, users=20, spawn_rate=2, phase="ramp_up"),  # 9 s ramp, then held
        Stage(duration=30, users=20, spawn_rate=20, phase="spike"),
        SPIKE[2],
    )
    (spike,) = spikes(ran(stages), stages, min_before_s=5)
    assert (spike.stage, spike.phase, spike.before, spike.end, spike.until) == (2, "spike", (1, 60), 100, 160)


def test_no_spike_without_a_lower_load_after_it_or_a_level_before_it():
    ramp_down = (SPIKE[0], SPIKE[1], Stage(duration=10, users=0, spawn_rate=20, phase="ramp_down"))
    assert spikes(ran(ramp_down), ramp_down, min_before_s=5) == ()
    first = (SPIKE[1], SPIKE[2])
    assert spikes(ran(first), first, min_before_s=5) == ()
    stopped_in_the_spike = ran(SPIKE)[:2]  # the run ended during the spike: nothing to recover under
    assert spikes(stopped_in_the_spike, SPIKE, min_before_s=5) == ()
    for name in ("peak", "staged", "stress"):
        stages = load_profile(REPO_ROOT / "profiles" / f"{name}.yaml", env=ENV).stages
        assert stages and spikes(ran(stages), stages, min_before_s=5) == ()


def test_the_spike_profile_reports_the_recovery_after_its_spike_phase():
    stages = load_profile(REPO_ROOT / "profiles" / "spike.yaml", env=ENV).stages
    assert stages is not None
    (spike,) = spikes(ran(stages, start=1000), stages, min_before_s=5)
    # 2 min at 10 users (1 s ramp), 1 min at 100, then 2 min at 10 to recover in
    assert (spike.phase, spike.end, spike.before, spike.until) == ("spike", 1180, (1001, 1120), 1300)


def test_generator_health_plans_the_stage_tables_peak_and_keeps_the_verdicts_problems():
    health = generator_health(
        stages=SPIKE,
        workers=2,
        workers_missing_max=1.0,
        max_worker_cpu_percent=93.5,
        users_max=19.0,
        problems=["1 of 2 workers went missing (no heartbeat); their users were not replaced"],
    )
    assert (health.users_planned, health.users_reached, health.workers_lost) == (20, 19, 1)
    assert health.workers_planned == 2 and health.max_worker_cpu_percent == 93.5
    assert health.problems == ("1 of 2 workers went missing (no heartbeat); their users were not replaced",)
    unknown = generator_health(
        stages=SPIKE,
        workers=1,
        workers_missing_max=None,
        max_worker_cpu_percent=None,
        users_max=None,
        problems=[],
    )
    assert (unknown.workers_lost, unknown.users_reached, unknown.problems) == (None, None, ())


# --- linear ramps: bins of equal users ---

LINEAR = (Stage(duration=300, users=200, spawn_rate=200 / 300, phase="ramp_up"),)


def test_a_linear_ramp_is_cut_into_ten_bins_of_equal_users():
    bins = step_windows(ran(LINEAR), LINEAR)
    assert [b.users for b in bins] == [20, 40, 60, 80, 100, 120, 140, 160, 180, 200]
    assert [(b.start, b.end) for b in bins[:2]] == [(0, 30), (30, 60)] and bins[-1].end == 300
    assert all(b.ramp for b in bins)


def test_bins_are_at_least_a_few_scrape_intervals_and_add_at_least_one_user_each():
    assert min_bin_seconds(1.0) == 5 and min_bin_seconds(15.0) == 75 and min_bin_seconds(None) == 5
    # a 15-s scrape interval: 300 s hold 4 bins of 75 s
    bins = step_windows(ran(LINEAR), LINEAR, min_bin_s=min_bin_seconds(15.0))
    assert [(b.users, b.start, b.end) for b in bins] == [
        (50, 0, 75),
        (100, 75, 150),
        (150, 150, 225),
        (200, 225, 300),
    ]
    few = (Stage(duration=60, users=3, spawn_rate=0.05, phase="ramp_up"),)
    assert [(b.users, b.start, b.end) for b in step_windows(ran(few), few)] == [
        (1, 0, 20),
        (2, 20, 40),
        (3, 40, 60),
    ]


def test_a_warm_up_hold_then_a_ramp_is_a_step_then_the_ramps_bins():
    stages = load_profile(REPO_ROOT / "profiles" / "stress.yaml", env=ENV).stages
    assert stages is not None
    steps = step_windows(ran(stages), stages)
    # warm_up: 10 users held from 1 s to 60 s; ramp_up 10 -> 200 at 0.352/s (539.8 s of its 540):
    # 10 bins of 19 users, 53.98 s each; its last 0.2 s at 200 users is the ramp's tail, no step
    assert (steps[0].users, steps[0].start, steps[0].end, steps[0].ramp) == (10, 1, 60, False)
    assert [s.users for s in steps[1:]] == [29, 48, 67, 86, 105, 124, 143, 162, 181, 200]
    ramp_s = 190 / 0.352
    assert [s.end - s.start for s in steps[1:]] == pytest.approx([ramp_s / 10] * 10)
    assert steps[-1].end == pytest.approx(60 + ramp_s) and len(steps) == 11


def test_a_ramp_leading_to_its_own_hold_is_not_binned_so_staircases_keep_their_steps():
    stages = load_profile(REPO_ROOT / "profiles" / "staged.yaml", env=ENV).stages
    assert stages is not None
    steps = step_windows(ran(stages), stages)
    assert [s.users for s in steps] == [10, 25, 50, 100] and not any(s.ramp for s in steps)


def test_a_ramp_with_a_long_hold_at_its_end_is_bins_then_that_hold_never_merged_into_a_bin():
    stages = (Stage(duration=100, users=40, spawn_rate=0.5, phase="ramp_up"),)  # 80 s ramp, 20 s hold
    steps = step_windows(ran(stages), stages)
    assert [(s.users, s.start, s.end, s.ramp) for s in steps] == [
        *((4 * i, 8.0 * (i - 1), 8.0 * i, True) for i in range(1, 11)),
        (40, 80, 100, False),
    ]


def test_ramp_bins_are_judged_like_holds_without_an_slo_throughput_must_grow():
    bins = step_windows(ran(LINEAR), LINEAR)[:4]
    measured = [
        window(b.start, p95=50, requests=rps * 5) for b, rps in zip(bins, (10, 20, 30, 30), strict=True)
    ]
    steps = judge_steps(bins, measured, slo_used(None, None))
    assert [s.within_slo for s in steps] == [True, True, True, False] and steps[3].users == 80
