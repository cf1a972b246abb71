"""The latency buckets keep histogram_quantile within each resolution's stated bound of Locust's
own percentiles (histogram.error_bound_ms), for every key and for any distribution."""

import math
import random

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from locust_workers.contract import CLASSIC_LATENCY_BUCKETS, DEFAULT_LATENCY_BUCKETS
from locust_workers.histogram import (
    DEFAULT_MAX_MS,
    RESOLUTIONS,
    bucket_bounds_ms,
    cumulative_counts,
    error_bound_ms,
    locust_keys,
    quantile_from_buckets,
    resolution_of,
)

from locust.stats import bucket_response_time, calculate_response_time_percentile  # isort: skip


def test_every_resolution_the_contract_names_has_a_tolerance():
    assert tuple(RESOLUTIONS) == CLASSIC_LATENCY_BUCKETS
    assert DEFAULT_LATENCY_BUCKETS in RESOLUTIONS
    with pytest.raises(ValueError, match="fine, standard, coarse"):
        resolution_of("medium")


@pytest.mark.parametrize("resolution", CLASSIC_LATENCY_BUCKETS)
def test_bounds_ascend_and_cover_locust_keys(resolution):
    bounds = bucket_bounds_ms(resolution_of(resolution))
    assert bounds == sorted(set(bounds))
    assert bounds[0] == 0 and bounds[-1] == locust_keys()[-1]


def test_coarser_resolutions_have_fewer_buckets_and_the_default_is_bounded():
    sizes = [len(bucket_bounds_ms(resolution_of(r))) for r in CLASSIC_LATENCY_BUCKETS]
    assert sizes == sorted(sizes, reverse=True)
    assert len(bucket_bounds_ms()) + 1 <= 40  # with le="+Inf": the series per (name, method)


def test_keys_match_locusts_rounding():
    keys = set(locust_keys())
    for ms in [0.2, 7.4, 99.6, 104.9, 995.1, 1049.0, 9951.0, 15_400.0, 119_600.0]:
        assert bucket_response_time(ms) in keys


@pytest.mark.parametrize("resolution", CLASSIC_LATENCY_BUCKETS)
def test_every_key_is_recovered_within_the_bound(resolution):
    chosen = resolution_of(resolution)
    bounds = bucket_bounds_ms(chosen)
    for key in locust_keys():
        cumulative = cumulative_counts({key: 50}, bounds)
        for q in (0.5, 0.95, 0.99):
            value = quantile_from_buckets(q, bounds, cumulative, 50)
            assert abs(value - key) <= error_bound_ms(key, chosen), (key, q, value)


def key_at_rank(times: dict[int, int], rank: float) -> int:
    """Prometheus' rank (the first key with at least q*n samples at or below it) on Locust's keys."""
    seen = 0
    for key in sorted(times):
        seen += times[key]
        if seen >= rank:
            return key
    return max(times)


@settings(max_examples=150, deadline=None)
@given(
    resolution=st.sampled_from(CLASSIC_LATENCY_BUCKETS),
    median_ms=st.floats(min_value=0.5, max_value=20_000),
    sigma=st.floats(min_value=0.01, max_value=2.5),
    samples=st.integers(min_value=1, max_value=3000),
    q=st.sampled_from([0.5, 0.9, 0.95, 0.99, 0.999]),
    seed=st.integers(min_value=0, max_value=2**32 - 1),
)
def test_any_distribution_stays_within_the_resolutions_bound(resolution, median_ms, sigma, samples, q, seed):
    chosen = resolution_of(resolution)
    rng = random.Random(seed)
    times: dict[int, int] = {}
    for _ in range(samples):
        key = bucket_response_time(rng.lognormvariate(math.log(median_ms), sigma))
        times[key] = times.get(key, 0) + 1
    bounds = bucket_bounds_ms(chosen)
    ours = quantile_from_buckets(q, bounds, cumulative_counts(times, bounds), samples)
    expected = key_at_rank(times, q * samples)
    if expected > DEFAULT_MAX_MS:  # beyond the last bound Prometheus answers that bound
        assert ours == bounds[-1]
        return
    assert abs(ours - expected) <= error_bound_ms(expected, chosen)
    # Locust's percentile is that key, or the next one when q*n ends exactly on a key's last sample
    locust = calculate_response_time_percentile(times, samples, q)
    keys = sorted(times)
    assert locust in keys[keys.index(expected) : keys.index(expected) + 2]


@pytest.mark.parametrize("seed", range(5))
def test_random_wide_distributions_are_close_to_locusts_percentiles_at_the_default(seed):
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
        assert abs(ours - locust_value) <= error_bound_ms(locust_value), (q, ours, locust_value)


def test_cumulative_counts():
    assert cumulative_counts({0: 1, 5: 2, 10_000_000: 3}, [0.0, 4.9, 5.0, 6.0]) == [1, 1, 3, 3]
