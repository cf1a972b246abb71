"""A Comparison (analysis.json `comparison`, `loadctl compare`) as a rich table, Markdown and JSON.

Pure: one set of cell texts for the terminal and the Markdown, so both show the same numbers.
"""

from __future__ import annotations

import json
from collections.abc import Sequence

from rich.table import Table
from rich.text import Text

from controller.analysis.models import Comparison, ComparisonRow
from controller.reports.markdown import code, table

FLAG_MARK = "!"  # a change beyond the runs' noise: worth a look
HEADERS = ("Section", "Figure", "Baseline", "Current", "Change", "Noise", "Flag")
_COUNTS = ("requests", "failures")


def value_text(figure: str, value: float | None) -> str:
    """A figure as the run report writes it: counts whole, rates in %, rps and ms to 2 decimals."""
    if value is None:
        return "n/a"
    if figure in _COUNTS:
        return f"{value:,.0f}"
    if figure == "error_rate":
        return f"{value:.2%}"
    return f"{value:,.2f}"


def percent(value: float | None, *, signed: bool) -> str:
    if value is None:
        return "n/a"
    return f"{value:+.1%}" if signed else f"{value:.1%}"


def row_cells(row: ComparisonRow) -> list[str]:
    return [
        row.section,
        row.figure,
        value_text(row.figure, row.baseline),
        value_text(row.figure, row.current),
        percent(row.change, signed=True),
        percent(row.noise, signed=False),
        FLAG_MARK if row.flagged else "",
    ]


def _title(comparison: Comparison) -> str:
    return f"{comparison.current_run_id or 'this run'} against baseline {comparison.baseline_run_id}"


def comparison_table(comparison: Comparison) -> Table:
    # Text cells, not markup: an endpoint name with [brackets] must print as it is.
    out = Table(title=Text(_title(comparison)), title_justify="left")
    for index, header in enumerate(HEADERS):
        out.add_column(header, justify="right" if 2 <= index <= 5 else "left")
    section = None
    for row in comparison.rows:
        cells = row_cells(row)
        if row.section == section:
            cells[0] = ""  # each section named once: the table reads in blocks
        section = row.section
        style = "bold yellow" if row.flagged else ""
        out.add_row(*(Text(c, style=style) for c in cells))
    flagged = sum(1 for row in comparison.rows if row.flagged)
    out.caption = Text(f"{flagged} of {len(comparison.rows)} figures flagged ({comparison.rule})")
    return out


def comparison_markdown(comparison: Comparison) -> str:
    lines = [f"# Comparison: {_title(comparison)}", ""]
    lines.append(f"- Baseline: {code(comparison.baseline_run_id)} ({code(comparison.baseline_dir)})")
    lines.append(f"- Current: {code(comparison.current_run_id or 'n/a')}")
    lines += differences_lines(comparison.differences)
    lines.append(f"- Flag {code(FLAG_MARK)}: {comparison.rule}.")
    lines.append("")
    lines += table(HEADERS, [row_cells(row) for row in comparison.rows], right=range(2, 6))
    return "\n".join(lines) + "\n"


def differences_lines(found: Sequence[str]) -> list[str]:
    if not found:
        return ["- Comparable: yes (same locustfile, host and stage table)."]
    return ["- **Not comparable:** the runs differ in", *(f"  - {d}" for d in found)]


def comparison_json(comparison: Comparison) -> str:
    return json.dumps(comparison.model_dump(mode="json"), indent=2) + "\n"
