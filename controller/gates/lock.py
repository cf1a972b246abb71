"""Lock a gate file to an observed run: tighten each max/min to what a good (pilot) run measured,
plus headroom, so the next run fails on a regression instead of on a threshold guessed up front.

Locking only ever tightens: a max never goes up, a min never goes down. A gate the run did not
measure (no data, query error) keeps its thresholds, and the report says why. Relative thresholds
(max_change/min_change) are already anchored to a baseline and are left alone.

Pure: evaluating the run and writing the files are the caller's job; the lock report (Markdown)
is rendered by controller/reports/lock.py.
"""

from __future__ import annotations

import copy
import math
from collections.abc import Sequence
from dataclasses import dataclass
from decimal import ROUND_CEILING, ROUND_FLOOR, Decimal
from typing import Any

import yaml

from controller.gates.evaluate import GateResult

SIGNIFICANT_DIGITS = 4
LOCKED_SUFFIX = ".locked"
NAME_LIMIT = 80  # GateFile.name's pattern allows 80 characters


@dataclass(frozen=True)
class LockRow:
    """One threshold of one gate: what it was, what the run measured, what it is now."""

    gate: str
    field: str  # "max" or "min"; "max_change"/"min_change" rows only say they were left alone
    previous: float | None
    observed: float | None
    locked: float | None
    note: str = ""


def check_headroom(headroom: float) -> None:
    # headroom <= 1 would lock a max below (or at) the value just observed: the gate would fail the
    # very run it was locked from, or on noise.
    if not (math.isfinite(headroom) and headroom > 1):
        raise ValueError(f"headroom must be a number greater than 1 (e.g. 1.2), not {headroom}")


def locked_threshold_max(current: float, observed: float, headroom: float, floor: float | None) -> float:
    """observed * headroom, but never above the current max nor below the gate's floor."""
    check_headroom(headroom)
    return min(current, max(observed * headroom, floor if floor is not None else -math.inf))


def locked_threshold_min(current: float, observed: float, headroom: float) -> float:
    """observed / headroom, but never below the current min."""
    check_headroom(headroom)
    return max(current, observed / headroom)


def round_significant(value: float, *, up: bool, digits: int = SIGNIFICANT_DIGITS) -> float:
    """Round to `digits` significant digits, towards +inf (up) or -inf (down), never to nearest."""
    if value == 0 or not math.isfinite(value):
        return value
    # 12 digits first drops float noise (0.025 * 1.2 = 0.030000000000000002) that would otherwise
    # decide the direction of the rounding.
    exact = Decimal(f"{value:.12g}")
    quantum = Decimal(1).scaleb(exact.adjusted() - digits + 1)
    return float(exact.quantize(quantum, rounding=ROUND_CEILING if up else ROUND_FLOOR))


def _lock_max(current: float, observed: float, headroom: float, floor: float | None) -> tuple[float, str]:
    exact = locked_threshold_max(current, observed, headroom, floor)
    if exact >= current:
        return current, "unchanged: observed * headroom is not tighter"
    rounded = round_significant(exact, up=False)
    # Rounding down must not cut below the floor nor below the observed value itself.
    lowest = observed if floor is None else max(observed, floor)
    locked = rounded if rounded >= lowest else exact
    return locked, f"floor {floor:g}" if floor is not None and exact == floor else ""


def _lock_min(current: float, observed: float, headroom: float) -> tuple[float, str]:
    exact = locked_threshold_min(current, observed, headroom)
    if exact <= current:
        return current, "unchanged: observed / headroom is not tighter"
    rounded = round_significant(exact, up=True)
    return (rounded if rounded <= observed else exact), ""


def _observed(result: GateResult | None, gate: dict[str, Any], fields: list[str]) -> tuple[float | None, str]:
    """(value, why it cannot lock the gate): why is "" when it can."""
    if result is None:
        return None, "not evaluated"
    value = result.value
    if value is None:
        return None, result.reason or "no data"
    if not math.isfinite(value):
        return value, f"value is {value}"
    if value < 0:
        return value, "negative value (headroom assumes values >= 0)"
    broken = [
        field
        for field in fields
        if (value > float(gate[field]) if field == "max" else value < float(gate[field]))
    ]
    if broken:
        # a run that broke the gate says nothing about where to tighten it; locking the min to
        # such a value could even put it above the max
        return value, f"the run broke its {' and '.join(broken)}"
    return value, ""


def _plain(value: float) -> float | int:
    """1120.0 -> 1120 so the YAML reads like a hand-written gate file."""
    return int(value) if value.is_integer() and abs(value) < 1e15 else value


def _lock_gate(gate: dict[str, Any], result: GateResult | None, headroom: float) -> list[LockRow]:
    """Tighten one gate in place (it is a copy) and say what happened to each of its thresholds."""
    name = str(gate.get("name"))
    fields = [field for field in ("max", "min") if gate.get(field) is not None]
    if not fields:
        relative = [field for field in ("max_change", "min_change") if gate.get(field) is not None]
        return [
            LockRow(
                name,
                field,
                None,
                result.value if result else None,
                None,
                "not locked: relative threshold, kept as it is",
            )
            for field in relative
        ]
    observed, why = _observed(result, gate, fields)
    if why or observed is None:
        return [
            LockRow(name, field, float(gate[field]), observed, float(gate[field]), f"not locked: {why}")
            for field in fields
        ]
    rows = []
    for field in fields:
        current = float(gate[field])
        if field == "max":
            floor = gate.get("floor")
            locked, note = _lock_max(current, observed, headroom, None if floor is None else float(floor))
        else:
            locked, note = _lock_min(current, observed, headroom)
        if locked != current:
            gate[field] = _plain(locked)
        rows.append(LockRow(name, field, current, observed, locked, note))
    return rows


def lock_gate_file(
    data: dict[str, Any], results: Sequence[GateResult], *, headroom: float = 1.2
) -> tuple[dict[str, object], list[LockRow]]:
    """A tightened copy of a gate file (as loaded from YAML) and one row per threshold.

    Results are matched to gates by name; the input dict is not modified.
    """
    check_headroom(headroom)
    if not isinstance(data.get("gates"), list):
        raise ValueError("the gate file has no 'gates' list")
    locked = copy.deepcopy(data)
    by_name = {result.name: result for result in results}
    rows: list[LockRow] = []
    for gate in locked["gates"]:
        rows += _lock_gate(gate, by_name.get(gate.get("name")), headroom)
    name = locked.get("name")
    if isinstance(name, str) and not name.endswith(LOCKED_SUFFIX):
        locked["name"] = name[: NAME_LIMIT - len(LOCKED_SUFFIX)] + LOCKED_SUFFIX
    return locked, rows


def dump_gate_file(data: dict[str, Any], *, run_id: str | None = None, source: str | None = None) -> str:
    """YAML for a locked gate file, starting with a comment that says where its numbers came from.

    `run_id` is the run the values were observed in; `source` is free text (the source gate file).
    """
    origins = [f"run {run_id}" if run_id else "", source or ""]
    # one line: a newline in either would end the comment and corrupt the YAML
    origin = " and ".join(" ".join(o.split()) for o in origins if o.strip())
    header = f"# Generated by `loadctl gates lock`{' from ' + origin if origin else ''}.\n"
    return header + yaml.safe_dump(data, sort_keys=False, allow_unicode=True, default_flow_style=False)
