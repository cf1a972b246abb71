"""report.md and report.html from the Jinja2 templates: every section, a team's own templates, a
broken template refused before any load, and hostile names escaped in the HTML."""

from __future__ import annotations

import re
from html.parser import HTMLParser
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from controller.analysis.models import (
    Analysis,
    Chart,
    ChartSeries,
    Drift,
    DriftReport,
    GeneratorHealth,
    PoolStability,
    Recovery,
    WindowFigures,
)
from controller.analysis.phases import phase_figures
from controller.errors import InputError
from controller.models import Stage
from controller.reports.render import (
    HTML_TEMPLATE,
    MD_TEMPLATE,
    chart_panels,
    check_report_templates,
    grafana_link,
    render_html,
    render_markdown,
)
from controller.reports.run_report import report_view
from controller.runs import _rendered
from tests.unit.test_run_report import FAILURES, GATES, RECORD, STATS

SECTIONS = {
    "metadata": "Run Metadata",
    "load_profile": "Load Profile",
    "environment": "Environment",
    "headline": "Headline Results",
    "phases": "Phases",
    "over_time": "Error rate and latency over time",
    "endpoints": "Endpoint Detail",
    "failures": "Failure Analysis",
    "rate_limiting": "Rate Limiting",
    "system": "System Under Test",
    "stability": "Stability",
    "capacity": "Breaking Point and Capacity",
    "recovery": "Recovery",
    "generator": "Generator Health",
    "gates": "Gate Results",
    "verdict": "Verdict",
    "comparison": "Comparison with baseline",
    "interpretation": "Interpretation",
}
T0 = RECORD.started_at or 0.0
FULL_RECORD = RECORD.model_copy(
    update={
        "command": ("loadctl", "run", "profiles/pilot.yaml", "--run-id", "pilot-1"),
        "stages": (
            Stage(duration=60, users=10, spawn_rate=1, phase="ramp_up"),
            Stage(duration=241, users=10, spawn_rate=1, phase="steady"),
        ),
        "user_weights": {"SearchUser": 3, "HarvestUser": 1},
        "locust_version": "2.43.0",
        "python_version": "3.11.9",
        "machine": "ci-runner-1",
        "grafana_url": "http://grafana.example:3000",
    }
)
MEASURED = [
    WindowFigures(start=T0, end=T0 + 60, requests=600, failures_by_status={"429": 6, "ConnectionError": 3}),
    WindowFigures(start=T0 + 60, end=T0 + 301, requests=2400, failures_by_status={"503": 24}, p95_ms=90),
]
ANALYSIS = Analysis(
    phases=phase_figures(RECORD.phases, FULL_RECORD.stages, MEASURED),
    drift=DriftReport(
        warmup_end=T0 + 60,
        rule="leak when growth > 5 %/h with R² > 0.8",
        gauges=(
            Drift(
                metric="process_resident_memory_bytes",
                labels={"process": "demo"},
                samples=240,
                first=1e8,
                last=1.2e8,
                peak=1.2e8,
                slope_per_hour=2.4e8,
                growth_ratio_per_hour=2.4,
                r_squared=0.97,
                verdict="leak",
            ),
        ),
    ),
    pools=(
        PoolStability(
            metric="demo_pool_in_use",
            labels={},
            before=0,
            peak=8,
            after=0,
            exhausted=False,
            verdict="stable",
            rule="back within 1 of the pre-load level",
        ),
    ),
    recovery=(
        Recovery(
            spike_phase="spike",
            spike_stage=1,
            spike_end=T0 + 200,
            before_p95_ms=80,
            before_error_rate=0.0,
            seconds=12,
            tolerance=0.1,
            rule="within 10 % of the pre-spike level",
        ),
    ),
    generator=GeneratorHealth(
        workers_planned=2, workers_lost=0, max_worker_cpu_percent=41, users_planned=10, users_reached=10
    ),
    charts=(
        Chart(
            key="users",
            title="Users",
            unit="users",
            series=(
                ChartSeries(name="users", points=tuple((T0 + i * 10, float(min(i, 10))) for i in range(31))),
            ),
        ),
    ),
)


