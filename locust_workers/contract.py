"""What the controller (and the chart) and the Locust and probe processes must agree on, once.

The controller starts Locust and the probes and reads their metrics back; the processes read what
the controller passed them. Every fact both sides rely on lives here: the environment variables
(names and defaults), the ports, the metric names and fixed label values, the duration syntax, the
stage table's JSON and the Locust command lines of a run. The chart cannot import Python:
tests/chart renders it and checks that its command lines, environment and defaults equal these.

Pods have locust_workers but never controller, so this module lives here; it imports nothing but
the standard library (no Locust, no pydantic), so the controller imports it for free.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

# --------------------------------------------------------------------------- ports

EXPORTER_PORT = 9646  # the Locust master's /metrics (chart: run.exporterPort)
PROBES_PORT = 9647  # the probe process's /metrics (chart: run.probesPort)

# --------------------------------------------------------------------------- environment

# Set by the controller (local backend) and the chart for every Locust process of a run:
RUN_ID_ENV = "LOADCTL_RUN_ID"  # the run_id label of every series (the probe process's too)
PROFILE_ENV = "LOADCTL_PROFILE"  # the profile label of locust_run_info
EXPORTER_HOST_ENV = "LOADCTL_EXPORTER_HOST"  # where the master serves /metrics
EXPORTER_PORT_ENV = "LOADCTL_EXPORTER_PORT"
STAGES_ENV = "LOADCTL_STAGES"  # the stage table (encode_stages); when set, plugin.py defines the shape
# {UserClass: weight}, overriding the classes' weights (a class whose own weight is 0 is left out of
# runs unless this names it)
USER_WEIGHTS_ENV = "LOADCTL_USER_WEIGHTS"
FINAL_SCRAPE_TIMEOUT_ENV = "LOADCTL_FINAL_SCRAPE_TIMEOUT"  # seconds the master waits for one more scrape
# Seconds the master serves Locust's own files after the load until the controller fetched them
# (LOCUST_FILES_PATH); 0: none are served and the master does not wait.
LOCUST_FILES_TIMEOUT_ENV = "LOADCTL_LOCUST_FILES_TIMEOUT"
# The latency histograms' bucket resolution, one of LATENCY_BUCKETS (the profile's latency_buckets,
# the chart's run.latencyBuckets): each name's tolerance and error bound are in histogram.py
LATENCY_BUCKETS_ENV = "LOADCTL_LATENCY_BUCKETS"
CLASSIC_LATENCY_BUCKETS = ("fine", "standard", "coarse")
# One native histogram series per (name, method) instead of a bucket series each (native_histogram.py,
# served as protobuf): only Prometheus 3 scrapes it, and only with scrape_native_histograms
NATIVE_LATENCY = "native"
LATENCY_BUCKETS = (*CLASSIC_LATENCY_BUCKETS, NATIVE_LATENCY)
DEFAULT_LATENCY_BUCKETS = "standard"  # what the master serves when nobody says
# The profile's default, never sent to a master: the controller picks native when the Prometheus
# scraping the master is 3.x, else DEFAULT_LATENCY_BUCKETS (controller/prom/config.py)
AUTO_LATENCY_BUCKETS = "auto"
# Knobs a user may set in the environment (the chart: extraEnv); nothing sets them by default:
WORKER_REPORT_INTERVAL_ENV = "LOADCTL_WORKER_REPORT_INTERVAL"  # seconds between a worker's stats reports
MAX_NAMES_ENV = "LOADCTL_MAX_NAMES"  # distinct `name` label values per metric before `__other__`
# The run's gate thresholds (encode_gate_thresholds), set on the master by the controller: the
# exporter publishes them as GATE_THRESHOLD so dashboards draw the run's own lines. Unset: none.
GATE_THRESHOLDS_ENV = "LOADCTL_GATE_THRESHOLDS"

# The run's heartbeat (locust_workers/heartbeat.py), set by the chart from run.heartbeat on the
# master: the Lease the controller renews (controller/k8s/lease.py), and how long the master lets it
# go unrenewed before it stops the test. Unset: no heartbeat (a plain `helm install`).
HEARTBEAT_LEASE_ENV = "LOADCTL_HEARTBEAT_LEASE"
HEARTBEAT_TIMEOUT_ENV = "LOADCTL_HEARTBEAT_TIMEOUT"
DEFAULT_HEARTBEAT_TIMEOUT_S = 30.0
# Where a pod's ServiceAccount token, CA and namespace are mounted (the controller's --in-cluster,
# the master's heartbeat); SERVICE_ACCOUNT_DIR_ENV overrides it (the tests run pods as processes).
SERVICE_ACCOUNT_DIR_ENV = "LOADCTL_SERVICEACCOUNT_DIR"
SERVICE_ACCOUNT_DIR = Path("/var/run/secrets/kubernetes.io/serviceaccount")


def service_account_dir(environ: Mapping[str, str]) -> Path:
    return Path(environ.get(SERVICE_ACCOUNT_DIR_ENV) or SERVICE_ACCOUNT_DIR)


DEFAULT_RUN_ID = "adhoc"
DEFAULT_PROFILE = "none"
DEFAULT_EXPORTER_HOST = "0.0.0.0"
DEFAULT_FINAL_SCRAPE_TIMEOUT_S = 5.0
DEFAULT_LOCUST_FILES_TIMEOUT_S = 0.0  # a local run reads Locust's files from its own disk
# Locust's own is 3 s: a request reaches the master's counters (and Prometheus) only with a report,
# and gates cut phases at their boundaries (plugin.py says more).
DEFAULT_WORKER_REPORT_INTERVAL_S = 1.0
DEFAULT_MAX_NAMES = 200


@dataclass(frozen=True, kw_only=True)
class ProcessSettings:
    """What loadctl's plugin in a Locust process reads from its environment (stages aside: the shape
    reads those, and only when the plugin defines it)."""

    run_id: str
    profile: str
    exporter_host: str
    exporter_port: int
    user_weights: dict[str, int]
    final_scrape_timeout_s: float
    locust_files_timeout_s: float
    worker_report_interval_s: float
    max_names: int
    latency_buckets: str


def settings_from_env(environ: Mapping[str, str]) -> ProcessSettings:
    """The settings from `environ`, defaults for what is unset; ValueError for a value that is not
    a number (or, for the weights, not JSON; for the buckets, not one of LATENCY_BUCKETS)."""
    return ProcessSettings(
        run_id=environ.get(RUN_ID_ENV, DEFAULT_RUN_ID),
        profile=environ.get(PROFILE_ENV, DEFAULT_PROFILE),
        exporter_host=environ.get(EXPORTER_HOST_ENV, DEFAULT_EXPORTER_HOST),
        exporter_port=int(environ.get(EXPORTER_PORT_ENV, EXPORTER_PORT)),
        user_weights=json.loads(environ.get(USER_WEIGHTS_ENV) or "{}"),
        final_scrape_timeout_s=float(environ.get(FINAL_SCRAPE_TIMEOUT_ENV, DEFAULT_FINAL_SCRAPE_TIMEOUT_S)),
        locust_files_timeout_s=float(environ.get(LOCUST_FILES_TIMEOUT_ENV, DEFAULT_LOCUST_FILES_TIMEOUT_S)),
        worker_report_interval_s=float(
            environ.get(WORKER_REPORT_INTERVAL_ENV, DEFAULT_WORKER_REPORT_INTERVAL_S)
        ),
        max_names=int(environ.get(MAX_NAMES_ENV, DEFAULT_MAX_NAMES)),
        latency_buckets=_latency_buckets(environ.get(LATENCY_BUCKETS_ENV) or DEFAULT_LATENCY_BUCKETS),
    )


def _latency_buckets(value: str) -> str:
    if value not in LATENCY_BUCKETS:
        raise ValueError(f"{LATENCY_BUCKETS_ENV}={value!r} is not one of {', '.join(LATENCY_BUCKETS)}")
    return value


# --------------------------------------------------------------------------- metrics

# The exporter's series (exporter.py documents labels and types). Gates, dashboards and the
# controller's queries rely on these names.
REQUESTS_TOTAL = "locust_requests_total"
REQUEST_FAILURES_TOTAL = "locust_request_failures_total"
RESPONSE_TIME_SECONDS = "locust_response_time_seconds"  # histogram: _bucket, _sum, _count
FAILED_RESPONSE_TIME_SECONDS = "locust_failed_response_time_seconds"  # histogram, same buckets
USERS = "locust_users"
WORKERS = "locust_workers"
WORKER_CPU_PERCENT = "locust_worker_cpu_percent"
RUN_INFO = "locust_run_info"
STAGE_START_TIMESTAMP_SECONDS = "locust_stage_start_timestamp_seconds"
TEST_START_TIMESTAMP_SECONDS = "locust_test_start_timestamp_seconds"
TEST_STOP_TIMESTAMP_SECONDS = "locust_test_stop_timestamp_seconds"
# The locustfile's own end of the run (locustfile_end.py): the exit code its quitting hook asked
# for (environment.process_exit_code), and when it stopped the test itself (runner.quit() mid-run).
PROCESS_EXIT_CODE = "locust_process_exit_code"  # {run_id, message}
LOCUSTFILE_STOP_TIMESTAMP_SECONDS = "locust_locustfile_stop_timestamp_seconds"  # {run_id, caller, message}
CUSTOM_PREFIX = "locust_custom_"  # the locustfile's own metrics (metrics.py)
# Each absolute bound of the run's gate file (gate_thresholds.py), in the gate's own unit (latency
# gates in ms, ratios as fractions): {run_id, gate, metric ("" for a promql gate), bound: max|min,
# severity: fail|warn}. Constant over the run.
GATE_THRESHOLD = "loadctl_gate_threshold"

# The `name` label of every request name (and custom metric name) past the cap of MAX_NAMES_ENV.
OTHER_NAME = "__other__"
# The `state` label values of locust_workers (Locust's worker states, "spawning" for its "hatching").
WORKER_STATES = ("ready", "spawning", "running", "stopped", "missing")
WORKER_MISSING = "missing"  # a worker the master lost (no heartbeat)

# --------------------------------------------------------------------------- gate thresholds


@dataclass(frozen=True)
class GateThreshold:
    """One absolute bound of one gate, as GATE_THRESHOLDS_ENV carries it."""

    gate: str
    metric: str
    bound: str  # "max" or "min"
    severity: str  # "fail" or "warn"
    value: float


def encode_gate_thresholds(thresholds: Iterable[GateThreshold]) -> str:
    return compact_json(
        [
            {"gate": t.gate, "metric": t.metric, "bound": t.bound, "severity": t.severity, "value": t.value}
            for t in thresholds
        ]
    )


def decode_gate_thresholds(text: str) -> tuple[GateThreshold, ...]:
    """The thresholds of GATE_THRESHOLDS_ENV; () for an empty value. ValueError names the entry."""
    if not text.strip():
        return ()
    try:
        rows = json.loads(text)
    except json.JSONDecodeError as e:
        raise ValueError(f"{GATE_THRESHOLDS_ENV} is not JSON: {e}") from e
    if not isinstance(rows, list):
        raise ValueError(f"{GATE_THRESHOLDS_ENV} must be a JSON list of thresholds")
    out = []
    for index, row in enumerate(rows):
        try:
            threshold = GateThreshold(**row)
            value = float(threshold.value)
        except (TypeError, ValueError) as e:
            raise ValueError(f"{GATE_THRESHOLDS_ENV}[{index}] is not a valid threshold: {e}") from e
        if threshold.bound not in ("max", "min") or not math.isfinite(value):
            raise ValueError(f"{GATE_THRESHOLDS_ENV}[{index}] needs bound max|min and a finite value")
        out.append(
            GateThreshold(threshold.gate, threshold.metric, threshold.bound, threshold.severity, value)
        )
    return tuple(out)


# --------------------------------------------------------------------------- Locust's own files

# A master whose LOCUST_FILES_TIMEOUT_ENV is > 0 serves, on its exporter port, what Locust's own
# writers (--csv, --html) make of the finished run: GET LOCUST_FILES_PATH + name for a name of
# LOCUST_FILE_NAMES (503 until the load has stopped, 404 for any other path), and POST
# LOCUST_FILES_PATH when the controller has them all, which ends the master's wait. (A k8s master's
# disk dies with its pod.) The controller picks the name of each in the results folder.
LOCUST_FILES_PATH = "/locust-files/"
LOCUST_FILE_NAMES = ("stats.csv", "failures.csv", "exceptions.csv", "locust.html")
# The controller accepts no larger file (Locust's HTML of a run with many names is a few MiB).
LOCUST_FILE_MAX_BYTES = 64 * 1024 * 1024

# --------------------------------------------------------------------------- durations

# A week: longer is a typo (99999999999h once started a load and broke every PromQL range after it).
MAX_DURATION_S = 7 * 24 * 3600.0
_DURATION_PART = re.compile(r"(\d+(?:\.\d+)?)(h|m|s)")


def parse_duration(value: Any) -> float:
    """Seconds from `90`, `"90s"`, `"5m"`, `"1h30m"` or `"1.5h"`. Raises ValueError otherwise.

    The one duration syntax of profiles, probes and the CLI's timeouts.
    """
    if isinstance(value, bool):
        raise ValueError("expected a duration like 90, '90s', '5m' or '1h30m'")
    if isinstance(value, int | float):
        seconds = float(value)
    elif isinstance(value, str):
        text = value.strip().lower()
        if re.fullmatch(r"\d+(\.\d+)?", text):
            seconds = float(text)
        else:
            parts = _DURATION_PART.findall(text)
            if not parts or "".join(n + u for n, u in parts) != text:
                raise ValueError(f"'{value}' is not a duration like 90, '90s', '5m' or '1h30m'")
            scale = {"h": 3600.0, "m": 60.0, "s": 1.0}
            seconds = sum(float(n) * scale[u] for n, u in parts)
    else:
        raise ValueError("expected a duration like 90, '90s', '5m' or '1h30m'")
    if not math.isfinite(seconds) or seconds <= 0:
        raise ValueError("a duration must be greater than 0")
    if seconds > MAX_DURATION_S:
        raise ValueError(f"a duration must be at most {MAX_DURATION_S / 3600:.0f}h")
    return seconds


# --------------------------------------------------------------------------- the stage table


@dataclass(frozen=True)
class StageRow:
    """One row of the stage table as the Locust processes run it."""

    duration: float
    users: int
    spawn_rate: float
    phase: str = "steady"


class StageLike(Protocol):
    """A stage of any origin: a StageRow, or the controller's validated Stage."""

    @property
    def duration(self) -> float: ...
    @property
    def users(self) -> int: ...
    @property
    def spawn_rate(self) -> float: ...
    @property
    def phase(self) -> str: ...


