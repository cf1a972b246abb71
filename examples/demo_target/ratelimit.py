"""Per-caller token bucket for the harvest endpoint.

The demo exists so load tests can hit a *real* limit: a burst is allowed, then callers are
refused with an honest ``Retry-After`` until the bucket refills. The logic is pure (time comes
from an injectable clock) so it can be tested exactly, without sleeping.
"""

from __future__ import annotations

import math
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass

Clock = Callable[[], float]

# Float refill arithmetic can leave e.g. 10.000000000000002 s; without this slack ceil() would
# tell callers to wait a whole extra second.
_CEIL_SLACK = 1e-9


@dataclass(frozen=True)
class Decision:
    allowed: bool
    # Seconds until the caller's next token exists; 0.0 when allowed.
    retry_after_s: float = 0.0

    @property
    def retry_after_header(self) -> int:
        """Whole seconds for the Retry-After header: rounded up, never 0 (0 invites a hot loop)."""
        return max(1, math.ceil(self.retry_after_s - _CEIL_SLACK))


class TokenBucket:
    """One caller's bucket. Refills continuously at ``rate_per_minute`` up to ``capacity``."""

    __slots__ = ("_capacity", "_rate_per_minute", "_tokens", "_updated")

    def __init__(self, rate_per_minute: float, capacity: int, now: float) -> None:
        if rate_per_minute <= 0 or capacity < 1:
            raise ValueError("rate_per_minute must be > 0 and capacity >= 1")
        self._rate_per_minute = rate_per_minute
        self._capacity = float(capacity)
        # A new caller starts with a full bucket: the burst is the point of a burst allowance.
        self._tokens = float(capacity)
        self._updated = now

    def _refill(self, now: float) -> None:
        # max(0, ...) so a clock that steps backwards can never drain tokens.
        elapsed = max(0.0, now - self._updated)
        self._tokens = min(self._capacity, self._tokens + elapsed * self._rate_per_minute / 60.0)
        self._updated = max(self._updated, now)

    def tokens(self, now: float) -> float:
        self._refill(now)
        return self._tokens

    def try_take(self, now: float) -> Decision:
        self._refill(now)
        if self._tokens >= 1.0:
            self._tokens -= 1.0
            return Decision(True)
        # Multiply by 60 before dividing by the per-minute rate to keep round numbers exact.
        wait = (1.0 - self._tokens) * 60.0 / self._rate_per_minute
        return Decision(False, wait)

    def give_back(self, now: float) -> None:
        """Return a token taken for a request that was then refused for another reason."""
        self._refill(now)
        self._tokens = min(self._capacity, self._tokens + 1.0)


class CallerRateLimiter:
    """Token buckets keyed by caller identity, with bounded memory.

    Each distinct caller costs one small bucket; load tests invent many callers, so the table
    is capped and the least recently seen caller is forgotten first. Forgetting a caller is
    equivalent to giving them a full bucket, which for the oldest entry is almost always
    what their bucket already holds.
    """

    def __init__(
        self,
        rate_per_minute: float,
        burst: int,
        clock: Clock = time.monotonic,
        max_callers: int = 100_000,
    ) -> None:
        if max_callers < 1:
            raise ValueError("max_callers must be >= 1")
        # Validate once up front rather than on the first request.
        TokenBucket(rate_per_minute, burst, 0.0)
        self._rate_per_minute = rate_per_minute
        self._burst = burst
        self._clock = clock
        self._max_callers = max_callers
        self._buckets: OrderedDict[str, TokenBucket] = OrderedDict()

    def __len__(self) -> int:
        return len(self._buckets)

    def _bucket(self, caller: str, now: float) -> TokenBucket:
        bucket = self._buckets.get(caller)
        if bucket is None:
            bucket = TokenBucket(self._rate_per_minute, self._burst, now)
            self._buckets[caller] = bucket
            if len(self._buckets) > self._max_callers:
                self._buckets.popitem(last=False)
        else:
            self._buckets.move_to_end(caller)
        return bucket

    def check(self, caller: str) -> Decision:
        """Take one token for ``caller`` if there is one."""
        now = self._clock()
        return self._bucket(caller, now).try_take(now)

    def refund(self, caller: str) -> None:
        """Undo a successful ``check`` whose request was then rejected downstream (e.g. queue full)."""
        now = self._clock()
        self._bucket(caller, now).give_back(now)
