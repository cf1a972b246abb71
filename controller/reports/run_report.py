"""The run's report, section by section, the way the reference reports are written
(../shared/reference/000, 002, 004): run metadata, headline, phases, over time, endpoints,
failures, rate limiting, system under test, stability, breaking point, recovery, generator health,
gates, verdict, comparison, and an Interpretation left to a person.

The numbers are Locust's own (stats.csv, failures.csv; rebuilt from Prometheus for k8s runs);
phases, slices, steps and stability come from analysis.json, gate values and system-under-test
gauges from Prometheus. Pure: the caller reads the CSVs and passes rows in; the templates
(controller/reports/render.py) lay the sections out as Markdown and HTML.
"""

from __future__ import annotations

import re
import shlex
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime

from rich.table import Table as RichTable

from controller.analysis.models import Analysis
from controller.gates.evaluate import GateReport
from controller.models import Peak, RunRecord
from controller.reports.analysis_report import (
    comparison_section,
    over_time_section,
    phases_section,
    recovery_section,
    stability_section,
    steps_section,
)
from controller.reports.format import duration, float_of, int_of, ms, optional, rate, rps, value
from controller.reports.gates import number, target, window
from controller.reports.view import Block, CodeBlock, Fact, ReportView, Section, Text, facts, table
from controller.rundir import RUN_REPORT, RUN_REPORT_HTML, STATS_CSV

Row = Mapping[str, str]
_STATUS_429 = re.compile(r"\b429\b")


def metadata(record: RunRecord) -> Section:
    started = datetime.fromtimestamp(record.started_at, UTC) if record.started_at else None
    ran = (record.ended_at - record.started_at) if record.started_at and record.ended_at else None
    items = [
        Fact(
            "Date", started.strftime("%Y-%m-%d %H:%M:%S UTC") if started else "n/a", code=started is not None
        ),
        Fact("Run id", record.run_id, code=True),
        Fact("Profile", record.profile + (f" ({record.profile_file})" if record.profile_file else ""), True),
        Fact("Driver", record.locustfile, code=True),
        Fact("Target", record.host or ", ".join(record.hosts) or "n/a", code=True),
        Fact(
            "Backend",
            f"{record.backend}, {record.workers} workers; planned {duration(record.planned_duration_s)}"
            + (f", ran {duration(ran)}" if ran is not None else ""),
        ),
    ]
    if record.phases:
        items.append(
            Fact("Phases", ", ".join(f"{p.phase} {duration(p.end - p.start)}" for p in record.phases))
        )
    shown = [f for f in record.files if f not in (RUN_REPORT, RUN_REPORT_HTML)]
    items.append(Fact("Artifacts", ", ".join(shown) or "none"))
    command = shlex.join(record.command) if record.command else "not recorded (run.json of an older loadctl)"
    return Section(
        "metadata", "Run Metadata", (facts(*items), Text("Command line, as run:"), CodeBlock(command))
    )


def load_profile(record: RunRecord) -> Section:
    """The stage table (users and spawn rates) and the user-class mix."""
    blocks: list[Block] = []
    if record.stages:
        rows = [
            [str(i), s.phase, duration(s.duration), f"{s.users:,}", f"{s.spawn_rate:g}"]
            for i, s in enumerate(record.stages)
        ]
        headers = ["Stage", "Phase", "Duration", "Users", "Spawn rate (users/s)"]
        blocks.append(table(headers, rows, right=(0, 2, 3, 4), code=(1,)))
    elif record.shape is not None:
        shape = record.shape
        blocks.append(
            Text(
                f"The locustfile's own LoadTestShape {shape.name} ran the load (phases "
                f"{', '.join(shape.phases)}; planned {duration(record.planned_duration_s)})."
            )
        )
    else:
        blocks.append(Text("The stage table was not recorded (run.json of an older loadctl)."))
    weights = record.user_weights
    if weights:
        total = sum(weights.values())
        rows = [[name, f"{w:,}", f"{w / total:.1%}"] for name, w in sorted(weights.items())]
        blocks += [
            Text("User-class mix (the profile's user_weights):"),
            table(["User class", "Weight", "Share"], rows, right=(1, 2), code=(0,)),
        ]
    else:
        blocks.append(Text("User-class mix: the locustfile's own weights (no user_weights in the profile)."))
    return Section("load_profile", "Load Profile", tuple(blocks))


