"""Assembles one demo app: routes, error shapes, metrics middleware and lifecycle.

``create_app`` builds everything an instance owns (registry, limiter, pool, stores, crawler)
fresh, so tests can run several differently-configured apps side by side.
"""

from __future__ import annotations

import random
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from . import api
from .auth import TokenSigner
from .chat import stream as chat_stream
from .config import DemoConfig
from .crawler import Crawler
from .latency import Latency
from .metrics import STUDIO_POOL, DemoMetrics
from .middleware import HttpMetricsMiddleware
from .pool import WorkerPool
from .ratelimit import CallerRateLimiter, Clock
from .studio import StudioStore

ROUTES = [
    Route("/health", api.health, methods=["GET"]),
    Route("/metrics", api.metrics_page, methods=["GET"]),
    Route("/v1/auth/dev-token", api.dev_token, methods=["POST"]),
    Route("/v1/recipes", api.search_recipes, methods=["GET"]),
    Route("/v1/recipes/harvest/auto", api.harvest, methods=["POST"]),
    Route("/v1/recommendations/make-now", api.make_now, methods=["GET"]),
    Route("/v1/studio/sessions", api.create_session, methods=["POST"]),
    Route("/v1/studio/sessions/{session_id}/constraints", api.add_constraint, methods=["POST"]),
    Route("/v1/studio/sessions/{session_id}/generate", api.generate, methods=["POST"]),
    Route("/v1/studio/sessions/{session_id}/versions", api.list_versions, methods=["GET"]),
    Route("/v1/studio/analytics/summary", api.analytics_summary, methods=["GET"]),
    Route("/v1/crawler/stats", api.crawler_stats, methods=["GET"]),
    Route("/v1/chat/stream", chat_stream, methods=["POST"]),
]


async def _api_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, api.ApiError)
    return JSONResponse({"error": exc.error}, status_code=exc.status, headers=exc.headers)


async def _http_error(request: Request, exc: Exception) -> Response:
    # Starlette's own 404/405 are plain text; keep the API JSON everywhere.
    assert isinstance(exc, HTTPException)
    error = {404: "not_found", 405: "method_not_allowed"}.get(exc.status_code, "http_error")
    return JSONResponse({"error": error}, status_code=exc.status_code, headers=exc.headers)


def build_services(config: DemoConfig, clock: Clock | None = None) -> api.Services:
    metrics = DemoMetrics()
    # One seeded RNG per purpose, so e.g. more searches do not change crawl outcomes.
    latency = Latency(config.latency_scale, random.Random(config.seed))
    pool = WorkerPool(config.pool_size, config.queue_size)
    metrics.watch_pool(STUDIO_POOL, pool.size, lambda: pool.in_use, lambda: pool.waiting)
    limiter_args = {"clock": clock} if clock is not None else {}
    return api.Services(
        config=config,
        metrics=metrics,
        limiter=CallerRateLimiter(config.harvest_rate_per_minute, config.harvest_burst, **limiter_args),
        signer=TokenSigner(),
        crawler=Crawler(
            metrics=metrics,
            latency=latency,
            rng=random.Random(config.seed + 1),
            queue_size=config.crawl_queue_size,
        ),
        pool=pool,
        studio=StudioStore(),
        latency=latency,
        rng=random.Random(config.seed + 2),
    )


def create_app(config: DemoConfig | None = None, *, clock: Clock | None = None) -> Starlette:
    """A fresh app. ``clock`` (monotonic seconds) drives the rate limiter, for tests."""
    services = build_services(config or DemoConfig(), clock)

    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        # The crawler task lives exactly as long as the server: started here, cancelled on
        # shutdown so SIGTERM does not leave a task (or pending retries) behind.
        services.crawler.start()
        try:
            yield
        finally:
            await services.crawler.stop()

    app = Starlette(
        routes=ROUTES,
        middleware=[Middleware(HttpMetricsMiddleware, metrics=services.metrics, routes=ROUTES)],
        exception_handlers={api.ApiError: _api_error, HTTPException: _http_error},
        lifespan=lifespan,
    )
    app.state.demo = services
    return app
