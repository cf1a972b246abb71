#!/usr/bin/env python3
"""Report the functions of controller/ that are too long, or too vague about what they return.

Two house rules, checked with the standard library only (ast), so any Python can run it:

- a function or method longer than MAX_LINES lines, counted from its `def` line to the last line
  of its body (decorators excluded): past that, it does several things and wants well-named helpers;
- a public function or method (name not starting with `_`) whose return annotation mentions
  `Any`: its callers cannot know what they get, and mypy stops checking them.

Exit 1 with one line per offender (`path:line name: N lines` / `path:line name: returns Any`),
0 when there is none. Usage: python scripts/check_functions.py [PATH ...]   (default: controller)
"""

from __future__ import annotations

import ast
import sys
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

MAX_LINES = 60
DEFAULT_ROOTS = ("controller",)

Function = ast.FunctionDef | ast.AsyncFunctionDef


@dataclass(frozen=True, order=True)
class Offender:
    path: str
    line: int
    name: str
    problem: str

    def __str__(self) -> str:
        return f"{self.path}:{self.line} {self.name}: {self.problem}"


def functions(tree: ast.AST, prefix: str = "") -> Iterator[tuple[str, Function]]:
    """Every function and method, nested ones too, with its dotted name (`Class.method`)."""
    for node in ast.iter_child_nodes(tree):
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
            name = prefix + node.name
            yield name, node
            yield from functions(node, name + ".")
        elif isinstance(node, ast.ClassDef):
            yield from functions(node, prefix + node.name + ".")
        else:
            yield from functions(node, prefix)


def length(function: Function) -> int:
    """Lines from the `def` line to the last line of the body; decorators are not counted."""
    end = function.end_lineno or function.lineno
    return end - function.lineno + 1


def mentions_any(annotation: ast.expr | None) -> bool:
    """Whether `Any` appears anywhere in an annotation: `Any`, `typing.Any`, `dict[str, Any]`,
    and inside a quoted annotation."""
    if annotation is None:
        return False
    for node in ast.walk(annotation):
        if isinstance(node, ast.Name) and node.id == "Any":
            return True
        if isinstance(node, ast.Attribute) and node.attr == "Any":
            return True
        if isinstance(node, ast.Constant) and isinstance(node.value, str):
            try:
                quoted = ast.parse(node.value, mode="eval").body
            except SyntaxError:
                continue
            if mentions_any(quoted):
                return True
    return False


def check_source(source: str, path: str, *, max_lines: int = MAX_LINES) -> list[Offender]:
    """The offenders in one module's source. Pure: `path` only labels them."""
    found = []
    for name, function in functions(ast.parse(source, filename=path)):
        lines = length(function)
        if lines > max_lines:
            found.append(Offender(path, function.lineno, name, f"{lines} lines"))
        if not function.name.startswith("_") and mentions_any(function.returns):
            found.append(Offender(path, function.lineno, name, "returns Any"))
    return found


def python_files(roots: Sequence[Path]) -> Iterator[Path]:
    for root in roots:
        if root.is_file():
            yield root
        else:
            yield from sorted(root.rglob("*.py"))


def main(argv: Sequence[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    roots = [Path(a) for a in args or DEFAULT_ROOTS]
    offenders = sorted(
        offender
        for path in python_files(roots)
        for offender in check_source(path.read_text(encoding="utf-8"), str(path))
    )
    for offender in offenders:
        print(offender)
    return 1 if offenders else 0


if __name__ == "__main__":
    sys.exit(main())