def environment(record: RunRecord) -> Section:
    items = facts(
        Fact("loadctl", record.loadctl_version, code=True),
        Fact("Locust", record.locust_version or "n/a", code=record.locust_version is not None),
        Fact("Python", record.python_version or "n/a", code=record.python_version is not None),
        Fact("Workers", f"{record.workers} ({record.backend} backend)"),
        Fact("Controller host", record.machine or "n/a", code=record.machine is not None),
        Fact("Target", record.host or ", ".join(record.hosts) or "n/a", code=True),
    )
    return Section("environment", "Environment", (items,))


def headline(stats: Sequence[Row]) -> Section:
    total = next((r for r in stats if r.get("Name") == "Aggregated"), None)
    if total is None:
        return Section(
            "headline",
            "Headline Results",
            (Text(f"No requests were recorded ({STATS_CSV} has no Aggregated row)."),),
        )
    requests, failures = int_of(total.get("Request Count")), int_of(total.get("Failure Count"))
    throughput = float_of(total.get("Requests/s"))
    items = facts(
        Fact("Total requests", f"{requests:,}", code=True),
        Fact("Total failures", f"{failures:,}", code=True),
        Fact("Aggregate error rate", rate(failures, requests), code=True),
        Fact("Aggregate throughput", f"{rps(throughput)} req/s", code=True),
        Fact("Aggregate p50 latency", f"{ms(float_of(total.get('50%')))} ms", code=True),
        Fact("Aggregate p95 latency", f"{ms(float_of(total.get('95%')))} ms", code=True),
        Fact("Aggregate p99 latency", f"{ms(float_of(total.get('99%')))} ms", code=True),
        Fact("Slowest request", f"{ms(float_of(total.get('Max Response Time')))} ms", code=True),
    )
    return Section("headline", "Headline Results", (items,))


def endpoints(stats: Sequence[Row]) -> Section:
    rows = []
    for row in stats:
        if row.get("Name") == "Aggregated":
            continue
        requests, failures = int_of(row.get("Request Count")), int_of(row.get("Failure Count"))
        rows.append(
            [
                row.get("Name", ""),
                row.get("Type", ""),
                f"{requests:,}",
                f"{failures:,}",
                rate(failures, requests),
                rps(float_of(row.get("Requests/s"))),
                ms(float_of(row.get("Average Response Time"))),
                ms(float_of(row.get("50%") or row.get("Median Response Time"))),
                ms(float_of(row.get("95%"))),
                ms(float_of(row.get("99%"))),
                ms(float_of(row.get("Max Response Time"))),
            ]
        )
    if not rows:
        return Section("endpoints", "Endpoint Detail", (Text("No endpoint was requested."),))
    headers = ["Endpoint name", "Method", "Requests", "Failures", "Error rate", "RPS"]
    headers += ["Avg (ms)", "p50 (ms)", "p95 (ms)", "p99 (ms)", "Max (ms)"]
    return Section("endpoints", "Endpoint Detail", (table(headers, rows, right=range(2, 11), code=(0,)),))


def status_class(status: str) -> str:
    """429 (rate limited), 5xx, 4xx, other HTTP codes, or an exception (no response at all)."""
    if status == "429":
        return "rate limited (429)"
    if status.isdigit():
        return {"5": "server error (5xx)", "4": "client error (4xx)"}.get(status[:1], f"HTTP {status[:1]}xx")
    return "exception (no response)"


def failures_by_status(analysis: Analysis | None) -> dict[str, float]:
    """Failed requests per status over the whole run, from the phases (rate x requests)."""
    counts: dict[str, float] = {}
    for phase in analysis.phases if analysis is not None else ():
        for status, share in phase.failures_by_status.items():
            counts[status] = counts.get(status, 0.0) + share * (phase.requests or 0.0)
    return counts


