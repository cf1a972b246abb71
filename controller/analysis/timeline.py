"""The run cut into equal slices, and whether its error rate and p95 rise, fall or stay flat. Pure.

The trend rule: fit a least-squares line through a figure's slices that have a value (x = each
slice's middle, in seconds), take its change over the run (slope x the time from the first such
slice's middle to the last's) and divide by the figure's mean over those slices. Above
TREND_THRESHOLD (+20 % of the mean) it is `rising`, below -TREND_THRESHOLD `falling`, else `flat`;
also `flat` with fewer than MIN_TREND_SLICES slices with data (too few to fit a line) or a mean of 0
(a figure that stayed at zero). Relative to the mean, so one rule serves an error rate of 0.1 %
and a p95 of 800 ms; noise whose fitted line moves less than a fifth of the mean stays flat.
"""

from __future__ import annotations

from collections.abc import Sequence

from controller.analysis.models import Direction, Slice, Timeline, TrendFit, WindowFigures

DEFAULT_SLICES = 10
TREND_THRESHOLD = 0.2
MIN_TREND_SLICES = 3
TREND_RULE = (
    f"least-squares slope over the slices x the run's duration, relative to the mean: above "
    f"+{TREND_THRESHOLD:g} rising, below -{TREND_THRESHOLD:g} falling, else flat "
    f"(flat with fewer than {MIN_TREND_SLICES} slices with data)"
)
TREND_FIGURES = ("error_rate", "p95_ms")


def slice_windows(start: float, end: float, count: int) -> tuple[tuple[float, float], ...]:
    """[start, end] cut into `count` equal, adjacent windows (the last ends exactly at `end`)."""
    if count < 1 or end <= start:
        raise ValueError(f"cannot cut {start}..{end} into {count} slices")
    width = (end - start) / count
    return tuple(
        (start + i * width, end if i == count - 1 else start + (i + 1) * width) for i in range(count)
    )


def trend(points: Sequence[tuple[float, float | None]]) -> TrendFit:
    """The TREND_RULE over (time, value) points; a None value is a slice without data."""
    known = [(x, y) for x, y in points if y is not None]
    if len(known) < MIN_TREND_SLICES:
        return TrendFit(direction="flat", slices_with_data=len(known))
    xs, ys = [x for x, _ in known], [y for _, y in known]
    mean_x, mean_y = sum(xs) / len(xs), sum(ys) / len(ys)
    spread = sum((x - mean_x) ** 2 for x in xs)
    slope = sum((x - mean_x) * (y - mean_y) for x, y in known) / spread if spread else 0.0
    change = slope * (xs[-1] - xs[0])
    if mean_y == 0:
        return TrendFit(direction="flat", slices_with_data=len(known), mean=0.0, change=change)
    relative = change / abs(mean_y)
    direction: Direction = "flat"
    if relative > TREND_THRESHOLD:
        direction = "rising"
    elif relative < -TREND_THRESHOLD:
        direction = "falling"
    return TrendFit(
        direction=direction, slices_with_data=len(known), mean=mean_y, change=change, relative_change=relative
    )


def timeline(figures: Sequence[WindowFigures]) -> Timeline:
    """The slices as measured (in order), and the trend of each of TREND_FIGURES over them."""
    slices = tuple(
        Slice(
            start=f.start, end=f.end, requests=f.requests, rps=f.rps, p95_ms=f.p95_ms, error_rate=f.error_rate
        )
        for f in figures
    )
    fits = {
        name: trend([((s.start + s.end) / 2, getattr(s, name)) for s in slices]) for name in TREND_FIGURES
    }
    return Timeline(
        slices=slices,
        trend={name: fit.direction for name, fit in fits.items()},
        fit=fits,
        threshold=TREND_THRESHOLD,
        rule=TREND_RULE,
    )
