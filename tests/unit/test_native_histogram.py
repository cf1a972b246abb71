"""Native-histogram buckets from Locust's rounded response times (pure), and the protobuf writer's
wire format for the fields a scrape needs. Prometheus 3 reading it:
tests/integration/test_native_histogram_prom3.py."""

from __future__ import annotations

import math
import struct

import pytest
from hypothesis import given
from hypothesis import strategies as st
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, HistogramMetricFamily

from locust_workers.histogram import locust_keys
from locust_workers.native_histogram import (
    DEFAULT_SCHEMA,
    ZERO_THRESHOLD,
    bucket_counts,
    bucket_index,
    native_buckets,
    native_histogram_family,
    quantile,
    upper_bound,
)
from locust_workers.protobuf_exposition import CONTENT_TYPE, _varint, _zigzag, choose_protobuf, encode

KEYS = locust_keys()
times_st = st.dictionaries(st.sampled_from(KEYS), st.integers(1, 500), min_size=1, max_size=60)


@given(st.floats(1e-6, 1e6), st.integers(-4, 8))
def test_a_value_lies_in_its_bucket(seconds: float, schema: int) -> None:
    index = bucket_index(seconds, schema)
    assert upper_bound(index - 1, schema) < seconds <= upper_bound(index, schema)


@pytest.mark.parametrize("schema", [0, 3, 6, 8])
def test_powers_of_two_close_their_bucket(schema: int) -> None:
    # Prometheus' buckets are upper-inclusive: 1 s is the top of a bucket, not the bottom of the next
    assert upper_bound(bucket_index(1.0, schema), schema) == 1.0
    assert upper_bound(bucket_index(0.5, schema), schema) == 0.5


def test_schema_out_of_range_is_refused() -> None:
    with pytest.raises(ValueError, match="schema 9"):
        bucket_index(1.0, 9)


@given(times_st)
def test_spans_and_deltas_give_back_every_count(times: dict[int, int]) -> None:
    buckets = native_buckets(times, DEFAULT_SCHEMA)
    expected: dict[int, int] = {}
    for ms, n in times.items():
        if ms / 1000 > ZERO_THRESHOLD:
            index = bucket_index(ms / 1000, DEFAULT_SCHEMA)
            expected[index] = expected.get(index, 0) + n
    assert bucket_counts(buckets) == expected
    assert buckets.zero_count == times.get(0, 0)
    assert sum(length for _offset, length in buckets.spans) == len(buckets.deltas) >= len(expected)


@given(times_st, st.sampled_from([0.5, 0.9, 0.95, 0.99]))
def test_every_quantile_is_within_the_bucket_width_of_the_exact_sample(
    times: dict[int, int], q: float
) -> None:
    rank, seen, exact = q * sum(times.values()), 0, max(times)
    for key in sorted(times):
        seen += times[key]
        if seen >= rank:
            exact = key
            break
    answer = quantile(q, native_buckets(times, DEFAULT_SCHEMA), DEFAULT_SCHEMA)
    if exact == 0:
        assert answer <= ZERO_THRESHOLD
    else:
        width = 2 ** (2**-DEFAULT_SCHEMA) - 1  # 1.09 % at schema 6
        assert answer == pytest.approx(exact / 1000, rel=width)
        assert width < 0.02


def test_empty_histogram_is_still_native() -> None:
    # Prometheus' protobuf parser calls a histogram native when zero_threshold > 0
    family = native_histogram_family("x_seconds", "x", ["name"], [(["/a"], {}, 0.0)])
    (sample,) = family.samples
    assert sample.native_histogram is not None
    assert sample.native_histogram.zero_threshold > 0
    assert sample.native_histogram.count_value == 0


@pytest.mark.parametrize(
    ("value", "wire"), [(0, b"\x00"), (1, b"\x01"), (300, b"\xac\x02"), (2**32, b"\x80\x80\x80\x80\x10")]
)
def test_varint(value: int, wire: bytes) -> None:
    assert _varint(value) == wire


@pytest.mark.parametrize(("value", "zigzag"), [(0, 0), (-1, 1), (1, 2), (-2, 3), (-489, 977)])
def test_zigzag(value: int, zigzag: int) -> None:
    assert _zigzag(value) == zigzag


def test_gauge_family_bytes() -> None:
    # MetricFamily{name:"g", help:"h", type:GAUGE, metric:[{gauge:{value:2.5}}]}, length-delimited
    metric = b"\x12\x09" + b"\x09" + struct.pack("<d", 2.5)
    body = b"\x0a\x01g" + b"\x12\x01h" + b"\x18\x01" + b"\x22" + bytes([len(metric)]) + metric
    assert encode([GaugeMetricFamily("g", "h", value=2.5)]) == bytes([len(body)]) + body


def test_counter_family_is_named_with_total_and_created_is_left_out() -> None:
    counter = CounterMetricFamily("c", "h", labels=["a"], created=1.0)
    counter.add_metric(["x"], 3.0, created=1.0)
    out = encode([counter])
    assert b"\x0a\x07c_total" in out
    assert b"_created" not in out


def test_classic_histogram_leaves_out_inf_and_keeps_buckets() -> None:
    family = HistogramMetricFamily("h", "h", labels=["a"])
    family.add_metric(["x"], [("0.1", 2), ("+Inf", 5)], sum_value=1.5)
    out = encode([family])
    assert struct.pack("<d", 0.1) in out
    assert struct.pack("<d", math.inf) not in out


def test_protobuf_only_for_a_scraper_that_asks_for_it() -> None:
    # Prometheus 3 with scrape_native_histograms (PrometheusProto first); 2.x's default Accept
    asks = (
        "application/vnd.google.protobuf;proto=io.prometheus.client.MetricFamily;encoding=delimited;q=0.6,"
        "application/openmetrics-text;version=1.0.0;q=0.5,text/plain;version=0.0.4;q=0.2,*/*;q=0.1"
    )
    chosen = choose_protobuf(asks)
    assert chosen is not None and chosen[1] == CONTENT_TYPE
    assert (
        choose_protobuf("application/openmetrics-text;version=1.0.0,text/plain;version=0.0.4;q=0.5") is None
    )
