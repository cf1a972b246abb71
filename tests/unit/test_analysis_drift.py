"""Drift and pool stability on synthetic series with known answers (analysis/drift.py, linefit.py)."""

from __future__ import annotations

import random

import pytest
from hypothesis import given
from hypothesis import strategies as st

from controller.analysis.drift import (
    LEAK_MIN_FITTED_GROWTH,
    LEAK_MIN_GROWTH_PER_HOUR,
    LEAK_MIN_R_SQUARED,
    LEAK_MIN_WINDOW_S,
    POOL_SETTLE_S,
    drift,
    pool_stability,
    summed_over,
    warmup_end,
)
from controller.linefit import fit_line
from controller.models import AnalysisSettings, PhaseWindow, Stage

MB = 1e6
T0 = 1_700_000_000.0  # unix seconds: the fit must not lose precision on them


def line(start: float, per_hour: float, *, seconds: float, every: float = 15.0, noise: float = 0.0):
    rng = random.Random(7)
    count = int(seconds / every) + 1
    return [
        (T0 + i * every, start + per_hour * i * every / 3600 + rng.uniform(-noise, noise))
        for i in range(count)
    ]


def test_a_linear_leak_is_recovered_exactly_and_is_a_leak():
    gauge = drift(
        "loadctl_process_resident_memory_bytes", {"probe": "app"}, line(100 * MB, 20 * MB, seconds=3600)
    )
    assert gauge.slope_per_hour == pytest.approx(20 * MB)
    assert gauge.growth_ratio_per_hour == pytest.approx(0.2)
    assert gauge.r_squared == pytest.approx(1.0)
    assert (gauge.first, gauge.last, gauge.peak) == (
        100 * MB,
        pytest.approx(120 * MB),
        pytest.approx(120 * MB),
    )
    assert gauge.samples == 241 and gauge.verdict == "leak"


def test_source_labels_are_dropped_and_the_rest_kept():
    labels = {"run_id": "r", "instance": "127.0.0.1:9", "job": "probes", "probe": "app", "__name__": "x"}
    assert drift("x", labels, line(1, 0, seconds=60)).labels == {"probe": "app"}


def test_a_flat_noisy_series_is_stable():
    gauge = drift("rss", {}, line(100 * MB, 0, seconds=1800, noise=1 * MB))
    assert gauge.verdict == "stable"
    assert abs(gauge.growth_ratio_per_hour or 0) < LEAK_MIN_GROWTH_PER_HOUR


def test_a_step_jump_is_not_sustained_growth():
    # flat at 100 MB, then flat at 130 MB from half-way: +30 % in an hour, but one jump
    points = [(t, v + (30 * MB if t - T0 >= 1800 else 0)) for t, v in line(100 * MB, 0, seconds=3600)]
    gauge = drift("rss", {}, points)
    assert (gauge.growth_ratio_per_hour or 0) > LEAK_MIN_GROWTH_PER_HOUR  # steep enough...
    assert gauge.r_squared is not None and gauge.r_squared < LEAK_MIN_R_SQUARED  # ...but a step
    assert gauge.verdict == "stable"


def test_a_short_run_with_a_little_growth_is_not_extrapolated_into_a_leak():
    # 90 s at 1 s: +1 % over the window is 40 %/h and perfectly linear, but below the fitted floor
    gauge = drift("rss", {}, line(100 * MB, 40 * MB, seconds=90, every=1.0))
    assert gauge.growth_ratio_per_hour == pytest.approx(0.4)
    assert gauge.r_squared == pytest.approx(1.0)
    assert LEAK_MIN_FITTED_GROWTH > 0.4 * 90 / 3600 and gauge.verdict == "stable"
    # the same slope held for 5 min (+3.3 %) has a leak's shape, too short to call it one ...
    assert drift("rss", {}, line(100 * MB, 40 * MB, seconds=300, every=1.0)).verdict == "growing"
    # ... held for the 10 minutes a leak needs, it is one
    assert LEAK_MIN_WINDOW_S == 600
    assert drift("rss", {}, line(100 * MB, 40 * MB, seconds=599, every=1.0)).verdict == "growing"
    assert drift("rss", {}, line(100 * MB, 40 * MB, seconds=600, every=1.0)).verdict == "leak"


