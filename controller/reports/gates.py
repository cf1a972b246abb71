"""A GateReport as gates.json (machines), gates.md (people, PR comments), junit.xml (CI test tabs)
and a rich table (the terminal).

Every format renders thresholds and values through the same few helpers, so the number a CI tab
shows is the number the Markdown report and the terminal show. gates.json is strict JSON (no NaN):
a missing value is null with a reason, the same fail-closed rule the evaluator applies.
"""

from __future__ import annotations

import json
import math
import re
import xml.etree.ElementTree as ET
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from rich.console import Console, ConsoleOptions, RenderResult
from rich.table import Table
from rich.text import Text

from controller.gates.evaluate import GateReport, GateResult
from controller.reports.markdown import cell, code, one_line
from controller.rundir import GATES_JSON, GATES_MD, JUNIT_XML, write_atomic

RESULT_STYLES = {"pass": "bold green", "warn": "bold yellow", "fail": "bold red", "error": "bold red"}
# XML 1.0 cannot carry most control characters; a Prometheus error body could contain them.
# Lone surrogates (undecodable bytes read with surrogateescape) cannot even be encoded as UTF-8.
_XML_ILLEGAL = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ud800-\udfff\ufffe\uffff]")


# -- shared formatting: the one place numbers and thresholds become text ---------------------------


def number(value: float | None) -> str:
    """Up to 4 significant digits; thousands separators from 1,000 on; 'n/a' for no value."""
    if value is None:
        return "n/a"
    if not math.isfinite(value):
        return str(value)
    if abs(float(f"{value:.4g}")) >= 1000:  # 999.96 rounds to 1000: that needs the separator too
        return f"{value:,.0f}"
    return f"{value:.4g}"


def target(result: GateResult) -> str:
    """The thresholds as a condition the value must meet: '<= 0.02', '>= 30', '0.005 to 1,200'."""
    parts = []
    if result.max is not None and result.min is not None:
        parts.append(f"{number(result.min)} to {number(result.max)}")
    elif result.max is not None:
        parts.append(f"<= {number(result.max)}")
    elif result.min is not None:
        parts.append(f">= {number(result.min)}")
    if result.max_change is not None:
        parts.append(f"<= {result.max_change} vs baseline")
    if result.min_change is not None:
        parts.append(f">= {result.min_change} vs baseline")
    return ", ".join(parts) or "-"


def window(result: GateResult) -> str:
    """'steady (5m)': the window's name and how long it was, when it was resolved."""
    if result.start is None or result.end is None:
        return result.window
    seconds = max(0, round(result.end - result.start))
    hours, rest = divmod(seconds, 3600)
    minutes, secs = divmod(rest, 60)
    units = [(hours, "h"), (minutes, "m"), (secs, "s")]
    span = " ".join(f"{n}{unit}" for n, unit in units if n) or "0s"
    return f"{result.window} ({span})"


def outcome(result: GateResult) -> str:
    """One line saying why a gate did not pass: value, target and the evaluator's reason."""
    reason = f": {result.reason}" if result.reason else ""
    return f"value {number(result.value)}, target {target(result)}{reason}"


# -- gates.json ------------------------------------------------------------------------------------


def _finite(data: Any) -> Any:
    """NaN/inf become null: strict JSON readers (jq, JSON.parse) reject them."""
    if isinstance(data, float) and not math.isfinite(data):
        return None
    if isinstance(data, dict):
        return {key: _finite(item) for key, item in data.items()}
    if isinstance(data, list | tuple):
        return [_finite(item) for item in data]
    return data


def gates_json(report: GateReport) -> str:
    data = _finite(report.to_json())
    for gate, result in zip(data["gates"], report.gates, strict=True):
        if gate["value"] is None and not gate.get("reason"):
            # a null without a why is useless to whoever reads the file
            gate["reason"] = "no data" if result.value is None else f"value is {result.value}"
    return json.dumps(data, indent=2, allow_nan=False) + "\n"


# -- gates.md --------------------------------------------------------------------------------------


def _when(timestamp: float) -> datetime:
    return datetime.fromtimestamp(timestamp, UTC)


