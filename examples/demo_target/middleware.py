"""ASGI middleware recording request counts and latencies per route template.

Written as plain ASGI (not BaseHTTPMiddleware) so it adds no task or buffering per request,
and it resolves the route template itself so ids in paths never become label values.
"""

from __future__ import annotations

import time
from collections.abc import Sequence

from starlette.routing import BaseRoute, Match
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from .metrics import DemoMetrics

# Route label for paths no route knows (404s, scanners): one series, whatever the path.
UNMATCHED_ROUTE = "unmatched"
# Clients may send any method token; only standard ones become label values.
_KNOWN_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})


def route_template(routes: Sequence[BaseRoute], scope: Scope) -> str:
    """The path template of the route that will handle ``scope``, e.g. ``/v1/x/{id}``."""
    partial: str | None = None
    for route in routes:
        match, _ = route.matches(scope)
        template = getattr(route, "path", None)
        if not isinstance(template, str):
            continue
        if match is Match.FULL:
            return template
        # PARTIAL = right path, wrong method (the 405 case): still that route's series.
        if match is Match.PARTIAL and partial is None:
            partial = template
    return partial if partial is not None else UNMATCHED_ROUTE


class HttpMetricsMiddleware:
    def __init__(self, app: ASGIApp, *, metrics: DemoMetrics, routes: Sequence[BaseRoute]) -> None:
        self.app = app
        self.metrics = metrics
        self.routes = routes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        route = route_template(self.routes, scope)
        method = scope["method"] if scope["method"] in _KNOWN_METHODS else "OTHER"
        # If the app raises before starting a response, the server will answer 500.
        status = 500
        start = time.perf_counter()

        async def send_wrapper(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, send_wrapper)
        finally:
            self.metrics.http_requests.labels(route=route, method=method, status=str(status)).inc()
            self.metrics.http_duration.labels(route=route, method=method).observe(time.perf_counter() - start)
