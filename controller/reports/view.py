"""What a report section holds, before a template lays it out (pure data, no formatting rules).

report.md and report.html are rendered from the same sections (controller/reports/templates/):
Python computes every row and every number's text once, the templates only place them. A team's
own template (`--report-template DIR`) reads the same objects: `report.sections` in order, or one
section by key (`report.section("phases")`), each a title and a list of blocks whose `kind` says
how to lay it out.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Literal


@dataclass(frozen=True)
class Fact:
    """One bullet: `label: value`; `code` shows the value as a name (a path, an id, a command)."""

    label: str
    value: str
    code: bool = False


@dataclass(frozen=True)
class Facts:
    items: tuple[Fact, ...]
    kind: Literal["facts"] = "facts"


@dataclass(frozen=True)
class Table:
    """Rows of text; columns in `right` are numbers (right-aligned), in `code` names (code spans).
    `emphasis` marks the rows worth a look (a failed step, a flagged change)."""

    headers: tuple[str, ...]
    rows: tuple[tuple[str, ...], ...]
    right: frozenset[int] = frozenset()
    code: frozenset[int] = frozenset()
    emphasis: frozenset[int] = frozenset()
    kind: Literal["table"] = "table"


@dataclass(frozen=True)
class Text:
    """A paragraph: a note, a rule in words, why a section has no figures."""

    text: str
    kind: Literal["text"] = "text"


@dataclass(frozen=True)
class CodeBlock:
    """Text kept as written (the command line)."""

    text: str
    kind: Literal["code"] = "code"


Block = Facts | Table | Text | CodeBlock


@dataclass(frozen=True)
class Section:
    key: str  # stable id for templates and tests: metadata, headline, phases, ...
    title: str
    blocks: tuple[Block, ...] = ()
    subtitle: str = ""  # for a section split in parts (a stage table, then the user mix)


@dataclass(frozen=True)
class ReportView:
    title: str
    run_id: str
    verdict: str
    sections: tuple[Section, ...] = field(default_factory=tuple)

    def section(self, key: str) -> Section | None:
        return next((s for s in self.sections if s.key == key), None)


def table(
    headers: Sequence[str],
    rows: Sequence[Sequence[str]],
    *,
    right: Sequence[int] = (),
    code: Sequence[int] = (),
    emphasis: Sequence[int] = (),
) -> Table:
    return Table(
        headers=tuple(headers),
        rows=tuple(tuple(row) for row in rows),
        right=frozenset(right),
        code=frozenset(code),
        emphasis=frozenset(emphasis),
    )


def facts(*items: Fact) -> Facts:
    return Facts(items=tuple(items))