def gates_markdown(report: GateReport, *, title: str | None = None) -> str:
    verdict = f"**Verdict: {report.verdict.upper()}** (exit {report.exit_code})"
    lines = [f"## {title or 'Gate Results'}", "", verdict]
    if report.reason:
        lines += [
            "",
            f"> **Error:** {one_line(report.reason)}",
            ">",
            "> Prometheus could not answer for every gate, so this is an error, never a pass.",
        ]
    lines += ["", f"- Gate file: {code(report.gate_file)}", f"- Run: {code(report.run_id)}"]
    if report.baseline_run_id:
        lines.append(f"- Baseline run: {code(report.baseline_run_id)}")
    lines += [f"- Evaluated: {_when(report.evaluated_at):%Y-%m-%d %H:%M:%S} UTC", ""]
    if not report.gates:
        lines += ["No gates were evaluated.", ""]
        return "\n".join(lines)
    lines += ["| Gate | Window | Target | Actual | Baseline | Result |", "|---|---|---|---|---|---|"]
    for r in report.gates:
        baseline = number(r.baseline) if r.baseline is not None else "-"
        cells = (r.name, window(r), target(r), number(r.value), baseline, r.verdict.upper())
        lines.append("| " + " | ".join(cell(c) for c in cells) + " |")
    flagged = [r for r in report.gates if r.verdict != "pass"]
    if flagged:
        lines += ["", "### Details", ""]
        for r in flagged:
            lines.append(f"- **{r.name}** — {r.verdict.upper()}: {one_line(outcome(r))}")
            if r.promql:
                lines.append(f"  - PromQL: {code(r.promql)}")
    lines.append("")
    return "\n".join(lines)


# -- junit.xml -------------------------------------------------------------------------------------
#
# The shape CI servers read (the Jenkins/Ant junit.xsd, which GitLab and GitHub reporters follow):
# testsuites > testsuite(name, tests, failures, errors, skipped, time, timestamp) > properties,
# testcase(classname, name, time) > failure | error, system-out. CI history keys a test on
# classname + name, so classname is the gate file's `name` (never the run id or a path): "pilot /
# search_p95" is the same test in every build. Attributes stay short; PromQL goes in element text.

# A message attribute is what a CI tab shows in one line; the details follow in the element text.
_MESSAGE_LIMIT = 300


def _xml(text: str) -> str:
    return _XML_ILLEGAL.sub("?", text)


def _message(text: str) -> str:
    text = one_line(text)
    if len(text) > _MESSAGE_LIMIT:
        text = text[: _MESSAGE_LIMIT - 3] + "..."
    return _xml(text)


def suite_name(report: GateReport) -> str:
    """The gate file's `name`; a report without one falls back to the file's stem, never a path."""
    return report.suite or Path(report.gate_file).stem or "gates"


def _timestamp(timestamp: float) -> str:
    return _when(timestamp).isoformat(timespec="seconds")  # 2025-11-24T16:05:05+00:00


def _details(result: GateResult) -> str:
    return "\n".join(
        [
            f"gate: {result.name} (severity: {result.severity})",
            f"value: {number(result.value)}",
            f"target: {target(result)}",
            f"window: {window(result)}",
            f"reason: {result.reason or '-'}",
            f"promql: {result.promql or '-'}",
        ]
    )


def junit_xml(report: GateReport) -> str:
    """One testsuite, exactly one testcase per gate, whatever happened.

    A gate an outage left unevaluated is an errored testcase (`<error>`), so the count of tests is
    the same in every build. Only a report that does not know its gates' names (built without
    `gate_names`) shows an outage as an extra `prometheus` testcase: an error must never look like
    a pass.
    """
    results = {r.name: r for r in report.gates}
    names = [*report.gate_names, *(r.name for r in report.gates if r.name not in report.gate_names)]
    why = report.reason or "the gates could not be evaluated"
    missing = [name for name in names if name not in results]
    orphan_error = report.verdict == "error" and not missing
    failures = sum(r.verdict == "fail" for r in report.gates)
    errors = len(missing) + orphan_error
    tests = len(names) + orphan_error
    name = suite_name(report)
    root = ET.Element(
        "testsuites",
        {
            "name": "loadctl gates",
            "tests": str(tests),
            "failures": str(failures),
            "errors": str(errors),
            "time": "0",
        },
    )
    suite = ET.SubElement(
        root,
        "testsuite",
        {
            "name": _xml(f"loadctl gates: {name}"),
            "tests": str(tests),
            "failures": str(failures),
            "errors": str(errors),
            "skipped": "0",
            "time": "0",
            "timestamp": _timestamp(report.evaluated_at),
        },
    )
    _junit_properties(suite, report)
    classname = _xml(name)
    for gate in names:
        case = ET.SubElement(suite, "testcase", classname=classname, name=_xml(gate), time="0")
        _junit_outcome(case, gate, results.get(gate), why=why)
    if orphan_error:
        case = ET.SubElement(suite, "testcase", classname=classname, name="prometheus", time="0")
        ET.SubElement(case, "error", message=_message(why), type="not-evaluated").text = _xml(why)
    summary = f"verdict: {report.verdict} (exit {report.exit_code})" + (
        f"\n{report.reason}" if report.reason else ""
    )
    ET.SubElement(suite, "system-out").text = _xml(summary)
    ET.indent(root)
    return '<?xml version="1.0" encoding="UTF-8"?>\n' + ET.tostring(root, encoding="unicode") + "\n"


