"""The latency queries work on classic buckets (Prometheus 2.x and 3.x) and on native histograms
(Prometheus 3): a gate's quantile (compile_gate: successful = all - failed over a window), the
chart's recording rules and the k8s stats.csv rebuild, each written once as `classic or native`,
against a live exporter whose counts grow at every scrape, compared with the exact percentile.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from gevent.pywsgi import WSGIServer
from prometheus_client import CollectorRegistry
from prometheus_client.core import CounterMetricFamily, HistogramMetricFamily, Metric
from prometheus_client.registry import Collector

from controller.analysis.charts import chart_queries
from controller.gates.compile import compile_gate
from controller.gates.models import Gate
from controller.processes import wait_until
from controller.progress import read_snapshot
from controller.prom.config import RULES_FILE_NAME
from controller.prom.server import PrometheusServer
from controller.prom.stats import read_stats_from_prometheus
from dashboards.load_overview import quantile as dashboard_quantile
from locust_workers.contract import FAILED_RESPONSE_TIME_SECONDS, REQUESTS_TOTAL, RESPONSE_TIME_SECONDS
from locust_workers.histogram import bucket_bounds_ms, cumulative_counts, resolution_of
from locust_workers.native_histogram import native_histogram_family
from locust_workers.protobuf_exposition import metrics_app
from tests.prom_versions import prometheus_build

RUN = "both"
LABELS = ["run_id", "name", "method"]
# every request's response time (ms -> count) per scrape, a wide spread; the failed ones among them
ALL = {0: 5, 3: 40, 12: 60, 45: 80, 130: 50, 480: 30, 1_900: 12, 7_300: 6, 28_000: 3}
FAILED = {12: 20, 7_300: 4, 28_000: 3}
SUCCESSFUL = {k: n - FAILED.get(k, 0) for k, n in ALL.items()}


def exact_percentile(times: dict[int, int], q: float) -> int:
    rank, seen = q * sum(times.values()), 0
    for key in sorted(times):
        seen += times[key]
        if seen >= rank:
            return key
    return max(times)


class GrowingCollector(Collector):
    """ALL and FAILED times the number of scrapes so far, as native or classic histograms."""

    def __init__(self, native: bool) -> None:
        self.native = native
        self.scrapes = 0
        # the fine layout, whose error bound the 5 % tolerance below is about (the default is coarser)
        self.bounds = bucket_bounds_ms(resolution_of("fine"))

    def collect(self) -> Iterator[Metric]:
        self.scrapes += 1
        n = self.scrapes
        requests = CounterMetricFamily(REQUESTS_TOTAL.removesuffix("_total"), "Requests.", labels=LABELS)
        requests.add_metric([RUN, "/a", "GET"], n * sum(ALL.values()))
        yield requests
        for name, times in ((RESPONSE_TIME_SECONDS, ALL), (FAILED_RESPONSE_TIME_SECONDS, FAILED)):
            scaled = {k: c * n for k, c in times.items()}
            sum_ms = float(sum(k * c for k, c in scaled.items()))
            if self.native:
                yield native_histogram_family(
                    name, "Latency.", LABELS, [([RUN, "/a", "GET"], scaled, sum_ms)]
                )
                continue
            family = HistogramMetricFamily(name, "Latency.", labels=LABELS)
            bounds = [f"{b / 1000}" for b in self.bounds]
            buckets = [*zip(bounds, cumulative_counts(scaled, self.bounds), strict=True)]
            family.add_metric(
                [RUN, "/a", "GET"], [*buckets, ("+Inf", sum(scaled.values()))], sum_value=sum_ms / 1000
            )
            yield family


# (Prometheus major, native exposition): classic buckets on both versions, native on 3.x
CASES = {
    "classic-prometheus2": (2, False),
    "classic-prometheus3": (3, False),
    "native-prometheus3": (3, True),
}


@pytest.fixture(params=sorted(CASES))
def scraped(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[tuple[bool, httpx.Client]]:
    major, native = CASES[request.param]
    binary = prometheus_build(major).prometheus
    registry = CollectorRegistry(auto_describe=False)
    registry.register(GrowingCollector(native))
    exporter = WSGIServer(("127.0.0.1", 0), metrics_app(registry), log=None)
    exporter.start()
    job: dict[str, Any] = {
        "job_name": "exporter",
        "scrape_interval": "1s",
        "scrape_timeout": "1s",
        "honor_labels": True,
        "static_configs": [{"targets": [f"127.0.0.1:{exporter.server_port}"]}],
    }
    if native:
        job["scrape_native_histograms"] = True
    server = PrometheusServer(
        config={
            "global": {"scrape_interval": "1s", "evaluation_interval": "1s"},
            "rule_files": [RULES_FILE_NAME],  # the chart's rules, rendered for 1 s scrapes
            "scrape_configs": [job],
        },
        config_path=tmp_path / "prometheus.yml",
        data_dir=tmp_path / "tsdb",
        log_path=tmp_path / "prometheus.log",
        binary=binary,
    )
    server.start()
    try:
        with server.client() as http:
            yield native, http
    finally:
        server.stop()
        exporter.stop()


def _value(http: httpx.Client, promql: str) -> float | None:
    response = http.get("/api/v1/query", params={"query": promql})
    response.raise_for_status()
    result = response.json()["data"]["result"]
    return float(result[0]["value"][1]) if result else None


def test_gate_and_rule_quantiles_on_either_histogram(scraped: tuple[bool, httpx.Client]) -> None:
    native, http = scraped
    scrapes = f'count_over_time({REQUESTS_TOTAL}{{run_id="{RUN}"}}[1h])'
    assert wait_until(lambda: (_value(http, scrapes) or 0) >= 2, timeout=30)
    start = time.time()
    assert wait_until(lambda: (_value(http, scrapes) or 0) >= 8, timeout=30)
    end = time.time() - 0.5
    # the bound on native histograms; classic buckets: histogram.py's 4 % (plus a rank step)
    tolerance = 0.02 if native else 0.05
    for metric, q in (("latency_p95_ms", 0.95), ("latency_p99_ms", 0.99)):
        gate = Gate(name="g", metric=metric, max=1)  # type: ignore[arg-type]
        promql = compile_gate(gate, run_id=RUN, segments=((start, end),))
        assert _value(http, promql) == pytest.approx(exact_percentile(SUCCESSFUL, q), rel=tolerance), metric
    # the chart's recording rules (rate over their window), merged and per name
    for record, q in (
        ("run_id:locust_response_time_seconds:p95", 0.95),
        ("run_id_name:locust_response_time_seconds:p95", 0.95),
        ("run_id:locust_response_time_seconds:p99", 0.99),
    ):
        recorded = f'{record}{{run_id="{RUN}"}}'
        assert wait_until(lambda r=recorded: _value(http, r) is not None, timeout=30), record
        assert _value(http, recorded) == pytest.approx(exact_percentile(ALL, q) / 1000, rel=tolerance), record
    # the run report's latency chart (p50, p95, p99 over the run's rate window) and the live line
    latency = next(
        c for c in chart_queries(RUN, summary_peaks=(), step=1, scrape_interval_s=1) if c.key == "latency"
    )
    for series, q in zip(latency.series, (0.5, 0.95, 0.99), strict=True):
        assert _value(http, series.promql) == pytest.approx(exact_percentile(ALL, q), rel=tolerance), q
    p95_ms = read_snapshot(client=http, run_id=RUN).p95_ms
    assert p95_ms == pytest.approx(exact_percentile(ALL, 0.95), rel=tolerance)
    # the load overview dashboard's latency panels, with Grafana's variables filled in
    for q, by in (("0.95", ""), ("0.99", "name")):
        panel = dashboard_quantile(q, by).replace("$run_id", RUN).replace("$__rate_interval", "5s")
        expected_s = exact_percentile(ALL, float(q)) / 1000
        assert _value(http, panel) == pytest.approx(expected_s, rel=tolerance), (q, by)
    # the k8s backend's stats.csv rebuild: every request (all), as Locust's own stats.csv counts them
    tables = read_stats_from_prometheus(http, run_id=RUN, planned_s=60)
    assert tables is not None
    row = next(r for r in tables.stats if r["Name"] == "/a")
    for column, q in (("95%", 0.95), ("99%", 0.99)):
        assert float(row[column]) == pytest.approx(exact_percentile(ALL, q), rel=tolerance), column
    average_ms = sum(k * n for k, n in ALL.items()) / sum(ALL.values())
    assert float(row["Average Response Time"]) == pytest.approx(average_ms, rel=0.01)
    # one latency series per (name, method) when native; the classic buckets otherwise
    series = _value(http, f'count({{__name__=~"{RESPONSE_TIME_SECONDS}.*", run_id="{RUN}"}})')
    assert series == (1 if native else len(bucket_bounds_ms(resolution_of("fine"))) + 3)
