"""report.md: the run written up the way the pilot load-test reports are (../shared/reference/000_...).

Run Metadata, Headline Results, Endpoint Detail, Failure Analysis, System Under Test, Gate
Results, Verdict. The numbers are Locust's own (stats.csv, failures.csv; rebuilt from Prometheus
for k8s runs); gate values and system-under-test peaks come from Prometheus. Pure: the caller
reads the CSVs and passes rows in.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import UTC, datetime

from rich.table import Table

from controller.analysis.models import Analysis
from controller.gates.evaluate import GateReport
from controller.models import Peak, RunRecord
from controller.reports.gates import gates_markdown
from controller.reports.markdown import code, table
from controller.rundir import RUN_REPORT, STATS_CSV

Row = Mapping[str, str]


def _int(text: str | None) -> int:
    try:
        return int(float(text or 0))
    except ValueError:
        return 0


def _float(text: str | None) -> float | None:
    try:
        return float(text) if text not in (None, "", "N/A") else None
    except ValueError:
        return None


def _ms(value: float | None) -> str:
    # Locust's percentiles are whole milliseconds (its buckets); averages keep two decimals below 100
    if value is None:
        return "n/a"
    return f"{value:,.0f}" if value >= 100 or value.is_integer() else f"{value:.2f}"


def _rate(failures: int, requests: int) -> str:
    return "n/a" if requests == 0 else f"{failures / requests:.2%}"


def _duration(seconds: float) -> str:
    minutes, secs = divmod(round(seconds), 60)
    return f"{minutes}m {secs:02d}s" if minutes else f"{secs}s"


def metadata(record: RunRecord) -> list[str]:
    started = datetime.fromtimestamp(record.started_at, UTC) if record.started_at else None
    ran = (record.ended_at - record.started_at) if record.started_at and record.ended_at else None
    lines = [
        "## Run Metadata",
        f"- Date: {code(started.strftime('%Y-%m-%d %H:%M:%S UTC')) if started else 'n/a'}",
        f"- Run id: {code(record.run_id)}",
        f"- Profile: {code(record.profile)}"
        + (f" ({code(record.profile_file)})" if record.profile_file else ""),
        f"- Driver: {code(record.locustfile)}",
        f"- Target: {code(record.host)}",
        f"- Backend: {record.backend}, {record.workers} workers; "
        f"planned {_duration(record.planned_duration_s)}"
        + (f", ran {_duration(ran)}" if ran is not None else ""),
    ]
    if record.phases:
        phases = ", ".join(f"{p.phase} {_duration(p.end - p.start)}" for p in record.phases)
        lines.append(f"- Phases: {phases}")
    lines.append(f"- Artifacts: {', '.join(code(f) for f in record.files if f != RUN_REPORT)}")
    return lines


def headline(stats: Sequence[Row]) -> list[str]:
    total = next((r for r in stats if r.get("Name") == "Aggregated"), None)
    if total is None:
        return ["## Headline Results", f"- No requests were recorded ({STATS_CSV} has no Aggregated row)."]
    requests, failures = _int(total.get("Request Count")), _int(total.get("Failure Count"))
    rps = _float(total.get("Requests/s"))
    return [
        "## Headline Results",
        f"- Total requests: `{requests:,}`",
        f"- Total failures: `{failures:,}`",
        f"- Aggregate error rate: `{_rate(failures, requests)}`",
        f"- Aggregate throughput: `{'n/a' if rps is None else f'{rps:,.2f}'} req/s`",
        f"- Aggregate p95 latency: `{_ms(_float(total.get('95%')))} ms`",
        f"- Aggregate p99 latency: `{_ms(_float(total.get('99%')))} ms`",
    ]


def endpoints(stats: Sequence[Row]) -> list[str]:
    rows = []
    for row in stats:
        if row.get("Name") == "Aggregated":
            continue
        requests, failures = _int(row.get("Request Count")), _int(row.get("Failure Count"))
        rows.append(
            [
                code(row.get("Name", "")),
                row.get("Type", ""),
                f"{requests:,}",
                f"{failures:,}",
                _rate(failures, requests),
                _ms(_float(row.get("Average Response Time"))),
                _ms(_float(row.get("95%"))),
                _ms(_float(row.get("99%"))),
            ]
        )
    headers = [
        "Endpoint name",
        "Method",
        "Requests",
        "Failures",
        "Error rate",
        "Avg (ms)",
        "p95 (ms)",
        "p99 (ms)",
    ]
    return ["## Endpoint Detail", *table(headers, rows, right=range(2, 8))]


def failure_analysis(failures: Sequence[Row]) -> list[str]:
    lines = ["## Failure Analysis"]
    ordered = sorted(failures, key=lambda r: -_int(r.get("Occurrences")))
    if not ordered:
        return [*lines, "- No failed requests."]
    for row in ordered:
        lines.append(
            f"- {code(row.get('Method', '') + ' ' + row.get('Name', ''))}: "
            f"{_int(row.get('Occurrences')):,} x {code(row.get('Error', ''))}"
        )
    return lines


def verdict(record: RunRecord) -> list[str]:
    lines = ["## Verdict", f"- **{record.verdict.upper()}** (exit {record.exit_code})"]
    if record.aborted_by:
        lines.append(f"- Stopped early by the live gate {code(record.aborted_by)}.")
    if record.reason:
        lines.append(f"- Reason: {record.reason}")
    return lines


def run_health(record: RunRecord) -> list[str]:
    """What makes the numbers above suspect, and what the run's monitoring said during it."""
    lines = ["## Run Health"]
    if record.generator_problems:
        lines.append(
            "- **The load generator was not healthy: the numbers above describe it as much as the target.**"
        )
        lines += [f"  - {problem}" for problem in record.generator_problems]
    else:
        lines.append("- Load generator: healthy (workers connected, users reached, CPU below saturation).")
    if record.alerts_fired:
        lines.append(f"- Alerts that fired during the run: {', '.join(code(a) for a in record.alerts_fired)}")
    else:
        lines.append("- No alert fired during the run.")
    if record.locust_warnings:
        lines.append("- Locust's own warnings:")
        lines += [f"  - {code(w)}" for w in record.locust_warnings]
    return lines


