"""PromQL over one run's own series: how they are selected, how far back a run is looked for, and
the queries that find its start, stop, stages, last scrape and final totals. Pure: strings out.

Every series of a run carries its run_id (the exporter sets it; prom/config.py adds it to probes
and extra targets), so `run_selector` is the one way a query names a run. A cluster's Prometheus
holds many runs and many targets: a query that is not scoped by run_id reads someone else's data.

One lookback rule. The queries here take `last_over_time`/`max` over a window that ends now (or at
a given evaluation time) and must reach back to the run's last sample, for a run known only by its
planned duration: `run_lookback_s` is that window for every such query (the readers in
results.py, health.py, stats.py and client.py used to pick +60 s, +240 s, +300 s and +360 s).

Queries pinned to a known window (`@ end` over [start, end]: gates, generator health, peaks) need no
lookback and only share the selector and `range_s`.
"""

from __future__ import annotations

import math

from controller.models import OVERRUN_GRACE_S
from locust_workers.contract import (
    RESPONSE_TIME_SECONDS,
    STAGE_START_TIMESTAMP_SECONDS,
    TEST_START_TIMESTAMP_SECONDS,
    TEST_STOP_TIMESTAMP_SECONDS,
    USERS,
)

# After the load stops the controller still reads the run back before the last of these queries
# (k8s: stats.csv rebuilt from Prometheus): the final-scrape wait (two scrape intervals, at least
# 5 s: runs.final_scrape_timeout), the gates, a baseline's Prometheus starting, the generator
# checks. 3 minutes covers that with room to spare for a cluster Prometheus scraping every 30 s.
AFTER_RUN_S = 180.0
RUN_LOOKBACK_MARGIN_S = math.ceil(OVERRUN_GRACE_S + AFTER_RUN_S)
BUCKETS = f"{RESPONSE_TIME_SECONDS}_bucket"


def run_lookback_s(planned_s: float) -> int:
    """How far back to look for the series of a run planned to last `planned_s` seconds.

    The planned duration, plus OVERRUN_GRACE_S (the longest a run may outlast its plan before the
    controller stops it), plus AFTER_RUN_S (the longest the controller keeps reading it afterwards):
    the whole life of a run, from a moment at most AFTER_RUN_S after it ended. This margin (360 s)
    is the widest any caller used, and wider is safe for all of them: every query selects one
    run_id (unique per run) and takes the newest sample (`last_over_time`) or a maximum of
    timestamps, so a longer window only adds older samples of the same run, which never change an
    answer a shorter window found; it only finds answers a shorter one missed. The price is a few
    more samples read per query (and steps of `last_seen_query`'s 1 s subquery).
    """
    return math.ceil(planned_s) + RUN_LOOKBACK_MARGIN_S


def run_selector(run_id: str, *matchers: str) -> str:
    """`{run_id="x"}`, plus any further matchers: run_selector(x, 'state="missing"'); empty ones skipped."""
    return "{" + ", ".join([f'run_id="{run_id}"', *(m for m in matchers if m)]) + "}"


def range_s(start: float, end: float) -> str:
    """A PromQL range covering [start, end] in whole seconds (at least 1 s): `90s`."""
    return f"{max(1, round(end - start))}s"


def samples_between(selector: str, start: float, end: float) -> str:
    """A range vector of `selector`'s raw samples in (start, end], to the millisecond. Prometheus 3
    made ranges left-open, (t - r, t], which is exactly this; 2.x's are closed, [t - r, t], so the
    caller drops a sample at `start` itself (keep_after). A range rounded to whole seconds would
    lose, on 3.x, a sample sitting exactly on its start."""
    return f"{selector}[{max(1, round((end - start) * 1000))}ms] @ {end:.3f}"


def keep_after(start: float, points: tuple[tuple[float, float], ...]) -> tuple[tuple[float, float], ...]:
    """`points` after `start`: samples_between()'s result the same on Prometheus 2.x and 3.x."""
    return tuple(point for point in points if point[0] > start)


def _lookback(planned_s: float) -> str:
    return f"[{run_lookback_s(planned_s)}s]"


def run_start_query(run_id: str, *, planned_s: float) -> str:
    """When Locust started the run's test (unix time), as its exporter reported it."""
    return f"max(last_over_time({TEST_START_TIMESTAMP_SECONDS}{run_selector(run_id)}{_lookback(planned_s)}))"


def run_stop_query(run_id: str, *, planned_s: float) -> str:
    """When the run's test stopped; no answer while it runs (or when its master died first)."""
    return f"max(last_over_time({TEST_STOP_TIMESTAMP_SECONDS}{run_selector(run_id)}{_lookback(planned_s)}))"


def stage_starts_query(run_id: str, *, planned_s: float) -> str:
    """One series per stage that started, labelled stage and phase, valued with its start time."""
    return f"last_over_time({STAGE_START_TIMESTAMP_SECONDS}{run_selector(run_id)}{_lookback(planned_s)})"


def locustfile_end_query(metric: str, run_id: str, *, planned_s: float) -> str:
    """The run's last sample of one of the locustfile's own end metrics (exit code asked, its stop),
    labels kept: they carry the locustfile's message and the caller."""
    return f"last_over_time({metric}{run_selector(run_id)}{_lookback(planned_s)})"


def last_seen_query(run_id: str, *, planned_s: float, at: float) -> str:
    """When the run's exporter was last scraped, as of `at`: the end of a run that never stopped."""
    return (
        f"max(max_over_time(timestamp({USERS}{run_selector(run_id)})[{run_lookback_s(planned_s)}s:1s] "
        f"@ {at:.3f}))"
    )


def final_totals_query(metric: str, *, run_id: str, planned_s: float, by: str) -> str:
    """The run's last value of each series of a counter (or histogram part), summed by `by`."""
    return f"sum by ({by}) (last_over_time({metric}{run_selector(run_id)}{_lookback(planned_s)}))"


def final_quantile_query(quantile: float, *, run_id: str, planned_s: float, by: str) -> str:
    """A response-time quantile over the run's final histogram; `by` must include `le`.

    Classic buckets `or` the native histogram (Prometheus 3): a run exposes one of the two, and
    `by (..., le)` on a native histogram, which has no le label, just groups by the rest.
    """
    buckets = final_totals_query(BUCKETS, run_id=run_id, planned_s=planned_s, by=by)
    native = final_totals_query(RESPONSE_TIME_SECONDS, run_id=run_id, planned_s=planned_s, by=by)
    return f"histogram_quantile({quantile}, {buckets} or {native})"


def final_latency_sum_query(*, run_id: str, planned_s: float, by: str) -> str:
    """The run's total response time in seconds, from the classic `_sum` or the native histogram."""
    classic = final_totals_query(f"{RESPONSE_TIME_SECONDS}_sum", run_id=run_id, planned_s=planned_s, by=by)
    native = final_totals_query(RESPONSE_TIME_SECONDS, run_id=run_id, planned_s=planned_s, by=by)
    return f"{classic} or histogram_sum({native})"
