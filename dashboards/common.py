"""What the dashboards share: variables, Prometheus targets, panel helpers and threshold lines.

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

from locust_workers.contract import GATE_THRESHOLD

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
    gates: Sequence[str] = (),
    gate_scale: float = 1.0,
    min_value: float | None = 0,
) -> timeseries.Panel:
    """A time series panel; `lines` (fixed values) and the run's gates on the gate metrics `gates`
    (queried, times `gate_scale` into the panel's unit) are drawn as dashed lines."""
    queries = list(targets)
    gate_queries = gate_targets(gates, scale=gate_scale) if gates else []
    panel = (
        timeseries.Panel()
        .title(title)
        .description(description + describe(lines) + describe_gates(gates))
        .datasource(DATASOURCE)
        .targets([*queries, *(query for _, query in gate_queries)])
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
    for index, (severity, _) in enumerate(gate_queries, start=len(queries)):
        # finish() names the queries A, B, ... in this order
        panel = panel.override_by_query(ref_id(index), dashed(COLORS[severity]))
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


# --- threshold lines ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Line:
    """One gate (or alert) drawn as a threshold line: value in the panel's unit."""

    gate: str
    value: float
    bound: str  # "max" or "min"
    severity: str
    text: str  # the threshold as a reader sees it, e.g. "1.2 s"
    labels: str
    source: str  # where the value comes from, as the repository names it


def gate_query(metrics: Iterable[str], severity: str, *, scale: float = 1.0) -> str:
    """The run's own thresholds of the gates on `metrics` (loadctl_gate_threshold, which the master
    publishes from the run's gate file), one series per gate and bound."""
    matchers = (f'metric=~"{"|".join(sorted(metrics))}"', f'severity="{severity}"')
    expr = f"max by (gate, bound) ({selector(GATE_THRESHOLD, *matchers)})"
    return expr if scale == 1.0 else f"{expr} * {scale:g}"


def gate_targets(metrics: Sequence[str], *, scale: float = 1.0) -> list[tuple[str, prometheus.Dataquery]]:
    """(severity, query) of the gate lines of a panel: one query per severity, for its colour."""
    return [
        (
            severity,
            target(gate_query(metrics, severity, scale=scale), f"{{{{gate}}}} {{{{bound}}}} ({severity})"),
        )
        for severity in COLORS
    ]


def dashed(color: str) -> list[dashboard.DynamicConfigValue]:
    """A threshold line's look: dashed, fixed colour, no fill."""
    return [
        dashboard.DynamicConfigValue(id_val="custom.lineStyle", value={"fill": "dash", "dash": [10, 10]}),
        dashboard.DynamicConfigValue(id_val="color", value={"mode": "fixed", "fixedColor": color}),
        dashboard.DynamicConfigValue(id_val="custom.fillOpacity", value=0),
        dashboard.DynamicConfigValue(id_val="custom.lineWidth", value=2),
    ]


def ref_id(index: int) -> str:
    return chr(ord("A") + index)


def describe_gates(metrics: Sequence[str]) -> str:
    if not metrics:
        return ""
    return (
        f" Dashed lines: the run's own gates on {', '.join(metrics)} ({GATE_THRESHOLD}, published by "
        "the run from its gate file; red fail, orange warn)."
    )


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
            query.ref_id = ref_id(index)
    return board


def relative(path: Path, root: Path) -> str:
    """`path` as the generated JSON names it: relative to the repository, so the output is the same
    on every machine."""
    try:
        return str(path.resolve().relative_to(root))
    except ValueError:
        return str(path)
