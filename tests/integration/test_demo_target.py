"""The demo target as a real process: rate limiting, queued harvests, pool saturation, labels.

Each server is started with `python -m examples.demo_target` on a free port, exactly as the
platform starts it, and is always terminated (then killed if it will not stop) afterwards.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from examples.demo_target.app import ROUTES
from tests.support import demo_server

pytestmark = pytest.mark.integration

HARVEST = "/v1/recipes/harvest/auto"


@contextmanager
def _demo_server(log_path: Path, *flags: str) -> Iterator[str]:
    """The shared launcher (tests/support.py), plus: the service announces its address once."""
    with demo_server(log_path, *flags) as url:
        yield url
    assert "demo_target listening on" in log_path.read_text()


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    # Burst 3 and 1 token/min make the 4th quick harvest a certain 429; latency x4 makes each
    # generation take 120-240 ms, long enough to watch the pool saturate from outside.
    log_path = tmp_path_factory.mktemp("demo") / "server.log"
    flags = ["--harvest-burst", "3", "--harvest-rate-per-minute", "1", "--pool-size", "2"]
    with _demo_server(log_path, *flags, "--queue-size", "50", "--latency-scale", "4") as url:
        yield url


def _metrics(base_url: str, text: str | None = None) -> list[tuple[str, dict[str, str], float]]:
    if text is None:
        text = httpx.get(f"{base_url}/metrics").text
    return [(s.name, s.labels, s.value) for f in text_string_to_metric_families(text) for s in f.samples]


def _value(samples: list[tuple[str, dict[str, str], float]], name: str, **labels: str) -> float:
    return sum(v for n, ls, v in samples if n == name and all(ls.get(k) == x for k, x in labels.items()))


def _auth(client: httpx.Client, user: str) -> dict[str, str]:
    response = client.post("/v1/auth/dev-token", json={"user": user})
    assert response.status_code == 200 and response.json()["user"] == user
    return {"Authorization": f"Bearer {response.json()['token']}"}


def test_harvest_rate_limit_and_queue(server: str) -> None:
    with httpx.Client(base_url=server, timeout=10) as client:
        alice, bob, carol = (_auth(client, u) for u in ("alice", "bob", "carol"))
        body = {"url": "https://example.org/r/1"}

        for _ in range(3):
            ok = client.post(HARVEST, json=body, headers=alice)
            assert ok.status_code == 200 and ok.json()["status"] == "harvested"
        limited = client.post(HARVEST, json=body, headers=alice)
        assert limited.status_code == 429
        assert limited.json() == {"error": "rate_limited"}
        assert int(limited.headers["Retry-After"]) >= 1

        assert client.post(HARVEST, json=body, headers=bob).status_code == 200

        domain = "queued.example.net"
        before = _value(_metrics(server), "crawler_jobs_total", domain=domain)
        queued = client.post(
            HARVEST, params={"enqueue": "true"}, json={"url": f"https://{domain}/r/9"}, headers=carol
        )
        assert queued.status_code == 202
        assert queued.json()["status"] == "queued" and queued.json()["job_id"]

        deadline = time.monotonic() + 5
        while _value(samples := _metrics(server), "crawler_jobs_total", domain=domain) <= before:
            assert time.monotonic() < deadline, "queued harvest was never processed"
            time.sleep(0.05)
        # per-domain figures: on the JSON stats page, which loadctl's http_json probe exports
        figures = client.get("/v1/crawler/stats").json()["domains"][domain]
        assert set(figures) >= {"retryable_jobs", "parser_fallback_rate", "failure_rate"}
        assert 0.0 <= figures["failure_rate"] <= 1.0
        assert any(n == "crawler_queue_depth" for n, _, _ in samples)
        assert not any(n.startswith("crawler_domain_") for n, _, _ in samples)


async def _generate_while_sampling(base_url: str, requests: int) -> tuple[list[int], float, float]:
    """Fire concurrent generations; return their statuses and the peak pool gauges seen."""
    async with httpx.AsyncClient(base_url=base_url, timeout=30) as client:
        sid = (await client.post("/v1/studio/sessions", json={"title": "load"})).json()["id"]
        tasks = [
            asyncio.create_task(client.post(f"/v1/studio/sessions/{sid}/generate")) for _ in range(requests)
        ]
        peak_in_use = peak_queued = 0.0
        while not all(t.done() for t in tasks):
            samples = _metrics(base_url, (await client.get("/metrics")).text)
            peak_in_use = max(peak_in_use, _value(samples, "demo_pool_in_use", pool="studio_generate"))
            peak_queued = max(peak_queued, _value(samples, "demo_pool_queued", pool="studio_generate"))
            await asyncio.sleep(0.01)
        responses = await asyncio.gather(*tasks)
        return [r.status_code for r in responses], peak_in_use, peak_queued


def test_generation_queues_for_pool_slots(server: str) -> None:
    statuses, peak_in_use, peak_queued = asyncio.run(_generate_while_sampling(server, 10))

    assert statuses == [200] * 10
    assert peak_in_use == 2
    assert peak_queued > 0
    samples = _metrics(server)
    assert _value(samples, "demo_pool_size", pool="studio_generate") == 2
    assert _value(samples, "demo_pool_in_use", pool="studio_generate") == 0


def test_generation_beyond_queue_size_is_shed_with_503(tmp_path: Path) -> None:
    flags = ("--pool-size", "1", "--queue-size", "1", "--latency-scale", "4")
    with _demo_server(tmp_path / "server.log", *flags) as url:
        statuses, _, _ = asyncio.run(_generate_while_sampling(url, 6))
        shed = statuses.count(503)

        assert set(statuses) <= {200, 503}
        assert statuses.count(200) >= 1
        assert shed >= 1
        assert _value(_metrics(url), "demo_pool_rejected_total", pool="studio_generate") == shed


def test_route_labels_are_templates_not_raw_paths(server: str) -> None:
    with httpx.Client(base_url=server, timeout=10) as client:
        sid = client.post("/v1/studio/sessions", json={"title": "labels"}).json()["id"]
        assert client.post(f"/v1/studio/sessions/{sid}/constraints", json={"kind": "diet"}).status_code == 201
        assert client.get(f"/v1/studio/sessions/{sid}/versions").status_code == 200
        assert client.get("/v1/studio/sessions/s_unknown123/versions").status_code == 404
        assert client.get("/v1/recipes", params={"q": "salmon"}).status_code == 200
        assert client.get("/nothing/here/42").status_code == 404

    samples = _metrics(server)
    routes = {ls["route"] for n, ls, _ in samples if "route" in ls}
    templates = {route.path for route in ROUTES}
    assert routes <= templates | {"unmatched"}
    assert {"/v1/studio/sessions/{session_id}/versions", "/v1/recipes", "unmatched"} <= routes
    assert not any(sid in r or "unknown123" in r or "42" in r for r in routes)
    assert (
        _value(
            samples,
            "demo_http_requests_total",
            route="/v1/studio/sessions/{session_id}/versions",
            method="GET",
            status="404",
        )
        >= 1
    )
