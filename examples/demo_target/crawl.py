"""Pure crawl simulation and per-domain bookkeeping for the harvest endpoint.

Real recipe crawlers are judged per site: some domains keep failing, some need the slow
fallback parser, some throw transient errors worth retrying. The platform's dashboards and
gates read those per-domain ratios, so the demo produces them from a seeded RNG with a stable
per-domain bias (different sites behave differently, run after run). No I/O here; the async
worker in ``crawler.py`` drives it.
"""

from __future__ import annotations

import random
import zlib
from dataclasses import dataclass
from enum import StrEnum
from typing import Any
from urllib.parse import urlsplit

# Label used once too many distinct domains have been seen: domains come from user input and
# every one becomes a Prometheus series, so their number must be bounded.
OTHER_DOMAIN = "other"


class Outcome(StrEnum):
    OK = "ok"
    PARSER_FALLBACK = "parser_fallback"  # harvested, but only by the slow generic parser
    RETRYABLE = "retryable"  # transient failure; a retry has been scheduled
    FAILED = "failed"  # permanent failure, or retries exhausted


def domain_of(url: object) -> str | None:
    """Lower-case host of an http(s) URL, or None if it is not one we would crawl."""
    if not isinstance(url, str) or len(url) > 2048:
        return None
    try:
        parts = urlsplit(url.strip())
        host = parts.hostname
    except ValueError:
        return None
    if parts.scheme not in ("http", "https") or not host:
        return None
    return host.lower()


def domain_bias(domain: str) -> float:
    """Stable multiplier in [0.5, 2.0] for a domain's trouble probabilities."""
    # crc32, not hash(): str hashes are salted per process and we want the same bias every run.
    return 0.5 + 1.5 * (zlib.crc32(domain.encode()) % 1000) / 999


# Base probabilities per attempt, before the domain bias.
P_FAILED = 0.05
P_RETRYABLE = 0.08
P_PARSER_FALLBACK = 0.15


def simulate_attempt(rng: random.Random, domain: str) -> Outcome:
    """What one crawl attempt of a page on ``domain`` did."""
    bias = domain_bias(domain)
    roll = rng.random()
    if roll < P_FAILED * bias:
        return Outcome.FAILED
    roll -= P_FAILED * bias
    if roll < P_RETRYABLE * bias:
        return Outcome.RETRYABLE
    roll -= P_RETRYABLE * bias
    if roll < P_PARSER_FALLBACK * bias:
        return Outcome.PARSER_FALLBACK
    return Outcome.OK


@dataclass
class DomainStats:
    finished: int = 0  # jobs that reached a final outcome (ok, parser_fallback or failed)
    parser_fallbacks: int = 0
    failures: int = 0
    retry_pending: int = 0  # jobs waiting for a retry right now

    @property
    def parser_fallback_rate(self) -> float:
        return self.parser_fallbacks / self.finished if self.finished else 0.0

    @property
    def failure_rate(self) -> float:
        return self.failures / self.finished if self.finished else 0.0


class CrawlLedger:
    """Decides what an attempt's outcome means for the job and keeps per-domain stats."""

    def __init__(self, max_attempts: int = 3, max_domains: int = 1000) -> None:
        if max_attempts < 1 or max_domains < 1:
            raise ValueError("max_attempts and max_domains must be >= 1")
        self.max_attempts = max_attempts
        self._max_domains = max_domains
        self._stats: dict[str, DomainStats] = {}

    def label_for(self, domain: str) -> str:
        """The domain itself while there is room for another series, else ``other``."""
        if domain in self._stats or len(self._stats) < self._max_domains:
            # Reserve the slot now, so jobs queued before their first attempt count too.
            self.stats(domain)
            return domain
        self.stats(OTHER_DOMAIN)
        return OTHER_DOMAIN

    def stats(self, label: str) -> DomainStats:
        return self._stats.setdefault(label, DomainStats())

    def record(self, label: str, outcome: Outcome, attempt: int) -> Outcome:
        """Record attempt number ``attempt`` (1-based) and return the outcome to report.

        A retryable error on the last allowed attempt is reported as FAILED: the job is over.
        """
        stats = self.stats(label)
        if attempt > 1:
            # This job was counted as waiting for a retry; it no longer is.
            stats.retry_pending = max(0, stats.retry_pending - 1)
        if outcome is Outcome.RETRYABLE and attempt < self.max_attempts:
            stats.retry_pending += 1
            return Outcome.RETRYABLE
        if outcome is Outcome.RETRYABLE:
            outcome = Outcome.FAILED
        stats.finished += 1
        if outcome is Outcome.FAILED:
            stats.failures += 1
        elif outcome is Outcome.PARSER_FALLBACK:
            stats.parser_fallbacks += 1
        return outcome

    def retry_dropped(self, label: str) -> None:
        """A scheduled retry could not be queued (queue full, shutdown): the job failed."""
        stats = self.stats(label)
        stats.retry_pending = max(0, stats.retry_pending - 1)
        stats.finished += 1
        stats.failures += 1

    def report(self) -> dict[str, Any]:
        """Per-domain figures and their totals, as GET /v1/crawler/stats serves them."""

        def figures(stats: DomainStats) -> dict[str, Any]:
            return {
                "finished": stats.finished,
                "failures": stats.failures,
                "parser_fallbacks": stats.parser_fallbacks,
                "retryable_jobs": stats.retry_pending,
                "parser_fallback_rate": stats.parser_fallback_rate,
                "failure_rate": stats.failure_rate,
            }

        total = DomainStats(
            finished=sum(s.finished for s in self._stats.values()),
            parser_fallbacks=sum(s.parser_fallbacks for s in self._stats.values()),
            failures=sum(s.failures for s in self._stats.values()),
            retry_pending=sum(s.retry_pending for s in self._stats.values()),
        )
        return {
            "domains": {label: figures(stats) for label, stats in sorted(self._stats.items())},
            "totals": {"domains": len(self._stats), **figures(total)},
        }

    def totals(self) -> dict[str, int]:
        return {
            "domains": len(self._stats),
            "finished": sum(s.finished for s in self._stats.values()),
            "failures": sum(s.failures for s in self._stats.values()),
            "parser_fallbacks": sum(s.parser_fallbacks for s in self._stats.values()),
            "retry_pending": sum(s.retry_pending for s in self._stats.values()),
        }