def failure_analysis(failures: Sequence[Row], analysis: Analysis | None, requests: int) -> Section:
    by_status = failures_by_status(analysis)
    blocks: list[Block] = []
    if by_status:
        rows = [
            [status_class(s), s, f"{round(n):,}", rate(round(n), requests)]
            for s, n in sorted(by_status.items(), key=lambda item: (status_class(item[0]), -item[1]))
        ]
        blocks += [
            Text("By status (the run's Prometheus):"),
            table(["Class", "Status", "Failures", "Share of requests"], rows, right=(2, 3), code=(1,)),
        ]
    ordered = sorted(failures, key=lambda r: -int_of(r.get("Occurrences")))
    if ordered:
        rows = [
            [r.get("Method", ""), r.get("Name", ""), r.get("Error", ""), f"{int_of(r.get('Occurrences')):,}"]
            for r in ordered
        ]
        blocks += [
            Text("By endpoint and error (Locust's failures.csv):"),
            table(["Method", "Endpoint", "Error", "Occurrences"], rows, right=(3,), code=(1, 2)),
        ]
    if not blocks:
        blocks.append(Text("No failed requests."))
    return Section("failures", "Failure Analysis", tuple(blocks))


def rate_limiting(stats: Sequence[Row], failures: Sequence[Row]) -> Section:
    """429 answers per endpoint, and their share of its requests."""
    limited: dict[tuple[str, str], int] = {}
    for row in failures:
        if _STATUS_429.search(row.get("Error", "")):
            key = (row.get("Method", ""), row.get("Name", ""))
            limited[key] = limited.get(key, 0) + int_of(row.get("Occurrences"))
    if not limited:
        return Section(
            "rate_limiting", "Rate Limiting", (Text("No request was rate limited (no 429 answer)."),)
        )
    requests = {(r.get("Type", ""), r.get("Name", "")): int_of(r.get("Request Count")) for r in stats}
    rows = [
        [
            name,
            method,
            f"{requests.get((method, name), 0):,}",
            f"{n:,}",
            rate(n, requests.get((method, name), 0)),
        ]
        for (method, name), n in sorted(limited.items(), key=lambda item: -item[1])
    ]
    total = sum(requests.get(k, 0) for k in limited)
    rows.append(
        [
            "all rate-limited endpoints",
            "",
            f"{total:,}",
            f"{sum(limited.values()):,}",
            rate(sum(limited.values()), total),
        ]
    )
    headers = ["Endpoint name", "Method", "Requests", "429s", "Share limited"]
    return Section("rate_limiting", "Rate Limiting", (table(headers, rows, right=(2, 3, 4), code=(0,)),))


def system_under_test(peaks: Sequence[Peak]) -> Section:
    """The profile's summary_peaks gauges over the run: when the load started, at their peak, at the end."""
    if not peaks:
        return Section(
            "system",
            "System Under Test",
            (Text("No system-under-test gauges were recorded (the profile's summary_peaks)."),),
        )
    rows = [[p.metric + p.labels, optional(p.initial), value(p.value), optional(p.final)] for p in peaks]
    return Section(
        "system",
        "System Under Test",
        (table(["Gauge", "Initial", "Peak", "Final"], rows, right=(1, 2, 3), code=(0,)),),
    )


def peaks_table(peaks: Sequence[Peak]) -> RichTable:
    """The same peaks for the terminal, printed after the run."""
    table_ = RichTable(title="System under test: peaks over the run", title_justify="left", box=None)
    table_.add_column("gauge")
    table_.add_column("peak", justify="right")
    for peak in peaks:
        table_.add_row(peak.metric + peak.labels, value(peak.value))
    return table_


