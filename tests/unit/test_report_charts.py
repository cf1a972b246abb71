"""report.html's charts: which series, how finely (analysis/charts.py), and the SVG they become
(reports/charts.py), checked by parsing the SVG and by pixel coordinates computed by hand."""

from __future__ import annotations

import math
import xml.etree.ElementTree as ET

from controller.analysis.charts import MAX_POINTS, chart, chart_queries, chart_step, on_grid, rate_window
from controller.analysis.models import Chart, ChartSeries
from controller.reports.charts import (
    HEIGHT,
    LEFT,
    PLOT_H,
    PLOT_W,
    TOP,
    Band,
    Marker,
    nice_step,
    segments,
    svg_chart,
    y_range,
)

SVG = "{http://www.w3.org/2000/svg}"


def _parse(svg: str) -> ET.Element:
    root = ET.fromstring(svg)
    assert root.tag == f"{SVG}svg"
    return root


def _paths(root: ET.Element) -> list[str]:
    return [p.attrib["d"] for p in root.iter(f"{SVG}path") if p.attrib.get("class") == "series"]


def _line(*points: tuple[float, float | None], name: str = "users") -> Chart:
    return Chart(key="users", title="Users", unit="users", series=(ChartSeries(name=name, points=points),))


def test_a_known_series_lands_on_known_pixels():
    # 0..10 users over 100 s: y axis 0..10 (step 2), x axis the 100 s across the plot width
    svg = svg_chart(_line((0, 0.0), (50, 5.0), (100, 10.0)), start=0, end=100)
    root = _parse(svg)
    bottom = TOP + PLOT_H
    expected = [(LEFT, bottom), (LEFT + PLOT_W / 2, bottom - PLOT_H / 2), (LEFT + PLOT_W, TOP)]
    assert _paths(root) == ["M" + "L".join(f"{x:.1f} {y:.1f}" for x, y in expected)]
    assert (LEFT, bottom, LEFT + PLOT_W, TOP) == (70, 244, 740, 48)  # the numbers above, by hand
    labels = [t.text for t in root.iter(f"{SVG}text")]
    assert [x for x in labels if x in {"0", "2", "4", "6", "8", "10"}] == ["0", "2", "4", "6", "8", "10"]
    assert "Users (users)" in labels and "users" in labels  # title and legend


def test_the_time_span_defaults_to_the_points_and_ticks_are_elapsed_time():
    root = _parse(svg_chart(_line((1000, 1.0), (1120, 2.0))))
    labels = {t.text for t in root.iter(f"{SVG}text")}
    assert {"0s", "30s", "1m", "1m 30s", "2m"} <= labels
    assert _paths(root)[0].startswith(f"M{LEFT:.1f} ")


def test_a_missing_sample_breaks_the_line_and_a_lone_point_is_a_dot():
    points = ((0, 1.0), (10, 2.0), (20, None), (30, 3.0), (40, 4.0), (50, math.nan), (60, 5.0))
    root = _parse(svg_chart(_line(*points), start=0, end=60))
    assert len(_paths(root)) == 2
    assert [c.attrib["class"] for c in root.iter(f"{SVG}circle")] == ["point"]
    assert segments(points) == [[(0, 1.0), (10, 2.0)], [(30, 3.0), (40, 4.0)], [(60, 5.0)]]


def test_no_data_is_a_chart_saying_so_not_an_exception():
    for empty in (Chart(key="x", title="X", unit="", series=()), _line((0, None), (1, None))):
        root = _parse(svg_chart(empty, start=0, end=10))
        assert "no data" in [t.text for t in root.iter(f"{SVG}text")]
        assert _paths(root) == []
    assert "no data" in svg_chart(_line((5, None)))  # no span at all either


