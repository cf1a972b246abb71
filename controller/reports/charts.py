"""A chart of the run (analysis.json `charts`) as an inline SVG string: axes, ticks, legend, the
phases as bands, the breaking point as a marked line (pure).

Why hand-written SVG rather than a chart library: report.html must open from a file with no
network, so a JS library (Chart.js, Plotly, uPlot) would have to be inlined into every report
(50 kB - 3.5 MB each) and a reader without JavaScript, or a mail client, would see nothing; a
Python plotting library (matplotlib) is a heavy dependency for line charts. Line charts over a
few hundred points are ~200 lines of SVG text: static, printable, diffable, searchable, and
testable by parsing (xml.etree) instead of by looking.
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from dataclasses import dataclass
from xml.sax.saxutils import escape, quoteattr

from controller.analysis.models import Chart

WIDTH, HEIGHT = 760, 280
LEFT, RIGHT, TOP, BOTTOM = 70, 20, 48, 36  # margins around the plot area, in pixels
PLOT_W, PLOT_H = WIDTH - LEFT - RIGHT, HEIGHT - TOP - BOTTOM
COLOURS = ("#1f77b4", "#d62728", "#2ca02c", "#ff7f0e", "#9467bd", "#8c564b", "#e377c2", "#17becf")
_XML_ILLEGAL = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ud800-\udfff\ufffe\uffff]")
_TIME_STEPS = (1, 2, 5, 10, 15, 30, 60, 120, 300, 600, 900, 1800, 3600, 7200, 10800, 21600, 43200, 86400)


@dataclass(frozen=True)
class Band:
    """A stretch of time shaded on every chart (a phase of the stage table)."""

    start: float
    end: float
    label: str


@dataclass(frozen=True)
class Marker:
    """A moment marked with a vertical line (the breaking point)."""

    at: float
    label: str


def text(value: str) -> str:
    """Text content safe in SVG/XML: escaped, and without the characters XML 1.0 cannot carry."""
    return escape(_XML_ILLEGAL.sub("?", value))


def attr(value: str) -> str:
    return quoteattr(_XML_ILLEGAL.sub("?", value))


def nice_step(span: float, count: int = 5) -> float:
    """A 1/2/5 x 10^n step that cuts `span` into about `count` intervals."""
    raw = span / count
    power = 10 ** math.floor(math.log10(raw))
    return next(m * power for m in (1, 2, 5, 10) if m * power >= raw)


def y_range(values: Sequence[float]) -> tuple[float, float, float]:
    """(low, high, tick step): from 0 (or the lowest negative value) to a whole number of steps."""
    low = min(0.0, *values) if values else 0.0
    high = max(values) if values else 1.0
    if high <= low:
        high = low + 1.0
    step = nice_step(high - low)
    return math.floor(low / step) * step, math.ceil(high / step) * step, step


def x_pixel(t: float, start: float, end: float) -> float:
    return LEFT + (t - start) / (end - start) * PLOT_W


def y_pixel(v: float, low: float, high: float) -> float:
    return TOP + PLOT_H - (v - low) / (high - low) * PLOT_H


def elapsed(seconds: float) -> str:
    """An x tick: time since the run's start."""
    seconds = round(seconds)
    hours, rest = divmod(seconds, 3600)
    minutes, secs = divmod(rest, 60)
    parts = [f"{n}{u}" for n, u in ((hours, "h"), (minutes, "m"), (secs, "s")) if n]
    return " ".join(parts) or "0s"


def tick_label(v: float) -> str:
    if abs(v) >= 1e6:
        return f"{v / 1e6:g}M"
    if abs(v) >= 1e3:
        return f"{v / 1e3:g}k"
    return f"{v:g}"


def segments(points: Sequence[tuple[float, float | None]]) -> list[list[tuple[float, float]]]:
    """The runs of consecutive points with a value: a None (no sample) breaks the line."""
    runs: list[list[tuple[float, float]]] = [[]]
    for t, v in points:
        if v is None or not math.isfinite(v):
            if runs[-1]:
                runs.append([])
        else:
            runs[-1].append((t, v))
    return [run for run in runs if run]


def _frame(chart: Chart) -> list[str]:
    title = f"{chart.title} ({chart.unit})" if chart.unit else chart.title
    return [
        f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {WIDTH} {HEIGHT}" width="100%" '
        f'role="img" class="chart" data-chart={attr(chart.key)} font-family="sans-serif" font-size="11">',
        f"<title>{text(title)}</title>",
        f'<rect x="0" y="0" width="{WIDTH}" height="{HEIGHT}" fill="#ffffff"/>',
        f'<text x="{LEFT}" y="16" font-size="13" font-weight="bold">{text(title)}</text>',
    ]


