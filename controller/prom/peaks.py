"""Peaks of the system under test over a run: the pool, crawler and probe gauges a profile names.

The seeds watched pool usage and crawler figures by hand during a run and wrote their peaks into
the report; a profile's `summary_peaks:` lists the gauges whose run maximum the end-of-run summary,
run.json and report.md show. `read_peaks` does the I/O; `peak_label` is pure.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import httpx

from controller.models import Peak
from controller.prom.client import Sample, query, query_samples
from controller.prom.queries import range_s, run_selector

# Labels that say where a series was scraped from, not what it measures.
SOURCE_LABELS = frozenset({"__name__", "run_id", "job", "instance", "probe", "type"})


def peak_label(labels: Mapping[str, str]) -> str:
    """`{domain="food.example.com"}` for the labels that tell series of one metric apart."""
    shown = sorted((k, v) for k, v in labels.items() if k not in SOURCE_LABELS)
    return "{" + ", ".join(f'{k}="{v}"' for k, v in shown) + "}" if shown else ""


def read_peaks(
    client: httpx.Client, *, run_id: str, metrics: Sequence[str], start: float, end: float
) -> tuple[Peak, ...]:
    """Each metric's maximum over [start, end], per series, with its value when the load started
    (`_initial`) and its last one in the window; metrics without data are left out."""
    peaks = []
    for metric in metrics:
        series, window = f"{metric}{run_selector(run_id)}", range_s(start, end)
        initial = _initial(client, series=series, start=start, end=end)
        final = _by_label(query(client=client, promql=f"last_over_time({series}[{window}] @ {end:.3f})"))
        promql = f"max_over_time({series}[{window}] @ {end:.3f})"
        for sample in sorted(query(client=client, promql=promql), key=lambda s: peak_label(s.labels)):
            label = peak_label(sample.labels)
            peaks.append(
                Peak(
                    metric=metric,
                    labels=label,
                    value=sample.value,
                    initial=initial.get(label),
                    final=final.get(label),
                )
            )
    return tuple(peaks)


def _by_label(samples: Sequence[Sample]) -> dict[str, float]:
    return {peak_label(s.labels): s.value for s in samples}


# A local run's Prometheus first scrapes a few seconds after the load starts (it applies new targets
# after a delay), so "initial" falls back to the first sample this far into the run.
INITIAL_LOOKAHEAD_S = 300.0


def _initial(client: httpx.Client, *, series: str, start: float, end: float) -> dict[str, float]:
    """Each series' last sample at `start`, else its first one within INITIAL_LOOKAHEAD_S of it."""
    found = _by_label(query(client=client, promql=series, at=start))
    until = min(end, start + INITIAL_LOOKAHEAD_S)
    for first in query_samples(client=client, promql=f"{series}[{range_s(start, until)}] @ {until:.3f}"):
        if first.points:
            found.setdefault(peak_label(first.labels), first.points[0][1])
    return found
