"""The Prometheus protobuf exposition (io.prometheus.client.MetricFamily, length-delimited), written
by hand for the few fields a scrape needs.

Why protobuf: Prometheus 3 ingests native histograms from protobuf with nothing but the scrape
config's `scrape_native_histograms: true` (3.16), which also makes it ask for protobuf first.
The text alternative, OpenMetrics 2.0, needs the experimental `openmetrics2` feature flag, and
prometheus_client 0.26 writes `positive_deltas:`, which 3.16's parser does not know (it reads
`positive_buckets:`). Why by hand: the messages are small and fixed (metrics.proto field numbers
below), so a 60-line varint writer beats a runtime dependency on protobuf.

metrics_app() is a WSGI app: protobuf to a scraper that asks for it, else prometheus_client's own
text app, so curl and Prometheus 2.x see what they always saw. An app that negotiates itself
(exposition.CachedExposition) calls choose_protobuf() first instead.
"""

from __future__ import annotations

import struct
from collections.abc import Callable, Iterable, Iterator
from functools import lru_cache
from typing import Any

from prometheus_client import make_wsgi_app
from prometheus_client.core import Metric
from prometheus_client.registry import Collector
from prometheus_client.samples import NativeHistogram, Sample

CONTENT_TYPE = "application/vnd.google.protobuf; proto=io.prometheus.client.MetricFamily; encoding=delimited"
_PROTO_ACCEPT = "proto=io.prometheus.client.MetricFamily"
_TYPES = {"counter": 0, "gauge": 1, "summary": 2, "unknown": 3, "histogram": 4, "gaugehistogram": 5}
# value field of Metric for the scalar types; metrics.proto: gauge=2, counter=3, untyped=5
_SCALAR_FIELD = {0: 3, 1: 2, 3: 5}
_SKIPPED_SUFFIXES = ("_created",)


_ONE_BYTE = [bytes((value,)) for value in range(0x80)]


def _varint(value: int) -> bytes:
    if value < 0x80:  # most deltas, lengths and keys: a table look-up, not a loop
        return _ONE_BYTE[value]
    out = bytearray()
    while True:
        byte = value & 0x7F
        value >>= 7
        if value:
            out.append(byte | 0x80)
        else:
            out.append(byte)
            return bytes(out)


def _zigzag(value: int) -> int:
    return (value << 1) ^ (value >> 63)


@lru_cache(maxsize=64)
def _key(field: int, wire: int) -> bytes:
    return _varint(field << 3 | wire)


def _bytes(field: int, payload: bytes) -> bytes:
    return _key(field, 2) + _varint(len(payload)) + payload


def _double(field: int, value: float) -> bytes:
    return _key(field, 1) + struct.pack("<d", value)


def _uint(field: int, value: int) -> bytes:
    return _key(field, 0) + _varint(value)


def _sint(field: int, value: int) -> bytes:
    return _key(field, 0) + _varint(_zigzag(value))


def _labels(labels: dict[str, str], skip: str = "") -> bytes:
    return b"".join(
        _bytes(1, _bytes(1, k.encode()) + _bytes(2, v.encode()))
        for k, v in sorted(labels.items())
        if k != skip
    )


def _native(value: NativeHistogram) -> bytes:
    out = _sint(5, value.schema) + _double(6, value.zero_threshold) + _uint(7, int(value.zero_count))
    for span in value.pos_spans or ():
        out += _bytes(12, _sint(1, span.offset) + _uint(2, span.length))
    if value.pos_deltas:
        out += _bytes(13, _packed_sints(value.pos_deltas))
    return out


def _packed_sints(values: Iterable[int]) -> bytes:
    # the hot loop of a native scrape (one entry per bucket): zigzag inlined, small ones from the table
    out = bytearray()
    for value in values:
        zigzag = (value << 1) ^ (value >> 63)
        out += _ONE_BYTE[zigzag] if zigzag < 0x80 else _varint(zigzag)
    return bytes(out)


