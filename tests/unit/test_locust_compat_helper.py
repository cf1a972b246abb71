"""The plain-Locust comparison helper must see differences (a comparison that cannot fail would
let an incompatibility through)."""

from __future__ import annotations

from tests.locust_compat import Outcome, share_differences


def outcome(**counts: int) -> Outcome:
    return Outcome(0, {("GET", name): n for name, n in counts.items()}, {}, "")


def test_the_same_traffic_in_other_totals_is_no_difference():
    assert share_differences(outcome(a=100, b=300), outcome(a=52, b=148)) == []


def test_a_request_only_one_side_sent_and_a_shifted_share_are_reported():
    problems = share_differences(outcome(a=100, b=100), outcome(a=40, b=140, c=20))
    assert problems == [
        "loadctl only: GET c",
        "GET a: share 50.0% plain vs 20.0% loadctl",
        "GET b: share 50.0% plain vs 70.0% loadctl",
    ]
