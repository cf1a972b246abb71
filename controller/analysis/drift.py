"""Drift (does a gauge grow through the run: a leak?) and pool stability (are connections back to
their pre-load level after it?). Pure: (time, value) samples in, verdicts out.

The drift rule: after the warm-up, a least-squares line through each gauge's samples
(controller/linefit.py, the same fit the `drift_per_hour` gate judges). A leak needs all three:
  - sustained growth: r^2 >= LEAK_MIN_R_SQUARED. A single jump half-way through a flat series
    fits a line with r^2 = 0.75 at best (a step elsewhere, less), so 0.8 tells a climb from a step
    (a cache filling once, a pool growing to its size) while a noisy steady climb still passes;
  - fast enough: growth_ratio_per_hour > LEAK_MIN_GROWTH_PER_HOUR (5 %/h; the fitted value at the
    warm-up's end doubles within a day, what a soak exists to catch; a healthy process after its
    warm-up moves far less);
  - real, not extrapolated: the fitted line rose by more than LEAK_MIN_FITTED_GROWTH (2 %) of its
    value at the warm-up's end within the window itself. A 90-s run whose RSS wobbles by 1 % can
    fit a steep line that means 40 %/h when extrapolated; 2 % is twice that wobble.
A growth that meets all three within a window shorter than LEAK_MIN_WINDOW_S (10 min) is
`growing`, not `leak`: in the 70 s after a 90-s demo's ramp a healthy Python service's RSS still
climbs 4 % while its allocator warms up, fitting r^2 0.96; a window that short cannot tell warm-up
from a leak (a soak can). Fewer than MIN_FIT_SAMPLES samples: no_data. Anything else: stable.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence

from controller.analysis.models import Drift, DriftReport, DriftVerdict, PoolStability, PoolVerdict
from controller.gates.compile import drift_labels
from controller.linefit import MIN_FIT_SAMPLES, LineFit, fit_line
from controller.models import PhaseWindow, Stage

LEAK_MIN_R_SQUARED = 0.8
LEAK_MIN_GROWTH_PER_HOUR = 0.05
LEAK_MIN_FITTED_GROWTH = 0.02
LEAK_MIN_WINDOW_S = 600.0
WARMUP_SHARE = 0.1  # a single-stage run's default warm-up: this share of the run
DRIFT_RULE = (
    f"after the warm-up, a least-squares line through each gauge's samples; leak when the growth "
    f"is sustained (r^2 >= {LEAK_MIN_R_SQUARED:g}), faster than {LEAK_MIN_GROWTH_PER_HOUR:.0%} of "
    f"the fitted value at the warm-up's end per hour, and the fitted line rose by more than "
    f"{LEAK_MIN_FITTED_GROWTH:.0%} within the window; growing when all three hold over less than "
    f"{LEAK_MIN_WINDOW_S / 60:g} min (too short to tell warm-up from a leak); no_data with fewer "
    f"than {MIN_FIT_SAMPLES} samples; else stable"
)

Points = Sequence[tuple[float, float]]
Labelled = tuple[dict[str, str], list[tuple[float, float]]]  # a series' labels and samples


def warmup_end(
    *,
    started: float,
    ended: float,
    stages: Sequence[Stage],
    phases: Sequence[PhaseWindow],
    warmup: float | None,
) -> float:
    """When drift starts being watched: `warmup` after the start if the profile sets it, else the
    end of the first stage as it ran (several stages), else WARMUP_SHARE of the run; never after
    `ended`."""
    if warmup is not None:
        end = started + warmup
    elif len(stages) > 1 and phases:
        end = min(phases, key=lambda p: p.start).end
    else:
        end = started + WARMUP_SHARE * (ended - started)
    return min(end, ended)


def drift(metric: str, labels: Mapping[str, str], points: Points) -> Drift:
    """One gauge's drift over `points` (the samples after the warm-up, up to the load's stop)."""
    values = [v for _, v in sorted(points)]
    fit = fit_line(points)
    growth = fit.growth_ratio_per_hour if fit else None
    leak = (
        fit is not None
        and fit.r_squared >= LEAK_MIN_R_SQUARED
        and growth is not None
        and growth > LEAK_MIN_GROWTH_PER_HOUR
        and fit.fitted_growth > LEAK_MIN_FITTED_GROWTH * fit.intercept
    )
    return Drift(
        metric=metric,
        labels=drift_labels(labels),
        samples=len(values),
        first=values[0] if values else None,
        last=values[-1] if values else None,
        peak=max(values, default=None),
        slope_per_hour=fit.slope_per_hour if fit else None,
        growth_ratio_per_hour=growth,
        r_squared=fit.r_squared if fit else None,
        verdict=_verdict(fit, leak=leak),
    )


def _verdict(fit: LineFit | None, *, leak: bool) -> DriftVerdict:
    if fit is None:
        return "no_data"
    if not leak:
        return "stable"
    return "leak" if fit.t1 - fit.t0 >= LEAK_MIN_WINDOW_S else "growing"


def drift_report(warmup_end_at: float, gauges: Sequence[Drift]) -> DriftReport:
    return DriftReport(warmup_end=warmup_end_at, rule=DRIFT_RULE, gauges=tuple(gauges))


# --- pool stability ---

POOL_LEAK_MIN = 1.0  # one connection busy at the sampling instant is a background task, not a leak
POOL_LEAK_SHARE = 0.1  # of the load's rise (peak - before): a big pool may settle a little slower
# `after` is the first sample this long after the stop: requests in flight when Locust stopped
# still hold their connection (or slot) for up to a response time; a leaked one holds it for good.
# The first such sample, not the last: the live read-back and `loadctl report` later see the same.
POOL_SETTLE_S = 5.0
POOL_RULE = (
    f"leak when the pool {POOL_SETTLE_S:g} s after the load stopped is above its level before the "
    f"load by more than max({POOL_LEAK_MIN:g}, {POOL_LEAK_SHARE:.0%} of the load's rise above it); "
    f"`before` is the last sample before the load started, else the first sample (before_at after "
    f"the start: the pool was first scraped during the load), `after` the first sample at least "
    f"{POOL_SETTLE_S:g} s after the stop; exhausted: in use / capacity reached 1"
)
# A local run's Prometheus applies its scrape targets some seconds after it starts (target updates
# are throttled to every 5 s), and the load starts as soon as Locust's workers connect: a local
# run usually has no pre-load sample, and `before` is the first one, a few seconds into the ramp.


def summed_over(series: Iterable[tuple[Mapping[str, str], Points]], label: str | None) -> dict[str, Labelled]:
    """Raw series keyed by what tells them apart (drift_labels), those differing only in `label`
    summed sample by sample (a probe's connections by state are scraped together, at one time)."""
    grouped: dict[str, tuple[dict[str, str], dict[float, float]]] = {}
    for labels, points in series:
        kept = {k: v for k, v in drift_labels(labels).items() if k != label}
        _, values = grouped.setdefault(str(kept), (kept, {}))
        for t, v in points:
            values[t] = values.get(t, 0.0) + v
    return {key: (labels, sorted(values.items())) for key, (labels, values) in grouped.items()}


def pool_stability(
    metric: str,
    labels: Mapping[str, str],
    *,
    around_start: Points,
    after_stop: Points,
    peak: float | None,
    started: float,
    stopped: float,
    utilisation_peak: float | None,
) -> PoolStability:
    """Connections (or slots) in use before the load (samples `around_start`), at their peak over
    it, and after it (samples `after_stop`); `utilisation_peak`: the highest in use / capacity
    over the load, None when unknown."""
    ordered = sorted(around_start)
    before = ([p for p in ordered if p[0] < started] or ordered[:1])[-1:]
    after = [p for p in sorted(after_stop) if p[0] >= stopped + POOL_SETTLE_S][:1]
    level = before[0][1] if before else None
    final = after[0][1] if after else None
    verdict: PoolVerdict = "no_data"
    if level is not None and final is not None:
        rise = max(0.0, (level if peak is None else peak) - level)
        verdict = "leak" if final - level > max(POOL_LEAK_MIN, POOL_LEAK_SHARE * rise) else "stable"
    return PoolStability(
        metric=metric,
        labels=drift_labels(labels),
        before=level,
        peak=peak,
        after=final,
        exhausted=None if utilisation_peak is None else utilisation_peak >= 1.0,
        verdict=verdict,
        rule=POOL_RULE,
        before_at=before[0][0] if before else None,
        after_at=after[0][0] if after else None,
    )