def encode_stages(stages: Iterable[StageLike]) -> str:
    """The table as STAGES_ENV carries it: compact JSON, sorted keys, whole numbers without `.0`
    (exactly what the chart's `toJson` renders for the same values)."""
    rows = [
        {
            "duration": _json_number(stage.duration),
            "users": int(stage.users),
            "spawn_rate": _json_number(stage.spawn_rate),
            "phase": stage.phase,
        }
        for stage in stages
    ]
    return compact_json(rows)


def decode_stages(text: str) -> tuple[StageRow, ...]:
    """Stage rows from encode_stages' JSON; raises ValueError with the row that is wrong."""
    try:
        rows = json.loads(text)
    except json.JSONDecodeError as e:
        raise ValueError(f"{STAGES_ENV} is not JSON: {e}") from e
    if not isinstance(rows, list) or not rows:
        raise ValueError(f"{STAGES_ENV} must be a non-empty JSON list of stages")
    out = []
    for index, row in enumerate(rows):
        try:
            stage = StageRow(
                float(row["duration"]),
                int(row["users"]),
                float(row["spawn_rate"]),
                str(row.get("phase", "steady")),
            )
        except (KeyError, TypeError, ValueError, AttributeError) as e:
            raise ValueError(f"{STAGES_ENV}[{index}] is not a valid stage: {e}") from e
        if not (math.isfinite(stage.duration) and math.isfinite(stage.spawn_rate)):
            raise ValueError(f"{STAGES_ENV}[{index}] needs finite numbers")
        if stage.duration <= 0 or stage.users < 0 or stage.spawn_rate <= 0:
            raise ValueError(f"{STAGES_ENV}[{index}] needs duration > 0, users >= 0, spawn_rate > 0")
        out.append(stage)
    return tuple(out)


