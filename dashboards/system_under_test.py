"""The "loadctl / System under test" board: what the target did under the load of one run.

Its sources: the demo target's own /metrics (demo_pool_*), the crawler domain gauges (an http_json
probe of the target's JSON stats, or its /metrics: the same names), and the probes' own series
(the metric contract at the top of locust_workers/probes/__init__.py). `max by (...)` where a value
could arrive twice (scraped and probed) so it is never double-counted.

Each probe type's row (PostgreSQL, Redis, Processes, HTTP JSON gauges) repeats over a hidden
variable: the run's probes of that type (`label_values(loadctl_probe_up{run_id,type}, probe)`), one
row per probe. Grafana (v1 dashboard JSON) has no row that hides itself when a query is empty: a
type the run has no probe of keeps one row, titled "<type> All" with empty panels, because Grafana
keeps one instance of a repeated row as its template (grafana/grafana#10764).
"""

from __future__ import annotations

from grafana_foundation_sdk.builders import dashboard as dashboard_builders
from grafana_foundation_sdk.builders.dashboard import Dashboard
from grafana_foundation_sdk.models import dashboard

from dashboards.common import DATASOURCE, RUN, base, graph, rate, row, selector, target, timeline

UID = "loadctl-system-under-test"
TITLE = "loadctl / System under test"


# probe type (locust_workers/probes/config.py) -> the row of its panels
PROBE_ROWS = {
    "postgres": "PostgreSQL",
    "redis": "Redis",
    "process": "Processes",
    "http_json": "HTTP JSON gauges",
}


def probe_variable(probe_type: str) -> str:
    return f"{probe_type}_probe"


def of(probe_type: str) -> str:
    """The matcher of the probe the repeated row is for."""
    return f'probe=~"${probe_variable(probe_type)}"'


def variable_query(probe_type: str) -> str:
    return f'label_values(loadctl_probe_up{{{RUN},type="{probe_type}"}}, probe)'


def probe_variables() -> list[dashboard_builders.QueryVariable]:
    """One hidden variable per probe type: the run's probes of it, all selected (the rows repeat)."""
    return [
        dashboard_builders.QueryVariable(probe_variable(probe_type))
        .label(f"{title} probes")
        .description(f"The run's {probe_type} probes; its row repeats once per probe.")
        .datasource(DATASOURCE)
        .query(variable_query(probe_type))
        .refresh(dashboard.VariableRefresh.ON_TIME_RANGE_CHANGED)
        .sort(dashboard.VariableSort.ALPHABETICAL_ASC)
        .multi(True)
        .include_all(True)
        .all_value(".+")
        .current(dashboard.VariableOption(selected=True, text=["All"], value=["$__all"]))
        .hide(dashboard.VariableHide.HIDE_VARIABLE)
        for probe_type, title in PROBE_ROWS.items()
    ]


def probe_row(probe_type: str) -> dashboard_builders.Row:
    return row(f"{PROBE_ROWS[probe_type]} ${probe_variable(probe_type)}").repeat(probe_variable(probe_type))


# The http_json family has no fixed names (one gauge per configured field): every series of the
# row's probe that is not one of the probes' own loadctl_* families.
HTTP_JSON_GAUGES = f'max by (__name__, probe, domain) ({{{RUN},{of("http_json")},__name__!~"loadctl_.*"}})'


def by_probe(metric: str, probe_type: str = "") -> str:
    return f"max by (probe) ({selector(metric, *([of(probe_type)] if probe_type else []))})"


