"""stats.csv and failures.csv rows rebuilt from the exporter's series, for runs whose master pod is gone.

In a cluster the master's own CSVs live on an emptyDir that disappears with its pod, and the
restricted ServiceAccount may not exec into it. The exporter's counters and histograms hold the
same totals, so the rows are rebuilt from Prometheus with Locust's column names (report.md reads
them unchanged); the backend writes them through controller/rundir.py. Percentiles come from
histogram buckets (any layout: `le` is read from the series), within the bound of the run's
latency_buckets (histogram.py); min, max and content size are not exported and stay empty.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import httpx

from controller.prom.client import query, query_value
from controller.prom.queries import (
    final_latency_sum_query,
    final_quantile_query,
    final_totals_query,
    run_start_query,
    run_stop_query,
)

LATENCY_SUM = "locust_response_time_seconds_sum"
PERCENTILES = (
    ("50%", 0.5),
    ("66%", 0.66),
    ("75%", 0.75),
    ("80%", 0.8),
    ("90%", 0.9),
    ("95%", 0.95),
    ("98%", 0.98),
    ("99%", 0.99),
    ("99.9%", 0.999),
    ("99.99%", 0.9999),
    ("100%", 1.0),
)
STATS_COLUMNS = (
    "Type",
    "Name",
    "Request Count",
    "Failure Count",
    "Median Response Time",
    "Average Response Time",
    "Min Response Time",
    "Max Response Time",
    "Average Content Size",
    "Requests/s",
    "Failures/s",
    *(label for label, _ in PERCENTILES),
)
FAILURE_COLUMNS = ("Method", "Name", "Error", "Occurrences")
Key = tuple[str, str]  # (method, name); ("", "Aggregated") for the total row


def _ms(seconds: float | None) -> str:
    return "" if seconds is None or seconds != seconds else str(round(seconds * 1000))


def stats_rows(
    *,
    requests: Mapping[Key, float],
    failures: Mapping[Key, float],
    latency_sum_s: Mapping[Key, float],
    quantiles_s: Mapping[Key, Mapping[float, float]],
    duration_s: float,
) -> list[dict[str, str]]:
    """Locust-shaped rows, endpoints sorted by name then method, the Aggregated row last. Pure."""
    keys = sorted((k for k in requests if k[1] != "Aggregated"), key=lambda k: (k[1], k[0]))
    rows = []
    for key in [*keys, ("", "Aggregated")]:
        count = requests.get(key, 0.0)
        failed = failures.get(key, 0.0)
        average = latency_sum_s.get(key, 0.0) / count if count else None
        by_q = quantiles_s.get(key, {})
        row = {
            "Type": key[0],
            "Name": key[1],
            "Request Count": str(round(count)),
            "Failure Count": str(round(failed)),
            "Median Response Time": _ms(by_q.get(0.5)),
            "Average Response Time": "" if average is None else f"{average * 1000:.2f}",
            "Min Response Time": "",
            "Max Response Time": "",
            "Average Content Size": "",
            "Requests/s": f"{count / duration_s:.2f}" if duration_s > 0 else "",
            "Failures/s": f"{failed / duration_s:.2f}" if duration_s > 0 else "",
        }
        row.update({label: _ms(by_q.get(q)) for label, q in PERCENTILES})
        rows.append(row)
    return rows


def failure_rows(failures: Mapping[tuple[str, str, str], float]) -> list[dict[str, str]]:
    """(method, name, status) -> failures.csv rows, most frequent first. Pure."""
    ordered = sorted(failures.items(), key=lambda item: (-item[1], item[0]))
    return [
        {"Method": method, "Name": name, "Error": f"status {status}", "Occurrences": str(round(count))}
        for (method, name, status), count in ordered
    ]


@dataclass(frozen=True)
class StatsTables:
    """stats.csv and failures.csv as rows (Locust's columns), read while Prometheus still runs."""

    stats: list[dict[str, str]]  # STATS_COLUMNS
    failures: list[dict[str, str]]  # FAILURE_COLUMNS


def read_stats_from_prometheus(client: httpx.Client, *, run_id: str, planned_s: float) -> StatsTables | None:
    """The run's final totals as stats.csv and failures.csv rows; None if the run has none."""

    def totals(metric: str, by: str) -> dict[tuple[str, ...], float]:
        promql = final_totals_query(metric, run_id=run_id, planned_s=planned_s, by=by)
        if metric == LATENCY_SUM:  # classic _sum, or histogram_sum() of a native histogram
            promql = final_latency_sum_query(run_id=run_id, planned_s=planned_s, by=by)
        samples = query(client=client, promql=promql)
        return {tuple(s.labels.get(label, "") for label in by.split(", ")): s.value for s in samples}

    requests = totals("locust_requests_total", "method, name")
    if not requests:
        return None
    failures_by_status = totals("locust_request_failures_total", "method, name, status")
    latency_sum = totals(LATENCY_SUM, "method, name")
    quantiles: dict[Key, dict[float, float]] = {}
    for _, q in PERCENTILES:
        for by, key_of in (("method, name, le", None), ("le", ("", "Aggregated"))):
            promql = final_quantile_query(q, run_id=run_id, planned_s=planned_s, by=by)
            for sample in query(client=client, promql=promql):
                key = key_of or (sample.labels.get("method", ""), sample.labels.get("name", ""))
                quantiles.setdefault(key, {})[q] = sample.value
    failures: dict[Key, float] = {}
    for (method, name, _status), count in failures_by_status.items():
        failures[(method, name)] = failures.get((method, name), 0.0) + count
    two = {(k[0], k[1]): v for k, v in requests.items()}
    two[("", "Aggregated")] = sum(two.values())
    failures[("", "Aggregated")] = sum(failures.values())
    sums = {(k[0], k[1]): v for k, v in latency_sum.items()}
    sums[("", "Aggregated")] = sum(sums.values())
    start = query_value(client=client, promql=run_start_query(run_id, planned_s=planned_s))
    stop = query_value(client=client, promql=run_stop_query(run_id, planned_s=planned_s))
    duration = (stop - start) if start is not None and stop is not None else 0.0
    rows = stats_rows(
        requests=two, failures=failures, latency_sum_s=sums, quantiles_s=quantiles, duration_s=duration
    )
    by_status = {(k[0], k[1], k[2]): v for k, v in failures_by_status.items()}
    return StatsTables(stats=rows, failures=failure_rows(by_status))
