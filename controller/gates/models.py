"""Gate files (gates/*.yaml), validated: what to measure, over which window, against which threshold.

Schema (version 1):
    version: 1
    name: pilot
    window: steady            # default window: run | steady | any phase name
    abort_grace: 60s          # live-abort gates wait this long after the start
    gates:
      - name: search_p95
        metric: latency_p95_ms          # or promql: '...'
        labels: 'name="recipes_search"' # PromQL label matchers (metric gates only)
        status: "429"                   # status_rate only
        outcome: successful             # rps and latency_* only: successful (default) | all
        gauge: loadctl_process_resident_memory_bytes  # drift_per_hour only: the gauge to fit
        max: 1200                       # and/or min; max_change/min_change vs a baseline; floor (locking)
        severity: fail                  # fail | warn
        abort: false                    # also evaluated live; a violation stops the load
        window: run                     # per-gate override

Values: counts are what the run's counters counted inside the window (exact: the value at its
end minus the value at its start). `rps` and `latency_*` judge successful requests by default
(requests that did not fail, as k6's expected_response:true); `outcome: all` takes every request,
failed ones included (a refused connection is fast and counts as throughput). A window with no
successful request fails the latency gate ("no successful requests in the window"); a window
too short to hold a few scrapes fails every metric gate with that reason.

`drift_per_hour` fits a least-squares line through `gauge`'s samples in the window (controller/
linefit.py, as analysis.json's drift) and judges its growth per hour relative to the fitted value at
the window's start (0.05 = 5 %/h), the largest of the series `labels` select; a series with fewer
than 3 samples or fitted at 0 fails the gate. `breaking_point_users` is analysis.json's breaking
point: the users of the first step that broke the SLO, else the most users a step held within it
(a run that never reached 500 users within the SLO cannot pass `min: 500`); judged after the run
only, over the whole run (no `window`, `labels`, `abort` or baseline).
"""

from __future__ import annotations

import re
from typing import Annotated, Literal

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, field_validator, model_validator

from controller.models import METRIC_NAME_PATTERN, PHASE_PATTERN, Duration, Number, whole_number

Metric = Literal[
    "requests",
    "failures",
    "error_rate",
    "status_rate",
    "rps",
    "latency_p50_ms",
    "latency_p90_ms",
    "latency_p95_ms",
    "latency_p99_ms",
    "drift_per_hour",
    "breaking_point_users",
]
# Judged from the run's analysis (analysis.json's steps) after it is computed, not by a query.
ANALYSIS_METRICS = frozenset({"breaking_point_users"})
_CHANGE = re.compile(r"^([+-]?\d+(?:\.\d+)?)%$")
# A gate's PromQL is a query, not a program: the bound keeps promtool, Prometheus' URL limits and
# the reports sane (a 100 kB expression is a paste accident).
MAX_PROMQL_CHARS = 4_000
MAX_LABELS_CHARS = 1_000
_MATCHER = re.compile(r'\s*[a-zA-Z_][a-zA-Z0-9_]*\s*(=~|!~|!=|=)\s*"(?:[^"\\]|\\.)*"\s*')


def parse_change(text: str) -> float:
    """'+10%' -> 0.10, '-5%' -> -0.05."""
    match = _CHANGE.match(text.strip())
    if not match:
        raise ValueError(f"'{text}' is not a relative change like '+10%' or '-5%'")
    return float(match.group(1)) / 100


def check_matchers(labels: str) -> str:
    """Comma-separated PromQL label matchers: name="x", status!~"5..". Checked again by promtool."""
    text = labels.strip()
    if not text:
        return ""
    position = 0
    while True:
        match = _MATCHER.match(text, position)
        if not match:
            raise ValueError(f"'{labels}' is not a list of label matchers like name!=\"harvest_auto\"")
        position = match.end()
        if position == len(text):
            return text
        if text[position] != ",":
            raise ValueError(f"'{labels}' is not a list of label matchers like name!=\"harvest_auto\"")
        position += 1


