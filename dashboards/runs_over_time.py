"""The "loadctl / Runs over time" board: one point per run, the nightly-soak view.

Its data is the summary every `loadctl run --pushgateway URL` pushes after its verdict (the metric
contract in controller/pushgateway/summary.py), scraped from the Pushgateway with honor_labels. The
Pushgateway serves every run's group at every scrape, so a run's series are flat lines from its
push on; `first_seen` keeps each run's value only at the step where its group first appears, which
puts one point per run at the time it was pushed (Grafana's step is $__interval). The table lists
every run the Pushgateway holds, figures merged on run_id.
"""

from __future__ import annotations

from grafana_foundation_sdk.builders import common as common_builders
from grafana_foundation_sdk.builders import dashboard as dashboard_builders
from grafana_foundation_sdk.builders import prometheus, table, timeseries
from grafana_foundation_sdk.builders.dashboard import Dashboard
from grafana_foundation_sdk.models import common, dashboard
from grafana_foundation_sdk.models.prometheus import PromQueryFormat

from controller.pushgateway import summary as pushed
from dashboards.common import DATASOURCE, board, graph, row, target

UID = "loadctl-runs-over-time"
TITLE = "loadctl / Runs over time"
RUNS = f'job="{pushed.JOB}",profile=~"$profile",schedule=~"$schedule"'
BY_RUN = pushed.GROUPING_LABEL
# Verdict colours, as `loadctl run` prints them (controller/cli/render.py)
VERDICT_COLORS = {
    "pass": "green",
    "no_gates": "green",
    "warn": "yellow",
    "interrupted": "yellow",
    "skipped": "blue",
    "fail": "red",
    "error": "red",
    "inconclusive": "purple",
}


def runs(metric: str, *matchers: str) -> str:
    """`metric{job="loadctl",profile=~"$profile",schedule=~"$schedule",...}`."""
    return f"{metric}{{{','.join((RUNS, *matchers))}}}"


def first_seen(metric: str, *matchers: str, where: str = "") -> str:
    """The runs' series only at the step where each run's group first shows (its push)."""
    series = runs(metric, *matchers)
    return f"({series}{where} unless on ({BY_RUN}) {series} offset $__interval)"


def latest(metric: str, *matchers: str) -> str:
    """Each run's last value within the dashboard's time range."""
    return f"last_over_time({runs(metric, *matchers)}[$__range])"


def _filter(name: str, label: str) -> dashboard_builders.QueryVariable:
    return (
        dashboard_builders.QueryVariable(name)
        .label(label)
        .description(f"The pushed runs' {name} label (all: every {name}, a run by hand's empty one too).")
        .datasource(DATASOURCE)
        .query(f"label_values({pushed.VERDICT}, {name})")
        .refresh(dashboard.VariableRefresh.ON_TIME_RANGE_CHANGED)
        .sort(dashboard.VariableSort.ALPHABETICAL_ASC)
        .multi(True)
        .include_all(True)
        .all_value(".*")
    )


def _gate_variable() -> dashboard_builders.QueryVariable:
    return (
        dashboard_builders.QueryVariable("gate")
        .label("Gate")
        .description("Gates of the pushed runs; one panel each.")
        .datasource(DATASOURCE)
        .query(f'label_values({pushed.GATE_VALUE}{{job="{pushed.JOB}"}}, gate)')
        .refresh(dashboard.VariableRefresh.ON_TIME_RANGE_CHANGED)
        .sort(dashboard.VariableSort.ALPHABETICAL_ASC)
        .multi(True)
        .include_all(True)
        .all_value(".*")
    )


def trend(
    title: str, description: str, targets: list[prometheus.Dataquery], *, unit: str
) -> timeseries.Panel:
    """One point per run, joined into a line per profile and schedule."""
    return (
        graph(title, description, targets, unit=unit, width=8)
        .draw_style(common.GraphDrawStyle.LINE)
        .show_points(common.VisibilityMode.ALWAYS)
        .point_size(6)
        .span_nulls(True)
    )


def per_run(metric: str) -> str:
    return f"max by (profile, schedule) ({first_seen(metric)})"


