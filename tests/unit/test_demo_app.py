"""The demo target's HTTP behaviour, in process (no server, no real clock for the limiter).

Uses httpx's ASGI transport (starlette's TestClient warns about its httpx backend) and runs
the app's lifespan explicitly when a test needs the background crawler.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import AsyncExitStack, asynccontextmanager

import httpx
from prometheus_client.parser import text_string_to_metric_families
from starlette.applications import Starlette

from examples.demo_target.app import create_app
from examples.demo_target.config import DemoConfig
from examples.demo_target.ratelimit import Clock

Client = httpx.AsyncClient


class FakeClock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def _config(**overrides: object) -> DemoConfig:
    base: dict[str, object] = {"latency_scale": 0.0, "harvest_burst": 2, "harvest_rate_per_minute": 30}
    base.update(overrides)
    return DemoConfig(**base)  # type: ignore[arg-type]


@asynccontextmanager
async def _client(app: Starlette, lifespan: bool = True) -> AsyncIterator[Client]:
    async with AsyncExitStack() as stack:
        if lifespan:
            await stack.enter_async_context(app.router.lifespan_context(app))
        transport = httpx.ASGITransport(app=app)
        yield await stack.enter_async_context(httpx.AsyncClient(transport=transport, base_url="http://demo"))


def _run(
    scenario: Callable[[Client], Awaitable[None]],
    config: DemoConfig | None = None,
    clock: Clock | None = None,
    lifespan: bool = True,
) -> None:
    async def main() -> None:
        async with _client(create_app(config or _config(), clock=clock), lifespan) as client:
            await scenario(client)

    asyncio.run(main())


async def _samples(client: Client, name: str) -> list[tuple[dict[str, str], float]]:
    text = (await client.get("/metrics")).text
    return [
        (s.labels, s.value)
        for family in text_string_to_metric_families(text)
        for s in family.samples
        if s.name == name
    ]


async def _token(client: Client, user: str) -> dict[str, str]:
    token = (await client.post("/v1/auth/dev-token", json={"user": user})).json()["token"]
    return {"Authorization": f"Bearer {token}"}


def test_studio_flow_and_json_errors() -> None:
    async def scenario(client: Client) -> None:
        sid = (await client.post("/v1/studio/sessions", json={"title": "dinner"})).json()["id"]
        added = await client.post(f"/v1/studio/sessions/{sid}/constraints", json={"kind": "diet"})
        assert added.status_code == 201
        assert (await client.post(f"/v1/studio/sessions/{sid}/generate")).json()["version"] == 1
        assert (await client.post(f"/v1/studio/sessions/{sid}/generate")).json()["version"] == 2
        versions = (await client.get(f"/v1/studio/sessions/{sid}/versions")).json()["versions"]
        assert [v["version"] for v in versions] == [1, 2]
        summary = (await client.get("/v1/studio/analytics/summary")).json()
        assert summary["studio"]["versions_generated"] == 2

        for method, path in [
            ("POST", "/v1/studio/sessions/nope/generate"),
            ("POST", "/v1/studio/sessions/nope/constraints"),
            ("GET", "/v1/studio/sessions/nope/versions"),
            ("GET", "/no/such/page"),
        ]:
            response = await client.request(method, path, json={"kind": "x"})
            assert response.status_code == 404
            assert "error" in response.json()

        no_kind = await client.post(f"/v1/studio/sessions/{sid}/constraints", json={"value": 1})
        assert no_kind.status_code == 400
        bad_json = await client.post("/v1/auth/dev-token", content=b"{nope")
        assert bad_json.status_code == 400 and bad_json.json() == {"error": "invalid_json"}
        wrong_method = await client.delete("/health")
        assert wrong_method.status_code == 405 and wrong_method.json() == {"error": "method_not_allowed"}

    _run(scenario)


def test_search_and_recommendations() -> None:
    async def scenario(client: Client) -> None:
        body = (await client.get("/v1/recipes", params={"q": "vegan"})).json()
        assert body["total"] == 24 and len(body["items"]) == 10
        assert (await client.get("/v1/recipes", params={"q": "zzz"})).json() == {"items": [], "total": 0}
        assert (await client.get("/v1/recipes", params={"limit": "0"})).status_code == 400
        assert len((await client.get("/v1/recommendations/make-now")).json()["items"]) == 5

    _run(scenario)


def test_harvest_rate_limit_is_per_caller_with_exact_retry_after() -> None:
    clock = FakeClock()
    url = {"url": "https://example.org/r/1"}

    async def scenario(client: Client) -> None:
        alice, bob = await _token(client, "alice"), await _token(client, "bob")

        async def harvest(headers: dict[str, str], body: dict[str, str] = url) -> httpx.Response:
            return await client.post("/v1/recipes/harvest/auto", json=body, headers=headers)

        assert [(await harvest(alice)).status_code for _ in range(3)] == [200, 200, 429]
        refused = await harvest(alice)
        assert refused.json() == {"error": "rate_limited"}
        assert refused.headers["retry-after"] == "2"  # 30/min = one token every 2 s

        assert (await harvest(bob)).status_code == 200
        # A forged token is not "alice": it falls back to the client address, a fresh bucket.
        token = alice["Authorization"]
        forged = token[:-1] + ("1" if token.endswith("0") else "0")  # one ending in 0 stayed alice's
        assert (await harvest({"Authorization": forged})).status_code == 200

        clock.now += 2.0
        assert (await harvest(alice)).status_code == 200
        assert (await harvest(bob, {"url": "mailto:x"})).status_code == 400

    _run(scenario, clock=clock)


def test_full_crawl_queue_answers_429_and_refunds_the_token() -> None:
    url = {"url": "https://queue.example/r/1"}

    async def scenario(client: Client) -> None:
        headers = await _token(client, "carol")
        first = await client.post("/v1/recipes/harvest/auto?enqueue=true", json=url, headers=headers)
        assert first.status_code == 202 and first.json()["status"] == "queued"
        for _ in range(3):  # refunded each time, so carol (burst 2) is never rate limited here
            full = await client.post("/v1/recipes/harvest/auto?enqueue=true", json=url, headers=headers)
            assert full.status_code == 429
            assert full.json() == {"error": "queue_full"}
            assert int(full.headers["retry-after"]) >= 1
        assert (await client.post("/v1/recipes/harvest/auto", json=url, headers=headers)).status_code == 200
        assert await _samples(client, "crawler_queue_depth") == [({}, 1.0)]

    # No lifespan: the crawler task never starts, so the queued job stays queued.
    _run(scenario, _config(crawl_queue_size=1), lifespan=False)


def test_harvests_feed_domain_metrics_inline_and_queued() -> None:
    async def scenario(client: Client) -> None:
        for i in range(2):
            response = await client.post("/v1/recipes/harvest/auto", json={"url": f"https://in.example/{i}"})
            assert response.json()["status"] == "harvested"
        queued = await client.post("/v1/recipes/harvest/auto?enqueue=1", json={"url": "https://q.example/"})
        assert queued.status_code == 202
        for _ in range(100):  # the crawler needs a few loop turns, not real time
            if any(
                labels["domain"] == "q.example" for labels, _ in await _samples(client, "crawler_jobs_total")
            ):
                break
            await asyncio.sleep(0.01)

        jobs = await _samples(client, "crawler_jobs_total")
        assert sum(v for labels, v in jobs if labels["domain"] == "in.example") == 2
        assert sum(v for labels, v in jobs if labels["domain"] == "q.example") >= 1
        # the per-domain figures are on the JSON stats page (loadctl's http_json probe exports them)
        stats = (await client.get("/v1/crawler/stats")).json()
        assert set(stats["domains"]) == {"in.example", "q.example"}
        inline = stats["domains"]["in.example"]
        assert inline["finished"] + inline["retryable_jobs"] == 2  # each job is done or awaits a retry
        for figures in (*stats["domains"].values(), stats["totals"]):
            assert 0.0 <= figures["failure_rate"] <= 1.0 and 0.0 <= figures["parser_fallback_rate"] <= 1.0
        assert stats["totals"]["domains"] == 2 and stats["queue_depth"] == 0
        exported = {f.name for f in text_string_to_metric_families((await client.get("/metrics")).text)}
        assert "crawler_jobs" in exported and not any(n.startswith("crawler_domain_") for n in exported)

    _run(scenario, _config(harvest_burst=5))


def test_route_labels_are_templates() -> None:
    async def scenario(client: Client) -> None:
        sid = (await client.post("/v1/studio/sessions", json={})).json()["id"]
        await client.post(f"/v1/studio/sessions/{sid}/generate")
        await client.get("/definitely/not/here/123")

        routes = {labels["route"] for labels, _ in await _samples(client, "demo_http_requests_total")}
        assert "/v1/studio/sessions/{session_id}/generate" in routes
        assert "unmatched" in routes
        assert not any(sid in r or "123" in r for r in routes)
        [(labels, size)] = await _samples(client, "demo_pool_size")
        assert labels == {"pool": "studio_generate"} and size == 4

    _run(scenario)
