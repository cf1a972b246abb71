"""What both dashboards share: variables, Prometheus targets, panel helpers and gate thresholds.

Every query selects one run with `run_id="$run_id"` (the exporter, the probes and the local
Prometheus' scrape config put run_id on every series) and windows rates with `$__rate_interval`,
which Grafana sizes from the data source's scrape interval.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

from grafana_foundation_sdk.builders import common as common_builders
from grafana_foundation_sdk.builders import dashboard as dashboard_builders
from grafana_foundation_sdk.builders import prometheus, stat, statetimeline, timeseries
from grafana_foundation_sdk.models import common, dashboard

from controller.gates.models import GateFile

DATASOURCE = dashboard.DataSourceRef(type_val="prometheus", uid="${datasource}")
GRAFANA = dashboard.DataSourceRef(type_val="grafana", uid="-- Grafana --")
RUN = 'run_id="$run_id"'
RATE = "$__rate_interval"
REFRESH = "5s"
TAG = "loadctl"
# Gate severities -> threshold line colours
COLORS = {"fail": "red", "warn": "orange"}


def selector(metric: str, *matchers: str) -> str:
    """`metric{run_id="$run_id",...}`."""
    return f"{metric}{{{','.join((RUN, *matchers))}}}"


def rate(metric: str, *matchers: str) -> str:
    return f"rate({selector(metric, *matchers)}[{RATE}])"


def target(expr: str, legend: str = "", *, instant: bool = False) -> prometheus.Dataquery:
    query = prometheus.Dataquery().expr(expr)
    if legend:
        query = query.legend_format(legend)
    return query.instant() if instant else query.range()


def board(*, uid: str, title: str, description: str) -> dashboard_builders.Dashboard:
    """A dashboard with the data source variable, 5 s refresh and the link to the other boards."""
    return (
        dashboard_builders.Dashboard(title)
        .uid(uid)
        .description(description)
        .tags([TAG, "locust", "load-testing"])
        .editable()
        .tooltip(dashboard.DashboardCursorSync.CROSSHAIR)
        .refresh(REFRESH)
        .time("now-30m", "now")
        .timezone(common.TimeZoneBrowser)
        .with_variable(
            dashboard_builders.DatasourceVariable("datasource").label("Data source").type("prometheus")
        )
        .link(
            dashboard_builders.DashboardLink("loadctl dashboards")
            .type(dashboard.DashboardLinkType.DASHBOARDS)
            .tags([TAG])
            .as_dropdown(True)
            .include_vars(True)
            .keep_time(True)
        )
    )


def base(*, uid: str, title: str, description: str) -> dashboard_builders.Dashboard:
    """A board of one run: the run variable, and the run's annotations."""
    run_variable = (
        dashboard_builders.QueryVariable("run_id")
        .label("Run")
        .description("The run's id (loadctl run --run-id); every panel shows this run only.")
        .datasource(DATASOURCE)
        .query("label_values(locust_run_info, run_id)")
        .refresh(dashboard.VariableRefresh.ON_TIME_RANGE_CHANGED)
        .sort(dashboard.VariableSort.ALPHABETICAL_DESC)
    )
    # `loadctl run` annotates start, phase changes, abort and end with these tags (controller/grafana)
    events = (
        dashboard_builders.AnnotationQuery()
        .name("loadctl run events")
        .datasource(GRAFANA)
        .enable(True)
        .icon_color("rgba(0, 211, 255, 1)")
        .target(dashboard_builders.AnnotationTarget().type("tags").tags([TAG, "run_id:$run_id"]).limit(100))
    )
    return board(uid=uid, title=title, description=description).with_variable(run_variable).annotation(events)


def _legend() -> common_builders.VizLegendOptions:
    return (
        common_builders.VizLegendOptions()
        .display_mode(common.LegendDisplayMode.LIST)
        .placement(common.LegendPlacement.BOTTOM)
        .show_legend(True)
    )


def graph(
    title: str,
    description: str,
    targets: Sequence[prometheus.Dataquery],
    *,
    unit: str = "short",
    width: int = 8,
    height: int = 8,
    lines: Sequence[Line] = (),
    min_value: float | None = 0,
) -> timeseries.Panel:
    """A time series panel; `lines` are drawn as dashed threshold lines."""
    panel = (
        timeseries.Panel()
        .title(title)
        .description(description + describe(lines))
        .datasource(DATASOURCE)
        .targets(list(targets))
        .unit(unit)
        .span(width)
        .height(height)
        .line_width(1)
        .fill_opacity(10)
        .legend(_legend())
        .tooltip(
            common_builders.VizTooltipOptions()
            .mode(common.TooltipDisplayMode.MULTI)
            .sort(common.SortOrder.DESCENDING)
        )
    )
    if min_value is not None:
        panel = panel.min(min_value)
    if lines:
        panel = panel.thresholds(threshold_steps(lines)).thresholds_style(
            common_builders.GraphThresholdsStyleConfig().mode(common.GraphThresholdsStyleMode.DASHED)
        )
    return panel