def generator_health(record: RunRecord, analysis: Analysis | None) -> Section:
    """The load generator (analysis `generator` when there, else run.json's problems) and what the
    run's monitoring said during it."""
    health = analysis.generator if analysis is not None else None
    items: list[Fact] = []
    if health is not None:
        items += [
            Fact("Workers", f"{health.workers_planned} planned, {_optional_int(health.workers_lost)} lost"),
            Fact("Users", f"{health.users_planned:,} planned, {_optional_int(health.users_reached)} reached"),
            Fact(
                "Max worker CPU",
                "n/a" if health.max_worker_cpu_percent is None else f"{health.max_worker_cpu_percent:.0f}%",
            ),
        ]
    problems = health.problems if health is not None and health.problems else record.generator_problems
    if problems:
        items.append(
            Fact(
                "", "The load generator was not healthy: the numbers above describe it as much as the target."
            )
        )
        items += [Fact("Problem", p) for p in problems]
    else:
        items.append(
            Fact("Load generator", "healthy (workers connected, users reached, CPU below saturation)")
        )
    items.append(Fact("Alerts that fired", ", ".join(record.alerts_fired) or "none"))
    items += [Fact("Locust warning", w, code=True) for w in record.locust_warnings]
    return Section("generator", "Generator Health", (facts(*items),))


def _optional_int(count: int | None) -> str:
    return "n/a" if count is None else f"{count:,}"


def gate_section(record: RunRecord, gates: GateReport | None) -> Section:
    if gates is None:
        reason = (
            f"The gate file {record.gates_file} could not be evaluated."
            if record.gates_file
            else "No gate file was given for this run."
        )
        return Section("gates", "Gate Results", (Text(reason),))
    blocks: list[Block] = [
        facts(Fact("Gate file", gates.gate_file, code=True), Fact("Gates verdict", gates.verdict.upper()))
    ]
    if gates.reason:
        blocks.append(
            Text(f"Error: {gates.reason} (Prometheus could not answer for every gate: never a pass).")
        )
    rows = [
        [
            r.name,
            window(r),
            target(r),
            number(r.value),
            number(r.baseline) if r.baseline is not None else "-",
            r.verdict.upper(),
            r.reason or "",
        ]
        for r in gates.gates
    ]
    failed = [i for i, r in enumerate(gates.gates) if r.verdict != "pass"]
    if rows:
        headers = ["Gate", "Window", "Target", "Actual", "Baseline", "Result", "Reason"]
        blocks.append(table(headers, rows, right=(3, 4), code=(0,), emphasis=failed))
    else:
        blocks.append(Text("No gates were evaluated."))
    return Section("gates", "Gate Results", tuple(blocks))


def verdict(record: RunRecord) -> Section:
    items = [Fact("Verdict", f"{record.verdict.upper()} (exit {record.exit_code})")]
    if record.aborted_by:
        items.append(Fact("Stopped early by the live gate", record.aborted_by, code=True))
    if record.reason:
        items.append(Fact("Reason", record.reason))
    return Section("verdict", "Verdict", (facts(*items),))


INTERPRETATION = Section(
    "interpretation",
    "Interpretation",
    (Text("For the person reviewing the run: what the numbers mean, the bottlenecks, what to change next."),),
)


def report_view(
    record: RunRecord,
    *,
    stats: Sequence[Row],
    failures: Sequence[Row],
    gates: GateReport | None,
    analysis: Analysis | None = None,
) -> ReportView:
    requests = record.requests or sum(
        int_of(r.get("Request Count")) for r in stats if r.get("Name") != "Aggregated"
    )
    sections = (
        metadata(record),
        load_profile(record),
        environment(record),
        headline(stats),
        phases_section(analysis),
        over_time_section(analysis),
        endpoints(stats),
        failure_analysis(failures, analysis, requests),
        rate_limiting(stats, failures),
        system_under_test(record.peaks),
        stability_section(analysis),
        steps_section(analysis),
        recovery_section(analysis),
        generator_health(record, analysis),
        gate_section(record, gates),
        verdict(record),
        comparison_section(analysis),
        INTERPRETATION,
    )
    return ReportView(
        title=f"Load Test Report: {record.run_id}",
        run_id=record.run_id,
        verdict=record.verdict,
        sections=sections,
    )
