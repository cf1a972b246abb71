"""A bounded worker pool with a bounded wait queue, for Studio generation.

It stands in for a database connection pool: a fixed number of slots, requests queue for a
slot under load, and once too many are already queued new ones are shed immediately (the
caller answers 503) instead of piling up latency. Load tests watch exactly this saturation,
so the pool keeps exact counts of slots in use, waiters and rejections.

Slots are handed directly from a releasing holder to the oldest waiter (FIFO), so a newly
arriving request can never barge ahead of one that has been waiting.
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager, suppress


class PoolExhausted(Exception):
    """Raised when all slots are busy and the wait queue is already full."""


class WorkerPool:
    def __init__(self, size: int, max_waiting: int) -> None:
        if size < 1 or max_waiting < 0:
            raise ValueError("size must be >= 1 and max_waiting >= 0")
        self._size = size
        self._max_waiting = max_waiting
        self._in_use = 0
        self._waiters: deque[asyncio.Future[None]] = deque()
        self._rejected = 0

    @property
    def size(self) -> int:
        return self._size

    @property
    def in_use(self) -> int:
        return self._in_use

    @property
    def waiting(self) -> int:
        return len(self._waiters)

    @property
    def rejected(self) -> int:
        return self._rejected

    async def acquire(self) -> None:
        if self._in_use < self._size and not self._waiters:
            self._in_use += 1
            return
        if len(self._waiters) >= self._max_waiting:
            self._rejected += 1
            raise PoolExhausted(f"{self._size} slots busy and {len(self._waiters)} waiting")
        waiter: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._waiters.append(waiter)
        try:
            await waiter
        except asyncio.CancelledError:
            # The client went away while queued. If a slot was already handed to us, pass it
            # on; otherwise just leave the queue. Either way the counts stay exact.
            if waiter.done() and not waiter.cancelled():
                self.release()
            else:
                self._remove_waiter(waiter)
            raise

    def _remove_waiter(self, waiter: asyncio.Future[None]) -> None:
        # Already gone if release() skipped it as cancelled.
        with suppress(ValueError):
            self._waiters.remove(waiter)

    def release(self) -> None:
        # Hand the slot straight to the oldest live waiter: in_use stays the same.
        while self._waiters:
            waiter = self._waiters.popleft()
            if not waiter.done():
                waiter.set_result(None)
                return
        if self._in_use <= 0:
            raise RuntimeError("release() without a matching acquire()")
        self._in_use -= 1

    @asynccontextmanager
    async def slot(self) -> AsyncIterator[None]:
        await self.acquire()
        try:
            yield
        finally:
            self.release()