def verdicts_panel() -> timeseries.Panel:
    overrides = [
        dashboard_builders.DashboardFieldConfigSourceOverrides()
        .matcher(dashboard.MatcherConfig(id_val="byName", options=verdict))
        .properties(
            [dashboard.DynamicConfigValue(id_val="color", value={"mode": "fixed", "fixedColor": color})]
        )
        for verdict, color in VERDICT_COLORS.items()
    ]
    return (
        graph(
            "Verdicts",
            "One point per run at the time it pushed its summary, on the row of its verdict "
            "(the number of runs with that verdict at that time).",
            [target(f"count by (verdict) ({first_seen(pushed.VERDICT, where=' == 1')})", "{{verdict}}")],
            width=24,
        )
        .draw_style(common.GraphDrawStyle.POINTS)
        .point_size(10)
        .overrides(list(overrides))
    )


def _table_query(expr: str) -> prometheus.Dataquery:
    return target(expr, instant=True).format(PromQueryFormat.TABLE)


def runs_table() -> table.Panel:
    figures = (
        ("exit code", pushed.EXIT_CODE),
        ("duration", pushed.DURATION),
        ("requests", pushed.REQUESTS),
        ("error ratio", pushed.ERROR_RATIO),
        ("requests/s", pushed.THROUGHPUT),
        ("p95 (s)", pushed.LATENCY_P95),
        ("p99 (s)", pushed.LATENCY_P99),
        ("ended", pushed.TIMESTAMP),
    )
    verdicts = f"max by ({BY_RUN}, profile, schedule, verdict) ({latest(pushed.VERDICT)} == 1)"
    queries = [_table_query(verdicts)]
    queries += [_table_query(f"max by ({BY_RUN}) ({latest(metric)})") for _, metric in figures]
    renames = {f"Value #{chr(ord('B') + i)}": name for i, (name, _) in enumerate(figures)}
    return (
        table.Panel()
        .title("Runs")
        .description("Every run the Pushgateway holds: its verdict and headline figures (loadctl history).")
        .datasource(DATASOURCE)
        .targets(list(queries))
        .span(24)
        .height(9)
        .with_transformation(dashboard.DataTransformerConfig(id_val="merge", options={}))
        .with_transformation(
            dashboard.DataTransformerConfig(
                id_val="organize",
                options={"excludeByName": {"Time": True, "Value #A": True}, "renameByName": renames},
            )
        )
        .sort_by([common_builders.TableSortByFieldState().display_name("ended").desc(True)])
    )


def gate_panel() -> timeseries.Panel:
    gate = 'gate=~"$gate"'
    return (
        trend(
            "Gate $gate",
            "The gate's value per run (points) and its thresholds (max/min, as the gate file had them "
            "for that run).",
            [
                target(f"max by (gate) ({first_seen(pushed.GATE_VALUE, gate)})", "value"),
                target(f"max by (gate, bound) ({first_seen(pushed.GATE_THRESHOLD, gate)})", "{{bound}}"),
            ],
            unit="short",
        )
        .repeat("gate")
        .repeat_direction("h")
        .max_per_row(3)
    )


def build() -> Dashboard:
    return (
        board(
            uid=UID,
            title=TITLE,
            description="Every run that pushed its summary (loadctl run --pushgateway): verdicts, "
            "latency, errors, throughput and gates per run, for nightly and scheduled runs.",
        )
        .time("now-30d", "now")
        .refresh("1m")
        .with_variable(_filter("profile", "Profile"))
        .with_variable(_filter("schedule", "Schedule"))
        .with_variable(_gate_variable())
        .with_row(row("Verdicts"))
        .with_panel(verdicts_panel())
        .with_panel(runs_table())
        .with_row(row("Trends"))
        .with_panel(
            trend(
                "Response time p95 and p99 per run",
                "Locust's whole-run percentiles of each run (stats.csv's Aggregated row).",
                [
                    target(per_run(pushed.LATENCY_P95), "p95 {{profile}} {{schedule}}"),
                    target(per_run(pushed.LATENCY_P99), "p99 {{profile}} {{schedule}}"),
                ],
                unit="s",
            )
        )
        .with_panel(
            trend(
                "Error ratio per run",
                "Failed / all requests of each run.",
                [target(per_run(pushed.ERROR_RATIO), "{{profile}} {{schedule}}")],
                unit="percentunit",
            )
        )
        .with_panel(
            trend(
                "Requests/s per run",
                "Each run's average throughput.",
                [target(per_run(pushed.THROUGHPUT), "{{profile}} {{schedule}}")],
                unit="reqps",
            )
        )
        .with_row(row("Gates"))
        .with_panel(gate_panel())
    )
