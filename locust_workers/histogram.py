"""Latency histogram buckets whose resolution is a setting, with a stated error bound per setting.

Locust keeps response times rounded to about two significant digits (stats.bucket_response_time:
whole ms below 100 ms, 10 ms steps below 1 s, 100 ms below 10 s, 1 s above). Its percentile is
always one of those keys. Prometheus' histogram_quantile interpolates linearly inside the bucket
that holds the rank, so for a key k inside bucket (a, b] the answer lies in (a, b] and is off by at
most b - a. Choosing every bucket so that (b - a) <= max(tolerance * (smallest key in it), floor)
bounds the error by max(tolerance * k, floor) for every key up to the last bound (a 1 ms floor is
Locust's own resolution below 100 ms; `fine` has none). Where a single key step is wider than
that (1-24 ms without a floor; 100 ms, 1 s and 10 s at tolerances below 10 %), the key gets a
narrow bucket of its own just below it.

That bound is the worst case (all samples on one key). On a spread of latencies the samples fill
each bucket and linear interpolation lands much closer: `make bench-buckets` measures both, and
README "Latency buckets" has the table the default below was chosen from.

All pure: no Locust import, so the bounds can be checked without a run.
"""

from __future__ import annotations

from bisect import bisect_left
from collections.abc import Iterable, Mapping
from functools import cache
from typing import NamedTuple

from locust_workers.contract import CLASSIC_LATENCY_BUCKETS, DEFAULT_LATENCY_BUCKETS


class Resolution(NamedTuple):
    tolerance: float  # a bucket's width at most this share of the smallest key in it...
    floor_ms: float  # ...or this many ms, when that is more


# contract.CLASSIC_LATENCY_BUCKETS' names (the profile's `latency_buckets`, the chart's run.latencyBuckets).
# `fine` gives every key below 25 ms a bucket of its own (no floor): the former 327-bucket layout.
# `standard`: 38 buckets with +Inf, p95/p99 typically ~2 % off (README "Latency buckets").
RESOLUTIONS = dict(
    zip(
        CLASSIC_LATENCY_BUCKETS,
        (Resolution(0.04, 0.0), Resolution(0.4, 1.0), Resolution(0.8, 1.0)),
        strict=True,
    )
)
DEFAULT_RESOLUTION = RESOLUTIONS[DEFAULT_LATENCY_BUCKETS]
DEFAULT_MAX_MS = 120_000


def resolution_of(name: str) -> Resolution:
    """The resolution of a name; ValueError naming the choices otherwise."""
    try:
        return RESOLUTIONS[name]
    except KeyError:
        raise ValueError(f"'{name}' is not one of {', '.join(RESOLUTIONS)}") from None


def error_bound_ms(locust_ms: float, resolution: Resolution = DEFAULT_RESOLUTION) -> float:
    """How far histogram_quantile may be from Locust's percentile `locust_ms` (<= the last bound)."""
    return max(resolution.tolerance * locust_ms, resolution.floor_ms)


def locust_keys(max_ms: int = DEFAULT_MAX_MS) -> list[int]:
    """Every value Locust's default bucket_response_time can produce, up to max_ms."""
    keys = set(range(0, 100)) | set(range(100, 1000, 10)) | set(range(1000, 10_000, 100))
    keys |= set(range(10_000, max_ms + 1, 1000))
    return sorted(k for k in keys if k <= max_ms)


@cache
def _bounds(resolution: Resolution, max_ms: int) -> tuple[float, ...]:
    tolerance = resolution.tolerance
    keys = locust_keys(max_ms)
    bounds: list[float] = [float(keys[0])]  # le=0 holds the 0 ms key exactly
    lower = float(keys[0])
    first: int | None = None  # smallest key in the open bucket (lower, upper]
    upper = lower
    for key in keys[1:]:
        if first is not None and (key - lower) <= error_bound_ms(first, resolution):
            upper = float(key)
            continue
        if first is not None:
            bounds.append(upper)
            lower = upper
        if (key - lower) > error_bound_ms(key, resolution):
            # one key step is already too coarse here: give this key a narrow bucket below it
            lower = round(key * (1 - tolerance / 2), 6)
            bounds.append(lower)
        first, upper = key, float(key)
    bounds.append(upper)
    return tuple(bounds)


def bucket_bounds_ms(
    resolution: Resolution = DEFAULT_RESOLUTION, max_ms: int = DEFAULT_MAX_MS
) -> list[float]:
    """Upper bounds (ms, ascending) for which every Locust key's quantile is within error_bound_ms."""
    return list(_bounds(resolution, max_ms))


def cumulative_counts(response_times: Mapping[float, int], bounds_ms: list[float]) -> list[int]:
    """Counts of samples <= each bound, from Locust's {rounded_ms: count} dict."""
    per_bucket = [0] * len(bounds_ms)
    for value, count in response_times.items():
        index = bisect_left(bounds_ms, value)
        if index < len(per_bucket):
            per_bucket[index] += count
    total = 0
    out = []
    for count in per_bucket:
        total += count
        out.append(total)
    return out


def quantile_from_buckets(q: float, bounds: Iterable[float], cumulative: Iterable[int], total: int) -> float:
    """Prometheus' histogram_quantile for one series (linear interpolation), for tests and reports."""
    bounds, cumulative = list(bounds), list(cumulative)
    if total == 0:
        return float("nan")
    rank = q * total
    previous_bound, previous_count = 0.0, 0
    for bound, count in zip(bounds, cumulative, strict=True):
        if count >= rank:
            if bound == bounds[0]:
                return bound
            return previous_bound + (bound - previous_bound) * (rank - previous_count) / (
                count - previous_count
            )
        previous_bound, previous_count = bound, count
    return bounds[-1]
