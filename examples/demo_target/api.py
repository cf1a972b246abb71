"""HTTP handlers: thin adapters from requests to the pure parts (limiter, pool, stores).

Handlers validate input, call the logic and shape JSON; they hold no state of their own.
Everything an app instance owns lives in one ``Services`` object on ``app.state`` so several
apps can coexist in one process (tests) without sharing anything.
"""

from __future__ import annotations

import json
import random
from dataclasses import dataclass
from typing import Any

from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from . import catalog
from .auth import TokenSigner, caller_identity, valid_user
from .config import DemoConfig
from .crawl import domain_of
from .crawler import Crawler, CrawlQueueFull
from .latency import Latency
from .metrics import STUDIO_POOL, DemoMetrics
from .pool import PoolExhausted, WorkerPool
from .ratelimit import CallerRateLimiter
from .studio import StudioStore

# Requests here are tiny; refusing big bodies early keeps a misbehaving client cheap.
MAX_BODY_BYTES = 16 * 1024


class ApiError(Exception):
    def __init__(self, status: int, error: str, headers: dict[str, str] | None = None) -> None:
        super().__init__(error)
        self.status = status
        self.error = error
        self.headers = headers or {}


@dataclass
class Services:
    config: DemoConfig
    metrics: DemoMetrics
    limiter: CallerRateLimiter
    signer: TokenSigner
    crawler: Crawler
    pool: WorkerPool
    studio: StudioStore
    latency: Latency
    rng: random.Random


def _services(request: Request) -> Services:
    services: Services = request.app.state.demo
    return services


async def _json_body(request: Request) -> dict[str, Any]:
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > MAX_BODY_BYTES:
        raise ApiError(413, "body_too_large")
    raw = await request.body()
    if len(raw) > MAX_BODY_BYTES:
        raise ApiError(413, "body_too_large")
    if not raw.strip():
        return {}
    try:
        body = json.loads(raw)
    except (ValueError, UnicodeDecodeError):
        raise ApiError(400, "invalid_json") from None
    if not isinstance(body, dict):
        raise ApiError(400, "invalid_json")
    return body


async def health(request: Request) -> Response:
    return JSONResponse({"status": "ok"})


async def metrics_page(request: Request) -> Response:
    registry = _services(request).metrics.registry
    return Response(generate_latest(registry), media_type=CONTENT_TYPE_LATEST)


async def dev_token(request: Request) -> Response:
    user = valid_user((await _json_body(request)).get("user"))
    if user is None:
        raise ApiError(400, "invalid_user")
    return JSONResponse({"token": _services(request).signer.issue(user), "user": user})


async def search_recipes(request: Request) -> Response:
    svc = _services(request)
    query = request.query_params.get("q", "")
    try:
        limit = int(request.query_params.get("limit", "10"))
    except ValueError:
        raise ApiError(400, "invalid_limit") from None
    if not 1 <= limit <= 50:
        raise ApiError(400, "invalid_limit")
    await svc.latency.pause(5, 40)
    items, total = catalog.search(query[:200], limit)
    return JSONResponse({"items": [r.to_json() for r in items], "total": total})


async def harvest(request: Request) -> Response:
    svc = _services(request)
    url = (await _json_body(request)).get("url")
    domain = domain_of(url)
    if domain is None or not isinstance(url, str):
        raise ApiError(400, "invalid_url")
    enqueue = request.query_params.get("enqueue", "").lower() in ("1", "true", "yes")

    client_host = request.client.host if request.client else None
    caller = caller_identity(request.headers.get("authorization"), client_host, svc.signer)
    decision = svc.limiter.check(caller)
    if not decision.allowed:
        raise ApiError(429, "rate_limited", {"Retry-After": str(decision.retry_after_header)})

    job = svc.crawler.new_job(url, domain)
    if enqueue:
        try:
            svc.crawler.submit(job)
        except CrawlQueueFull:
            # Not the caller's fault: give their token back. One job finishes in well under
            # a second, so "1" is an honest lower bound for when a slot frees up.
            svc.limiter.refund(caller)
            raise ApiError(429, "queue_full", {"Retry-After": "1"}) from None
        return JSONResponse({"status": "queued", "job_id": job.job_id}, status_code=202)

    outcome = await svc.crawler.crawl_inline(job)
    return JSONResponse({"status": "harvested", "job_id": job.job_id, "outcome": outcome.value})


async def create_session(request: Request) -> Response:
    title = (await _json_body(request)).get("title", "Untitled")
    if not isinstance(title, str) or len(title) > 200:
        raise ApiError(400, "invalid_title")
    session = _services(request).studio.create(title)
    return JSONResponse({"id": session.id, "title": session.title}, status_code=201)


def _session_id(request: Request) -> str:
    session_id: str = request.path_params["session_id"]
    if _services(request).studio.get(session_id) is None:
        raise ApiError(404, "session_not_found")
    return session_id


async def add_constraint(request: Request) -> Response:
    session_id = _session_id(request)
    body = await _json_body(request)
    kind = body.get("kind")
    if not isinstance(kind, str) or not 0 < len(kind) <= 64:
        raise ApiError(400, "invalid_kind")
    constraint = _services(request).studio.add_constraint(session_id, kind, body.get("value"))
    if constraint is None:  # evicted while we read the body
        raise ApiError(404, "session_not_found")
    return JSONResponse({"session_id": session_id, "constraint": constraint}, status_code=201)


async def generate(request: Request) -> Response:
    svc = _services(request)
    session_id = _session_id(request)
    try:
        async with svc.pool.slot():
            await svc.latency.pause(30, 60)
    except PoolExhausted:
        svc.metrics.pool_rejected.labels(pool=STUDIO_POOL).inc()
        raise ApiError(503, "pool_exhausted", {"Retry-After": "1"}) from None
    version = svc.studio.add_version(session_id)
    if version is None:  # evicted while we waited for a slot
        raise ApiError(404, "session_not_found")
    return JSONResponse({"session_id": session_id, "version": version["version"]})


async def list_versions(request: Request) -> Response:
    session_id = _session_id(request)
    session = _services(request).studio.get(session_id)
    versions = list(session.versions) if session is not None else []
    return JSONResponse({"session_id": session_id, "versions": versions})


async def analytics_summary(request: Request) -> Response:
    svc = _services(request)
    await svc.latency.pause(50, 150)
    crawl = svc.crawler.ledger.totals()
    return JSONResponse(
        {
            "studio": svc.studio.summary(),
            "harvest": {
                **crawl,
                "inline_attempts": svc.crawler.inline_attempts,
                "enqueued": svc.crawler.enqueued,
                "queue_depth": svc.crawler.depth,
            },
            "pool": {
                "size": svc.pool.size,
                "in_use": svc.pool.in_use,
                "queued": svc.pool.waiting,
                "rejected": svc.pool.rejected,
            },
        }
    )


async def crawler_stats(request: Request) -> Response:
    """The crawler's per-domain figures as JSON: what loadctl's http_json probe exports as the
    crawler_domain_* gauges (a service with a stats page and no Prometheus metrics of its own)."""
    crawler = _services(request).crawler
    return JSONResponse({**crawler.ledger.report(), "queue_depth": crawler.depth})


async def make_now(request: Request) -> Response:
    svc = _services(request)
    await svc.latency.pause(10, 60)
    return JSONResponse({"items": [r.to_json() for r in catalog.make_now(svc.rng)]})