def compact_json(value: Any) -> str:
    """JSON as Helm's `toJson` writes it (no spaces, sorted keys), so both sides render alike."""
    return json.dumps(value, separators=(",", ":"), sort_keys=True)


def _json_number(value: float) -> int | float:
    # Helm reads 10.0 from the values as 10 and renders "10"; so do we (below 1e15, where floats
    # are exact integers and both print them without an exponent).
    return int(value) if float(value).is_integer() and abs(value) < 1e15 else float(value)


# --------------------------------------------------------------------------- command lines

# `python -m locust_workers.locustfile_facts LOCUSTFILE` prints this, then JSON: the pre-flight's
# view of the locustfile (its classes' hosts, its own shape), after whatever the file prints.
FACTS_PREFIX = "LOADCTL_FACTS "

# This installation's plugin; a pod has its own copy in the image (the chart names that path).
PLUGIN_PATH = Path(__file__).resolve().with_name("plugin.py")
# The master keeps waiting this long for all --expect-workers to connect. Pods may need minutes
# (image pulls on fresh nodes, an autoscaler adding them); local processes connect in seconds or
# die, which the local backend notices at once. So one generous value serves both.
EXPECT_WORKERS_MAX_WAIT_S = 300


def locustfile_arg(locustfile: Path | str, *, plugin: Path | str = PLUGIN_PATH) -> str:
    """Locust's -f value: the user's file plus loadctl's plugin (exporter, stage shape)."""
    return f"{locustfile},{plugin}"


