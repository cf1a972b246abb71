"""The "loadctl / System under test" board: what the target did under the load of one run.

Its sources: the demo target's own /metrics (demo_pool_*), the crawler domain gauges (an http_json
probe of the target's JSON stats, or its /metrics: the same names), and the probes' own series
(the metric contract at the top of locust_workers/probes/__init__.py). `max by (...)` where a value
could arrive twice (scraped and probed) so it is never double-counted.
"""

from __future__ import annotations

from grafana_foundation_sdk.builders.dashboard import Dashboard

from dashboards.common import RUN, base, graph, rate, row, selector, target, timeline

UID = "loadctl-system-under-test"
TITLE = "loadctl / System under test"


# The http_json family has no fixed names (one gauge per configured field): every series with a
# probe label that is not one of the probes' own loadctl_* families.
HTTP_JSON_GAUGES = f'max by (__name__, probe, domain) ({{{RUN},probe!="",__name__!~"loadctl_.*"}})'


def by_probe(metric: str) -> str:
    return f"max by (probe) ({selector(metric)})"


def build() -> Dashboard:
    pool_in_use = f"sum by (pool) ({selector('demo_pool_in_use')})"
    pool_size = f"sum by (pool) ({selector('demo_pool_size')})"
    return (
        base(
            uid=UID,
            title=TITLE,
            description=(
                "The system under test during one loadctl run: the demo target's worker pool, the "
                "crawler's per-domain health, Redis and processes sampled by the run's probes."
            ),
        )
        .with_row(row("PostgreSQL"))
        .with_panel(
            graph(
                "Connections by state",
                "Client backends of each postgres probe by state (active, idle, idle in "
                "transaction, ...; loadctl_postgres_connections).",
                [
                    target(
                        f"max by (probe, state) ({selector('loadctl_postgres_connections')})",
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
                [target(by_probe("loadctl_postgres_pool_utilization_ratio"), "{{probe}}")],
                unit="percentunit",
            )
        )
        .with_panel(
            graph(
                "Waiting locks",
                "Lock requests not granted (pg_locks): above 0 for long is contention.",
                [target(by_probe("loadctl_postgres_locks_waiting"), "{{probe}}")],
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
        .with_row(row("Redis"))
        .with_panel(
            graph(
                "Hit ratio",
                "Key lookups that hit since the probe started (the run's, not the server's lifetime).",
                [target(by_probe("loadctl_redis_keyspace_hit_ratio"), "{{probe}}")],
                unit="percentunit",
                width=6,
            )
        )
        .with_panel(
            graph(
                "Used memory",
                "INFO used_memory.",
                [target(by_probe("loadctl_redis_used_memory_bytes"), "{{probe}}")],
                unit="bytes",
                width=6,
            )
        )
        .with_panel(
            graph(
                "Evictions/s",
                "Keys evicted for maxmemory per second.",
                [target(f"sum by (probe) ({rate('loadctl_redis_evicted_keys_total')})", "{{probe}}")],
                width=6,
            )
        )
        .with_panel(
            graph(
                "Connected clients",
                "Clients connected to Redis (the probe's own connection left out).",
                [target(by_probe("loadctl_redis_connected_clients"), "{{probe}}")],
                width=6,
            )
        )
        .with_row(row("Processes"))
        .with_panel(
            graph(
                "Process CPU",
                "CPU of the processes each process probe watches (100 % = one core).",
                [target(by_probe("loadctl_process_cpu_percent"), "{{probe}}")],
                unit="percent",
                width=12,
            )
        )
        .with_panel(
            graph(
                "Process RSS",
                "Resident memory of the watched processes: a steady climb on a soak run is a leak.",
                [target(by_probe("loadctl_process_resident_memory_bytes"), "{{probe}}")],
                unit="bytes",
                width=12,
            )
        )
        .with_row(row("HTTP JSON gauges"))
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