def _junit_properties(suite: ET.Element, report: GateReport) -> None:
    """The report's verdict and identity as testsuite properties."""
    properties = ET.SubElement(suite, "properties")
    for key, value in (
        ("verdict", report.verdict),
        ("exit_code", str(report.exit_code)),
        ("gate_file", report.gate_file),
        ("run_id", report.run_id),
        ("baseline_run_id", report.baseline_run_id or ""),
    ):
        ET.SubElement(properties, "property", name=key, value=_message(value))


def _junit_outcome(case: ET.Element, gate: str, result: GateResult | None, *, why: str) -> None:
    """One gate's testcase body: an error when it was not evaluated, a failure, or what was measured."""
    if result is None:
        error = ET.SubElement(case, "error", message=_message(f"not evaluated: {why}"), type="not-evaluated")
        error.text = _xml(f"gate: {gate}\nnot evaluated: {why}")
    elif result.verdict == "fail":
        failure = ET.SubElement(case, "failure", message=_message(outcome(result)), type="gate-failed")
        failure.text = _xml(_details(result))
    else:
        # a pass says what was measured; a warning does not fail the build, CI shows it here
        prefix = f"WARN: {outcome(result)}\n" if result.verdict == "warn" else ""
        ET.SubElement(case, "system-out").text = _xml(prefix + _details(result))


# -- terminal --------------------------------------------------------------------------------------


# Columns a narrow terminal leaves out first (gates.md/json keep them, and the full gate names).
_OPTIONAL_COLUMNS = ("Baseline", "Window", "Target")
# Gate, Target and Why fold onto more lines when narrow (nothing is cut, a gate's name least of
# all); before they fold below these widths, the optional columns leave. The others never wrap.
_SHRINKS_TO = {"Gate": 24, "Target": 12, "Why": 16}
_SHRINK_FLOOR = 8  # when even that does not fit: Why, then Target, then Gate fold down to this
_RIGHT_ALIGNED = ("Actual", "Baseline")


class GatesTable:
    """The gate table and verdict, laid out for the width they are printed at (80-column CI logs).

    Gate names fold onto more lines rather than being cut; when the table would not fit even so,
    Baseline, Window and Target are left out, in that order, and the verdict line says so.
    """

    def __init__(self, report: GateReport) -> None:
        self.report = report

    def __rich_console__(self, console: Console, options: ConsoleOptions) -> RenderResult:
        table, left_out = table_for_width(self.report, width=options.max_width)
        yield table
        yield verdict_line(self.report, left_out=left_out, width=options.max_width)


def gates_table(report: GateReport) -> GatesTable:
    return GatesTable(report)


def table_rows(report: GateReport) -> list[dict[str, Text]]:
    return [
        {
            "Gate": Text(r.name),
            "Window": Text(window(r)),
            "Target": Text(target(r)),
            "Actual": Text(number(r.value)),
            "Baseline": Text(number(r.baseline)),
            "Result": Text(r.verdict.upper(), style=RESULT_STYLES[r.verdict]),
            "Why": Text(one_line(r.reason) if r.verdict != "pass" and r.reason else ""),
        }
        for r in report.gates
    ]


def _natural(column: str, rows: list[dict[str, Text]]) -> int:
    return max([len(column), *(row[column].cell_len for row in rows)])