@dataclass(frozen=True, kw_only=True)
class LocustCommand:
    """One run's Locust command lines: the arguments after `locust` for the master and a worker.

    The local backend starts them, the chart renders the same (tests/chart compares), and the
    overhead benchmark runs plain Locust with them (its locustfile without the plugin).
    """

    locustfile: str  # the -f value, see locustfile_arg
    host: str | None  # the target; None: each user class keeps its own `host` (Locust's --host overrides all)
    workers: int
    master_host: str  # where a worker reaches the master
    bind_host: str  # where the master listens: for its workers and (run_env) for Prometheus
    master_port: int
    csv_prefix: str
    html_path: str
    expect_workers_max_wait_s: int = EXPECT_WORKERS_MAX_WAIT_S
    web_port: int | None = None  # only declared (a headless master serves no web UI)
    # The user's own Locust arguments (a profile's locust_options, --tags..., what follows `--`),
    # after loadctl's on both command lines: for master and workers alike, as Locust's docs ask.
    extra_args: tuple[str, ...] = ()
    # User classes to run (Locust's positional arguments); after `--`, so that a preceding option
    # taking any number of values (--tags a b) cannot swallow them.
    user_classes: tuple[str, ...] = ()

    def _user_args(self) -> list[str]:
        return [*self.extra_args, *(["--", *self.user_classes] if self.user_classes else [])]

    # -u/-r/-t for the locustfile's own shape (a `use_common_options` shape reads them; -t also ends
    # the run, as in plain Locust); None: not passed (the stage table gets its load from STAGES_ENV)
    users: int | None = None
    spawn_rate: float | None = None
    run_time_s: float | None = None

    def _host_args(self) -> list[str]:
        return [] if self.host is None else ["--host", self.host]

    def _shape_args(self) -> list[str]:
        args = [] if self.users is None else ["-u", str(self.users)]
        args += [] if self.spawn_rate is None else ["-r", str(_json_number(self.spawn_rate))]
        return args + ([] if self.run_time_s is None else ["-t", f"{_json_number(self.run_time_s)}s"])

    def master_args(self) -> list[str]:
        web = ["--web-port", str(self.web_port)] if self.web_port is not None else []
        return [
            "-f",
            self.locustfile,
            "--master",
            "--headless",
            "--only-summary",
            # Gates and the verdict judge failed requests, not Locust's exit code (1 by default
            # when any request failed): a non-zero exit then means Locust itself failed, and a
            # pod's Job fails only then.
            "--exit-code-on-error",
            "0",
            "--expect-workers",
            str(self.workers),
            "--expect-workers-max-wait",
            str(self.expect_workers_max_wait_s),
            "--master-bind-host",
            self.bind_host,
            "--master-bind-port",
            str(self.master_port),
            *web,
            *self._host_args(),
            "--csv",
            self.csv_prefix,
            "--csv-full-history",
            "--html",
            self.html_path,
            *self._shape_args(),
            *self._user_args(),  # last: the user's own arguments, user classes after `--`
        ]

    def worker_args(self) -> list[str]:
        return [
            "-f",
            self.locustfile,
            "--worker",
            "--master-host",
            self.master_host,
            "--master-port",
            str(self.master_port),
            *self._host_args(),
            *self._user_args(),
        ]