def _histogram(samples: list[Sample], family: str) -> bytes:
    """One Histogram message from a label set's samples: classic buckets, native fields, or both."""
    count, total, out = 0, 0.0, b""
    for sample in samples:
        if sample.native_histogram is not None:
            count, total = int(sample.native_histogram.count_value), sample.native_histogram.sum_value
            out += _native(sample.native_histogram)
        elif sample.name in (f"{family}_count", f"{family}_gcount"):
            count = int(sample.value)
        elif sample.name in (f"{family}_sum", f"{family}_gsum"):
            total = sample.value
        elif sample.name.endswith("_bucket") and sample.labels["le"] != "+Inf":
            # +Inf is implied by sample_count, as client_golang leaves it out
            out += _bytes(3, _uint(1, int(sample.value)) + _double(2, float(sample.labels["le"])))
    return _uint(1, count) + _double(2, total) + out


def _summary(samples: list[Sample], family: str) -> bytes:
    out = b""
    for sample in samples:
        if sample.name == f"{family}_count":
            out += _uint(1, int(sample.value))
        elif sample.name == f"{family}_sum":
            out += _double(2, sample.value)
        elif "quantile" in sample.labels:
            out += _bytes(3, _double(1, float(sample.labels["quantile"])) + _double(2, sample.value))
    return out


def _grouped(samples: Iterable[Sample], drop: str) -> dict[tuple[tuple[str, str], ...], list[Sample]]:
    groups: dict[tuple[tuple[str, str], ...], list[Sample]] = {}
    for sample in samples:
        key = tuple(sorted((k, v) for k, v in sample.labels.items() if k != drop))
        groups.setdefault(key, []).append(sample)
    return groups


def _compound(metric: Metric, type_code: int) -> bytes:
    """A histogram or summary family: one Metric per label set (le/quantile aside)."""
    drop = "quantile" if type_code == 2 else "le"
    encode = _summary if type_code == 2 else _histogram
    field = 4 if type_code == 2 else 7
    body = _bytes(1, metric.name.encode()) + _bytes(2, metric.documentation.encode()) + _uint(3, type_code)
    for labels, samples in _grouped(metric.samples, drop).items():
        body += _bytes(4, _labels(dict(labels)) + _bytes(field, encode(samples, metric.name)))
    return _bytes_delimited(body)


def _scalars(metric: Metric, type_code: int) -> Iterator[bytes]:
    """Counters, gauges and everything else: one family per sample name (a counter's is its _total)."""
    by_name: dict[str, list[Sample]] = {}
    for sample in metric.samples:
        if not sample.name.endswith(_SKIPPED_SUFFIXES):
            by_name.setdefault(sample.name, []).append(sample)
    for name, samples in by_name.items():
        code = type_code if type_code in _SCALAR_FIELD else 1  # info and stateset samples are gauges
        body = _bytes(1, name.encode()) + _bytes(2, metric.documentation.encode()) + _uint(3, code)
        for sample in samples:
            scalar = _bytes(_SCALAR_FIELD[code], _double(1, sample.value))
            body += _bytes(4, _labels(sample.labels) + scalar)
        yield _bytes_delimited(body)


def _bytes_delimited(body: bytes) -> bytes:
    return _varint(len(body)) + body


def encode(metrics: Iterable[Metric]) -> bytes:
    """The delimited MetricFamily stream for `metrics` (e.g. a registry's collect())."""
    out = bytearray()
    for metric in metrics:
        type_code = _TYPES.get(metric.type, -1)
        if type_code in (2, 4, 5):
            out += _compound(metric, type_code)
        else:
            for chunk in _scalars(metric, type_code):
                out += chunk
    return bytes(out)


def choose_protobuf(accept: str) -> tuple[Callable[[Collector], bytes], str] | None:
    """(encoder, content type) when the scraper's Accept asks for protobuf, else None: the hook for
    an app that negotiates itself (exposition.CachedExposition, in native mode)."""
    if _PROTO_ACCEPT not in accept:
        return None
    return (lambda registry: encode(registry.collect())), CONTENT_TYPE


def metrics_app(registry: Collector) -> Callable[..., Any]:
    """WSGI app: protobuf when the scraper's Accept asks for it, else prometheus_client's text app."""
    text_app = make_wsgi_app(registry)

    def app(environ: dict[str, Any], start_response: Callable[..., Any]) -> list[bytes]:
        chosen = choose_protobuf(environ.get("HTTP_ACCEPT", ""))
        if chosen is None:
            return text_app(environ, start_response)
        encoder, content_type = chosen
        body = encoder(registry)
        start_response("200 OK", [("Content-Type", content_type), ("Content-Length", str(len(body)))])
        return [body]

    return app