def test_too_few_samples_is_no_data():
    for points in ([], [(T0, 1.0)], [(T0, 1.0), (T0 + 1, 2.0)]):
        gauge = drift("rss", {}, points)
        assert gauge.verdict == "no_data" and gauge.slope_per_hour is None and gauge.samples == len(points)
    assert drift("rss", {}, [(T0, 1.0), (T0 + 1, 2.0), (T0 + 2, 3.0)]).verdict != "no_data"


def test_a_gauge_at_zero_has_no_growth_ratio_and_is_not_a_leak():
    gauge = drift("conns", {}, [(T0 + i, float(i)) for i in range(100)])
    assert gauge.slope_per_hour == pytest.approx(3600.0)
    assert gauge.growth_ratio_per_hour is None and gauge.verdict == "stable"


@given(
    start=st.floats(min_value=1.0, max_value=1e12),
    per_hour=st.floats(min_value=-1e9, max_value=1e9),
    samples=st.integers(min_value=3, max_value=200),
    every=st.floats(min_value=0.5, max_value=600.0),
)
def test_the_slope_of_an_exact_line_is_recovered(start, per_hour, samples, every):
    points = [(T0 + i * every, start + per_hour * i * every / 3600) for i in range(samples)]
    fit = fit_line(points)
    assert fit is not None
    assert fit.slope_per_hour == pytest.approx(per_hour, rel=1e-6, abs=1e-6 * start)
    scale = max(abs(v) for _, v in points)  # float error is relative to the line's largest value
    # ... plus the line's rise over the times' own rounding (unix seconds: about 2e-7 s per ulp)
    time_error = abs(per_hour) / 3600 * 1e-6
    assert fit.intercept == pytest.approx(start, rel=1e-9, abs=1e-9 * scale + time_error)
    # the ratio inherits the intercept's error, large when the line climbs far above its start
    ratio_tolerance = 1e-6 + 1e-8 * scale / start
    assert fit.growth_ratio_per_hour == pytest.approx(per_hour / start, rel=ratio_tolerance, abs=1e-6)


@given(values=st.lists(st.floats(min_value=-1e6, max_value=1e6), min_size=3, max_size=50))
def test_r_squared_is_between_0_and_1(values):
    fit = fit_line([(T0 + i, v) for i, v in enumerate(values)])
    assert fit is not None and 0.0 <= fit.r_squared <= 1.0 + 1e-9


# --- warm-up ---


def test_warmup_is_the_profile_setting_else_the_first_stage_else_a_tenth_of_the_run():
    stages = [
        Stage(duration=60, users=10, spawn_rate=1, phase="ramp_up"),
        Stage(duration=600, users=10, spawn_rate=1),
    ]
    phases = [
        PhaseWindow(phase="steady", stage=1, start=1061, end=1660),
        PhaseWindow(phase="ramp_up", stage=0, start=1000, end=1061),
    ]
    assert warmup_end(started=1000, ended=1660, stages=stages, phases=phases, warmup=120) == 1120
    assert (
        warmup_end(started=1000, ended=1660, stages=stages, phases=phases, warmup=None) == 1061
    )  # as it ran
    one = stages[1:]
    assert warmup_end(started=1000, ended=1600, stages=one, phases=phases[:1], warmup=None) == 1060
    assert (
        warmup_end(started=1000, ended=1600, stages=one, phases=(), warmup=9999) == 1600
    )  # never after the end


def test_the_profile_names_extra_drift_gauges_and_a_warmup():
    settings = AnalysisSettings.model_validate({"drift": ["app_cache_bytes"], "warmup": "2m"})
    assert settings.drift == ("app_cache_bytes",) and settings.warmup == 120.0
    for bad in ({"drift": ["not a metric"]}, {"warmup": "0s"}, {"drift": "app_cache_bytes"}):
        with pytest.raises(ValueError):
            AnalysisSettings.model_validate(bad)


