"""Bounded worker pool of the demo target: slots, FIFO waiting, shedding, cancellation."""

from __future__ import annotations

import asyncio

import pytest

from examples.demo_target.pool import PoolExhausted, WorkerPool


async def _settle() -> None:
    # Let every ready task run up to its next real wait.
    for _ in range(5):
        await asyncio.sleep(0)


def test_slots_then_queue_then_shed() -> None:
    async def scenario() -> None:
        pool = WorkerPool(size=2, max_waiting=1)
        release = asyncio.Event()

        async def job() -> None:
            async with pool.slot():
                await release.wait()

        tasks = [asyncio.create_task(job()) for _ in range(3)]
        await _settle()
        assert (pool.in_use, pool.waiting) == (2, 1)

        with pytest.raises(PoolExhausted):
            await pool.acquire()
        assert pool.rejected == 1

        release.set()
        await asyncio.gather(*tasks)
        assert (pool.in_use, pool.waiting) == (0, 0)

    asyncio.run(scenario())


def test_waiters_are_served_in_arrival_order() -> None:
    async def scenario() -> list[int]:
        pool = WorkerPool(size=1, max_waiting=10)
        order: list[int] = []
        await pool.acquire()

        async def waiter(n: int) -> None:
            async with pool.slot():
                order.append(n)

        tasks = [asyncio.create_task(waiter(n)) for n in range(4)]
        await _settle()
        assert pool.waiting == 4
        pool.release()
        await asyncio.gather(*tasks)
        return order

    assert asyncio.run(scenario()) == [0, 1, 2, 3]


def test_zero_queue_sheds_as_soon_as_slots_are_busy() -> None:
    async def scenario() -> None:
        pool = WorkerPool(size=1, max_waiting=0)
        await pool.acquire()
        with pytest.raises(PoolExhausted):
            await pool.acquire()
        pool.release()
        await pool.acquire()
        assert pool.in_use == 1

    asyncio.run(scenario())


def test_cancelled_waiter_leaves_the_queue_and_keeps_counts_exact() -> None:
    async def scenario() -> None:
        pool = WorkerPool(size=1, max_waiting=5)
        await pool.acquire()
        waiting = asyncio.create_task(pool.acquire())
        await _settle()
        assert pool.waiting == 1

        waiting.cancel()
        await asyncio.gather(waiting, return_exceptions=True)
        assert (pool.in_use, pool.waiting) == (1, 0)

        pool.release()
        assert pool.in_use == 0

    asyncio.run(scenario())


def test_cancel_after_slot_was_handed_over_passes_it_on() -> None:
    async def scenario() -> None:
        pool = WorkerPool(size=1, max_waiting=5)
        await pool.acquire()
        first = asyncio.create_task(pool.acquire())
        second = asyncio.create_task(pool.acquire())
        await _settle()

        pool.release()  # hands the slot to `first`, which has not resumed yet
        first.cancel()
        await asyncio.gather(first, return_exceptions=True)
        await _settle()

        assert second.done() and not second.cancelled()
        assert (pool.in_use, pool.waiting) == (1, 0)

    asyncio.run(scenario())


def test_release_without_acquire_is_an_error() -> None:
    with pytest.raises(RuntimeError):
        WorkerPool(size=1, max_waiting=0).release()
