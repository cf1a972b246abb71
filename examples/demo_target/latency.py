"""Simulated service time.

Every endpoint "does work" by sleeping a random time in a per-endpoint range. Sleeping with
asyncio (not time.sleep) keeps the single event loop free, so under load the bottlenecks are
the deliberate ones (rate limit, worker pool, crawl queue) rather than an accidental one.
"""

from __future__ import annotations

import asyncio
import random


class Latency:
    def __init__(self, scale: float, rng: random.Random) -> None:
        if scale < 0:
            raise ValueError("scale must be >= 0")
        self.scale = scale
        self._rng = rng

    def seconds(self, lo_ms: float, hi_ms: float) -> float:
        return self._rng.uniform(lo_ms, hi_ms) / 1000.0 * self.scale

    async def pause(self, lo_ms: float, hi_ms: float) -> None:
        delay = self.seconds(lo_ms, hi_ms)
        # Scale 0 means "as fast as possible": don't even yield to the loop.
        if delay > 0:
            await asyncio.sleep(delay)