def _axes(start: float, end: float, low: float, high: float, step: float) -> list[str]:
    out = []
    ticks = round((high - low) / step)
    for i in range(ticks + 1):
        v = low + i * step
        y = y_pixel(v, low, high)
        out.append(f'<line x1="{LEFT}" y1="{y:.1f}" x2="{LEFT + PLOT_W}" y2="{y:.1f}" stroke="#e5e5e5"/>')
        out.append(f'<text x="{LEFT - 6}" y="{y + 4:.1f}" text-anchor="end">{text(tick_label(v))}</text>')
    t_step = next((s for s in _TIME_STEPS if (end - start) / s <= 8), _TIME_STEPS[-1])
    t = 0.0
    while start + t <= end + 1e-9:
        x = x_pixel(start + t, start, end)
        out.append(
            f'<line x1="{x:.1f}" y1="{TOP + PLOT_H}" x2="{x:.1f}" y2="{TOP + PLOT_H + 4}" stroke="#333"/>'
        )
        out.append(
            f'<text x="{x:.1f}" y="{TOP + PLOT_H + 16}" text-anchor="middle">{text(elapsed(t))}</text>'
        )
        t += t_step
    out.append(
        f'<path d="M{LEFT} {TOP}V{TOP + PLOT_H}H{LEFT + PLOT_W}" fill="none" stroke="#333" class="axes"/>'
    )
    return out


def _bands(bands: Sequence[Band], markers: Sequence[Marker], start: float, end: float) -> list[str]:
    out = []
    for i, band in enumerate(bands):
        x1, x2 = (x_pixel(min(max(t, start), end), start, end) for t in (band.start, band.end))
        shade = "#f3f6fa" if i % 2 == 0 else "#fafafa"
        out.append(
            f'<rect class="phase" x="{x1:.1f}" y="{TOP}" width="{max(0.0, x2 - x1):.1f}" height="{PLOT_H}" '
            f'fill="{shade}"><title>{text(band.label)}</title></rect>'
        )
        out.append(
            f'<text x="{x1 + 3:.1f}" y="{TOP + 11}" fill="#777" font-size="10">{text(band.label)}</text>'
        )
    for marker in markers:
        if start <= marker.at <= end:
            x = x_pixel(marker.at, start, end)
            out.append(
                f'<line class="marker" x1="{x:.1f}" y1="{TOP}" x2="{x:.1f}" y2="{TOP + PLOT_H}" '
                f'stroke="#c00" stroke-dasharray="4 3"/>'
            )
            out.append(f'<text x="{x + 3:.1f}" y="{TOP + 24}" fill="#c00">{text(marker.label)}</text>')
    return out


def _series(chart: Chart, start: float, end: float, low: float, high: float) -> list[str]:
    out = []
    for i, series in enumerate(chart.series):
        colour = COLOURS[i % len(COLOURS)]
        for run in segments(series.points):
            pixels = [(x_pixel(t, start, end), y_pixel(v, low, high)) for t, v in run]
            if len(pixels) == 1:
                x, y = pixels[0]
                out.append(f'<circle class="point" cx="{x:.1f}" cy="{y:.1f}" r="2" fill="{colour}"/>')
                continue
            d = "M" + "L".join(f"{x:.1f} {y:.1f}" for x, y in pixels)
            out.append(
                f'<path class="series" data-series={attr(series.name)} d="{d}" fill="none" '
                f'stroke="{colour}" stroke-width="1.5"/>'
            )
    return out


def _legend(chart: Chart) -> list[str]:
    out, x = [], float(LEFT)
    for i, series in enumerate(chart.series):
        colour = COLOURS[i % len(COLOURS)]
        out.append(f'<rect x="{x:.1f}" y="24" width="10" height="10" fill="{colour}"/>')
        out.append(f'<text class="legend" x="{x + 14:.1f}" y="33">{text(series.name)}</text>')
        x += 24 + 7 * min(len(series.name), 40)
    return out


def time_span(chart: Chart) -> tuple[float, float] | None:
    times = [t for s in chart.series for t, v in s.points if v is not None and math.isfinite(v)]
    return (min(times), max(times)) if times else None


def svg_chart(
    chart: Chart,
    *,
    start: float | None = None,
    end: float | None = None,
    bands: Sequence[Band] = (),
    markers: Sequence[Marker] = (),
) -> str:
    """The chart over [start, end] (default: its points' span); a chart without a single value is a
    frame saying "no data", never an error."""
    values = [v for s in chart.series for _, v in s.points if v is not None and math.isfinite(v)]
    span = time_span(chart)
    if span is not None:
        start = span[0] if start is None else start
        end = span[1] if end is None else end
    if not values or start is None or end is None:
        message = f'<text x="{WIDTH / 2}" y="{HEIGHT / 2}" text-anchor="middle" fill="#777">no data</text>'
        return "\n".join([*_frame(chart), message, "</svg>"])
    if end <= start:
        end = start + 1.0
    low, high, step = y_range(values)
    body = [
        *_bands(bands, markers, start, end),
        *_axes(start, end, low, high, step),
        *_series(chart, start, end, low, high),
        *_legend(chart),
    ]
    return "\n".join([*_frame(chart), *body, "</svg>"])
