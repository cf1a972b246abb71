"""The "loadctl / Load overview" board: what the load generator sent and saw during one run.

Everything comes from the exporter in the Locust master (the metric contract at the top of
locust_workers/exporter.py). Latencies are quantiles of the histogram merged over every worker,
as the latency gates judge them. The run's own gates are drawn on the panels they judge, from the
thresholds the run publishes (loadctl_gate_threshold), so a run judged by any gate file shows its lines.
"""

from __future__ import annotations

from grafana_foundation_sdk.builders.dashboard import Dashboard
from grafana_foundation_sdk.models import common

from dashboards.common import (
    Line,
    base,
    graph,
    rate,
    row,
    selector,
    single,
    target,
    timeline,
)

UID = "loadctl-load-overview"
TITLE = "loadctl / Load overview"
RULES_SOURCE = "charts/loadctl/rules/loadctl.rules.yaml"
ACTIVE_WORKERS = 'state=~"ready|spawning|running"'

REQUESTS = rate("locust_requests_total")
FAILURES = rate("locust_request_failures_total")
BUCKETS = rate("locust_response_time_seconds_bucket")
NATIVE = rate("locust_response_time_seconds")  # the native histogram (Prometheus 3), no le label
# (quantile, label, the gate metric drawn on its panel)
QUANTILES = (
    ("0.5", "p50", "latency_p50_ms"),
    ("0.95", "p95", "latency_p95_ms"),
    ("0.99", "p99", "latency_p99_ms"),
)


def error_ratio(by: str = "") -> str:
    """Failures / requests; 0 (not "no data") while nothing has failed."""
    total = f"sum by ({by}) " if by else "sum"
    return f"({total}({FAILURES}) or 0 * {total}({REQUESTS})) / {total}({REQUESTS})"


def quantile(q: str, by: str = "") -> str:
    labels = f"{by}, le" if by else "le"
    # classic buckets or the native histogram: a run exposes one of the two
    return f"histogram_quantile({q}, sum by ({labels}) ({BUCKETS}) or sum by ({labels}) ({NATIVE}))"


def build() -> Dashboard:
    board = base(
        uid=UID,
        title=TITLE,
        description=(
            "One loadctl run as the load generator saw it: phase, users, throughput, failures, "
            "latency per endpoint and the workers. Dashed lines: the gates of the run's own gate file."
        ),
    )
    board = (
        board.with_row(row("Run"))
        .with_panel(
            single(
                "Phase",
                "The stage-table phase at the end of the time range (locust_run_info).",
                f"max by (phase) ({selector('locust_run_info')})",
                legend="{{phase}}",
                text_mode=common.BigValueTextMode.NAME,
                instant=True,
            )
        )
        .with_panel(single("Users", "Users running now.", f"sum({selector('locust_users')})"))
        .with_panel(single("Requests/s", "All endpoints.", f"sum({REQUESTS})", unit="reqps"))
        .with_panel(
            single("Error ratio", "Failed requests / all requests.", error_ratio(), unit="percentunit")
        )
        .with_panel(single("p95", "All endpoints merged.", quantile("0.95"), unit="s"))
        .with_panel(
            single(
                "Workers",
                "Workers ready, spawning or running.",
                f"sum({selector('locust_workers', ACTIVE_WORKERS)})",
            )
        )
        .with_panel(
            timeline(
                "Phases",
                "When each phase of the stage table ran (locust_run_info).",
                f"max by (phase) ({selector('locust_run_info')})",
                "{{phase}}",
            )
        )
        .with_row(row("Throughput and errors"))
        .with_panel(
            graph(
                "Requests/s",
                "Requests completed per second, by endpoint (name) and in all.",
                [target(f"sum by (name) ({REQUESTS})", "{{name}}"), target(f"sum({REQUESTS})", "all")],
                unit="reqps",
                gates=["rps"],
            )
        )
        .with_panel(
            graph(
                "Failures/s by status",
                "Failed requests per second by HTTP status, or the exception's class when there was "
                "no response.",
                [target(f"sum by (status) ({FAILURES})", "{{status}}")],
                unit="reqps",
            )
        )
        .with_panel(
            graph(
                "Errors by endpoint and status",
                "Failed requests per second of each endpoint (name) by HTTP status or exception "
                "class: which endpoint fails, and how.",
                [target(f"sum by (name, status) ({FAILURES})", "{{name}} {{status}}")],
                unit="reqps",
            )
        )
        .with_panel(
            graph(
                "Error ratio",
                "Failed / all requests, by endpoint and in all.",
                [target(error_ratio("name"), "{{name}}"), target(error_ratio(), "all")],
                unit="percentunit",
                gates=["error_rate", "status_rate"],
            )
        )
        .with_row(row("Latency"))
    )
    for q, label, metric in QUANTILES:
        board = board.with_panel(
            graph(
                f"Response time {label}",
                f"The {label} response time by endpoint, and of all endpoints merged "
                "(locust_response_time_seconds, every worker's histogram merged).",
                [target(quantile(q, "name"), "{{name}}"), target(quantile(q), "all endpoints")],
                unit="s",
                gates=[metric],
                gate_scale=0.001,  # the gates' ms in the panel's seconds
            )
        )
    cpu_limit = Line("LoadctlWorkerCpuSaturated", 90, "max", "warn", "90 %", "", RULES_SOURCE)
    return (
        board.with_row(row("Load generator"))
        .with_panel(graph("Users", "Users running.", [target(f"sum({selector('locust_users')})", "users")]))
        .with_panel(
            graph(
                "Workers by state",
                "Locust workers by state; missing: no heartbeat for 3 s (the load is lower than planned).",
                [target(f"sum by (state) ({selector('locust_workers')})", "{{state}}")],
            )
        )
        .with_panel(
            graph(
                "Worker CPU",
                "CPU use of each worker process. Above 90 % the load generator is saturated and the "
                "run's latencies are suspect.",
                [target(f"max by (worker) ({selector('locust_worker_cpu_percent')})", "{{worker}}")],
                unit="percent",
                lines=[cpu_limit],
            )
        )
    )