def _view(record=FULL_RECORD, stats=STATS, analysis=ANALYSIS):
    return report_view(record, stats=stats, failures=FAILURES, gates=GATES, analysis=analysis)


class _Html(HTMLParser):
    """Tags, section ids and table sizes of an HTML document (raises nothing on bad HTML: we count)."""

    def __init__(self) -> None:
        super().__init__()
        self.tags: list[str] = []
        self.ids: list[str] = []
        self.rows_per_table: list[int] = []
        self.text: list[str] = []

    def handle_starttag(self, tag, attrs):
        self.tags.append(tag)
        self.ids += [v for k, v in attrs if k == "id" and v]
        if tag == "table":
            self.rows_per_table.append(0)
        if tag == "tr" and self.rows_per_table:
            self.rows_per_table[-1] += 1

    def handle_data(self, data):
        self.text.append(data)


def _html(text: str) -> _Html:
    parser = _Html()
    parser.feed(text)
    parser.close()
    return parser


def test_markdown_has_every_section_in_order_no_tbd_and_no_empty_table():
    text = render_markdown(_view())
    positions = [text.index(f"\n## {title}\n") for title in SECTIONS.values()]
    assert positions == sorted(positions)
    assert "TBD" not in text
    for match in re.finditer(r"^\|.*\|\n\|[-:|]+\|\n(?!\|)", text, flags=re.M):
        pytest.fail(f"a table without rows: {match.group(0)!r}")
    assert "```\nloadctl run profiles/pilot.yaml --run-id pilot-1\n```" in text
    assert "| 0 | `ramp_up` | 1m 00s | 10 | 1 |" in text and "| `SearchUser` | 3 | 75.0% |" in text
    assert (
        "- Locust: `2.43.0`" in text
        and "- Python: `3.11.9`" in text
        and "- Controller host: `ci-runner-1`" in text
    )
    # failures by status, from the phases: 429 vs 5xx vs exceptions, each a share of all requests
    assert "| exception (no response) | `ConnectionError` | 3 |" in text
    assert "| rate limited (429) | `429` | 6 |" in text and "| server error (5xx) | `503` | 24 |" in text
    assert "| **`process_resident_memory_bytes`** | process=demo |" in text and "| leak |" in text
    assert "| `demo_pool_in_use` | - | 0 | 8 | 0 | no | stable |" in text
    assert "| `spike` | 80 | 0.00% | 12s | - |" in text
    assert "- Workers: 2 planned, 0 lost" in text and "- Max worker CPU: 41%" in text


def test_html_has_every_section_the_charts_and_the_grafana_link():
    view = _view()
    text = render_html(view, charts=chart_panels(ANALYSIS, FULL_RECORD), grafana=grafana_link(FULL_RECORD))
    parsed = _html(text)
    assert [i for i in parsed.ids if i in SECTIONS] == list(SECTIONS)
    assert "charts" in parsed.ids and "chart-users" in parsed.ids and "svg" in parsed.tags
    assert "script" not in parsed.tags and "link" not in parsed.tags  # nothing to fetch, nothing to run
    assert all(rows >= 2 for rows in parsed.rows_per_table)  # a header and at least one row
    assert "TBD" not in text
    link = grafana_link(FULL_RECORD)
    assert link == (
        f"http://grafana.example:3000/d/loadctl-load-overview?from={int(T0 * 1000)}"
        f"&to={int(FULL_RECORD.ended_at * 1000) + 1000}&var-run_id=pilot-1"
    )
    assert f'href="{link.replace("&", "&amp;")}"' in text
    assert grafana_link(RECORD) is None


def test_absent_analysis_says_not_measured_and_why():
    text = render_markdown(_view(record=RECORD, analysis=Analysis(error="Prometheus unreachable")))
    assert "Drift not measured (the analysis failed: Prometheus unreachable)." in text
    assert "Recovery not measured (the analysis failed: Prometheus unreachable)." in text
    text = render_markdown(_view(record=RECORD, analysis=Analysis()))
    assert "Drift not measured (no gauge was watched)." in text
    assert "Recovery not measured (no spike: no phase was followed by a lower load)." in text
    assert "No baseline was given" in text and "not recorded (run.json of an older loadctl)" in text