def gate_section(record: RunRecord, gates: GateReport | None) -> list[str]:
    if gates is not None:
        return gates_markdown(gates).rstrip("\n").splitlines()
    if record.gates_file:
        return ["## Gate Results", f"- The gate file {code(record.gates_file)} could not be evaluated."]
    return ["## Gate Results", "- No gate file was given for this run."]


def _error_rate(rate: float | None) -> str:
    return "n/a" if rate is None else f"{rate:.2%}"


def _rps(rps: float | None) -> str:
    return "n/a" if rps is None else f"{rps:,.2f}"


def _offset(seconds: float) -> str:
    return _duration(max(0.0, seconds))


def phases_section(analysis: Analysis | None) -> list[str]:
    """One row per stage-table segment (analysis.json `phases`), measured as the gates measure."""
    lines = ["## Phases"]
    if analysis is None or not analysis.phases:
        return [*lines, f"- No phase figures ({_analysis_missing(analysis)})."]
    rows = [
        [
            code(p.phase),
            f"{p.users:,}",
            _duration(p.end - p.start),
            _rps(p.rps),
            _ms(p.p50_ms),
            _ms(p.p95_ms),
            _ms(p.p99_ms),
            _error_rate(p.error_rate),
        ]
        for p in analysis.phases
    ]
    headers = ["Phase", "Users", "Duration", "RPS", "p50 (ms)", "p95 (ms)", "p99 (ms)", "Error rate"]
    note = "RPS and latencies are of successful requests, as the gates count them."
    return [*lines, *table(headers, rows, right=range(1, 8)), "", note]