def _narrowest(column: str, rows: list[dict[str, Text]]) -> int:
    natural = _natural(column, rows)
    return min(natural, max(len(column), _SHRINKS_TO.get(column, natural)))


def _cells_room(kept: list[str], width: int) -> int:
    return width - 1 - 3 * len(kept)  # a border, then a space either side of each cell and a border


def fitting_columns(columns: list[str], rows: list[dict[str, Text]], width: int) -> list[str]:
    """The columns that fit `width` at their narrowest; the optional ones leave first."""
    kept = list(columns)
    for optional in _OPTIONAL_COLUMNS:
        if sum(_narrowest(column, rows) for column in kept) <= _cells_room(kept, width):
            break
        if optional in kept:
            kept.remove(optional)
    return kept


def column_widths(kept: list[str], rows: list[dict[str, Text]], width: int) -> dict[str, int]:
    """Each kept column's width: over the room, Why then Target then Gate fold narrower (down to
    _SHRINK_FLOOR); room to spare goes to Gate, then Why, then Target, up to their longest cell."""
    room = _cells_room(kept, width)
    widths = {column: _narrowest(column, rows) for column in kept}
    for column in ("Why", "Target", "Gate"):
        excess = sum(widths.values()) - room
        if column in widths and excess > 0:
            floor = min(widths[column], max(len(column), _SHRINK_FLOOR))
            widths[column] -= min(excess, widths[column] - floor)
    for column in ("Gate", "Why", "Target"):
        spare = room - sum(widths.values())
        if column in widths and spare > 0:
            widths[column] += min(spare, _natural(column, rows) - widths[column])
    return widths


def table_for_width(report: GateReport, *, width: int) -> tuple[Table, list[str]]:
    """The table for a console `width` columns wide, and the columns it left out to fit."""
    # Text cells, not markup strings: a reason or PromQL with [brackets] must print as it is.
    # The title wraps even on the CLI's soft-wrapping console: a long path must not pass the edge.
    title = Text(f"Gates: {report.gate_file}", no_wrap=False, overflow="fold")
    table = Table(title=title, title_justify="left")
    # Baseline and Why only when they say something: a relative gate, or a gate that did not pass.
    with_baseline = any(r.baseline is not None for r in report.gates)
    with_reason = any(r.verdict != "pass" for r in report.gates)
    columns = [
        "Gate",
        "Window",
        "Target",
        "Actual",
        *(["Baseline"] if with_baseline else []),
        "Result",
        *(["Why"] if with_reason else []),
    ]
    rows = table_rows(report)
    kept = fitting_columns(columns, rows, width)
    for column, column_width in column_widths(kept, rows, width).items():
        table.add_column(
            column,
            justify="right" if column in _RIGHT_ALIGNED else "left",
            width=column_width,
            no_wrap=column not in _SHRINKS_TO,
            overflow="fold",
        )
    for row in rows:
        table.add_row(*(row[column] for column in kept))
    return table, [column for column in columns if column not in kept]


def verdict_line(report: GateReport, *, left_out: list[str], width: int) -> Text:
    """Under the table, wrapping at the console's width (a reason can be long)."""
    verdict = Text(no_wrap=False, overflow="fold")
    # "Gates", not the run's verdict: after `loadctl run` a lost worker or the locustfile's own exit
    # code can still change that, and its line follows this one.
    verdict.append(f"Gates verdict: {report.verdict.upper()}", style=RESULT_STYLES[report.verdict])
    if report.reason:
        verdict.append(f" — {one_line(report.reason)}")
    if left_out:
        verdict.append(
            f"\n(left out to fit {width} columns: {', '.join(left_out)}; gates.md has every column)"
        )
    return verdict


# -- I/O -------------------------------------------------------------------------------------------


def write_gate_reports(report: GateReport, *, run_dir: Path) -> tuple[str, ...]:
    """gates.json, gates.md and junit.xml in the run directory; returns their names."""
    outputs = (
        (GATES_JSON, gates_json(report)),
        (GATES_MD, gates_markdown(report)),
        (JUNIT_XML, junit_xml(report)),
    )
    for name, text in outputs:
        # atomic: a CI step reading the run directory never sees half a report
        write_atomic(run_dir / name, text=text)
    return tuple(name for name, _ in outputs)
