"""POST /v1/chat/stream: a chat answer streamed as server-sent events, the way LLM endpoints answer.

Why it exists: streaming endpoints need their own measures, time to first token and tokens per
second (../shared/reference/001_...), and the platform's custom metrics are shown with it. Like
the reference backend, whose LLM work runs on a 10-thread executor, every stream holds a slot of a
small worker pool for its whole generation: past a few concurrent streams new ones wait for a
slot, so the time to first token grows with load while the pace of the tokens stays the same.

The response is `text/event-stream`: after a thinking time, one `data: <token>` event per token,
then `data: [DONE]`. Body (JSON, optional): {"prompt": str, "max_tokens": 1..512}. A full wait
queue answers 503 `chat_overloaded` with Retry-After, as Studio generation does.

Settings come from the environment, read once at import (a bad value stops the service at start
with the variable's name), every delay multiplied by the app's --latency-scale:
  DEMO_CHAT_FIRST_TOKEN_MS   least thinking time before the first token (default 400; each
                             stream thinks 1x to 1.5x this)
  DEMO_CHAT_TOKEN_MS         mean pause between tokens (default 25; 0.5x to 1.5x)
  DEMO_CHAT_TOKENS           tokens per answer (default 24; a smaller max_tokens wins)
  DEMO_CHAT_WORKERS          generation slots (default 4)
  DEMO_CHAT_QUEUE            streams that may wait for a slot before 503 (default 100)
A test can set `app.state.chat_config` before the app's first chat request instead.
"""

from __future__ import annotations

import math
import os
import random
from collections.abc import AsyncIterator, Callable, Mapping
from dataclasses import dataclass

from starlette.requests import Request
from starlette.responses import Response, StreamingResponse
from starlette.types import Receive, Scope, Send

from .api import ApiError, Services, _json_body
from .latency import Latency
from .pool import PoolExhausted, WorkerPool

CHAT_POOL = "chat_stream"  # the demo_pool_* label value, like studio's "studio_generate"
MAX_TOKENS = 512
DONE = "[DONE]"
_WORDS = (
    "simmer", "the", "onions", "until", "golden", "then", "add", "garlic", "and", "a", "pinch", "of",
    "salt", "stir", "in", "tomatoes", "let", "it", "bubble", "for", "ten", "minutes", "season", "serve",
)  # fmt: skip


@dataclass(frozen=True)
class ChatConfig:
    first_token_ms: float = 400.0
    token_ms: float = 25.0
    tokens: int = 24
    workers: int = 4
    queue: int = 100


ENV_VARS = {
    "first_token_ms": "DEMO_CHAT_FIRST_TOKEN_MS",
    "token_ms": "DEMO_CHAT_TOKEN_MS",
    "tokens": "DEMO_CHAT_TOKENS",
    "workers": "DEMO_CHAT_WORKERS",
    "queue": "DEMO_CHAT_QUEUE",
}


def config_from_env(environ: Mapping[str, str]) -> ChatConfig:
    """ChatConfig from DEMO_CHAT_* variables (pure); ValueError names the variable that is wrong."""
    values: dict[str, float | int] = {}
    for field, env in ENV_VARS.items():
        text = environ.get(env)
        if text is None or not text.strip():
            continue
        kind, least = (float, 0) if field.endswith("_ms") else (int, 0 if field == "queue" else 1)
        try:
            value = kind(text)
        except ValueError:
            raise ValueError(f"{env}: not a number: {text!r}") from None
        if not (value >= least and math.isfinite(value)) or (field == "tokens" and value > MAX_TOKENS):
            limit = f" and <= {MAX_TOKENS}" if field == "tokens" else ""
            raise ValueError(f"{env}: must be >= {least}{limit}, got {text!r}")
        values[field] = value
    return ChatConfig(**values)  # type: ignore[arg-type]


ENV_CONFIG = config_from_env(os.environ)


class Chat:
    """One app's chat state: its slots and its own seeded randomness (other endpoints' stay put)."""

    def __init__(self, config: ChatConfig, services: Services) -> None:
        self.config = config
        self.pool = WorkerPool(config.workers, config.queue)
        self.metrics = services.metrics
        rng = random.Random(services.config.seed + 3)
        self.latency = Latency(services.config.latency_scale, rng)
        self.rng = rng
        services.metrics.watch_pool(
            CHAT_POOL, self.pool.size, lambda: self.pool.in_use, lambda: self.pool.waiting
        )

    async def answer(self, tokens: int) -> AsyncIterator[bytes]:
        first = self.config.first_token_ms
        await self.latency.pause(first, first * 1.5)
        for index in range(tokens):
            if index:
                gap = self.config.token_ms
                await self.latency.pause(gap * 0.5, gap * 1.5)
            yield event(self.rng.choice(_WORDS))
        yield event(DONE)


def event(data: str) -> bytes:
    return f"data: {data}\n\n".encode()


def _chat(request: Request) -> Chat:
    state = request.app.state
    chat: Chat | None = getattr(state, "chat", None)
    if chat is None:
        # Built at the first chat request: the app (app.py) knows nothing of chat but its route.
        chat = state.chat = Chat(getattr(state, "chat_config", None) or ENV_CONFIG, state.demo)
    return chat


class _SlotStream(StreamingResponse):
    """A StreamingResponse that gives its pool slot back however the response ends.

    The slot is taken before the response starts (so a full queue can still answer 503); a
    finally inside the generator would not run if the client left before the first chunk.
    """

    def __init__(self, content: AsyncIterator[bytes], release: Callable[[], None]) -> None:
        super().__init__(content, media_type="text/event-stream", headers={"Cache-Control": "no-cache"})
        self._release = release

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        try:
            await super().__call__(scope, receive, send)
        finally:
            self._release()


async def stream(request: Request) -> Response:
    chat = _chat(request)
    body = await _json_body(request)
    tokens = body.get("max_tokens", chat.config.tokens)
    if isinstance(tokens, bool) or not isinstance(tokens, int) or not 1 <= tokens <= MAX_TOKENS:
        raise ApiError(400, "invalid_max_tokens")
    prompt = body.get("prompt", "")
    if not isinstance(prompt, str):
        raise ApiError(400, "invalid_prompt")
    try:
        await chat.pool.acquire()
    except PoolExhausted:
        chat.metrics.pool_rejected.labels(pool=CHAT_POOL).inc()
        raise ApiError(503, "chat_overloaded", {"Retry-After": "1"}) from None
    return _SlotStream(chat.answer(min(tokens, chat.config.tokens)), chat.pool.release)
