"""The demo target's chat stream as a real process: tokens arrive as events, streams queue for slots.

Mostly started with the shared launcher (tests/support.demo_server), so the chat settings are the
defaults (examples/demo_target/chat.py: 4 slots, 400 ms least thinking time, 24 tokens); one test
starts its own with DEMO_CHAT_* settings, which that launcher leaves out on purpose.
"""

from __future__ import annotations

import asyncio
import os
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from controller.processes import ManagedProcess, free_port
from examples.demo_target.chat import CHAT_POOL, ChatConfig
from tests.support import REPO_ROOT, demo_server, wait_for

pytestmark = pytest.mark.integration

STREAM = "/v1/chat/stream"
DEFAULTS = ChatConfig()


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    with demo_server(tmp_path_factory.mktemp("chat") / "server.log", "--latency-scale", "1") as url:
        yield url


def _pool(text: str, name: str) -> float:
    return sum(
        s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
        if s.name == name and s.labels.get("pool") == CHAT_POOL
    )


def test_tokens_arrive_as_separate_events_then_done(server: str) -> None:
    with (
        httpx.Client(base_url=server, timeout=30) as client,
        client.stream("POST", STREAM, json={"prompt": "soup?", "max_tokens": 6}) as response,
    ):
        assert response.status_code == 200
        assert response.headers["content-type"].startswith("text/event-stream")
        chunks = list(response.iter_raw())
    body = b"".join(chunks).decode()
    assert body.endswith("data: [DONE]\n\n")
    assert body.count("data: ") == 7  # 6 tokens and [DONE]
    # streamed, not buffered: the tokens come in chunks of their own, as they are generated
    assert len(chunks) >= 7


async def _streams_while_sampling(base_url: str, streams: int) -> tuple[list[int], float, float]:
    async with httpx.AsyncClient(base_url=base_url, timeout=60) as client:
        tasks = [asyncio.create_task(client.post(STREAM, json={"max_tokens": 4})) for _ in range(streams)]
        peak_in_use = peak_queued = 0.0
        while not all(t.done() for t in tasks):
            text = (await client.get("/metrics")).text
            peak_in_use = max(peak_in_use, _pool(text, "demo_pool_in_use"))
            peak_queued = max(peak_queued, _pool(text, "demo_pool_queued"))
            await asyncio.sleep(0.02)
        answers = await asyncio.gather(*tasks)
        assert all(a.text.endswith("data: [DONE]\n\n") for a in answers)
        return [a.status_code for a in answers], peak_in_use, peak_queued


def test_streams_beyond_the_slots_wait_for_one(server: str) -> None:
    streams = DEFAULTS.workers * 2
    statuses, peak_in_use, peak_queued = asyncio.run(_streams_while_sampling(server, streams))
    assert statuses == [200] * streams
    assert peak_in_use == DEFAULTS.workers
    assert peak_queued > 0
    text = httpx.get(f"{server}/metrics").text
    assert _pool(text, "demo_pool_size") == DEFAULTS.workers
    assert _pool(text, "demo_pool_in_use") == 0


@contextmanager
def _chat_server(log_path: Path, **settings: str) -> Iterator[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("DEMO_")} | settings
    port = free_port()
    argv = [sys.executable, "-m", "examples.demo_target", "--host", "127.0.0.1", "--port", str(port)]
    process = ManagedProcess("demo target", argv, log_path=log_path, env=env, cwd=REPO_ROOT)
    url = f"http://127.0.0.1:{port}"
    try:

        def healthy() -> bool:
            try:
                return httpx.get(f"{url}/health", timeout=1).status_code == 200
            except httpx.HTTPError:
                return False

        assert wait_for(healthy, timeout=15), process.log_tail()
        yield url
    finally:
        process.stop(timeout=10)


def test_a_client_leaving_mid_stream_gives_its_slot_back(tmp_path: Path) -> None:
    # 512 tokens a second apart: left alone, this stream would hold its slot for over 8 minutes.
    settings = {"DEMO_CHAT_TOKENS": "512", "DEMO_CHAT_TOKEN_MS": "1000", "DEMO_CHAT_WORKERS": "2"}
    with (
        _chat_server(tmp_path / "server.log", **settings) as server,
        httpx.Client(base_url=server, timeout=30) as client,
    ):
        with client.stream("POST", STREAM) as response:
            lines = response.iter_lines()  # kept: a dropped iterator would close the connection at once
            first = next(lines)
            assert first.startswith("data: ") and first != "data: [DONE]"
            text = client.get("/metrics").text
            assert _pool(text, "demo_pool_in_use") == 1 and _pool(text, "demo_pool_size") == 2
        # the connection is closed here, 511 tokens early

        assert wait_for(lambda: _pool(client.get("/metrics").text, "demo_pool_in_use") == 0, timeout=10)
