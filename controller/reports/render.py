"""report.md and report.html from Jinja2 templates: the shipped ones (templates/), or a team's own.

`--report-template DIR` (or `report_template:` in the profile) names a folder whose report.md.j2
and/or report.html.j2 replace the shipped ones; the other file falls back to the shipped template.
The folder and the syntax of its templates are checked before any load is sent (exit 2, naming
the file and line); a template that fails while rendering costs that report, never the verdict.
HTML is autoescaped: endpoint names and error messages come from the system under test.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlencode

import jinja2
from markupsafe import Markup

from controller.analysis.models import Analysis, Chart
from controller.errors import InputError
from controller.models import RunRecord
from controller.reports.charts import Band, Marker, svg_chart
from controller.reports.markdown import cell, code
from controller.reports.view import ReportView

TEMPLATES_DIR = Path(__file__).resolve().with_name("templates")
MD_TEMPLATE = "report.md.j2"
HTML_TEMPLATE = "report.html.j2"
TEMPLATE_FIELD = "report_template (--report-template)"  # the profile field or the flag
# The dashboard report.html links to (dashboards/load_overview.py sets this uid; its run_id variable)
GRAFANA_DASHBOARD_UID = "loadctl-load-overview"


@functools.lru_cache(maxsize=8)  # templates are compiled once per process, not once per report
def _environment(template_dir: Path | None, *, html: bool) -> jinja2.Environment:
    folders = [str(template_dir)] if template_dir is not None else []
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader([*folders, str(TEMPLATES_DIR)]),
        autoescape=html,
        undefined=jinja2.StrictUndefined,  # a misspelt field is an error, not an empty cell
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
    )
    env.filters["code"] = code
    env.filters["cell"] = cell
    return env


def check_report_templates(template_dir: Path | None, *, source: str) -> None:
    """The folder exists and holds report.md.j2 and/or report.html.j2 that parse (InputError, exit 2)."""
    if template_dir is None:
        return
    if not template_dir.is_dir():
        raise InputError(f"{template_dir} is not a directory", source=source, field=TEMPLATE_FIELD)
    present = [
        template_dir / name for name in (MD_TEMPLATE, HTML_TEMPLATE) if (template_dir / name).is_file()
    ]
    if not present:
        raise InputError(
            f"{template_dir} holds neither {MD_TEMPLATE} nor {HTML_TEMPLATE}",
            source=source,
            field=TEMPLATE_FIELD,
        )
    for path in present:
        env = _environment(None, html=path.name == HTML_TEMPLATE)
        try:
            env.parse(path.read_text(encoding="utf-8"), name=path.name, filename=str(path))
        except jinja2.TemplateSyntaxError as e:
            raise InputError(
                f"template syntax error at line {e.lineno}: {e.message}", source=str(path)
            ) from e
        except (OSError, UnicodeDecodeError) as e:
            raise InputError(f"cannot read: {e}", source=str(path)) from e


@dataclass(frozen=True)
class ChartPanel:
    key: str
    title: str
    svg: Markup


def chart_panels(analysis: Analysis | None, record: RunRecord) -> list[ChartPanel]:
    """Every chart of the analysis as SVG over the run's span, phases shaded, the breaking point
    marked at the start of the hold that broke the SLO."""
    if analysis is None:
        return []
    bands = [Band(p.start, p.end, p.phase) for p in record.phases]
    markers = []
    knee = analysis.breaking_point
    if knee is not None:
        broken = next((s for s in analysis.steps if s.within_slo is False and s.users == knee.users), None)
        if broken is not None:
            markers.append(Marker(broken.start, f"breaking point: {knee.users:,} users"))
    start, end = record.started_at, record.ended_at
    return [
        ChartPanel(c.key, c.title, Markup(svg_chart(c, start=start, end=end, bands=bands, markers=markers)))
        for c in analysis.charts
    ]


def grafana_link(record: RunRecord) -> str | None:
    """The run's dashboard over its time range, when the run was given a Grafana URL."""
    if not record.grafana_url or record.started_at is None:
        return None
    end = record.ended_at or record.started_at
    query = {"from": int(record.started_at * 1000), "to": int(end * 1000) + 1000, "var-run_id": record.run_id}
    return f"{record.grafana_url.rstrip('/')}/d/{GRAFANA_DASHBOARD_UID}?{urlencode(query)}"


def render_markdown(view: ReportView, *, template_dir: Path | None = None) -> str:
    return _environment(template_dir, html=False).get_template(MD_TEMPLATE).render(report=view)


def render_html(
    view: ReportView,
    *,
    charts: Sequence[ChartPanel] = (),
    grafana: str | None = None,
    template_dir: Path | None = None,
) -> str:
    template = _environment(template_dir, html=True).get_template(HTML_TEMPLATE)
    return template.render(report=view, charts=list(charts), grafana=grafana)


def chart_of(analysis: Analysis | None, key: str) -> Chart | None:
    return next((c for c in analysis.charts if c.key == key), None) if analysis is not None else None