class Gate(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    name: str = Field(pattern=r"^[A-Za-z0-9_.:-]{1,80}$")
    metric: Metric | None = None
    promql: str | None = Field(default=None, min_length=1, max_length=MAX_PROMQL_CHARS)
    labels: str = Field(default="", max_length=MAX_LABELS_CHARS)
    status: str | None = Field(default=None, max_length=40)
    max: Number | None = None
    min: Number | None = None
    max_change: str | None = Field(default=None, max_length=40)
    min_change: str | None = Field(default=None, max_length=40)
    floor: Number | None = None
    severity: Literal["fail", "warn"] = "fail"
    abort: bool = False
    window: str | None = Field(default=None, pattern=PHASE_PATTERN)
    outcome: Literal["successful", "all"] | None = None  # None: successful (rps, latency_* only)
    gauge: str | None = Field(default=None, pattern=METRIC_NAME_PATTERN, max_length=200)  # drift_per_hour

    @field_validator("labels")
    @classmethod
    def _labels(cls, labels: str) -> str:
        return check_matchers(labels)

    @field_validator("max_change", "min_change")
    @classmethod
    def _change(cls, text: str | None) -> str | None:
        if text is not None:
            parse_change(text)
        return text

    @field_validator("status", mode="before")
    @classmethod
    def _status(cls, status: object) -> object:
        if isinstance(status, bool):
            raise ValueError('expected an HTTP status like "429" or an exception name')
        return str(status) if isinstance(status, int) else status  # status: 429 means "429"

    @model_validator(mode="after")
    def _consistent(self) -> Gate:
        if (self.metric is None) == (self.promql is None):
            raise ValueError("give exactly one of 'metric' and 'promql'")
        if self.metric == "status_rate" and not self.status:
            raise ValueError("metric status_rate needs 'status' (e.g. \"429\")")
        if self.status and self.metric != "status_rate":
            raise ValueError("'status' only applies to metric status_rate")
        if self.outcome is not None and not (
            self.metric == "rps" or (self.metric or "").startswith("latency_")
        ):
            raise ValueError("'outcome' only applies to metrics rps and latency_* (successful | all)")
        if self.promql is not None and self.labels:
            raise ValueError("'labels' only applies to 'metric' gates; put matchers in the promql")
        if all(v is None for v in (self.max, self.min, self.max_change, self.min_change)):
            raise ValueError("no threshold: give max, min, max_change or min_change")
        if self.abort and self.needs_baseline:
            raise ValueError(
                "a relative gate (max_change/min_change) cannot abort live: it is judged after the run"
            )
        if self.max is not None and self.min is not None and self.min > self.max:
            raise ValueError("min is greater than max")
        self._check_metric_fields()
        return self

    def _check_metric_fields(self) -> None:
        """The fields of drift_per_hour and breaking_point_users."""
        if (self.metric == "drift_per_hour") != (self.gauge is not None):
            raise ValueError(
                "metric drift_per_hour needs 'gauge' (the gauge to fit, e.g. "
                "loadctl_process_resident_memory_bytes)"
                if self.gauge is None
                else "'gauge' only applies to metric drift_per_hour"
            )
        if not self.from_analysis:
            return
        if self.abort:
            raise ValueError(
                f"{self.metric} cannot abort live: it is judged from the run's analysis, after the run"
            )
        if self.needs_baseline:
            raise ValueError(f"{self.metric} takes max or min, not max_change/min_change")
        if self.labels or self.window is not None:
            raise ValueError(f"{self.metric} is judged over the whole run: no 'labels' or 'window'")

    @property
    def from_analysis(self) -> bool:
        """Judged from the run's analysis after the run (runs.py), not by a query."""
        return self.metric in ANALYSIS_METRICS

    @property
    def needs_baseline(self) -> bool:
        return self.max_change is not None or self.min_change is not None


class GateFile(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    version: Annotated[Literal[1], BeforeValidator(whole_number)]
    name: str = Field(pattern=r"^[A-Za-z0-9_.-]{1,80}$")
    window: str = Field(default="steady", pattern=PHASE_PATTERN)
    abort_grace: Duration = 60.0
    gates: tuple[Gate, ...] = Field(min_length=1)

    @model_validator(mode="after")
    def _unique(self) -> GateFile:
        names = [gate.name for gate in self.gates]
        duplicates = sorted({n for n in names if names.count(n) > 1})
        if duplicates:
            raise ValueError(f"gate names must be unique: {', '.join(duplicates)}")
        return self

    def window_of(self, gate: Gate) -> str:
        if gate.from_analysis:
            return "run"  # the steps of the whole run, whatever the file's default window
        return gate.window or self.window
