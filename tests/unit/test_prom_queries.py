"""The run-series PromQL builders (controller/prom/queries.py): one selector, one lookback rule."""

from __future__ import annotations

from controller.models import OVERRUN_GRACE_S
from controller.prom import queries
from controller.prom.queries import (
    RUN_LOOKBACK_MARGIN_S,
    final_quantile_query,
    final_totals_query,
    last_seen_query,
    range_s,
    run_lookback_s,
    run_selector,
    run_start_query,
    run_stop_query,
    stage_starts_query,
)

# What the readers looked back before there was one rule: read_timeline +60 s (live) and
# +180+60 s (after the run), read_last_seen +180+60 s, stats.csv +300 s, wait_for_stop_scraped +300+60 s.
MARGINS_USED_BEFORE = (60, 240, 300, 360)


def test_lookback_covers_the_plan_the_overrun_and_every_margin_used_before():
    assert run_lookback_s(600) == 600 + RUN_LOOKBACK_MARGIN_S
    assert RUN_LOOKBACK_MARGIN_S >= OVERRUN_GRACE_S + queries.AFTER_RUN_S
    assert all(margin <= RUN_LOOKBACK_MARGIN_S for margin in MARGINS_USED_BEFORE)
    assert run_lookback_s(59.2) == 60 + RUN_LOOKBACK_MARGIN_S  # rounded up, never short of the plan


def test_run_selector_names_the_run_and_any_further_matchers():
    assert run_selector("r-1") == '{run_id="r-1"}'
    assert run_selector("r-1", 'state="missing"') == '{run_id="r-1", state="missing"}'
    assert run_selector("r-1", "", 'name="/"', "") == '{run_id="r-1", name="/"}'


def test_range_is_whole_seconds_and_never_empty():
    assert range_s(100.0, 190.4) == "90s"
    assert range_s(100.0, 100.2) == "1s"


def test_start_stop_and_stages_look_back_by_the_one_rule():
    window = f"[{run_lookback_s(90)}s]"
    assert run_start_query("r", planned_s=90) == (
        f'max(last_over_time(locust_test_start_timestamp_seconds{{run_id="r"}}{window}))'
    )
    assert run_stop_query("r", planned_s=90) == (
        f'max(last_over_time(locust_test_stop_timestamp_seconds{{run_id="r"}}{window}))'
    )
    assert stage_starts_query("r", planned_s=90) == (
        f'last_over_time(locust_stage_start_timestamp_seconds{{run_id="r"}}{window})'
    )


def test_last_seen_is_a_one_second_subquery_over_the_same_lookback_pinned_at_a_time():
    assert last_seen_query("r", planned_s=90, at=1700000000.5) == (
        f'max(max_over_time(timestamp(locust_users{{run_id="r"}})[{run_lookback_s(90)}s:1s] '
        "@ 1700000000.500))"
    )


def test_final_totals_and_quantiles_read_the_last_value_of_each_series():
    window = f"[{run_lookback_s(30)}s]"
    assert final_totals_query("locust_requests_total", run_id="r", planned_s=30, by="method, name") == (
        f'sum by (method, name) (last_over_time(locust_requests_total{{run_id="r"}}{window}))'
    )
    # classic buckets or the native histogram (Prometheus 3): a run exposes one of the two
    assert final_quantile_query(0.95, run_id="r", planned_s=30, by="le") == (
        "histogram_quantile(0.95, sum by (le) "
        f'(last_over_time(locust_response_time_seconds_bucket{{run_id="r"}}{window}))'
        " or sum by (le) "
        f'(last_over_time(locust_response_time_seconds{{run_id="r"}}{window})))'
    )
