"""Latency as a Prometheus native histogram: one series per (name, method) instead of ~330 buckets.

Locust keeps response times rounded to about two significant digits (whole ms below 100 ms, 10 ms
steps below 1 s, 100 ms below 10 s, 1 s above), and its percentile is always one of those keys.
A native histogram's buckets are exponential: bucket i of schema s is (b^(i-1), b^i] with
b = 2^(2^-s). Prometheus 3's histogram_quantile answers a value inside the bucket that holds the
rank, so for a key k the answer is off by at most (b - 1) * k: 1.09 % at schema 6, 0.27 % at 8.
Because Locust has already rounded, the number of populated buckets is bounded by the number of
distinct keys (a few hundred at most) whatever the schema, so the finest schema costs little;
a Prometheus with a native_histogram_bucket_limit lowers the resolution itself when it must.

The 0 ms key (responses under 0.5 ms) goes to the zero bucket. zero_threshold is always > 0,
which also marks an empty histogram as native for Prometheus' protobuf parser.

Pure: no Locust import. The NativeHistogram value is prometheus_client's own sample field, so a
family built here is an ordinary HistogramMetricFamily that protobuf_exposition.py can encode.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from functools import lru_cache
from typing import NamedTuple

from prometheus_client.core import HistogramMetricFamily, Metric
from prometheus_client.samples import BucketSpan, NativeHistogram, Sample

# schema 6: bucket width 1.09 %, half the 2 % bound; 7 and 8 are finer at the same series cost
DEFAULT_SCHEMA = 6
MIN_SCHEMA, MAX_SCHEMA = -4, 8
# seconds; Locust's smallest non-zero key is 1 ms, so only the 0 ms key falls at or below this
ZERO_THRESHOLD = 1e-4
MAX_FILLED_GAP = 2


class NativeBuckets(NamedTuple):
    zero_count: int
    spans: list[tuple[int, int]]  # (offset from the previous span's end, length)
    deltas: list[int]  # each populated-or-gap bucket's count minus the previous one's


# Locust's keys are a few hundred values, so each one's index is computed once per process
@lru_cache(maxsize=4096)
def bucket_index(seconds: float, schema: int) -> int:
    """Index i of the bucket (b^(i-1), b^i] holding `seconds` (> 0), b = 2^(2^-schema)."""
    if not MIN_SCHEMA <= schema <= MAX_SCHEMA:
        raise ValueError(f"schema {schema} outside [{MIN_SCHEMA}, {MAX_SCHEMA}]")
    scale = 2.0**schema
    index = math.ceil(math.log2(seconds) * scale)
    # log2 rounds: correct by comparing with the exact bounds, which are what Prometheus uses
    while upper_bound(index - 1, schema) >= seconds:
        index -= 1
    while upper_bound(index, schema) < seconds:
        index += 1
    return index


def upper_bound(index: int, schema: int) -> float:
    """Upper bound of bucket `index`; exact at powers of two, like Prometheus' own bounds."""
    if schema <= 0:
        return math.ldexp(1.0, index << -schema)
    whole, part = divmod(index, 1 << schema)
    return math.ldexp(2.0 ** (part / (1 << schema)), whole)


def native_buckets(response_times_ms: Mapping[float, int], schema: int = DEFAULT_SCHEMA) -> NativeBuckets:
    """Zero count, spans and deltas from Locust's {rounded_ms: count} dict."""
    indexes = _MS_INDEX.setdefault(schema, {})  # a dict look-up per key: this runs at every scrape
    counts: dict[int, int] = {}
    for value_ms, count in response_times_ms.items():
        if count <= 0:
            continue
        index = indexes.get(value_ms)
        if index is None:
            index = indexes[value_ms] = _ms_index(value_ms, schema)
        counts[index] = counts.get(index, 0) + count
    zero = counts.pop(_ZERO_INDEX, 0)
    return NativeBuckets(zero, *_spans_and_deltas(counts))


# the zero bucket's stand-in in `counts`: below every real index (schema 8 at 1 ns is about -7700)
_ZERO_INDEX = -(10**9)
_MS_INDEX: dict[int, dict[float, int]] = {}


