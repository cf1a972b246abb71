"""Reading hand-written input files, low level: YAML loading with bounds, ${VAR} expansion, and
pydantic's ValidationError as one line naming the file and the field.

Shared by profiles (profiles.py), gate files (gates/load.py) and run.json (baseline.py), so every
input mistake reads the same way (`profiles/x.yaml: stages[1].users: ...`, exit code 2). Knows
nothing about what the files mean: the models that validate them live with their owners.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any, TypeVar, cast

import yaml
from pydantic import BaseModel, ValidationError
from pydantic_core import ErrorDetails

from controller.errors import InputError

M = TypeVar("M", bound=BaseModel)
_ENV_REF = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)(?::-([^}]*))?\}")
_Value = TypeVar("_Value")


def field_path(loc: tuple[int | str, ...]) -> str:
    """pydantic's ('stages', 1, 'users') as `stages[1].users`."""
    out = ""
    for part in loc:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out


def error_message(detail: ErrorDetails) -> str:
    """One pydantic error's message as a user reads it: without pydantic's "Value error, " prefix,
    and an unknown field named as such (pydantic says "Extra inputs are not permitted")."""
    if detail["type"] == "extra_forbidden":
        return "unknown field (check the spelling)"
    return detail["msg"].removeprefix("Value error, ")


def validation_error(source: str, error: ValidationError) -> InputError:
    """The first pydantic error as one line naming the file and field."""
    first = error.errors()[0]
    loc = tuple(p for p in first["loc"] if not (isinstance(p, str) and p.startswith("function-")))
    return InputError(error_message(first), source=source, field=field_path(loc) or None)


def expand_env(value: _Value, *, source: str, env: dict[str, str], where: str = "") -> _Value:
    """Replace ${VAR} and ${VAR:-default} in string values, so one profile serves several hosts.
    The document keeps its shape: a mapping comes back a mapping, a list a list."""
    if isinstance(value, dict):
        return cast(
            _Value,
            {
                k: expand_env(v, source=source, env=env, where=f"{where}.{k}" if where else str(k))
                for k, v in value.items()
            },
        )
    if isinstance(value, list):
        expanded = [expand_env(v, source=source, env=env, where=f"{where}[{i}]") for i, v in enumerate(value)]
        return cast(_Value, expanded)
    if not isinstance(value, str):
        return value

    def substitute(match: re.Match[str]) -> str:
        name, default = match.group(1), match.group(2)
        if name in env:
            return env[name]
        if default is not None:
            return default
        raise InputError(
            f"environment variable {name} is not set (use ${{{name}:-default}})", source=source, field=where
        )

    return cast(_Value, _ENV_REF.sub(substitute, value))


# Profiles and gate files are hand-written and small; these bounds keep a hostile or broken file
# (a 2 MB paste, 500-deep nesting, a billion-laughs alias bomb) a one-line error, found in
# milliseconds, instead of a RecursionError or a hang.
MAX_FILE_BYTES = 128 * 1024
MAX_DEPTH = 32  # mappings and sequences inside each other, aliases expanded
# Scalars, mappings and sequences (aliases expanded): ~300 gates or ~500 stages. PyYAML (pure
# Python) composes ~20k nodes a second on a busy 2-core machine, so this bound keeps a refusal fast.
MAX_NODES = 5_000


class _TooBig(Exception):
    pass


class _BoundedLoader(yaml.SafeLoader):
    """PyYAML's safe loader with nesting depth and node count bounded while composing (composition
    is recursive: ~330 levels would raise RecursionError; 100k nodes take seconds)."""

    def __init__(self, stream: str) -> None:
        super().__init__(stream)
        self._depth = 0
        self._nodes = 0

    def compose_node(self, parent: yaml.Node | None, index: int) -> yaml.Node | None:
        self._depth += 1
        self._nodes += 1
        try:
            if self._depth > MAX_DEPTH + 1:
                raise _TooBig(f"nested deeper than {MAX_DEPTH} levels")
            if self._nodes > MAX_NODES:  # stop parsing early; aliases are counted after composing
                raise _TooBig(f"more than {MAX_NODES} values")
            return super().compose_node(parent, index)
        finally:
            self._depth -= 1


