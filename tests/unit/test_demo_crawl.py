"""Crawl simulation and per-domain bookkeeping of the demo target's harvest endpoint."""

from __future__ import annotations

import random

import pytest

from examples.demo_target.crawl import (
    OTHER_DOMAIN,
    CrawlLedger,
    Outcome,
    domain_bias,
    domain_of,
    simulate_attempt,
)


@pytest.mark.parametrize(
    ("url", "domain"),
    [
        ("https://example.org/r/1", "example.org"),
        ("http://Recipes.Example.COM:8080/x?y=1", "recipes.example.com"),
        ("ftp://example.org/r/1", None),
        ("not a url", None),
        ("https://", None),
        (42, None),
        (None, None),
    ],
)
def test_domain_of(url: object, domain: str | None) -> None:
    assert domain_of(url) == domain


def test_outcomes_are_reproducible_and_vary_by_domain() -> None:
    def run(domain: str) -> list[Outcome]:
        rng = random.Random(7)
        return [simulate_attempt(rng, domain) for _ in range(500)]

    assert run("a.example") == run("a.example")
    assert set(run("a.example")) == set(Outcome)
    assert 0.5 <= domain_bias("a.example") <= 2.0
    assert domain_bias("a.example") != domain_bias("b.example")


def test_rates_are_over_finished_jobs() -> None:
    ledger = CrawlLedger()
    assert ledger.record("d", Outcome.OK, 1) is Outcome.OK
    assert ledger.record("d", Outcome.PARSER_FALLBACK, 1) is Outcome.PARSER_FALLBACK
    assert ledger.record("d", Outcome.FAILED, 1) is Outcome.FAILED
    assert ledger.record("d", Outcome.OK, 1) is Outcome.OK

    stats = ledger.stats("d")
    assert stats.finished == 4
    assert stats.parser_fallback_rate == pytest.approx(0.25)
    assert stats.failure_rate == pytest.approx(0.25)


def test_retryable_is_pending_until_retried_and_fails_on_the_last_attempt() -> None:
    ledger = CrawlLedger(max_attempts=2)
    assert ledger.record("d", Outcome.RETRYABLE, 1) is Outcome.RETRYABLE
    assert ledger.stats("d").retry_pending == 1
    assert ledger.stats("d").finished == 0

    # The retry fails transiently again, but it was the last attempt.
    assert ledger.record("d", Outcome.RETRYABLE, 2) is Outcome.FAILED
    stats = ledger.stats("d")
    assert (stats.retry_pending, stats.finished, stats.failures) == (0, 1, 1)


def test_dropped_retry_counts_as_failure() -> None:
    ledger = CrawlLedger()
    ledger.record("d", Outcome.RETRYABLE, 1)
    ledger.retry_dropped("d")
    stats = ledger.stats("d")
    assert (stats.retry_pending, stats.failures, stats.failure_rate) == (0, 1, 1.0)


def test_empty_domain_has_zero_rates() -> None:
    stats = CrawlLedger().stats("never-seen")
    assert (stats.parser_fallback_rate, stats.failure_rate) == (0.0, 0.0)


def test_domain_labels_are_capped() -> None:
    ledger = CrawlLedger(max_domains=2)
    assert ledger.label_for("a") == "a"
    assert ledger.label_for("b") == "b"
    assert ledger.label_for("c") == OTHER_DOMAIN
    assert ledger.label_for("a") == "a"