def _ms_index(value_ms: float, schema: int) -> int:
    seconds = value_ms / 1000
    return _ZERO_INDEX if seconds <= ZERO_THRESHOLD else bucket_index(seconds, schema)


def _spans_and_deltas(counts: Mapping[int, int]) -> tuple[list[tuple[int, int]], list[int]]:
    # A gap of up to MAX_FILLED_GAP empty buckets is written as zero counts inside one span, as
    # client_golang does: two zero deltas are cheaper than a new span, for us and for Prometheus.
    spans: list[tuple[int, int]] = []
    deltas: list[int] = []
    previous_index: int | None = None
    previous_count = 0
    for index in sorted(counts):
        if previous_index is not None and index - previous_index - 1 <= MAX_FILLED_GAP:
            offset, length = spans[-1]
            empty = index - previous_index - 1
            spans[-1] = (offset, length + empty + 1)
            if empty:
                deltas += [-previous_count] + [0] * (empty - 1)
                previous_count = 0
        else:
            spans.append((index if previous_index is None else index - previous_index - 1, 1))
        deltas.append(counts[index] - previous_count)
        previous_index, previous_count = index, counts[index]
    return spans, deltas


def bucket_counts(buckets: NativeBuckets) -> dict[int, int]:
    """{bucket index: count} of the populated buckets back from spans and deltas (the reader's side,
    for tests and reports)."""
    out: dict[int, int] = {}
    index, count = 0, 0
    deltas = iter(buckets.deltas)
    for span_number, (offset, length) in enumerate(buckets.spans):
        index += offset if span_number == 0 else offset + 1
        for step in range(length):
            count += next(deltas)
            if count:
                out[index + step] = count
        index += length - 1
    return out


def native_histogram(
    response_times_ms: Mapping[float, int], sum_ms: float, schema: int = DEFAULT_SCHEMA
) -> NativeHistogram:
    """prometheus_client's NativeHistogram value for one (name, method), sum in seconds."""
    buckets = native_buckets(response_times_ms, schema)
    total = sum(count for count in response_times_ms.values() if count > 0)
    return NativeHistogram(
        count_value=total,
        sum_value=sum_ms / 1000,
        schema=schema,
        zero_threshold=ZERO_THRESHOLD,
        zero_count=buckets.zero_count,
        pos_spans=[BucketSpan(offset, length) for offset, length in buckets.spans],
        pos_deltas=buckets.deltas,
    )


def native_histogram_family(
    name: str,
    documentation: str,
    labels: Sequence[str],
    series: Iterable[tuple[Sequence[str], Mapping[float, int], float]],
    schema: int = DEFAULT_SCHEMA,
) -> Metric:
    """The exporter's hook: a histogram family of native samples, one per (label values, Locust
    response_times, sum in ms). It replaces the classic family when `latency_histogram: native`."""
    family = HistogramMetricFamily(name, documentation, labels=list(labels))
    for label_values, times, sum_ms in series:
        family.samples.append(
            Sample(
                name,
                dict(zip(labels, label_values, strict=True)),
                0.0,
                None,
                None,
                native_histogram(times, sum_ms, schema),
            )
        )
    return family


def quantile(q: float, buckets: NativeBuckets, schema: int) -> float:
    """Prometheus 3's histogram_quantile on one native histogram (exponential interpolation
    inside a bucket, linear in the zero bucket), in seconds; for tests and reports."""
    counts = bucket_counts(buckets)
    total = buckets.zero_count + sum(counts.values())
    if total == 0:
        return math.nan
    rank = q * total
    if rank <= buckets.zero_count:
        return ZERO_THRESHOLD * rank / buckets.zero_count
    seen = buckets.zero_count
    for index in sorted(counts):
        if seen + counts[index] >= rank:
            lower = max(upper_bound(index - 1, schema), ZERO_THRESHOLD)
            fraction = (rank - seen) / counts[index]
            log_lower, log_upper = math.log2(lower), math.log2(upper_bound(index, schema))
            return 2.0 ** (log_lower + (log_upper - log_lower) * fraction)
        seen += counts[index]
    return upper_bound(max(counts), schema)
