"""The demo target's chat stream in process: settings, the SSE body, validation, shedding load."""

from __future__ import annotations

import asyncio

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from examples.demo_target.app import create_app
from examples.demo_target.chat import CHAT_POOL, ChatConfig, config_from_env
from examples.demo_target.config import DemoConfig

STREAM = "/v1/chat/stream"


def test_settings_from_the_environment():
    assert config_from_env({}) == ChatConfig()
    env = {
        "DEMO_CHAT_FIRST_TOKEN_MS": "250.5",
        "DEMO_CHAT_TOKEN_MS": "0",
        "DEMO_CHAT_TOKENS": "3",
        "DEMO_CHAT_WORKERS": "2",
        "DEMO_CHAT_QUEUE": "0",
        "DEMO_OTHER": "x",
    }
    assert config_from_env(env) == ChatConfig(first_token_ms=250.5, token_ms=0, tokens=3, workers=2, queue=0)


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"DEMO_CHAT_WORKERS": "0"}, "DEMO_CHAT_WORKERS: must be >= 1, got '0'"),
        ({"DEMO_CHAT_TOKENS": "9999"}, "DEMO_CHAT_TOKENS: must be >= 1 and <= 512, got '9999'"),
        ({"DEMO_CHAT_FIRST_TOKEN_MS": "-1"}, "DEMO_CHAT_FIRST_TOKEN_MS: must be >= 0, got '-1'"),
        ({"DEMO_CHAT_QUEUE": "lots"}, "DEMO_CHAT_QUEUE: not a number: 'lots'"),
        ({"DEMO_CHAT_TOKEN_MS": "nan"}, "DEMO_CHAT_TOKEN_MS: must be >= 0, got 'nan'"),
    ],
)
def test_bad_settings_name_their_variable(env, message):
    with pytest.raises(ValueError) as caught:
        config_from_env(env)
    assert str(caught.value) == message


def _app(chat: ChatConfig, latency_scale: float = 0.0):
    app = create_app(DemoConfig(latency_scale=latency_scale))
    app.state.chat_config = chat
    return app


async def _metric(client: httpx.AsyncClient, name: str, **labels: str) -> float:
    text = (await client.get("/metrics")).text
    return sum(
        s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
        if s.name == name and all(s.labels.get(k) == v for k, v in labels.items())
    )


def _run(app, scenario) -> None:
    async def main() -> None:
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://demo", timeout=30) as client:
            await scenario(client)

    asyncio.run(main())


def test_stream_is_server_sent_events_ending_with_done():
    async def scenario(client: httpx.AsyncClient) -> None:
        full = await client.post(STREAM, json={"prompt": "pasta?"})
        assert full.status_code == 200
        assert full.headers["content-type"].startswith("text/event-stream")
        assert full.headers["cache-control"] == "no-cache"
        events = full.text.split("\n\n")
        assert events[-1] == "" and events[-2] == "data: [DONE]"
        tokens = events[:-2]
        assert len(tokens) == 5 and all(e.startswith("data: ") and len(e) > 6 for e in tokens)

        fewer = await client.post(STREAM, json={"max_tokens": 2})
        assert fewer.text.count("data: ") == 3  # a smaller max_tokens wins; a larger one does not
        assert (await client.post(STREAM, json={"max_tokens": 50})).text.count("data: ") == 6
        assert (await client.post(STREAM)).text.count("data: ") == 6  # no body at all is fine
        assert await _metric(client, "demo_pool_in_use", pool=CHAT_POOL) == 0  # every slot came back

    _run(_app(ChatConfig(tokens=5)), scenario)


@pytest.mark.parametrize(
    ("body", "error"),
    [
        ({"max_tokens": 0}, "invalid_max_tokens"),
        ({"max_tokens": 513}, "invalid_max_tokens"),
        ({"max_tokens": True}, "invalid_max_tokens"),
        ({"max_tokens": "5"}, "invalid_max_tokens"),
        ({"prompt": ["x"]}, "invalid_prompt"),
    ],
)
def test_bad_requests_are_400_and_take_no_slot(body, error):
    async def scenario(client: httpx.AsyncClient) -> None:
        answer = await client.post(STREAM, json=body)
        assert (answer.status_code, answer.json()) == (400, {"error": error})
        assert await _metric(client, "demo_pool_in_use", pool=CHAT_POOL) == 0

    _run(_app(ChatConfig()), scenario)


def test_a_full_queue_sheds_streams_with_503():
    # One slot, one place in the queue: the first stream thinks (holding the slot), the second
    # waits for it, the third finds the queue full.
    async def scenario(client: httpx.AsyncClient) -> None:
        answers = await asyncio.gather(*(client.post(STREAM) for _ in range(3)))
        assert [a.status_code for a in answers] == [200, 200, 503]
        assert answers[2].json() == {"error": "chat_overloaded"} and answers[2].headers["retry-after"] == "1"
        assert all(a.text.endswith("data: [DONE]\n\n") for a in answers[:2])
        assert await _metric(client, "demo_pool_rejected_total", pool=CHAT_POOL) == 1
        assert await _metric(client, "demo_pool_size", pool=CHAT_POOL) == 1
        assert await _metric(client, "demo_pool_in_use", pool=CHAT_POOL) == 0

    _run(_app(ChatConfig(first_token_ms=200, tokens=2, workers=1, queue=1), latency_scale=1.0), scenario)