def run_env(
    *,
    run_id: str,
    profile: str,
    stages: Sequence[StageLike],
    user_weights: Mapping[str, int],
    exporter_host: str,
    exporter_port: int = EXPORTER_PORT,
    final_scrape_timeout_s: float = DEFAULT_FINAL_SCRAPE_TIMEOUT_S,
    locust_files_timeout_s: float = DEFAULT_LOCUST_FILES_TIMEOUT_S,
    latency_buckets: str = DEFAULT_LATENCY_BUCKETS,
    gate_thresholds: Iterable[GateThreshold] = (),
) -> dict[str, str]:
    """The environment every Locust process of the run gets (on top of the inherited one)."""
    env = {
        "PYTHONUNBUFFERED": "1",
        RUN_ID_ENV: run_id,
        PROFILE_ENV: profile,
        EXPORTER_HOST_ENV: exporter_host,
        EXPORTER_PORT_ENV: str(exporter_port),
        # empty for the locustfile's own shape: the plugin then defines no shape (and an inherited
        # table is not picked up)
        STAGES_ENV: encode_stages(stages) if stages else "",
        USER_WEIGHTS_ENV: compact_json(dict(user_weights)),
        FINAL_SCRAPE_TIMEOUT_ENV: str(_json_number(final_scrape_timeout_s)),
        LOCUST_FILES_TIMEOUT_ENV: str(_json_number(locust_files_timeout_s)),
        LATENCY_BUCKETS_ENV: latency_buckets,
    }
    thresholds = tuple(gate_thresholds)
    if thresholds:  # only the master reads them; absent for a run without gates (and in the chart)
        env[GATE_THRESHOLDS_ENV] = encode_gate_thresholds(thresholds)
    return env


def probes_args(*, config: str, port: int, bind_host: str, run_id: str) -> list[str]:
    """The arguments after `python` of the probe process, beside (never inside) Locust's gevent loop."""
    return [
        "-m",
        "locust_workers.probes",
        "--config",
        config,
        "--port",
        str(port),
        "--host",
        bind_host,
        "--run-id",
        run_id,
    ]