def over_time(analysis: Analysis | None) -> list[str]:
    """The run in equal slices (analysis.json `timeline`) and the trend of error rate and p95."""
    lines = ["## Error rate and latency over time"]
    timeline = analysis.timeline if analysis is not None else None
    if timeline is None or not timeline.slices:
        return [*lines, f"- No timeline ({_analysis_missing(analysis)})."]
    origin = timeline.slices[0].start
    rows = [
        [
            f"{_offset(s.start - origin)} - {_offset(s.end - origin)}",
            _rps(s.rps),
            _ms(s.p95_ms),
            _error_rate(s.error_rate),
        ]
        for s in timeline.slices
    ]
    trend = timeline.trend
    rows.append(["**trend**", "", trend.get("p95_ms", "n/a"), trend.get("error_rate", "n/a")])
    table_ = table(["Time", "RPS", "p95 (ms)", "Error rate"], rows, right=range(1, 4))
    return [*lines, *table_, "", f"Trend: {timeline.rule}."]


def steps_section(analysis: Analysis | None) -> list[str]:
    """Each hold of users against the SLO (analysis.json `steps`), the breaking point, the capacity."""
    lines = ["## Breaking Point and Capacity"]
    if analysis is None or analysis.slo is None or not analysis.steps:
        return [*lines, "- No step of load held long enough to judge."]
    judged = {True: "yes", False: "**no**", None: "not judged"}
    rows = [
        [f"{s.users:,}", _rps(s.rps), _ms(s.p95_ms), _error_rate(s.error_rate), judged[s.within_slo]]
        for s in analysis.steps
    ]
    knee, best = analysis.breaking_point, analysis.capacity
    lines += [f"SLO ({analysis.slo.source}): {analysis.slo.rule}.", ""]
    lines += table(["Users", "RPS", "p95 (ms)", "Error rate", "Within SLO"], rows, right=range(4))
    lines.append("")
    if knee is None:
        lines.append("- Breaking point: none (every judged step held the SLO).")
    else:
        lines.append(f"- Breaking point: {knee.users:,} users at {_rps(knee.rps)} req/s: {knee.reason}.")
    if best is not None:
        lines.append(
            f"- Capacity: {_rps(best.max_rps_within_slo)} req/s within the SLO"
            + (f" at {best.users:,} users" if best.users is not None else "")
            + f"; {_rps(best.max_rps)} req/s at most."
        )
    return lines


def _analysis_missing(analysis: Analysis | None) -> str:
    if analysis is not None and analysis.error:
        return f"the analysis failed: {analysis.error}"
    return "the run's data could not be read"


def _value(value: float) -> str:
    return f"{value:,.0f}" if abs(value) >= 1000 else f"{value:.4g}"


def system_under_test(peaks: Sequence[Peak]) -> list[str]:
    """Peaks of the profile's summary_peaks gauges (pool, crawler, probes) over the run."""
    lines = ["## System Under Test"]
    if not peaks:
        return [*lines, "- No system-under-test gauges were recorded (profile `summary_peaks:`)."]
    rows = [[code(p.metric + p.labels), _value(p.value)] for p in peaks]
    return [*lines, "Peak over the run:", "", *table(["Gauge", "Peak"], rows, right=[1])]


def peaks_table(peaks: Sequence[Peak]) -> Table:
    """The same peaks for the terminal, printed after the run."""
    table_ = Table(title="System under test: peaks over the run", title_justify="left", box=None)
    table_.add_column("gauge")
    table_.add_column("peak", justify="right")
    for peak in peaks:
        table_.add_row(peak.metric + peak.labels, _value(peak.value))
    return table_


def run_report_markdown(
    record: RunRecord,
    *,
    stats: Sequence[Row],
    failures: Sequence[Row],
    gates: GateReport | None,
    analysis: Analysis | None = None,
) -> str:
    sections = [
        [f"# Load Test Report: {record.run_id}"],
        metadata(record),
        headline(stats),
        phases_section(analysis),
        over_time(analysis),
        steps_section(analysis),
        endpoints(stats),
        failure_analysis(failures),
        system_under_test(record.peaks),
        run_health(record),
        gate_section(record, gates),
        verdict(record),
    ]
    return "\n\n".join("\n".join(section) for section in sections) + "\n"
