#!/usr/bin/env python3
"""Report the functions of controller/ that are too long, or too vague about what they return.

Two house rules, checked with the standard library only (ast), so any Python can run it:

- a function or method longer than MAX_LINES lines, counted from its `def` line to the last line
  of its body (decorators excluded): past that, it does several things and wants well-named helpers;
- a public function or method (name not starting with `_`) that returns `Any` itself (bare, or as
  a member of a union such as `Any | None`): its callers cannot know what they get, and mypy
  stops checking them. `Any` as a type argument (`dict[str, Any]`: a JSON or YAML document not
  validated yet) is allowed: the caller knows it holds a mapping, and the value types are what
  the document says, which is exactly what the validating model checks next.

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


def _is_any(node: ast.expr) -> bool:
    return (isinstance(node, ast.Name) and node.id == "Any") or (
        isinstance(node, ast.Attribute) and node.attr == "Any"
    )


def returns_any(annotation: ast.expr | None) -> bool:
    """Whether an annotation is `Any` itself: `Any`, `typing.Any`, a union with Any as a member
    (`Any | None`, `Optional[Any]`, `Union[int, Any]`), also quoted; not `dict[str, Any]`."""
    if annotation is None:
        return False
    if isinstance(annotation, ast.Constant) and isinstance(annotation.value, str):
        try:
            return returns_any(ast.parse(annotation.value, mode="eval").body)
        except SyntaxError:
            return False
    if _is_any(annotation):
        return True
    if isinstance(annotation, ast.BinOp) and isinstance(annotation.op, ast.BitOr):
        return returns_any(annotation.left) or returns_any(annotation.right)
    if isinstance(annotation, ast.Subscript):
        generic = annotation.value
        name = generic.id if isinstance(generic, ast.Name) else getattr(generic, "attr", "")
        if name in ("Optional", "Union"):
            members = annotation.slice.elts if isinstance(annotation.slice, ast.Tuple) else [annotation.slice]
            return any(returns_any(member) for member in members)
    return False


def check_source(source: str, path: str, *, max_lines: int = MAX_LINES) -> list[Offender]:
    """The offenders in one module's source. Pure: `path` only labels them."""
    found = []
    for name, function in functions(ast.parse(source, filename=path)):
        lines = length(function)
        if lines > max_lines:
            found.append(Offender(path, function.lineno, name, f"{lines} lines"))
        if not function.name.startswith("_") and returns_any(function.returns):
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
