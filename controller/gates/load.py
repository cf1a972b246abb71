"""Read and validate a gate file before any load is sent: schema (pydantic), then PromQL (promtool).

Every error is one line naming the file and the gate: `gates/x.yaml: gates[2] (search_p95).max: ...`.
"""

from __future__ import annotations

import re
import subprocess
import tempfile
from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError

from controller.errors import InfraError, InputError
from controller.gates.compile import compile_gate
from controller.gates.models import GateFile
from controller.inputs import error_message, field_path, load_yaml_mapping
from controller.prom.binaries import find_promtool


def gate_label(name: object, index: int) -> str:
    """How errors name a gate: `gates[2] (search_p95)`."""
    return f"gates[{index}] ({name})" if name and isinstance(name, str) else f"gates[{index}]"


def _gate_label(data: dict[str, Any], index: int) -> str:
    gates = data.get("gates")
    in_range = isinstance(gates, list) and 0 <= index < len(gates) and isinstance(gates[index], dict)
    return gate_label(gates[index].get("name") if in_range else None, index)  # type: ignore[index]


def parse_gate_file(data: dict[str, Any], *, source: str) -> GateFile:
    try:
        return GateFile.model_validate(data)
    except ValidationError as e:
        first = e.errors()[0]
        loc = tuple(first["loc"])
        field: str | None
        if len(loc) >= 2 and loc[0] == "gates" and isinstance(loc[1], int):
            rest = field_path(tuple(p for p in loc[2:] if not str(p).startswith("function-")))
            field = _gate_label(data, loc[1]) + (f".{rest}" if rest else "")
        else:
            field = field_path(loc) or None
        message = error_message(first)
        if first["type"] == "literal_error" and loc[-1:] == ("metric",):
            message = f"unknown metric {first.get('input')!r}; {message}"
        raise InputError(message, source=source, field=field) from e


def check_promql(gate_file: GateFile, *, source: str, data: dict[str, Any]) -> None:
    """Parse every gate's PromQL with promtool, as recording rules: no server needed."""
    rules = [
        {"record": f"loadctl_gate_{i}", "expr": compile_gate(g, run_id="validate", segments=((0.0, 60.0),))}
        for i, g in enumerate(gate_file.gates)
        if not g.from_analysis  # no PromQL: judged from analysis.json's steps
    ]
    with tempfile.TemporaryDirectory(prefix="loadctl-gates-") as tmp:
        path = Path(tmp) / "rules.yml"
        path.write_text(yaml.safe_dump({"groups": [{"name": "gates", "rules": rules}]}), encoding="utf-8")
        done = subprocess.run(
            [find_promtool(), "check", "rules", str(path)], capture_output=True, text=True, timeout=60
        )
    if done.returncode == 0:
        return
    output = done.stdout + done.stderr
    match = re.search(r'"loadctl_gate_(\d+)": (.*)', output)
    if not match:
        raise InfraError(f"promtool check rules failed: {' '.join(output.split())[:300]}")
    raise InputError(
        f"invalid PromQL: {match.group(2).strip()}",
        source=source,
        field=_gate_label(data, int(match.group(1))),
    )


def load_gate_file(path: Path) -> GateFile:
    source = str(path)
    data = load_yaml_mapping(path)
    gate_file = parse_gate_file(data, source=source)
    check_promql(gate_file, source=source, data=data)
    return gate_file
