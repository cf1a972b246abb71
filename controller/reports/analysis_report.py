"""The report's sections drawn from analysis.json: phases, over time, stability, breaking point and
capacity, recovery, comparison with a baseline. A figure the analysis lacks is said to be "not
measured", with why, never left blank (pure)."""

from __future__ import annotations

from controller.analysis.models import Analysis
from controller.reports.format import duration, error_rate, ms, optional, rps
from controller.reports.view import Block, Fact, Section, Text, facts, table


def analysis_missing(analysis: Analysis | None) -> str:
    if analysis is not None and analysis.error:
        return f"the analysis failed: {analysis.error}"
    return "the run's data could not be read"


def phases_section(analysis: Analysis | None) -> Section:
    """One row per stage-table segment (analysis.json `phases`), measured as the gates measure."""
    if analysis is None or not analysis.phases:
        return Section("phases", "Phases", (Text(f"No phase figures ({analysis_missing(analysis)})."),))
    rows = [
        [
            p.phase,
            f"{p.users:,}",
            duration(p.end - p.start),
            rps(p.rps),
            ms(p.p50_ms),
            ms(p.p95_ms),
            ms(p.p99_ms),
            error_rate(p.error_rate),
        ]
        for p in analysis.phases
    ]
    headers = ["Phase", "Users", "Duration", "RPS", "p50 (ms)", "p95 (ms)", "p99 (ms)", "Error rate"]
    note = Text("RPS and latencies are of successful requests, as the gates count them.")
    return Section("phases", "Phases", (table(headers, rows, right=range(1, 8), code=(0,)), note))


def over_time_section(analysis: Analysis | None) -> Section:
    """The run in equal slices (analysis.json `timeline`) and the trend of error rate and p95."""
    title = "Error rate and latency over time"
    timeline = analysis.timeline if analysis is not None else None
    if timeline is None or not timeline.slices:
        return Section("over_time", title, (Text(f"No timeline ({analysis_missing(analysis)})."),))
    origin = timeline.slices[0].start
    rows = [
        [
            f"{duration(max(0.0, s.start - origin))} - {duration(max(0.0, s.end - origin))}",
            rps(s.rps),
            ms(s.p95_ms),
            error_rate(s.error_rate),
        ]
        for s in timeline.slices
    ]
    trend = timeline.trend
    rows.append(["trend", "", trend.get("p95_ms", "n/a"), trend.get("error_rate", "n/a")])
    slices = table(
        ["Time", "RPS", "p95 (ms)", "Error rate"], rows, right=range(1, 4), emphasis=[len(rows) - 1]
    )
    return Section("over_time", title, (slices, Text(f"Trend: {timeline.rule}.")))


def steps_section(analysis: Analysis | None) -> Section:
    """Each hold of users against the SLO (analysis.json `steps`), the breaking point, the capacity."""
    title = "Breaking Point and Capacity"
    if analysis is None or analysis.slo is None or not analysis.steps:
        return Section("capacity", title, (Text("No step of load held long enough to judge."),))
    judged = {True: "yes", False: "no", None: "not judged"}
    rows = [
        [
            f"{s.users:,}",
            "ramp bin" if s.ramp else "hold",
            rps(s.rps),
            ms(s.p95_ms),
            error_rate(s.error_rate),
            judged[s.within_slo],
        ]
        for s in analysis.steps
    ]
    broken = [i for i, s in enumerate(analysis.steps) if s.within_slo is False]
    knee, best = analysis.breaking_point, analysis.capacity
    items = [
        Fact(
            "Breaking point",
            "none (every judged step held the SLO)"
            if knee is None
            else f"{knee.users:,} users at {rps(knee.rps)} req/s: {knee.reason}",
        )
    ]
    if best is not None:
        at = f" at {best.users:,} users" if best.users is not None else ""
        items += [
            Fact("Capacity", f"{rps(best.max_rps_within_slo)} req/s within the SLO{at}"),
            Fact("Max throughput", f"{rps(best.max_rps)} req/s"),
        ]
    headers = ["Users", "Step", "RPS", "p95 (ms)", "Error rate", "Within SLO"]
    blocks: list[Block] = [Text(f"SLO ({analysis.slo.source}): {analysis.slo.rule}.")]
    if analysis.steps_rule:
        blocks.append(Text(f"Steps: {analysis.steps_rule}."))
    blocks += [table(headers, rows, right=(0, 2, 3, 4), emphasis=broken), facts(*items)]
    return Section("capacity", title, tuple(blocks))


def _ratio(ratio: float | None) -> str:
    return "n/a" if ratio is None else f"{ratio:+.1%}"


def _labels(labels: dict[str, str]) -> str:
    return ", ".join(f"{k}={v}" for k, v in sorted(labels.items())) or "-"