def test_a_custom_template_folder_replaces_only_the_templates_it_holds(tmp_path: Path):
    (tmp_path / MD_TEMPLATE).write_text(
        "# {{ report.title }}\n{% for s in report.sections %}* {{ s.title }}\n{% endfor %}"
        "{{ report.section('phases').blocks[0].rows[0][0] }}\n"
    )
    check_report_templates(tmp_path, source="profile.yaml")
    text = render_markdown(_view(), template_dir=tmp_path)
    assert text.startswith("# Load Test Report: pilot-1\n* Run Metadata\n") and text.endswith("ramp_up\n")
    html = render_html(_view(), template_dir=tmp_path)  # no report.html.j2 there: the shipped one
    assert "<h2>Run Metadata</h2>" in html


def test_a_broken_or_missing_template_folder_is_an_input_error_naming_the_file(tmp_path: Path):
    with pytest.raises(InputError, match="is not a directory"):
        check_report_templates(tmp_path / "nope", source="profile.yaml")
    with pytest.raises(InputError, match=r"holds neither report\.md\.j2 nor report\.html\.j2"):
        check_report_templates(tmp_path, source="profile.yaml")
    (tmp_path / HTML_TEMPLATE).write_text("<h1>{{ report.title }</h1>\n{% for s in x %}\n")
    with pytest.raises(InputError) as caught:
        check_report_templates(tmp_path, source="profile.yaml")
    assert str(tmp_path / HTML_TEMPLATE) in str(caught.value) and "line 1" in str(caught.value)
    assert caught.value.exit_code == 2 and "\n" not in str(caught.value)


def test_a_template_failing_at_render_time_costs_the_report_not_the_run(tmp_path: Path):
    (tmp_path / HTML_TEMPLATE).write_text("{{ report.no_such_field }}")
    check_report_templates(tmp_path, source="profile.yaml")  # it parses: only rendering can tell
    notes: list[str] = []
    text = _rendered("report.html", lambda: render_html(_view(), template_dir=tmp_path), notes)
    assert "report.html could not be rendered from its template: UndefinedError" in text
    assert "no_such_field" in text and "<p>" in text
    assert notes == [text.split("<p>")[1].split("</p>")[0].replace("&#x27;", "'")]


PIECES = [*"<>&\"'`|/\\ \n\x00\x07ab", "</table>", "<script>", "</code>", "]]>", "{{ x }}", "{%", "&amp;"]
hostile = st.lists(st.sampled_from(PIECES), min_size=1, max_size=10).map("".join)


@settings(max_examples=60, deadline=None)
@given(name=hostile, error=hostile, series=hostile)
def test_hostile_names_reach_the_html_escaped_and_parseable(name: str, error: str, series: str):
    stats = [{**STATS[0], "Name": name}, STATS[2]]
    failures = [{"Method": "GET", "Name": name, "Error": error, "Occurrences": "3"}]
    chart_ = Chart(
        key="errors",
        title=series,
        unit="",
        series=(ChartSeries(name=series, points=((T0, 1.0), (T0 + 5, 2.0))),),
    )
    analysis = Analysis(charts=(chart_,))
    view = report_view(FULL_RECORD, stats=stats, failures=failures, gates=None, analysis=analysis)
    text = render_html(view, charts=chart_panels(analysis, FULL_RECORD))
    parsed = _html(text)
    assert parsed.tags.count("script") == 0 and parsed.tags.count("table") == text.count("<table>")
    assert parsed.tags.count("svg") == 1
    assert name in "".join(parsed.text) and error in "".join(parsed.text)  # shown as written
    markdown = render_markdown(view)
    endpoint_rows = [line for line in markdown.splitlines() if "| 2,786 |" in line]
    assert len(endpoint_rows) == 1 and len(re.split(r"(?<!\\)\|", endpoint_rows[0])) == 13  # 11 cells
