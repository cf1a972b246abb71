"""The latency buckets keep histogram_quantile within tolerance of Locust's own percentiles."""

import random

import pytest

from locust_workers.histogram import (
    DEFAULT_TOLERANCE,
    bucket_bounds_ms,
    cumulative_counts,
    locust_keys,
    quantile_from_buckets,
)

from locust.stats import bucket_response_time, calculate_response_time_percentile  # isort: skip


def test_bounds_ascend_and_cover_locust_keys():
    bounds = bucket_bounds_ms()
    assert bounds == sorted(set(bounds))
    assert bounds[0] == 0 and bounds[-1] == locust_keys()[-1]
    assert len(bounds) < 400  # bounded series per name


def test_keys_match_locusts_rounding():
    keys = set(locust_keys())
    for ms in [0.2, 7.4, 99.6, 104.9, 995.1, 1049.0, 9951.0, 15_400.0, 119_600.0]:
        assert bucket_response_time(ms) in keys


@pytest.mark.parametrize("key", [k for k in locust_keys() if k > 0])
def test_every_key_is_recovered_within_tolerance(key):
    bounds = bucket_bounds_ms()
    cumulative = cumulative_counts({key: 50}, bounds)
    for q in (0.5, 0.95, 0.99):
        value = quantile_from_buckets(q, bounds, cumulative, 50)
        assert abs(value - key) <= DEFAULT_TOLERANCE * key


@pytest.mark.parametrize("seed", range(5))
def test_random_distributions_match_locusts_percentiles(seed):
    rng = random.Random(seed)
    times: dict[int, int] = {}
    for _ in range(5000):
        ms = rng.lognormvariate(rng.uniform(1, 7), rng.uniform(0.2, 1.0))
        key = bucket_response_time(ms)
        times[key] = times.get(key, 0) + 1
    bounds = bucket_bounds_ms()
    cumulative = cumulative_counts(times, bounds)
    total = sum(times.values())
    for q in (0.95, 0.99):
        locust_value = calculate_response_time_percentile(times, total, q)
        ours = quantile_from_buckets(q, bounds, cumulative, total)
        assert abs(ours - locust_value) <= 0.05 * locust_value + 1, (q, ours, locust_value)


def test_cumulative_counts():
    assert cumulative_counts({0: 1, 5: 2, 10_000_000: 3}, [0.0, 4.9, 5.0, 6.0]) == [1, 1, 3, 3]
