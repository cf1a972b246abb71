"""Markdown building blocks shared by every report (pure, no controller imports)."""

from __future__ import annotations

import re
from collections.abc import Sequence


def one_line(text: str) -> str:
    return " ".join(text.split())


def cell(text: str) -> str:
    """A table cell: one line, pipes escaped."""
    return one_line(text).replace("|", "\\|")


def code(text: str) -> str:
    """An inline code span that survives backticks inside the text (PromQL allows `raw strings`)."""
    text = one_line(text)
    runs = [len(run) for run in re.findall(r"`+", text)]
    fence = "`" * (max(runs, default=0) + 1)
    pad = " " if text.startswith("`") or text.endswith("`") else ""
    return f"{fence}{pad}{text}{pad}{fence}"


def table(headers: Sequence[str], rows: Sequence[Sequence[str]], *, right: Sequence[int] = ()) -> list[str]:
    """A Markdown table; columns listed in `right` are right-aligned (numbers)."""
    align = ["---:" if i in right else "---" for i in range(len(headers))]
    lines = ["| " + " | ".join(headers) + " |", "|" + "|".join(align) + "|"]
    lines += ["| " + " | ".join(cell(c) for c in row) + " |" for row in rows]
    return lines
