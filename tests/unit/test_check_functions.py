"""scripts/check_functions.py on small sources: long functions and public functions returning Any."""

from __future__ import annotations

import textwrap

from scripts.check_functions import MAX_LINES, Offender, check_source, main


def body(lines: int) -> str:
    """A function body of exactly `lines` lines."""
    return "".join(f"    x{i} = {i}\n" for i in range(lines))


def function(name: str, total_lines: int, *, returns: str = "int", decorators: int = 0) -> str:
    """A function whose def line plus body make `total_lines` lines."""
    decorated = "@staticmethod\n" * decorators
    return f"{decorated}def {name}() -> {returns}:\n" + body(total_lines - 1)


def check(source: str) -> list[str]:
    return [str(o) for o in check_source(textwrap.dedent(source), "m.py")]


def test_exactly_the_limit_passes_one_more_line_fails():
    assert check(function("fits", MAX_LINES)) == []
    assert check(function("long", MAX_LINES + 1)) == [f"m.py:1 long: {MAX_LINES + 1} lines"]


def test_decorators_do_not_count_and_the_line_is_the_def_line():
    source = "import functools\n\n\n" + function("cached", MAX_LINES, decorators=3)
    assert check(source) == []
    source = "\n\n" + function("cached", MAX_LINES + 2, decorators=2)
    assert check(source) == [f"m.py:5 cached: {MAX_LINES + 2} lines"]


def test_a_multi_line_signature_and_docstring_count():
    source = 'def f(\n    a: int,\n    b: int,\n) -> int:\n    """Doc."""\n' + body(MAX_LINES - 4)
    assert check(source) == [f"m.py:1 f: {MAX_LINES + 1} lines"]


def test_methods_and_nested_functions_are_named_by_where_they_live():
    nested = textwrap.indent(function("inner", MAX_LINES + 1), "    ")
    source = (
        "class Runner:\n"
        + textwrap.indent(function("run", MAX_LINES + 1), "    ")
        + "\n    async def go(self) -> None:\n"
        + textwrap.indent(nested, "    ")
    )
    found = check(source)
    assert f"m.py:2 Runner.run: {MAX_LINES + 1} lines" in found
    assert any(line.startswith("m.py:") and " Runner.go.inner: " in line for line in found)
    # the outer function holds the inner one, so it is long too
    assert any(" Runner.go: " in line for line in found)


def test_public_functions_returning_any_are_reported():
    source = """
        from typing import Any, Optional, Union
        import typing

        def values() -> dict[str, Any]: ...
        def plain() -> Any: ...
        def qualified() -> typing.Any: ...
        def quoted() -> "Any | None": ...
        def optional() -> Optional[Any]: ...
        def union() -> Union[int, Any]: ...
        def fine() -> dict[str, int]: ...
        def unannotated(): ...
        def takes(x: Any) -> int: ...
    """
    assert check(source) == [
        "m.py:6 plain: returns Any",
        "m.py:7 qualified: returns Any",
        "m.py:8 quoted: returns Any",
        "m.py:9 optional: returns Any",
        "m.py:10 union: returns Any",
    ]


def test_any_as_a_type_argument_is_a_document_not_a_vague_return():
    source = """
        from typing import Any

        def document() -> dict[str, Any]: ...
        def rows() -> "list[dict[str, Any]]": ...
    """
    assert check(source) == []


def test_private_and_dunder_functions_may_return_any():
    source = """
        from typing import Any

        def _helper() -> Any: ...

        class C:
            def __getattr__(self, name: str) -> Any: ...
            def _raw(self) -> dict[str, Any]: ...
            def public(self) -> Any: ...
    """
    assert check(source) == ["m.py:9 C.public: returns Any"]


def test_a_name_that_only_contains_any_is_not_any():
    source = """
        class AnyOf: ...
        def company() -> AnyOf: ...
    """
    assert check(source) == []


def test_one_function_can_offend_twice():
    found = check_source("from typing import Any\n" + function("big", MAX_LINES + 1, returns="Any"), "m.py")
    assert found == [
        Offender("m.py", 2, "big", f"{MAX_LINES + 1} lines"),
        Offender("m.py", 2, "big", "returns Any"),
    ]


def test_main_prints_one_line_per_offender_and_exits_1(tmp_path, capsys):
    package = tmp_path / "pkg"
    (package / "sub").mkdir(parents=True)
    (package / "ok.py").write_text(function("fine", 3))
    (package / "sub" / "bad.py").write_text(
        "from typing import Any\n\n" + function("loose", 2, returns="Any")
    )
    (package / "long.py").write_text(function("long", MAX_LINES + 5))
    assert main([str(package)]) == 1
    assert capsys.readouterr().out.splitlines() == [
        f"{package / 'long.py'}:1 long: {MAX_LINES + 5} lines",
        f"{package / 'sub' / 'bad.py'}:3 loose: returns Any",
    ]


def test_main_exits_0_when_all_is_well(tmp_path, capsys):
    (tmp_path / "ok.py").write_text(function("fine", MAX_LINES))
    assert main([str(tmp_path)]) == 0
    assert capsys.readouterr().out == ""