def stability_section(analysis: Analysis | None) -> Section:
    """Drift of the watched gauges after the warm-up (leaks), and connection pools back to their
    pre-load level or not."""
    blocks: list[Block] = [Text("Drift of watched gauges (memory, connections) after the warm-up:")]
    drift = analysis.drift if analysis is not None else None
    if drift is None or not drift.gauges:
        why = analysis_missing(analysis) if analysis is None or analysis.error else "no gauge was watched"
        blocks.append(Text(f"Drift not measured ({why})."))
    else:
        rows = [
            [
                d.metric,
                _labels(d.labels),
                optional(d.first),
                optional(d.last),
                optional(d.peak),
                optional(d.slope_per_hour),
                _ratio(d.growth_ratio_per_hour),
                "n/a" if d.r_squared is None else f"{d.r_squared:.2f}",
                d.verdict,
            ]
            for d in drift.gauges
        ]
        leaks = [i for i, d in enumerate(drift.gauges) if d.verdict == "leak"]
        headers = ["Gauge", "Labels", "First", "Last", "Peak", "Slope /h", "Growth /h", "R²", "Verdict"]
        blocks += [
            table(headers, rows, right=range(2, 8), code=(0,), emphasis=leaks),
            Text(f"Rule: {drift.rule}."),
        ]
    blocks.append(Text("Connection pools (before the load, at peak, after it):"))
    pools = analysis.pools if analysis is not None else ()
    if not pools:
        why = (
            analysis_missing(analysis) if analysis is None or analysis.error else "no pool gauge was watched"
        )
        blocks.append(Text(f"Pool stability not measured ({why})."))
    else:
        rows = [
            [
                p.metric,
                _labels(p.labels),
                optional(p.before),
                optional(p.peak),
                optional(p.after),
                {True: "yes", False: "no", None: "n/a"}[p.exhausted],
                p.verdict,
            ]
            for p in pools
        ]
        leaks = [i for i, p in enumerate(pools) if p.verdict == "leak" or p.exhausted]
        headers = ["Gauge", "Labels", "Before", "Peak", "After", "Exhausted", "Verdict"]
        blocks += [
            table(headers, rows, right=range(2, 5), code=(0,), emphasis=leaks),
            Text(f"Rule: {pools[0].rule}."),
        ]
    return Section("stability", "Stability", tuple(blocks))


def recovery_section(analysis: Analysis | None) -> Section:
    """Seconds until p95 and error rate were back to their pre-spike level after each spike."""
    title = "Recovery"
    spikes = analysis.recovery if analysis is not None else ()
    if not spikes:
        why = (
            analysis_missing(analysis)
            if analysis is None or analysis.error
            else "no spike: no phase was followed by a lower load"
        )
        return Section("recovery", title, (Text(f"Recovery not measured ({why})."),))
    rows = [
        [
            r.spike_phase,
            ms(r.before_p95_ms),
            error_rate(r.before_error_rate),
            "never" if r.seconds is None else f"{r.seconds:.0f}s",
            r.reason or "-",
        ]
        for r in spikes
    ]
    never = [i for i, r in enumerate(spikes) if r.seconds is None]
    headers = ["After phase", "p95 before (ms)", "Error rate before", "Back within tolerance after", "How"]
    recovered = table(headers, rows, right=(1, 2, 3), code=(0,), emphasis=never)
    return Section("recovery", title, (recovered, Text(f"Rule: {spikes[0].rule}.")))


def _figure(number: float | None, figure: str) -> str:
    if number is None:
        return "n/a"
    if figure == "error_rate":
        return error_rate(number)
    return ms(number) if figure.endswith("_ms") else rps(number)


def comparison_section(analysis: Analysis | None) -> Section:
    """The run against the baseline given with --baseline (analysis.json `comparison`)."""
    title = "Comparison with baseline"
    comparison = analysis.comparison if analysis is not None else None
    if comparison is None:
        return Section("comparison", title, (Text("No baseline was given (--baseline RESULTS_DIR)."),))
    blocks: list[Block] = [facts(Fact("Baseline run", comparison.baseline_run_id, code=True))]
    if not comparison.comparable:
        blocks.append(Text("Not like for like: " + "; ".join(comparison.differences) + "."))
    rows = [
        [
            r.section,
            r.figure,
            _figure(r.baseline, r.figure),
            _figure(r.current, r.figure),
            _ratio(r.change),
            "n/a" if r.noise is None else f"{r.noise:.1%}",
            "yes" if r.flagged else "",
        ]
        for r in comparison.rows
    ]
    flagged = [i for i, r in enumerate(comparison.rows) if r.flagged]
    headers = ["Section", "Figure", "Baseline", "This run", "Change", "Noise", "Flagged"]
    if rows:
        blocks.append(table(headers, rows, right=range(2, 6), emphasis=flagged))
    else:
        blocks.append(Text("No figure could be compared."))
    blocks.append(Text(f"Flagged when: {comparison.rule}."))
    return Section("comparison", title, tuple(blocks))
