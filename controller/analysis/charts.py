"""Which series report.html charts, and how finely (pure): the PromQL of each chart over the run's
own series, the step that keeps every chart within MAX_POINTS points, and a range query's answer
laid on that grid (a missing sample is None, so the line breaks instead of lying).

Charts: users, throughput (requests and failures per second), p50/p95/p99 of successful requests
(the latency gates' default), failures per second by status, and each system-under-test gauge the
profile names in `summary_peaks`.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

from controller.analysis.models import Chart, ChartSeries
from controller.prom.peaks import peak_label
from controller.prom.queries import run_selector
from locust_workers.contract import REQUEST_FAILURES_TOTAL, REQUESTS_TOTAL, RESPONSE_TIME_SECONDS, USERS

MAX_POINTS = 300
MIN_STEP_S = 1.0
RATE_SCRAPES = 4  # a rate() window holds at least this many scrapes, so a late scrape leaves no gap

Legend = Callable[[Mapping[str, str]], str]


@dataclass(frozen=True)
class SeriesQuery:
    promql: str
    legend: Legend  # the series' name in the legend, from its labels


@dataclass(frozen=True)
class ChartQuery:
    key: str
    title: str
    unit: str
    series: tuple[SeriesQuery, ...]


def chart_step(start: float, end: float, *, max_points: int = MAX_POINTS) -> float:
    """Whole seconds between points, at least MIN_STEP_S, so [start, end] has at most max_points."""
    return max(MIN_STEP_S, float(math.ceil((end - start) / (max_points - 1))))


def rate_window(step: float, scrape_interval_s: float) -> str:
    """rate()'s window: two steps (every sample counted), and at least RATE_SCRAPES scrapes."""
    return f"{math.ceil(max(2 * step, RATE_SCRAPES * scrape_interval_s))}s"


def _named(name: str) -> Legend:
    return lambda _labels: name


def _by(label: str) -> Legend:
    return lambda labels: labels.get(label, "") or "(none)"


def _gauge(metric: str) -> Legend:
    return lambda labels: peak_label(labels) or metric


def chart_queries(
    run_id: str, *, summary_peaks: Sequence[str], step: float, scrape_interval_s: float
) -> tuple[ChartQuery, ...]:
    sel, window = run_selector(run_id), rate_window(step, scrape_interval_s)
    # classic buckets or the native histogram (Prometheus 3): a run exposes one of the two
    buckets = (
        f"sum by (le) (rate({RESPONSE_TIME_SECONDS}_bucket{sel}[{window}]))"
        f" or sum(rate({RESPONSE_TIME_SECONDS}{sel}[{window}]))"
    )
    latency = tuple(
        SeriesQuery(f"1000 * histogram_quantile({q}, {buckets})", _named(name))
        for q, name in ((0.5, "p50"), (0.95, "p95"), (0.99, "p99"))
    )
    charts = [
        ChartQuery("users", "Users", "users", (SeriesQuery(f"sum({USERS}{sel})", _named("users")),)),
        ChartQuery(
            "rps",
            "Throughput",
            "req/s",
            (
                SeriesQuery(f"sum(rate({REQUESTS_TOTAL}{sel}[{window}]))", _named("requests")),
                SeriesQuery(f"sum(rate({REQUEST_FAILURES_TOTAL}{sel}[{window}]))", _named("failures")),
            ),
        ),
        ChartQuery("latency", "Latency of successful requests", "ms", latency),
        ChartQuery(
            "errors",
            "Failures by status",
            "errors/s",
            (SeriesQuery(f"sum by (status) (rate({REQUEST_FAILURES_TOTAL}{sel}[{window}]))", _by("status")),),
        ),
    ]
    charts += [
        ChartQuery(metric, metric, "", (SeriesQuery(f"{metric}{sel}", _gauge(metric)),))
        for metric in summary_peaks
    ]
    return tuple(charts)


def on_grid(
    points: Sequence[tuple[float, float]], *, start: float, end: float, step: float
) -> tuple[tuple[float, float | None], ...]:
    """A range query's points at start + k * step (k = 0..), None where there is none or NaN."""
    count = math.floor((end - start) / step + 1e-9) + 1
    values: list[float | None] = [None] * count
    for t, v in points:
        k = round((t - start) / step)
        if 0 <= k < count and math.isfinite(v):
            values[k] = v
    return tuple((start + k * step, values[k]) for k in range(count))


def chart(
    query: ChartQuery,
    answers: Sequence[Sequence[tuple[Mapping[str, str], Sequence[tuple[float, float]]]]],
    *,
    start: float,
    end: float,
    step: float,
) -> Chart:
    """One chart from the answers to its series queries (one list of (labels, points) per query),
    series in legend order."""
    series = [
        ChartSeries(name=spec.legend(labels), points=on_grid(points, start=start, end=end, step=step))
        for spec, answer in zip(query.series, answers, strict=True)
        for labels, points in sorted(answer, key=lambda item: spec.legend(item[0]))
    ]
    return Chart(key=query.key, title=query.title, unit=query.unit, series=tuple(series))
