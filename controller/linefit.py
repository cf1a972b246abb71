"""A least-squares line through (time, value) samples, and the growth per hour it implies. Pure.

One computation for two readers: the analysis' drift (analysis/drift.py) and the `drift_per_hour`
gate (gates/runner.py) both fit here, so a gate judges exactly the number analysis.json reports.
It lives at the bottom of the layers because gates may not import the analysis.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

SECONDS_PER_HOUR = 3600.0
MIN_FIT_SAMPLES = 3  # two points always fit a line exactly: a fit quality needs a third


@dataclass(frozen=True)
class LineFit:
    """value ~ slope * (t - t0) + intercept, over samples from t0 to t1."""

    samples: int
    t0: float
    t1: float
    slope: float  # per second
    intercept: float  # the fitted value at t0
    r_squared: float  # 1: the line explains every sample; an exactly constant series is 1 too

    def at(self, t: float) -> float:
        return self.intercept + self.slope * (t - self.t0)

    @property
    def slope_per_hour(self) -> float:
        return self.slope * SECONDS_PER_HOUR

    @property
    def growth_ratio_per_hour(self) -> float | None:
        """slope_per_hour / the fitted value at the first sample; None when that value is <= 0
        (a gauge fitted at zero has no relative growth)."""
        start = self.intercept
        return self.slope_per_hour / start if start > 0 else None

    @property
    def fitted_growth(self) -> float:
        """How much the fitted line rose from the first sample to the last (not extrapolated)."""
        return self.slope * (self.t1 - self.t0)


def fit_line(points: Sequence[tuple[float, float]]) -> LineFit | None:
    """The least-squares line through `points` (sorted by time or not); None with fewer than
    MIN_FIT_SAMPLES points or all at one time."""
    if len(points) < MIN_FIT_SAMPLES:
        return None
    ordered = sorted(points)
    t0, t1 = ordered[0][0], ordered[-1][0]
    xs = [t - t0 for t, _ in ordered]  # relative times: unix seconds squared lose precision
    ys = [v for _, v in ordered]
    mean_x, mean_y = sum(xs) / len(xs), sum(ys) / len(ys)
    spread = sum((x - mean_x) ** 2 for x in xs)
    if spread == 0:
        return None
    slope = sum((x - mean_x) * (y - mean_y) for x, y in zip(xs, ys, strict=True)) / spread
    intercept = mean_y - slope * mean_x
    total = sum((y - mean_y) ** 2 for y in ys)
    residual = sum((y - (intercept + slope * x)) ** 2 for x, y in zip(xs, ys, strict=True))
    r_squared = 1.0 if total == 0 else max(0.0, 1.0 - residual / total)
    return LineFit(samples=len(ordered), t0=t0, t1=t1, slope=slope, intercept=intercept, r_squared=r_squared)
