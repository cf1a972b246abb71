"""Token bucket of the demo target's harvest endpoint, driven by a fake clock."""

from __future__ import annotations

import pytest

from examples.demo_target.ratelimit import CallerRateLimiter, Decision, TokenBucket


class FakeClock:
    def __init__(self, start: float = 1000.0) -> None:
        self.now = start

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


def test_burst_is_allowed_then_refused_with_retry_after() -> None:
    clock = FakeClock()
    limiter = CallerRateLimiter(rate_per_minute=6, burst=3, clock=clock)

    assert [limiter.check("alice").allowed for _ in range(3)] == [True, True, True]
    refused = limiter.check("alice")

    assert not refused.allowed
    # 6 tokens/min = one every 10 s, and the bucket is empty.
    assert refused.retry_after_s == pytest.approx(10.0)
    assert refused.retry_after_header == 10


def test_retry_after_shrinks_as_time_passes_and_rounds_up() -> None:
    clock = FakeClock()
    limiter = CallerRateLimiter(rate_per_minute=6, burst=1, clock=clock)
    assert limiter.check("alice").allowed

    clock.advance(7.5)
    refused = limiter.check("alice")

    assert not refused.allowed
    assert refused.retry_after_s == pytest.approx(2.5)
    assert refused.retry_after_header == 3


def test_refill_over_time_allows_again() -> None:
    clock = FakeClock()
    limiter = CallerRateLimiter(rate_per_minute=60, burst=2, clock=clock)
    assert limiter.check("alice").allowed
    assert limiter.check("alice").allowed
    assert not limiter.check("alice").allowed

    clock.advance(1.0)  # exactly one token at 1/s
    assert limiter.check("alice").allowed
    assert not limiter.check("alice").allowed

    clock.advance(3600)  # refill never exceeds the burst
    assert [limiter.check("alice").allowed for _ in range(3)] == [True, True, False]


def test_callers_are_isolated() -> None:
    clock = FakeClock()
    limiter = CallerRateLimiter(rate_per_minute=1, burst=1, clock=clock)

    assert limiter.check("user:alice").allowed
    assert not limiter.check("user:alice").allowed
    assert limiter.check("user:bob").allowed
    assert limiter.check("ip:10.0.0.1").allowed


def test_refund_returns_a_token_but_never_above_capacity() -> None:
    clock = FakeClock()
    limiter = CallerRateLimiter(rate_per_minute=1, burst=1, clock=clock)
    assert limiter.check("alice").allowed
    limiter.refund("alice")
    assert limiter.check("alice").allowed

    bucket = TokenBucket(rate_per_minute=1, capacity=2, now=0.0)
    bucket.give_back(0.0)
    assert bucket.tokens(0.0) == 2.0


def test_clock_going_backwards_does_not_drain_or_refill() -> None:
    bucket = TokenBucket(rate_per_minute=60, capacity=1, now=100.0)
    assert bucket.try_take(100.0).allowed
    assert not bucket.try_take(50.0).allowed
    assert bucket.try_take(101.0).allowed


def test_caller_table_is_bounded_and_forgets_least_recent_first() -> None:
    clock = FakeClock()
    limiter = CallerRateLimiter(rate_per_minute=1, burst=1, clock=clock, max_callers=2)
    limiter.check("a")
    limiter.check("b")
    limiter.check("a")  # touch a, so b is now the oldest
    limiter.check("c")

    assert len(limiter) == 2
    assert not limiter.check("a").allowed  # still remembered, still empty
    assert limiter.check("b").allowed  # forgotten, so starts with a full bucket again


def test_retry_after_header_is_never_zero() -> None:
    assert Decision(False, 0.0001).retry_after_header == 1
    assert Decision(False, 10.000000000000002).retry_after_header == 10


@pytest.mark.parametrize(("rate", "burst"), [(0, 1), (-1, 1), (1, 0)])
def test_rejects_nonsense_configuration(rate: float, burst: int) -> None:
    with pytest.raises(ValueError):
        CallerRateLimiter(rate_per_minute=rate, burst=burst)
