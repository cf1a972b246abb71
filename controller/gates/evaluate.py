"""Verdicts from values: pure functions, no I/O. A failed gate is a result value, not an exception.

Fail closed: a gate whose value is missing (no data, NaN, a query error) is "fail" with the
reason, whatever its severity, never "pass". A relative gate without a baseline value fails too.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, replace
from typing import Any, Literal

from controller.gates.models import Gate, parse_change
from controller.linefit import MIN_FIT_SAMPLES, fit_line

GateVerdict = Literal["pass", "warn", "fail"]
Overall = Literal["pass", "warn", "fail", "error"]
EXIT_CODES: dict[str, int] = {"pass": 0, "warn": 0, "fail": 1, "error": 3}


@dataclass(frozen=True)
class GateResult:
    name: str
    verdict: GateVerdict
    value: float | None
    promql: str
    window: str
    start: float | None
    end: float | None
    severity: str = "fail"
    max: float | None = None
    min: float | None = None
    max_change: str | None = None
    min_change: str | None = None
    baseline: float | None = None
    abort: bool = False
    reason: str | None = None

    def to_json(self) -> dict[str, object]:
        data = asdict(self)
        data["window"] = {"name": self.window, "start": self.start, "end": self.end}
        del data["start"], data["end"]
        return {k: v for k, v in data.items() if v is not None or k in ("value", "reason")}


def usable(value: float | None) -> bool:
    return value is not None and not math.isnan(value) and not math.isinf(value)


def violations(gate: Gate, value: float, baseline: float | None) -> list[str]:
    """Every threshold the value breaks, as readable phrases. Empty when it passes."""
    found = []
    if gate.max is not None and value > gate.max:
        found.append(f"{value:.6g} > max {gate.max:.6g}")
    if gate.min is not None and value < gate.min:
        found.append(f"{value:.6g} < min {gate.min:.6g}")
    for field, change, broken in (
        ("max_change", gate.max_change, lambda v, lim: v > lim),
        ("min_change", gate.min_change, lambda v, lim: v < lim),
    ):
        if change is None:
            continue
        if not usable(baseline):
            found.append(f"{field} {change}: no baseline value")
            continue
        assert baseline is not None
        limit = baseline * (1 + parse_change(change))
        if broken(value, limit):
            found.append(f"{value:.6g} vs baseline {baseline:.6g}: {field} {change} allows {limit:.6g}")
    return found


def judge(
    gate: Gate,
    *,
    value: float | None,
    promql: str,
    window: str,
    start: float | None,
    end: float | None,
    reason: str | None = None,
    baseline: float | None = None,
) -> GateResult:
    """One gate's verdict. `reason` explains a missing value (query error, no data, no such phase)."""
    common: dict[str, Any] = {
        "name": gate.name,
        "promql": promql,
        "window": window,
        "start": start,
        "end": end,
        "severity": gate.severity,
        "max": gate.max,
        "min": gate.min,
        "max_change": gate.max_change,
        "min_change": gate.min_change,
        "baseline": baseline if usable(baseline) else None,
        "abort": gate.abort,
    }
    if not usable(value):
        why = reason or ("no data" if value is None else f"value is {value}")
        return GateResult(verdict="fail", value=None, reason=why, **common)
    assert value is not None
    broken = violations(gate, value, baseline)
    if broken:
        return GateResult(verdict=gate.severity, value=value, reason="; ".join(broken), **common)
    return GateResult(verdict="pass", value=value, reason=None, **common)


def overall(results: list[GateResult]) -> Overall:
    verdicts = {r.verdict for r in results}
    if "fail" in verdicts:
        return "fail"
    return "warn" if "warn" in verdicts else "pass"


@dataclass(frozen=True)
class GateReport:
    """The verdict of one gate file on one run: what gates.json, gates.md and junit.xml are made from."""

    verdict: Overall
    gates: tuple[GateResult, ...]
    gate_file: str
    run_id: str
    evaluated_at: float
    baseline_run_id: str | None = None
    reason: str | None = None  # why the verdict is "error" (Prometheus unreachable, ...)
    # The gate file's `name`: unlike the run id or the file's path, the same from build to build,
    # so CI test history (junit.xml classname) links runs of the same gates.
    suite: str = ""
    # Every gate that was to be judged, in file order, including those an outage left unevaluated:
    # junit.xml has one testcase per gate whatever happened.
    gate_names: tuple[str, ...] = ()

    @property
    def exit_code(self) -> int:
        return EXIT_CODES[self.verdict]

    def to_json(self) -> dict[str, object]:
        return {
            "verdict": self.verdict,
            "exit_code": self.exit_code,
            "gate_file": self.gate_file,
            "run_id": self.run_id,
            "baseline_run_id": self.baseline_run_id,
            "evaluated_at": self.evaluated_at,
            "reason": self.reason,
            "gates": [g.to_json() for g in self.gates],
        }


def drift_value(series: Mapping[str, Sequence[tuple[float, float]]]) -> tuple[float | None, str | None]:
    """(value, reason) of a drift_per_hour gate from its gauge's samples, series name -> points: the
    largest growth_ratio_per_hour (linefit.py, as analysis.json's drift). Fail closed: no series, or
    any series that cannot be fitted (fewer than MIN_FIT_SAMPLES samples, fitted at 0 or below),
    leaves the gate without a value."""
    if not series:
        return None, "no data"
    growths: list[float] = []
    for name, points in sorted(series.items()):
        fit = fit_line(points)
        if fit is None:
            return (
                None,
                f"{name}: {len(points)} sample(s) in the window, need {MIN_FIT_SAMPLES} to fit a line",
            )
        if fit.growth_ratio_per_hour is None:
            return None, f"{name}: fitted at {fit.intercept:.6g} at the window's start, no growth ratio"
        growths.append(fit.growth_ratio_per_hour)
    return max(growths), None


def with_results(report: GateReport, judged: Sequence[GateResult]) -> GateReport:
    """The report with `judged` results in place of those of the same name, its verdict recomputed
    (an `error` report stays one: Prometheus failed for the others)."""
    by_name = {r.name: r for r in judged}
    gates = tuple(by_name.get(r.name, r) for r in report.gates)
    verdict = report.verdict if report.verdict == "error" else overall(list(gates))
    return replace(report, gates=gates, verdict=verdict)