def build() -> Dashboard:
    pool_in_use = f"sum by (pool) ({selector('demo_pool_in_use')})"
    pool_size = f"sum by (pool) ({selector('demo_pool_size')})"
    board = base(
        uid=UID,
        title=TITLE,
        description=(
            "The system under test during one loadctl run: PostgreSQL, Redis, processes and JSON "
            "gauges sampled by the run's probes (a row per probe), the crawler's per-domain health "
            "and the demo target's worker pool."
        ),
    )
    for variable in probe_variables():
        board = board.with_variable(variable)
    return (
        board.with_row(probe_row("postgres"))
        .with_panel(
            graph(
                "Connections by state",
                "Client backends of each postgres probe by state (active, idle, idle in "
                "transaction, ...; loadctl_postgres_connections).",
                [
                    target(
                        f"max by (probe, state) ({selector('loadctl_postgres_connections', of('postgres'))})",
                        "{{probe}} {{state}}",
                    )
                ],
            )
        )
        .with_panel(
            graph(
                "Pool utilisation",
                "Connections / the probe's pool_size (max_connections when no pool_size is set): "
                "near 100 % requests start queueing for a connection.",
                [target(by_probe("loadctl_postgres_pool_utilization_ratio", "postgres"), "{{probe}}")],
                unit="percentunit",
            )
        )
        .with_panel(
            graph(
                "Waiting locks",
                "Lock requests not granted (pg_locks): above 0 for long is contention.",
                [target(by_probe("loadctl_postgres_locks_waiting", "postgres"), "{{probe}}")],
            )
        )
        .with_row(row("Crawler domains"))
        .with_panel(
            graph(
                "Retryable jobs",
                "Crawl jobs of each domain waiting for a retry (crawler_domain_retryable_jobs).",
                [target(f"max by (domain) ({selector('crawler_domain_retryable_jobs')})", "{{domain}}")],
            )
        )
        .with_panel(
            graph(
                "Parser fallback rate",
                "Share of each domain's finished jobs that needed the fallback parser.",
                [
                    target(
                        f"max by (domain) ({selector('crawler_domain_parser_fallback_rate')})", "{{domain}}"
                    )
                ],
                unit="percentunit",
            )
        )
        .with_panel(
            graph(
                "Failure rate",
                "Share of each domain's finished jobs that failed.",
                [target(f"max by (domain) ({selector('crawler_domain_failure_rate')})", "{{domain}}")],
                unit="percentunit",
            )
        )
        .with_row(probe_row("redis"))
        .with_panel(
            graph(
                "Hit ratio",
                "Key lookups that hit since the probe started (the run's, not the server's lifetime).",
                [target(by_probe("loadctl_redis_keyspace_hit_ratio", "redis"), "{{probe}}")],
                unit="percentunit",
                width=6,
            )
        )
        .with_panel(
            graph(
                "Used memory",
                "INFO used_memory.",
                [target(by_probe("loadctl_redis_used_memory_bytes", "redis"), "{{probe}}")],
                unit="bytes",
                width=6,
            )
        )
        .with_panel(
            graph(
                "Evictions/s",
                "Keys evicted for maxmemory per second.",
                [
                    target(
                        f"sum by (probe) ({rate('loadctl_redis_evicted_keys_total', of('redis'))})",
                        "{{probe}}",
                    )
                ],
                width=6,
            )
        )
        .with_panel(
            graph(
                "Connected clients",
                "Clients connected to Redis (the probe's own connection left out).",
                [target(by_probe("loadctl_redis_connected_clients", "redis"), "{{probe}}")],
                width=6,
            )
        )
        .with_row(probe_row("process"))
        .with_panel(
            graph(
                "Process CPU",
                "CPU of the processes each process probe watches (100 % = one core).",
                [target(by_probe("loadctl_process_cpu_percent", "process"), "{{probe}}")],
                unit="percent",
                width=12,
            )
        )
        .with_panel(
            graph(
                "Process RSS",
                "Resident memory of the watched processes: a steady climb on a soak run is a leak.",
                [target(by_probe("loadctl_process_resident_memory_bytes", "process"), "{{probe}}")],
                unit="bytes",
                width=12,
            )
        )
        .with_row(probe_row("http_json"))
        .with_panel(
            graph(
                "HTTP JSON gauges",
                "Every gauge an http_json probe exports (its configured field names; the crawler "
                "domain gauges above among them): one series per gauge, probe and label.",
                [target(HTTP_JSON_GAUGES, "{{__name__}} {{probe}} {{domain}}")],
                width=24,
            )
        )
        .with_row(row("Probes"))
        .with_panel(
            timeline(
                "Probes up",
                "Each probe of the run: green while its last sample succeeded, red while it fails "
                "(loadctl_probe_up; the run goes on either way).",
                by_probe("loadctl_probe_up"),
                "{{probe}}",
            )
        )
        .with_row(row("Demo target pool (example)"))
        .with_panel(
            graph(
                "Pool slots",
                "The demo target's generation worker pool: slots busy, configured, and requests "
                "waiting for one (demo_pool_*).",
                [
                    target(pool_in_use, "{{pool}} in use"),
                    target(pool_size, "{{pool}} size"),
                    target(f"sum by (pool) ({selector('demo_pool_queued')})", "{{pool}} queued"),
                ],
                width=12,
            )
        )
        .with_panel(
            graph(
                "Pool utilisation",
                "Busy slots / configured slots.",
                [target(f"{pool_in_use} / {pool_size}", "{{pool}}")],
                unit="percentunit",
                width=12,
            )
        )
    )
