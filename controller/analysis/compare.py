"""Two runs side by side: every headline, phase and endpoint figure, its change, and whether the
change stands out from the runs' own noise. Pure: run.json, analysis.json and stats.csv rows in.

The noise rule: a run's noise for a figure is the relative spread (population stdev / mean) of that
figure's per-slice values in its analysis.json `timeline` (rps for requests and rps, p95 for every
latency, error rate for error rate and failures); a figure whose slices are all 0 has no spread
(0); fewer than 2 slices with a value: unknown. The two runs' spreads add in quadrature
(sqrt(a^2 + b^2), the relative spread of a ratio of two independent values); one unknown counts as
0, both unknown leave the noise unknown. A change is flagged when |change| exceeds both the noise
and FLAG_FLOOR; a figure going from 0 to something (errors appearing) is flagged too.

The spread of the slices includes every change of load the stage table makes, so a staged run
counts as noisy: only a change larger than its own swings is flagged (a conservative rule).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from statistics import fmean, pstdev

from controller.analysis.models import Analysis, Comparison, ComparisonRow, PhaseFigures
from controller.models import RunRecord, Stage

FLAG_FLOOR = 0.05
MIN_NOISE_SLICES = 2
RULE = (
    f"flagged when |change| > max(noise, {FLAG_FLOOR:.0%}), or a figure went from 0 to non-zero; "
    "noise = sqrt(a^2 + b^2), a and b each run's stdev/mean of the figure's per-slice values in its "
    "timeline (rps for requests and rps, p95 for latencies, error rate for error rate and failures)"
)
FIGURES = ("requests", "failures", "error_rate", "rps", "p50_ms", "p95_ms", "p99_ms")
# Which timeline figure stands in for the noise of each compared figure.
NOISE_SOURCE = {
    "requests": "rps",
    "rps": "rps",
    "p50_ms": "p95_ms",
    "p95_ms": "p95_ms",
    "p99_ms": "p95_ms",
    "error_rate": "error_rate",
    "failures": "error_rate",
}
# stats.csv columns (Locust's own, or rebuilt from Prometheus with the same names: prom/stats.py)
_STATS_COLUMNS = {
    "requests": "Request Count",
    "failures": "Failure Count",
    "rps": "Requests/s",
    "p50_ms": "50%",
    "p95_ms": "95%",
    "p99_ms": "99%",
}
AGGREGATED = "Aggregated"

Row = Mapping[str, str]
Figures = dict[str, float | None]


@dataclass(frozen=True)
class RunFigures:
    """One run as the comparison sees it: run.json, analysis.json (None: the run has none), stats.csv."""

    record: RunRecord
    analysis: Analysis | None
    stats: Sequence[Row]


def relative_spread(values: Sequence[float | None]) -> float | None:
    """stdev / |mean| of the known values: 0 when they are all 0, None with fewer than 2."""
    known = [v for v in values if v is not None]
    if len(known) < MIN_NOISE_SLICES:
        return None
    mean = fmean(known)
    if mean == 0:
        return 0.0 if all(v == 0 for v in known) else None
    return pstdev(known) / abs(mean)


def run_noise(analysis: Analysis | None) -> dict[str, float | None]:
    """Each timeline figure's relative spread over the run's slices (all unknown without a timeline)."""
    slices = analysis.timeline.slices if analysis is not None and analysis.timeline is not None else ()
    return {name: relative_spread([getattr(s, name) for s in slices]) for name in set(NOISE_SOURCE.values())}


def combined_noise(a: float | None, b: float | None) -> float | None:
    if a is None and b is None:
        return None
    return math.hypot(a or 0.0, b or 0.0)


def relative_change(baseline: float | None, current: float | None) -> float | None:
    if baseline is None or current is None or baseline == 0:
        return None
    return (current - baseline) / abs(baseline)


def is_flagged(baseline: float | None, current: float | None, noise: float | None) -> bool:
    if baseline == 0 and current is not None and current != 0:
        return True
    change = relative_change(baseline, current)
    return change is not None and abs(change) > max(noise or 0.0, FLAG_FLOOR)


def _float(text: str | None) -> float | None:
    try:
        value = float(text) if text not in (None, "", "N/A") else None
    except ValueError:
        return None
    return value if value is None or math.isfinite(value) else None


def stats_figures(row: Row) -> Figures:
    """One stats.csv row's figures; error_rate = failures / requests (None without requests)."""
    figures = {name: _float(row.get(column)) for name, column in _STATS_COLUMNS.items()}
    requests, failures = figures["requests"], figures["failures"]
    figures["error_rate"] = failures / requests if requests and failures is not None else None
    return figures


