"""report.md: the seed report's sections, filled from Locust's CSV rows and the gate report."""

from controller.analysis.models import Analysis, WindowFigures
from controller.analysis.phases import phase_figures
from controller.analysis.steps import breaking_point, capacity, judge_steps, slo_used, step_windows
from controller.analysis.timeline import timeline
from controller.gates.evaluate import GateReport, GateResult
from controller.models import PhaseWindow, RunRecord, Slo, Stage
from controller.reports.analysis_report import over_time_section, phases_section, steps_section
from controller.reports.render import render_markdown
from controller.reports.run_report import report_view
from controller.reports.view import ReportView, Section


def run_report_markdown(record: RunRecord, **kwargs: object) -> str:
    return render_markdown(report_view(record, **kwargs))  # type: ignore[arg-type]


def md(section: Section) -> str:
    """One section rendered alone by the shipped template."""
    return render_markdown(ReportView("t", "r", "pass", (section,)))


RECORD = RunRecord(
    run_id="pilot-1",
    profile="pilot",
    profile_file="profiles/pilot.yaml",
    locustfile="demo.py",
    host="http://127.0.0.1:8765",
    backend="local",
    workers=2,
    planned_duration_s=300.0,
    started_at=1_770_000_000.0,
    ended_at=1_770_000_301.0,
    phases=(
        PhaseWindow(stage=0, phase="ramp_up", start=1_770_000_000.0, end=1_770_000_060.0),
        PhaseWindow(stage=1, phase="steady", start=1_770_000_060.0, end=1_770_000_301.0),
    ),
    verdict="fail",
    exit_code=1,
    reason=None,
    files=("gates.md", "report.md", "run.json", "stats.csv"),
    loadctl_version="0.1.0",
)
STATS = [
    {
        "Type": "GET",
        "Name": "recipes_search",
        "Request Count": "2786",
        "Failure Count": "0",
        "Average Response Time": "110.17",
        "95%": "760",
        "99%": "2000",
        "Requests/s": "9.3",
    },
    {
        "Type": "POST",
        "Name": "harvest_auto",
        "Request Count": "950",
        "Failure Count": "875",
        "Average Response Time": "451.26",
        "95%": "4200",
        "99%": "6400",
        "Requests/s": "3.2",
    },
    {
        "Type": "",
        "Name": "Aggregated",
        "Request Count": "3736",
        "Failure Count": "875",
        "Average Response Time": "197",
        "95%": "1100",
        "99%": "4300",
        "Requests/s": "12.45",
    },
]
FAILURES = [
    {"Method": "POST", "Name": "harvest_auto", "Error": "LocustBadStatusCode(code=429)", "Occurrences": "875"}
]
GATES = GateReport(
    verdict="fail",
    gate_file="gates/pilot.yaml",
    run_id="pilot-1",
    evaluated_at=1_770_000_310.0,
    gates=(
        GateResult(
            name="harvest_429_rate",
            verdict="fail",
            value=0.9211,
            promql="q",
            window="steady",
            start=1_770_000_060.0,
            end=1_770_000_301.0,
            max=0.1,
            reason="0.9211 > max 0.1",
        ),
    ),
)


def test_sections_and_numbers():
    text = run_report_markdown(RECORD, stats=STATS, failures=FAILURES, gates=GATES)
    for heading in (
        "# Load Test Report: pilot-1",
        "## Run Metadata",
        "## Headline Results",
        "## Endpoint Detail",
        "## Failure Analysis",
        "## Gate Results",
        "## Verdict",
    ):
        assert heading in text
    assert "- Total requests: `3,736`" in text and "- Total failures: `875`" in text
    assert "- Aggregate error rate: `23.42%`" in text and "- Aggregate p95 latency: `1,100 ms`" in text
    assert "| `harvest_auto` | POST | 950 | 875 | 92.11% | 3.20 | 451 | n/a | 4,200 | 6,400 | n/a |" in text
    assert "- Aggregate p99 latency: `4,300 ms`" in text
    assert "| `recipes_search` | GET | 2,786 | 0 | 0.00% | 9.30 | 110 | n/a | 760 | 2,000 | n/a |" in text
    assert "| POST | `harvest_auto` | `LocustBadStatusCode(code=429)` | 875 |" in text
    assert "| **`harvest_429_rate`** | steady (4m 1s) | <= 0.1 | 0.9211 | - | FAIL |" in text
    assert "- Verdict: FAIL (exit 1)" in text
    assert "- Phases: ramp_up 1m 00s, steady 4m 01s" in text
    assert "`report.md`" not in text  # the artifacts list names the other files


def test_no_requests_no_failures_no_gates():
    text = run_report_markdown(RECORD, stats=[], failures=[], gates=None)
    assert "No requests were recorded" in text
    assert "No failed requests." in text
    assert "No gate file was given" in text


def test_phases_and_over_time_tables_render_the_analysis_or_say_why_there_is_none():
    stages = (Stage(duration=60, users=50, spawn_rate=1, phase="steady"),)
    phase = PhaseWindow(stage=0, phase="steady", start=0, end=60)
    measured = WindowFigures(
        start=0, end=60, requests=600, failures_by_status={"500": 6}, p50_ms=60, p95_ms=120, p99_ms=240
    )
    halves = [WindowFigures(start=s, end=s + 30, requests=300, p95_ms=100) for s in (0, 30)]
    analysis = Analysis(phases=phase_figures((phase,), stages, [measured]), timeline=timeline(halves))
    assert "| `steady` | 50 | 1m 00s | 9.90 | 60 | 120 | 240 | 1.00% |" in md(phases_section(analysis))
    over = md(over_time_section(analysis))
    assert "| 0s - 30s | 10.00 | 100 | 0.00% |" in over and "| **trend** |  | flat | flat |" in over
    assert "the analysis failed: boom" in md(phases_section(Analysis(error="boom")))
    assert "could not be read" in md(over_time_section(None))
    report = run_report_markdown(RECORD, stats=STATS, failures=[], gates=None, analysis=analysis)
    assert (
        report.index("## Headline Results") < report.index("## Phases") < report.index("## Endpoint Detail")
    )


def test_breaking_point_and_capacity_render_the_steps():
    stages = tuple(Stage(duration=60, users=u, spawn_rate=10, phase="step") for u in (10, 20))
    phases = tuple(PhaseWindow(stage=i, phase="step", start=60.0 * i, end=60.0 * (i + 1)) for i in range(2))
    measured = [WindowFigures(start=0, end=59, requests=r * 59, p95_ms=p) for r, p in ((10, 100), (15, 500))]
    slo = slo_used(Slo(latency_p95_ms=300), None)
    steps = judge_steps(step_windows(phases, stages), measured, slo)
    analysis = Analysis(steps=steps, slo=slo, breaking_point=breaking_point(steps), capacity=capacity(steps))
    text = md(steps_section(analysis))
    assert "| 10 | hold | 10.00 | 100 | 0.00% | yes |" in text
    assert "| **20** | hold | 15.00 | 500 | 0.00% | no |" in text
    assert "- Breaking point: 20 users at 15.00 req/s: p95 500 ms > SLO 300 ms" in text
    assert "- Capacity: 10.00 req/s within the SLO at 10 users" in text
    assert "- Max throughput: 15.00 req/s" in text
    assert "No step of load" in md(steps_section(None))
