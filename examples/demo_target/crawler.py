"""The harvest crawler: inline crawls and a bounded background queue.

``enqueue=true`` harvests go into a bounded asyncio queue drained by one background task,
so a burst of harvests turns into queue depth (which the platform graphs) instead of
unbounded memory; when the queue is full the API refuses with 429. Inline harvests run the
same attempt code, so both paths feed the same per-domain metrics. Transient failures are
retried later through the queue with exponential backoff.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
import random
from dataclasses import dataclass, replace

from .crawl import CrawlLedger, Outcome, simulate_attempt
from .latency import Latency
from .metrics import DemoMetrics

log = logging.getLogger(__name__)

# Simulated fetch + parse time of one page, before latency scaling.
CRAWL_MS = (20.0, 80.0)
# First retry after this long (scaled), doubling per attempt.
RETRY_BACKOFF_S = 0.1


class CrawlQueueFull(Exception):
    pass


@dataclass(frozen=True)
class CrawlJob:
    job_id: str
    url: str
    domain: str  # the metrics label: the domain, or "other" once too many were seen
    attempt: int = 1


class Crawler:
    def __init__(
        self,
        *,
        metrics: DemoMetrics,
        latency: Latency,
        rng: random.Random,
        queue_size: int,
        ledger: CrawlLedger | None = None,
    ) -> None:
        self._metrics = metrics
        self._latency = latency
        self._rng = rng
        self.ledger = ledger or CrawlLedger()
        self._queue: asyncio.Queue[CrawlJob] = asyncio.Queue(maxsize=queue_size)
        self._ids = itertools.count(1)
        self._task: asyncio.Task[None] | None = None
        # Pending retry timers, kept so shutdown can cancel them.
        self._retry_timers: set[asyncio.TimerHandle] = set()
        self.inline_attempts = 0
        self.enqueued = 0
        metrics.watch_crawl_queue(self._queue.qsize)

    @property
    def depth(self) -> int:
        return self._queue.qsize()

    def new_job(self, url: str, domain: str) -> CrawlJob:
        return CrawlJob(job_id=f"job-{next(self._ids)}", url=url, domain=self.ledger.label_for(domain))

    def submit(self, job: CrawlJob) -> None:
        try:
            self._queue.put_nowait(job)
        except asyncio.QueueFull:
            raise CrawlQueueFull from None
        self.enqueued += 1

    async def crawl_inline(self, job: CrawlJob) -> Outcome:
        self.inline_attempts += 1
        return await self._attempt(job)

    async def _attempt(self, job: CrawlJob) -> Outcome:
        await self._latency.pause(*CRAWL_MS)
        outcome = self.ledger.record(job.domain, simulate_attempt(self._rng, job.domain), job.attempt)
        self._metrics.crawler_jobs.labels(domain=job.domain, outcome=outcome.value).inc()
        if outcome is Outcome.RETRYABLE:
            self._schedule_retry(replace(job, attempt=job.attempt + 1))
        return outcome

    def _schedule_retry(self, job: CrawlJob) -> None:
        delay = RETRY_BACKOFF_S * 2 ** (job.attempt - 2) * self._latency.scale
        timer: asyncio.TimerHandle | None = None

        def fire() -> None:
            if timer is not None:
                self._retry_timers.discard(timer)
            try:
                self._queue.put_nowait(job)
            except asyncio.QueueFull:
                # Retries do not jump the queue nor grow it: no room means the job has failed.
                self.ledger.retry_dropped(job.domain)
                self._metrics.crawler_jobs.labels(domain=job.domain, outcome=Outcome.FAILED.value).inc()

        timer = asyncio.get_running_loop().call_later(delay, fire)
        self._retry_timers.add(timer)

    async def _drain(self) -> None:
        while True:
            job = await self._queue.get()
            try:
                await self._attempt(job)
            except Exception:
                # One bad job must not kill the only crawler task.
                log.exception("crawl of %s failed unexpectedly", job.url)
            finally:
                self._queue.task_done()

    def start(self) -> None:
        if self._task is None:
            self._task = asyncio.get_running_loop().create_task(self._drain(), name="demo-crawler")

    async def stop(self) -> None:
        for timer in self._retry_timers:
            timer.cancel()
        self._retry_timers.clear()
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