def single(
    title: str,
    description: str,
    expr: str,
    *,
    unit: str = "short",
    legend: str = "",
    text_mode: common.BigValueTextMode = common.BigValueTextMode.AUTO,
    width: int = 4,
    instant: bool = False,
) -> stat.Panel:
    """A stat panel with the last value of one query."""
    return (
        stat.Panel()
        .title(title)
        .description(description)
        .datasource(DATASOURCE)
        .with_target(target(expr, legend, instant=instant))
        .unit(unit)
        .span(width)
        .height(4)
        .text_mode(text_mode)
        .graph_mode(common.BigValueGraphMode.AREA)
        .color_mode(common.BigValueColorMode.NONE)
        .reduce_options(common_builders.ReduceDataOptions().calcs(["lastNotNull"]).values(False))
    )


def timeline(title: str, description: str, expr: str, legend: str, *, width: int = 24) -> statetimeline.Panel:
    """A state timeline: one row per series, lit while the series is 1."""
    return (
        statetimeline.Panel()
        .title(title)
        .description(description)
        .datasource(DATASOURCE)
        .with_target(target(expr, legend))
        .span(width)
        .height(5)
        .show_value(common.VisibilityMode.NEVER)
        .merge_values(True)
        .legend(_legend().show_legend(False))
        .thresholds(
            dashboard_builders.ThresholdsConfig()
            .mode(dashboard.ThresholdsMode.ABSOLUTE)
            .steps(
                [dashboard.Threshold(value=None, color="red"), dashboard.Threshold(value=1, color="green")]
            )
        )
        .color_scheme(dashboard_builders.FieldColor().mode(dashboard.FieldColorModeId.THRESHOLDS))
    )


def row(title: str) -> dashboard_builders.Row:
    return dashboard_builders.Row(title)


# --- gate thresholds ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Line:
    """One gate (or alert) drawn as a threshold line: value in the panel's unit."""

    gate: str
    value: float
    bound: str  # "max" or "min"
    severity: str
    text: str  # the threshold as a reader sees it, e.g. "1.2 s"
    labels: str
    source: str  # the gate file, as the repository names it


def gate_lines(
    gate_file: GateFile, metrics: Iterable[str], *, source: str, scale: float = 1.0, unit: str = ""
) -> list[Line]:
    """Absolute max/min thresholds of the gates on `metrics` (relative *_change gates have none)."""
    wanted = set(metrics)
    lines = []
    for gate in gate_file.gates:
        if gate.metric not in wanted:
            continue
        for bound, value in (("max", gate.max), ("min", gate.min)):
            if value is None:
                continue
            shown = value * scale
            if unit == "percentunit":
                text = f"{shown * 100:g} %"
            else:
                text = f"{shown:g}{'' if unit.startswith('/') else ' '}{unit}".rstrip()
            if gate.metric == "status_rate":
                text += f" of status {gate.status}"
            lines.append(Line(gate.name, shown, bound, gate.severity, text, gate.labels, source))
    return lines


def threshold_steps(lines: Sequence[Line]) -> dashboard_builders.ThresholdsConfig:
    """Grafana threshold steps: a transparent base, then one step per distinct gate value
    (coloured by the most severe gate at that value)."""
    by_value: dict[float, str] = {}
    for line in lines:
        color = COLORS[line.severity]
        if by_value.get(line.value) != COLORS["fail"]:
            by_value[line.value] = color
    steps = [dashboard.Threshold(value=None, color="transparent")]
    steps += [dashboard.Threshold(value=value, color=color) for value, color in sorted(by_value.items())]
    return dashboard_builders.ThresholdsConfig().mode(dashboard.ThresholdsMode.ABSOLUTE).steps(steps)


def describe(lines: Sequence[Line]) -> str:
    if not lines:
        return ""
    parts = [
        f"{line.gate}: {line.bound} {line.text}"
        + (f" ({line.labels})" if line.labels else "")
        + (" [warn]" if line.severity == "warn" else "")
        for line in lines
    ]
    return f" Dashed lines, from {lines[0].source}: " + "; ".join(parts) + "."


# --- finishing -----------------------------------------------------------------------------------


def finish(board: dashboard.Dashboard) -> dashboard.Dashboard:
    """Number the panels (1, 2, ...) and name each panel's queries A, B, ... (the SDK leaves both unset)."""
    for number, panel in enumerate(board.panels or [], start=1):
        panel.id_val = number
        for index, query in enumerate(getattr(panel, "targets", None) or []):
            query.ref_id = chr(ord("A") + index)
    return board


def relative(path: Path, root: Path) -> str:
    """`path` as the generated JSON names it: relative to the repository, so the output is the same
    on every machine."""
    try:
        return str(path.resolve().relative_to(root))
    except ValueError:
        return str(path)
