"""The lock report (`loadctl gates lock --report`, default RUN_DIR/gates_lock.md): one row per
threshold of the locked gate file, what it was, what the run measured, what it is now. Pure.
"""

from __future__ import annotations

from collections.abc import Sequence

from controller.gates.lock import LockRow
from controller.reports.markdown import cell


def _number(value: float | None) -> str:
    # exact enough to compare with the YAML: a lock report that rounds hides what was written
    return "-" if value is None else f"{value:.6g}"


def lock_report_markdown(
    rows: Sequence[LockRow], *, gate_file: str, run_id: str, headroom: float, output: str
) -> str:
    lines = [
        "## Gate Lock",
        "",
        f"- Source run: `{run_id}`",
        f"- Source gate file: `{gate_file}`",
        f"- Locked gate file: `{output}`",
        f"- Headroom: x{headroom:g} (max = observed * {headroom:g}, min = observed / {headroom:g}; "
        "never looser than before)",
        "",
        "| Gate | Threshold | Previous | Observed | Locked |",
        "|---|---|---|---|---|",
    ]
    for row in rows:
        locked = _number(row.locked) + (f" ({row.note})" if row.note else "")
        cells = (row.gate, row.field, _number(row.previous), _number(row.observed), locked)
        lines.append("| " + " | ".join(cell(c) for c in cells) + " |")
    lines.append("")
    return "\n".join(lines)
