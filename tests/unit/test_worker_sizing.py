"""`workers: auto`: one per core locally, ceil(peak users / users per worker) on Kubernetes, and the
warning when a worker gets more users than one was measured to carry (controller/sizing.py)."""

from __future__ import annotations

import math
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from bench.worker_capacity import StepResult, capacity, cost_estimate
from controller.errors import InputError
from controller.models import Stage
from controller.profiles import build_plan, load_profile, sizing_warning, worker_sizing
from controller.sizing import (
    DEFAULT_MAX_WORKERS,
    MAX_WORKERS,
    MEASURED_USERS_PER_WORKER,
    WorkerSizing,
    auto_workers,
    capacity_warning,
)
from tests.support import DEMO_LOCUSTFILE

peaks = st.integers(min_value=0, max_value=2_000_000)
sizings = st.builds(
    WorkerSizing,
    users_per_worker=st.integers(min_value=1, max_value=1_000_000),
    max_workers=st.integers(min_value=1, max_value=MAX_WORKERS),
)


@given(peaks, sizings)
def test_auto_workers_is_clamped_and_never_zero(peak, sizing):
    workers = auto_workers(peak, sizing)
    assert 1 <= workers <= sizing.max_workers
    if workers < sizing.max_workers:  # not capped: every worker within its users
        assert math.ceil(peak / workers) <= sizing.users_per_worker or peak == 0


@given(peaks, peaks, sizings)
def test_more_users_never_get_fewer_workers(a, b, sizing):
    low, high = sorted((a, b))
    assert auto_workers(low, sizing) <= auto_workers(high, sizing)


@given(peaks, st.integers(1, 10_000), st.integers(1, 10_000), st.integers(1, MAX_WORKERS))
def test_more_users_per_worker_never_get_more_workers(peak, a, b, cap):
    low, high = sorted((a, b))
    assert auto_workers(peak, WorkerSizing(high, cap)) <= auto_workers(peak, WorkerSizing(low, cap))


@pytest.mark.parametrize(
    ("peak", "per_worker", "cap", "expected"),
    [(1000, 300, 50, 4), (900, 300, 50, 3), (901, 300, 50, 4), (0, 300, 50, 1), (10**6, 300, 50, 50)],
)
def test_auto_workers_examples(peak, per_worker, cap, expected):
    assert auto_workers(peak, WorkerSizing(per_worker, cap)) == expected


def test_the_warning_names_profile_users_workers_and_the_measured_capacity():
    measured = MEASURED_USERS_PER_WORKER
    assert capacity_warning(profile="peak", peak_users=2 * measured, workers=2) is None
    message = capacity_warning(profile="peak", peak_users=2 * measured + 1, workers=2)
    assert message == (
        f"profile peak: {2 * measured + 1} users on 2 workers = {measured + 1} per worker, above the "
        f"measured {measured} a worker carries below 80 % CPU (README: Worker sizing): raise workers"
    )


def _profile(tmp_path: Path, body: str) -> Path:
    path = tmp_path / "sized.yaml"
    path.write_text(f"name: sized\nlocustfile: {DEMO_LOCUSTFILE}\nhost: http://127.0.0.1:1\n{body}")
    return path


STAGES = (
    "stages:\n"
    "  - {duration: 10s, users: 700, spawn_rate: 100}\n"
    "  - {duration: 60s, users: 1300, spawn_rate: 100}\n"
)


def _plan(path: Path, **kwargs: object):
    return build_plan(load_profile(path, env={}), profile_file=path, run_id="r1", cpu_count=2, **kwargs)


def test_auto_is_one_per_core_locally_and_by_the_peak_stage_on_kubernetes(tmp_path):
    path = _profile(tmp_path, STAGES)
    assert _plan(path).workers == 2
    profile = load_profile(path, env={})
    k8s = _plan(path, sizing=worker_sizing(profile, users_per_worker=500))
    assert k8s.workers == 3  # ceil(1300 / 500): the largest stage, not the first
    assert _plan(path, sizing=worker_sizing(profile, users_per_worker=500, max_workers=2)).workers == 2
    assert _plan(path, sizing=worker_sizing(profile)).workers == math.ceil(1300 / MEASURED_USERS_PER_WORKER)


def test_explicit_workers_stay_as_written(tmp_path):
    path = _profile(tmp_path, "workers: 7\n" + STAGES)
    profile = load_profile(path, env={})
    assert _plan(path, sizing=worker_sizing(profile, users_per_worker=1)).workers == 7
    assert _plan(path, workers="auto", sizing=worker_sizing(profile, users_per_worker=1000)).workers == 2


def test_flags_win_over_the_profiles_fields_which_win_over_the_defaults(tmp_path):
    profile = load_profile(_profile(tmp_path, "users_per_worker: 200\nmax_workers: 9\n" + STAGES), env={})
    assert worker_sizing(None) == WorkerSizing(MEASURED_USERS_PER_WORKER, DEFAULT_MAX_WORKERS)
    assert worker_sizing(profile) == WorkerSizing(200, 9)
    assert worker_sizing(profile, users_per_worker=100, max_workers=4) == WorkerSizing(100, 4)


@pytest.mark.parametrize(
    ("field", "value"), [("users_per_worker", 0), ("max_workers", MAX_WORKERS + 1), ("max_workers", "yes")]
)
def test_bad_sizing_fields_name_file_and_field(tmp_path, field, value):
    path = _profile(tmp_path, f"{field}: {value}\n" + STAGES)
    with pytest.raises(InputError) as caught:
        load_profile(path, env={})
    assert caught.value.exit_code == 2
    assert str(path) in str(caught.value) and field in str(caught.value)


def test_the_warning_comes_from_the_plans_peak_and_workers(tmp_path):
    peak = 3 * MEASURED_USERS_PER_WORKER
    path = _profile(tmp_path, f"stages:\n  - {{duration: 60s, users: {peak}, spawn_rate: {peak}}}\n")
    crowded = _plan(path, workers=2)
    assert sizing_warning(crowded) == capacity_warning(profile="sized", peak_users=peak, workers=2)
    assert sizing_warning(crowded) is not None
    sized = _plan(path, sizing=worker_sizing(load_profile(path, env={})))
    assert sized.workers == 3 and sizing_warning(sized) is None  # auto on k8s stays within the capacity
    light = crowded.model_copy(update={"stages": (Stage(duration=5, users=1, spawn_rate=1),)})
    assert sizing_warning(light) is None


def _step(users: int, cpu: float, per_user_rps: float = 1.8) -> StepResult:
    return StepResult(users=users, cpu_percent=cpu, rps=users * per_user_rps, failures=0, samples=10)


def test_the_benchmark_reports_the_last_step_carried_before_the_first_that_was_not():
    steps = [_step(100, 10), _step(200, 20), _step(400, 79), _step(500, 85), _step(600, 70)]
    assert capacity(steps, limit=80) == 400  # 600 below 80 % again does not count: 500 was not carried
    assert capacity([_step(100, 90)], limit=80) is None
    # a step whose users the worker held back (requests per user fell) is not carried, whatever its CPU
    assert capacity([_step(100, 10), _step(200, 20, per_user_rps=1.0), _step(300, 30)], limit=80) == 100
    assert cost_estimate([_step(100, 10), _step(200, 20)], limit=80) == 800
