"""Prometheus metrics of one demo app instance, in the app's own registry.

Each app gets a private CollectorRegistry rather than the process-global default one, so
several apps can live in one test process without "duplicated timeseries" errors and each
/metrics page shows only its own app. Metric and label names are a contract with the
platform's profiles and gates; change them only together.
"""

from __future__ import annotations

from collections.abc import Callable

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

# The pool label value: one pool today, but dashboards are written for several.
STUDIO_POOL = "studio_generate"

# Sized for a service answering in a few ms to a few hundred ms, with headroom for overload.
_LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.25, 0.5, 0.75, 1.0, 2.5, 5.0, 10.0)


class DemoMetrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        r = self.registry

        # Route is the route *template* (e.g. /v1/studio/sessions/{session_id}/generate):
        # raw paths carry ids and would create one series per session.
        self.http_requests = Counter(
            "demo_http_requests_total",
            "HTTP requests handled, by route template, method and status code.",
            ["route", "method", "status"],
            registry=r,
        )
        self.http_duration = Histogram(
            "demo_http_request_duration_seconds",
            "Seconds from receiving a request to sending the last of its response, by route template.",
            ["route", "method"],
            buckets=_LATENCY_BUCKETS,
            registry=r,
        )

        self.pool_in_use = Gauge("demo_pool_in_use", "Worker slots busy.", ["pool"], registry=r)
        self.pool_size = Gauge("demo_pool_size", "Worker slots configured.", ["pool"], registry=r)
        self.pool_queued = Gauge("demo_pool_queued", "Requests waiting for a slot.", ["pool"], registry=r)
        self.pool_rejected = Counter(
            "demo_pool_rejected_total",
            "Requests shed with 503 because the wait queue was full.",
            ["pool"],
            registry=r,
        )

        self.crawler_queue_depth = Gauge(
            "crawler_queue_depth", "Harvest jobs waiting in the crawl queue.", registry=r
        )
        self.crawler_jobs = Counter(
            "crawler_jobs_total",
            "Crawl attempts by domain and outcome (retryable = a retry was scheduled).",
            ["domain", "outcome"],
            registry=r,
        )
        # The per-domain figures (retryable jobs, parser fallback and failure rates) are not here:
        # GET /v1/crawler/stats serves them as JSON and loadctl's http_json probe exports them as
        # crawler_domain_* gauges, as for a real service that has only a stats page.

    def watch_pool(
        self, pool: str, size: int, in_use: Callable[[], float], queued: Callable[[], float]
    ) -> None:
        """Read pool occupancy at scrape time, so the gauges can never drift from the pool."""
        self.pool_size.labels(pool=pool).set(size)
        self.pool_in_use.labels(pool=pool).set_function(in_use)
        self.pool_queued.labels(pool=pool).set_function(queued)
        # Export the counter at 0 before the first rejection, so rate() works from the start.
        self.pool_rejected.labels(pool=pool)

    def watch_crawl_queue(self, depth: Callable[[], float]) -> None:
        self.crawler_queue_depth.set_function(depth)