def headline_figures(run: RunFigures) -> Figures:
    """The Aggregated row of stats.csv; without one, run.json's totals only."""
    for row in run.stats:
        if row.get("Name") == AGGREGATED:
            return stats_figures(row)
    requests, failures = run.record.requests, run.record.failures
    return {
        "requests": None if requests is None else float(requests),
        "failures": None if failures is None else float(failures),
        "error_rate": failures / requests if requests and failures is not None else None,
    }


def endpoint_figures(run: RunFigures) -> dict[str, Figures]:
    """Each endpoint's figures, keyed "endpoint <method> <name>", in stats.csv order."""
    return {
        f"endpoint {row.get('Type', '')} {row.get('Name', '')}": stats_figures(row)
        for row in run.stats
        if row.get("Name") != AGGREGATED
    }


def _phase_key(phase: PhaseFigures) -> str:
    return f"phase {phase.stage}:{phase.phase}"


def phase_figures(run: RunFigures) -> dict[str, Figures]:
    """Each phase's figures, keyed "phase <stage index>:<name>" (the same stage of the same table)."""
    phases = run.analysis.phases if run.analysis is not None else ()
    return {_phase_key(p): {name: getattr(p, name) for name in FIGURES} for p in phases}


def _rows(
    section: str, baseline: Figures, current: Figures, noise: Callable[[str], float | None]
) -> list[ComparisonRow]:
    rows = []
    for figure in FIGURES:
        if figure not in baseline and figure not in current:
            continue
        before, after = baseline.get(figure), current.get(figure)
        rows.append(
            ComparisonRow(
                section=section,
                figure=figure,
                baseline=before,
                current=after,
                change=relative_change(before, after),
                noise=noise(figure),
                flagged=is_flagged(before, after, noise(figure)),
            )
        )
    return rows


def _sections(
    baseline: dict[str, Figures], current: dict[str, Figures], noise: Callable[[str], float | None]
) -> list[ComparisonRow]:
    """Rows of every key of either run: the baseline's order, then what only the current run has."""
    keys = list(dict.fromkeys([*baseline, *current]))
    return [row for key in keys for row in _rows(key, baseline.get(key, {}), current.get(key, {}), noise)]


def compare_runs(baseline: RunFigures, current: RunFigures, *, baseline_dir: str) -> Comparison:
    """The side-by-side of `current` against `baseline`, with what makes them not like for like."""
    noise_a, noise_b = run_noise(baseline.analysis), run_noise(current.analysis)

    def noise(figure: str) -> float | None:
        source = NOISE_SOURCE[figure]
        return combined_noise(noise_a[source], noise_b[source])

    rows = [
        *_rows("headline", headline_figures(baseline), headline_figures(current), noise),
        *_sections(phase_figures(baseline), phase_figures(current), noise),
        *_sections(endpoint_figures(baseline), endpoint_figures(current), noise),
    ]
    found = differences(baseline.record, current.record)
    return Comparison(
        baseline_run_id=baseline.record.run_id,
        baseline_dir=baseline_dir,
        current_run_id=current.record.run_id,
        comparable=not found,
        differences=found,
        rule=RULE,
        rows=tuple(rows),
    )


def _stage_table(stages: Sequence[Stage]) -> str:
    rows = ", ".join(f"{s.phase} {s.duration:g}s {s.users}u@{s.spawn_rate:g}/s" for s in stages)
    return f"[{rows}]"


def _phase_names(record: RunRecord) -> str:
    return ", ".join(p.phase for p in record.phases) or "none"


def _recorded(record: RunRecord, name: str) -> object:
    """A run.json field older runs may not have (None or empty when absent, as the model defaults it)."""
    return getattr(record, name, None)


def differences(baseline: RunRecord, current: RunRecord) -> tuple[str, ...]:
    """What run.json says makes two runs not like for like; a field only one run records is skipped."""
    found = []
    for name in ("locustfile", "host"):
        a, b = getattr(baseline, name), getattr(current, name)
        if a != b:
            found.append(f"{name}: {a} vs {b}")
    stages_a, stages_b = _recorded(baseline, "stages"), _recorded(current, "stages")
    if isinstance(stages_a, tuple) and isinstance(stages_b, tuple) and stages_a and stages_b:
        if stages_a != stages_b:
            found.append(f"stage table: {_stage_table(stages_a)} vs {_stage_table(stages_b)}")
    else:  # an older run.json: the phases it went through and the planned duration stand in
        if _phase_names(baseline) != _phase_names(current):
            found.append(f"phases: {_phase_names(baseline)} vs {_phase_names(current)}")
        if baseline.planned_duration_s != current.planned_duration_s:
            found.append(
                f"planned duration: {baseline.planned_duration_s:g}s vs {current.planned_duration_s:g}s"
            )
    weights_a, weights_b = _recorded(baseline, "user_weights"), _recorded(current, "user_weights")
    if weights_a is not None and weights_b is not None and weights_a != weights_b:
        found.append(f"user weights: {weights_a or 'equal'} vs {weights_b or 'equal'}")
    return tuple(found)
