"""Native latency histograms through a real Prometheus 3: served by metrics_app() (protobuf), scraped
with `scrape_native_histograms: true`, queried with histogram_quantile. p95/p99 must be within 2 %
of Locust's own percentile of the same data (the rounded key at the rank), one series per label set.

Always on Prometheus 3 (tests/prom_versions.py); 2.x cannot ingest native histograms.
"""

from __future__ import annotations

import math
import random
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from gevent.pywsgi import WSGIServer
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from locust.stats import calculate_response_time_percentile
from prometheus_client import CollectorRegistry
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from controller.processes import wait_until
from controller.prom.server import PrometheusServer
from locust_workers.histogram import locust_keys
from locust_workers.native_histogram import native_histogram_family
from locust_workers.protobuf_exposition import metrics_app
from tests.prom_versions import prometheus_build

NAME = "locust_response_time_seconds"


class FixedCollector(Collector):
    """Serves whatever `datasets` holds now: {(name, method): {ms: count}}, plus a counter and a gauge
    so that the protobuf writer's other message types are scraped too."""

    def __init__(self) -> None:
        self.datasets: dict[tuple[str, str], dict[int, int]] = {}
        self.generation = "0"

    def collect(self) -> Iterator[Metric]:
        series = [
            ([self.generation, name, method], times, float(sum(k * n for k, n in times.items())))
            for (name, method), times in sorted(self.datasets.items())
        ]
        yield native_histogram_family(NAME, "Response time.", ["run_id", "name", "method"], series)
        requests = CounterMetricFamily("locust_requests", "Requests.", labels=["run_id"])
        requests.add_metric([self.generation], sum(sum(t.values()) for t in self.datasets.values()))
        yield requests
        yield GaugeMetricFamily("locust_users", "Users.", value=3.0)


@pytest.fixture(scope="module")
def scraped(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[FixedCollector, httpx.Client]]:
    binary = prometheus_build(3).prometheus
    collector = FixedCollector()
    registry = CollectorRegistry(auto_describe=False)
    registry.register(collector)
    exporter = WSGIServer(("127.0.0.1", 0), metrics_app(registry), log=None)
    exporter.start()
    folder: Path = tmp_path_factory.mktemp("prom3")
    server = PrometheusServer(
        config=_config(f"127.0.0.1:{exporter.server_port}"),
        config_path=folder / "prometheus.yml",
        data_dir=folder / "tsdb",
        log_path=folder / "prometheus.log",
        binary=binary,
    )
    server.start()
    try:
        with server.client() as http:
            yield collector, http
    finally:
        server.stop()
        exporter.stop()


def _config(target: str) -> dict[str, Any]:
    job = {
        "job_name": "exporter",
        "scrape_interval": "1s",
        "scrape_timeout": "1s",
        "honor_labels": True,
        "scrape_native_histograms": True,
        "static_configs": [{"targets": [target]}],
    }
    return {"global": {"scrape_interval": "1s"}, "scrape_configs": [job]}


def _query(http: httpx.Client, promql: str) -> list[dict[str, Any]]:
    response = http.get("/api/v1/query", params={"query": promql})
    response.raise_for_status()
    return response.json()["data"]["result"]  # type: ignore[no-any-return]


def locust_percentile(times: dict[int, int], q: float) -> int:
    """Locust's own percentile of the data, as stats.csv reports it."""
    return calculate_response_time_percentile(times, sum(times.values()), q)


def exact_percentile(times: dict[int, int], q: float) -> int:
    """The sample at rank q*n (rounded up), the rank histogram_quantile looks for."""
    rank, seen = q * sum(times.values()), 0
    for key in sorted(times):
        seen += times[key]
        if seen >= rank:
            return key
    return max(times)


def next_sample(times: dict[int, int], key: int) -> int:
    return min((k for k in times if k > key), default=key)


KEYS = [k for k in locust_keys() if k > 0]


@st.composite
def wide_spread(draw: st.DrawFn) -> dict[int, int]:
    """Response times from ~1 ms to ~60 s on Locust's keys, log-uniform so every range is hit."""
    seed = draw(st.integers(0, 2**32 - 1))
    low = draw(st.sampled_from([1, 5, 20, 150]))
    high = draw(st.sampled_from([900, 4_000, 30_000, 60_000]))
    rng = random.Random(seed)
    times: dict[int, int] = {}
    for _ in range(draw(st.integers(200, 3000))):
        ms = math.exp(rng.uniform(math.log(low), math.log(high)))
        key = min(KEYS, key=lambda k, ms=ms: abs(k - ms))
        times[key] = times.get(key, 0) + 1
    return times


@settings(max_examples=6, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(datasets=st.lists(wide_spread(), min_size=1, max_size=4))
def test_p95_p99_within_2_percent_of_locust(
    scraped: tuple[FixedCollector, httpx.Client], datasets: list[dict[int, int]]
) -> None:
    collector, http = scraped
    generation = str(int(collector.generation) + 1)
    collector.datasets = {(f"/e{i}", "GET"): times for i, times in enumerate(datasets)}
    collector.generation = generation
    selector = f'{NAME}{{run_id="{generation}"}}'
    assert wait_until(lambda: len(_query(http, selector)) == len(datasets), timeout=20)
    for q in (0.95, 0.99):
        answers = _query(http, f"histogram_quantile({q}, {selector})")
        by_name = {a["metric"]["name"]: float(a["value"][1]) for a in answers}
        for i, times in enumerate(datasets):
            exact = exact_percentile(times, q)
            assert by_name[f"/e{i}"] == pytest.approx(exact / 1000, rel=0.02), (q, i)
            # Locust takes the sample after rank int(q*n): the same one unless q*n is a whole
            # number that ends a key's run, where it names the next key (a definition, not error)
            locust, total = locust_percentile(times, q), sum(times.values())
            whole_rank = float(int(q * total)) == q * total
            assert locust == exact or (whole_rank and locust == next_sample(times, exact)), (q, i)


def test_one_series_per_name_and_method(scraped: tuple[FixedCollector, httpx.Client]) -> None:
    collector, http = scraped
    collector.datasets = {("/a", "GET"): {3: 10, 250: 5}, ("/a", "POST"): {0: 2, 40_000: 1}}
    collector.generation = "series"
    selector = '{run_id="series"}'
    assert wait_until(lambda: len(_query(http, selector)) >= 3, timeout=20)
    names = sorted(a["metric"]["__name__"] for a in _query(http, selector))
    assert names == ["locust_requests_total", NAME, NAME]
    counts = {
        a["metric"]["method"]: float(a["value"][1])
        for a in _query(http, f"histogram_count({NAME}{selector})")
    }
    assert counts == {"GET": 15.0, "POST": 3.0}
    sums = {
        a["metric"]["method"]: float(a["value"][1]) for a in _query(http, f"histogram_sum({NAME}{selector})")
    }
    assert sums == pytest.approx({"GET": (30 + 1250) / 1000, "POST": 40.0})