# --- pool stability ---

STARTED, STOPPED = T0 + 10, T0 + 70


def pool(
    levels: tuple[float, float, float], *, pre_load: bool = True, settle: float = POOL_SETTLE_S, **kwargs
):
    """`before` until the load starts, `peak` during it, `after` from `settle` s after the stop (the
    load's level until then: requests in flight), sampled every second."""
    before, peak, after = levels
    first = 0 if pre_load else 12
    samples = [(T0 + s, before if T0 + s < STARTED else peak) for s in range(first, 71)]
    settling = [(T0 + s, peak if T0 + s < STOPPED + settle else after) for s in range(71, 140)]
    return pool_stability(
        "c",
        kwargs.pop("labels", {}),
        around_start=samples[:40],
        after_stop=settling,
        peak=peak,
        started=STARTED,
        stopped=STOPPED,
        utilisation_peak=kwargs.pop("utilisation_peak", None),
    )


def test_a_pool_back_to_its_pre_load_level_is_stable():
    result = pool((0, 8, 0), labels={"pool": "studio", "instance": "x"}, utilisation_peak=0.5)
    assert (result.before, result.peak, result.after) == (0, 8, 0)
    assert result.verdict == "stable" and result.exhausted is False
    assert result.before_at == T0 + 9 and result.after_at == STOPPED + POOL_SETTLE_S
    assert result.labels == {"pool": "studio"}


def test_requests_in_flight_at_the_stop_are_not_a_leak_a_pool_still_up_after_settling_is():
    assert pool((0, 8, 0), settle=POOL_SETTLE_S).verdict == "stable"  # still 8 busy until 5 s after
    assert pool((0, 8, 0), settle=POOL_SETTLE_S + 1).after == 8  # busy past the settling: a leak
    assert pool((0, 8, 0), settle=POOL_SETTLE_S + 1).verdict == "leak"


def test_a_pool_that_stays_up_after_the_load_is_a_leak():
    result = pool((2, 20, 9), utilisation_peak=1.0)
    assert result.verdict == "leak" and result.exhausted is True
    # within the tolerance: max(1, 10 % of the rise of 18) = 1.8 above the level before
    assert pool((2, 20, 3.8)).verdict == "stable"
    assert pool((2, 20, 3.9)).verdict == "leak"


def test_without_a_pre_load_sample_the_first_sample_is_before_and_says_when():
    result = pool((0, 5, 5), pre_load=False)
    assert result.before == 5 and result.before_at == T0 + 12 > STARTED
    assert result.exhausted is None and result.verdict == "stable"


def test_a_pool_without_samples_after_the_load_is_no_data():
    result = pool_stability(
        "c",
        {},
        around_start=[(T0, 0.0)],
        after_stop=[(STOPPED + 1, 0.0)],
        peak=5,
        started=STARTED,
        stopped=STOPPED,
        utilisation_peak=None,
    )  # the only sample after the stop is before the settling
    assert result.verdict == "no_data" and result.after is None and result.before == 0


def test_connections_by_state_are_summed_per_probe_sample_by_sample():
    series = [
        ({"run_id": "r", "probe": "db", "state": "active", "job": "probes"}, [(1.0, 3.0), (2.0, 4.0)]),
        ({"run_id": "r", "probe": "db", "state": "idle_in_transaction"}, [(1.0, 1.0), (2.0, 2.0)]),
        ({"run_id": "r", "probe": "other", "state": "active"}, [(1.0, 7.0)]),
    ]
    summed = summed_over(series, "state")
    assert summed == {
        str({"probe": "db"}): ({"probe": "db"}, [(1.0, 4.0), (2.0, 6.0)]),
        str({"probe": "other"}): ({"probe": "other"}, [(1.0, 7.0)]),
    }
    assert len(summed_over(series, None)) == 3  # nothing summed: each label set its own