def test_phases_are_bands_and_the_breaking_point_a_marked_line():
    bands = (Band(0, 25, "ramp_up"), Band(25, 100, "steady"))
    svg = svg_chart(
        _line((0, 0.0), (100, 10.0)), start=0, end=100, bands=bands, markers=(Marker(50, "breaking point"),)
    )
    root = _parse(svg)
    phases = [r for r in root.iter(f"{SVG}rect") if r.attrib.get("class") == "phase"]
    assert [(float(r.attrib["x"]), float(r.attrib["width"])) for r in phases] == [
        (LEFT, PLOT_W / 4),
        (LEFT + PLOT_W / 4, PLOT_W * 3 / 4),
    ]
    (marker,) = [line for line in root.iter(f"{SVG}line") if line.attrib.get("class") == "marker"]
    assert float(marker.attrib["x1"]) == LEFT + PLOT_W / 2
    assert "breaking point" in [t.text for t in root.iter(f"{SVG}text")]
    assert root.attrib["viewBox"].endswith(f" {HEIGHT}")


def test_hostile_names_are_escaped_in_the_svg():
    name = '</text><script>alert(1)</script>&"\x00'
    root = _parse(svg_chart(_line((0, 1.0), (1, 2.0), name=name), start=0, end=1))
    assert not list(root.iter(f"{SVG}script"))
    assert '</text><script>alert(1)</script>&"?' in [t.text for t in root.iter(f"{SVG}text")]


def test_y_axis_is_zero_based_and_rounded_up_to_a_nice_step():
    assert nice_step(10) == 2 and nice_step(0.3) == 0.1 and nice_step(7300) == 2000
    assert y_range([3.0, 97.0]) == (0.0, 100.0, 20.0)
    assert y_range([0.0, 0.0]) == (0.0, 1.0, 0.2)  # a flat zero still gets an axis
    assert y_range([-3.0, 4.0]) == (-4.0, 4.0, 2.0)


def test_the_step_keeps_every_chart_within_max_points():
    assert chart_step(0, 60) == 1.0  # a short run: every scrape
    for seconds in (60, 299, 300, 3600, 7 * 24 * 3600):
        step = chart_step(0, seconds)
        assert step == int(step) and len(on_grid((), start=0, end=seconds, step=step)) <= MAX_POINTS
    assert chart_step(0, 3600) == 13.0  # ceil(3600 / 299)
    assert (
        rate_window(1.0, 1.0) == "4s" and rate_window(13.0, 1.0) == "26s" and rate_window(1.0, 30.0) == "120s"
    )


def test_an_answer_is_laid_on_the_grid_with_gaps_where_samples_are_missing():
    grid = on_grid(((100.0, 1.0), (102.0, math.nan), (103.0, 4.0), (999.0, 9.0)), start=100, end=104, step=1)
    assert grid == ((100, 1.0), (101, None), (102, None), (103, 4.0), (104, None))


def test_chart_queries_cover_the_client_view_and_each_gauge():
    queries = chart_queries("r1", summary_peaks=("demo_pool_in_use",), step=2, scrape_interval_s=1)
    assert [q.key for q in queries] == ["users", "rps", "latency", "errors", "demo_pool_in_use"]
    latency = next(q for q in queries if q.key == "latency")
    assert [s.legend({}) for s in latency.series] == ["p50", "p95", "p99"]
    assert all('run_id="r1"' in s.promql for q in queries for s in q.series)
    assert "[4s]" in latency.series[1].promql and "histogram_quantile(0.95" in latency.series[1].promql


def test_a_chart_names_series_by_their_labels_in_legend_order():
    errors = next(
        q for q in chart_queries("r", summary_peaks=(), step=1, scrape_interval_s=1) if q.key == "errors"
    )
    answer = [({"status": "500"}, [(0.0, 1.0)]), ({"status": "429"}, [(1.0, 2.0)])]
    built = chart(errors, [answer], start=0, end=1, step=1)
    assert [(s.name, s.points) for s in built.series] == [
        ("429", ((0, None), (1, 2.0))),
        ("500", ((0, 1.0), (1, None))),
    ]