def _expanded_size(root: yaml.Node) -> int:
    """Nodes and depth of the document as it would be built, aliases expanded; raises _TooBig.
    Shared (aliased) nodes are measured once, so this is linear in the file, not in the expansion."""
    sizes: dict[int, tuple[int, int]] = {}
    active: set[int] = set()

    def measure(node: yaml.Node, depth: int) -> tuple[int, int]:
        key = id(node)
        if key in active:
            raise _TooBig("an alias refers to a node that contains it (recursive alias)")
        if key not in sizes:
            if isinstance(node, yaml.SequenceNode):
                children = list(node.value)
            elif isinstance(node, yaml.MappingNode):
                children = [part for pair in node.value for part in pair]
            else:
                children = []
            active.add(key)
            count, below = 1, 0
            for child in children:
                child_count, child_depth = measure(child, depth + 1)
                count, below = count + child_count, max(below, child_depth)
                if count > MAX_NODES:
                    raise _TooBig(f"more than {MAX_NODES} values once aliases are expanded")
            active.discard(key)
            sizes[key] = (count, below + (1 if children else 0))
        count, height = sizes[key]
        if depth + height > MAX_DEPTH:
            raise _TooBig(f"nested deeper than {MAX_DEPTH} levels once aliases are expanded")
        return count, height

    return measure(root, 0)[0]


def _read_text(path: Path, source: str) -> str:
    try:
        with path.open("rb") as handle:
            raw = handle.read(MAX_FILE_BYTES + 1)
    except FileNotFoundError:
        raise InputError("file not found", source=source) from None
    except IsADirectoryError:
        raise InputError("is a directory, not a file", source=source) from None
    except OSError as e:
        raise InputError(f"cannot read: {e.strerror}", source=source) from e
    if len(raw) > MAX_FILE_BYTES:
        raise InputError(
            f"larger than {MAX_FILE_BYTES // 1024} KiB: not a profile or gate file", source=source
        )
    if b"\0" in raw:
        line = raw.count(b"\n", 0, raw.index(b"\0")) + 1
        raise InputError("contains a NUL byte: not a text file", source=source, field=f"line {line}")
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError as e:
        line = raw.count(b"\n", 0, e.start) + 1
        raise InputError(
            f"not valid UTF-8 (byte 0x{raw[e.start]:02x} at offset {e.start})",
            source=source,
            field=f"line {line}",
        ) from None


def load_yaml_mapping(path: Path) -> dict[str, Any]:
    """The one YAML loader for profiles and gate files: bounded size, depth and alias expansion,
    UTF-8 only; any problem is an InputError naming the file (and the line when known)."""
    source = str(path)
    text = _read_text(path, source)
    loader: _BoundedLoader | None = None
    try:
        loader = _BoundedLoader(text)  # its reader refuses control characters right away
        node = loader.get_single_node()
        if node is not None:
            _expanded_size(node)
        data = loader.construct_document(node) if node is not None else None
    except _TooBig as e:
        raise InputError(f"too complex: {e}", source=source) from None
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        where = f"line {mark.line + 1}" if mark is not None else None
        problem = getattr(e, "problem", None) or str(e).split("\n")[0] or "invalid YAML"
        raise InputError(f"invalid YAML: {problem}", source=source, field=where) from None
    except (ValueError, OverflowError) as e:  # e.g. a date like 2024-13-45, a 5000-digit number
        raise InputError(f"invalid YAML value: {e}", source=source) from None
    finally:
        if loader is not None:
            loader.dispose()
    if not isinstance(data, dict):
        raise InputError("expected a mapping of fields at the top level", source=source)
    return data


def parse_model(model: type[M], data: dict[str, Any], *, source: str) -> M:
    try:
        return model.model_validate(data)
    except ValidationError as e:
        raise validation_error(source, e) from e
