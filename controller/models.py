"""Validated data the controller works with: profiles, stages, run plans and run records.

Everything here is pure data (pydantic v2, frozen). Reading files lives in profiles.py,
so these models can be built and tested without touching the disk.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Annotated, Any, Literal
from urllib.parse import urlsplit

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, field_validator, model_validator

from controller.sizing import MAX_WORKERS
from locust_workers.contract import AUTO_LATENCY_BUCKETS, LATENCY_BUCKETS, GateThreshold, parse_duration
from locust_workers.probes.config import ProbeList

PHASE_PATTERN = r"^[a-z][a-z0-9_]{0,31}$"
RUN_ID_PATTERN = r"^[a-z0-9][a-z0-9._-]{0,62}$"
METRIC_NAME_PATTERN = r"^[a-zA-Z_:][a-zA-Z0-9_:]*$"
# How long a run may outlast its planned duration before the controller stops it as overrun
# (runs.follow); how far back a run's series are looked for depends on it (prom/queries.py).
OVERRUN_GRACE_S = 180.0


Duration = Annotated[float, BeforeValidator(parse_duration)]
_NUMBER = re.compile(r"[+-]?(\d+(\.\d*)?|\.\d+)([eE][+-]?\d+)?")


def finite_number(value: Any) -> float:
    """A threshold or rate: an int or float, finite. YAML's `.nan`, `.inf` and `true` are refused
    (a NaN threshold can never fail, `true` would mean 1.0); `"1e-3"` is allowed, since YAML 1.1
    reads an exponent without a dot as a string."""
    if isinstance(value, bool):
        raise ValueError("expected a number, not a boolean")
    if isinstance(value, str) and _NUMBER.fullmatch(value.strip()):
        value = float(value)
    if not isinstance(value, int | float):
        raise ValueError("expected a number")
    number = float(value)
    if not math.isfinite(number):
        raise ValueError("expected a finite number (not NaN or infinity)")
    return number


def whole_number(value: object) -> object:
    """Counts (users, workers, weights) are integers; YAML's `yes`/`true` is not 1."""
    if isinstance(value, bool):
        raise ValueError("expected a whole number, not a boolean")
    return value


Number = Annotated[float, BeforeValidator(finite_number)]
Count = Annotated[int, BeforeValidator(whole_number)]


# A Locust option's long name as config files and locust_options spell it: `stop-timeout`, `tags`.
LOCUST_OPTION_PATTERN = r"^[a-zA-Z][a-zA-Z0-9_-]{0,63}$"
LocustOptionValue = str | int | float | bool | list[str | int | float]


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class Stage(_Frozen):
    """One row of the stage table: hold `users` (reached at `spawn_rate`/s) for `duration` seconds."""

    duration: Duration
    users: Count = Field(ge=0, le=1_000_000)
    spawn_rate: Number = Field(gt=0, le=100_000)
    phase: str = Field(default="steady", pattern=PHASE_PATTERN)


class Slo(_Frozen):
    """The service level a step of load must hold to count as within it (analysis.json `steps`)."""

    latency_p95_ms: Number | None = Field(default=None, gt=0)
    error_rate: Number | None = Field(default=None, ge=0, le=1)

    @model_validator(mode="after")
    def _something(self) -> Slo:
        if self.latency_p95_ms is None and self.error_rate is None:
            raise ValueError("give latency_p95_ms and/or error_rate")
        return self


class AnalysisSettings(_Frozen):
    """A profile's `analysis:` section: how analysis.json looks at the run."""

    # Else the gate file's p95 and error-rate gates, else "throughput stops growing" (analysis/steps.py).
    slo: Slo | None = None

    # The run cut into this many equal slices for the timeline (e.g. 3 = 0-10/10-20/20-30 min of a
    # 30-min soak); at most 100, each slice costs a handful of queries after the run.
    slices: Count = Field(default=10, ge=2, le=100)

    # Gauges watched for drift (a leak) besides the defaults (process RSS, PostgreSQL connections,
    # Redis memory): analysis/drift.py. Each costs one range query after the run.
    drift: tuple[Annotated[str, Field(pattern=METRIC_NAME_PATTERN)], ...] = Field(default=(), max_length=50)

    # Samples before this (from the start) are not watched for drift: a process warms its caches.
    # None: the first stage as it ran, or 10 % of a single-stage run.
    warmup: Duration | None = Field(default=None, gt=0)


class ScrapeTarget(_Frozen):
    """An extra Prometheus scrape target, e.g. the system under test's own /metrics."""

    name: str = Field(pattern=r"^[a-zA-Z_][a-zA-Z0-9_-]{0,62}$")
    url: str

    @field_validator("url")
    @classmethod
    def _http_url(cls, url: str) -> str:
        _no_credentials(url)
        if not re.fullmatch(r"https?://[^/\s:]+(:\d{1,5})?(/\S*)?", url):
            raise ValueError(f"'{url}' is not an http(s) URL like http://127.0.0.1:8000/metrics")
        return url

    # What a Prometheus scrape job (prom/config.py, the chart's values) needs from the URL.
    def _parts(self) -> tuple[str, str, str | None]:
        match = re.fullmatch(r"(https?)://([^/]+)(/.*)?", self.url)
        assert match is not None  # guaranteed by the validator
        return match.group(1), match.group(2), match.group(3)

    @property
    def scheme(self) -> str:
        """`http` or `https`."""
        return self._parts()[0]

    @property
    def address(self) -> str:
        """`host:port` (or only the host), as a static_config target."""
        return self._parts()[1]

    @property
    def metrics_path(self) -> str:
        """The URL's path (and query, as written), `/metrics` when it has none."""
        return self._parts()[2] or "/metrics"


def _no_credentials(url: str) -> None:
    """user:password@ in a URL would be printed, logged and stored in run.json: refused (the
    message does not repeat the URL). Credentials belong in the environment or a Secret."""
    try:
        netloc = urlsplit(url.strip()).netloc
    except ValueError:
        return  # not a URL at all: the pattern check says so
    if "@" in netloc:
        raise ValueError(
            "credentials in a URL (user:password@) are not allowed: they would be printed and stored; "
            "pass them through the environment or a Secret"
        )


# What Locust passes through to the user classes: a base URL of any scheme (http, https, grpc,
# xmlrpc's http...: a custom client reads its own), or a bare host:port, as gRPC clients take it.
# A bare word without a port (`nohost`) is refused: more likely a typo than a target.
_HOST = re.compile(r"[a-zA-Z][a-zA-Z0-9+.-]*://[^/\s@]+(/\S*)?|[^/\s@:]+:\d{1,5}")


def check_host(host: str) -> str:
    """A target host as Locust takes it (--host, a class's `host`); ValueError otherwise."""
    _no_credentials(host)
    if not _HOST.fullmatch(host):
        raise ValueError(
            f"'{host}' is not a target like http://127.0.0.1:8000, grpc://127.0.0.1:50051 or 127.0.0.1:50051"
        )
    return host.rstrip("/") if host.startswith(("http://", "https://")) else host


class Profile(_Frozen):
    """A profile file as written by a user. Either `stages`, or `users` + `duration` (+ `spawn_rate`)."""

    name: str = Field(pattern=r"^[a-z0-9][a-z0-9._-]{0,62}$")
    description: str = ""
    locustfile: str | None = None
    host: str | None = None
    stages: tuple[Stage, ...] | None = Field(default=None, min_length=1)
    users: Count | None = Field(default=None, ge=1, le=1_000_000)
    spawn_rate: Number | None = Field(default=None, gt=0, le=100_000)
    duration: Duration | None = None
    workers: Annotated[int | Literal["auto"], BeforeValidator(whole_number)] = "auto"
    # How `workers: auto` is sized on Kubernetes (controller/sizing.py; README: Worker sizing);
    # None: the measured default. The local backend runs one worker per core whatever they say.
    users_per_worker: Count | None = Field(default=None, ge=1, le=1_000_000)
    max_workers: Count | None = Field(default=None, ge=1, le=MAX_WORKERS)
    user_weights: dict[str, Annotated[Count, Field(ge=1, le=1_000_000)]] = Field(default_factory=dict)
    # The latency histograms' layout (README: Latency buckets): a classic bucket resolution (finer
    # buckets, closer percentiles, more series), `native` (Prometheus 3), or `auto` (controller/latency.py)
    latency_buckets: str = AUTO_LATENCY_BUCKETS
    gates: str | None = None
    scrape_targets: tuple[ScrapeTarget, ...] = ()
    # Samplers of the system under test, in their own process beside the master (locust_workers/probes).
    probes: ProbeList = ()
    # Scheduled (k8s) runs are skipped while Prometheus shows any of these alerts firing.
    skip_if_alerts: tuple[Annotated[str, Field(pattern=METRIC_NAME_PATTERN)], ...] = ()
    # Gauges of the system under test whose peak over the run the summary and report.md show.
    summary_peaks: tuple[Annotated[str, Field(pattern=METRIC_NAME_PATTERN)], ...] = ()
    analysis: AnalysisSettings = AnalysisSettings()
    # A folder whose report.md.j2 and/or report.html.j2 replace the shipped report templates.
    report_template: str | None = None
    # Locust's own options by their long names ({tags: [a, b], stop-timeout: 10, my-custom-arg: x}),
    # passed to master and workers; checked against Locust's parser in the pre-flight.
    locust_options: dict[Annotated[str, Field(pattern=LOCUST_OPTION_PATTERN)], LocustOptionValue] = Field(
        default_factory=dict
    )

    @field_validator("host")
    @classmethod
    def _host(cls, host: str | None) -> str | None:
        return None if host is None else check_host(host)

    @field_validator("latency_buckets")
    @classmethod
    def _latency_buckets(cls, value: str) -> str:
        if value not in (AUTO_LATENCY_BUCKETS, *LATENCY_BUCKETS):
            raise ValueError(f"must be one of {', '.join((AUTO_LATENCY_BUCKETS, *LATENCY_BUCKETS))}")
        return value

    @field_validator("workers")
    @classmethod
    def _workers(cls, workers: int | str) -> int | str:
        if isinstance(workers, int) and not 1 <= workers <= MAX_WORKERS:
            raise ValueError(
                f"workers must be between 1 and {MAX_WORKERS}, or 'auto' (one per CPU core locally; "
                "peak users / users_per_worker on Kubernetes)"
            )
        return workers

    @model_validator(mode="after")
    def _one_load_form(self) -> Profile:
        simple = [self.users, self.duration]
        if self.stages is not None and any(v is not None for v in (*simple, self.spawn_rate)):
            raise ValueError("give either 'stages' or 'users'/'spawn_rate'/'duration', not both")
        if self.stages is None and any(v is not None for v in simple) and None in simple:
            raise ValueError("'users' and 'duration' must be given together")
        names = [t.name for t in self.scrape_targets]
        if len(set(names)) != len(names):
            raise ValueError("scrape_targets names must be unique")
        return self


# An option whose name says it is about a credential has its value hidden in run.json and the
# report (the token itself never is an argument; where it lives is nobody else's business either).
SECRET_OPTION = re.compile(r"^--?[\w-]*(token|password|secret|credential)[\w-]*$", re.IGNORECASE)
HIDDEN = "***"


def hide_secret_values(args: Sequence[str]) -> tuple[str, ...]:
    """Command-line arguments with the values of credential-named options hidden."""
    shown: list[str] = []
    hide_next = False
    for arg in args:
        name, eq, _ = arg.partition("=")
        if hide_next:
            shown.append(HIDDEN)
        elif eq and SECRET_OPTION.match(name):
            shown.append(f"{name}={HIDDEN}")
        else:
            shown.append(arg)
        hide_next = not hide_next and not eq and SECRET_OPTION.match(arg) is not None
    return tuple(shown)


def hide_secret_settings(options: Mapping[str, Any]) -> dict[str, Any]:
    """Locust settings ({option name: value}) with credential-named options' values hidden."""
    return {name: HIDDEN if SECRET_OPTION.match(f"--{name}") else value for name, value in options.items()}


def locust_option_args(options: dict[str, LocustOptionValue]) -> tuple[str, ...]:
    """A profile's locust_options as Locust's arguments: `--name value`, `--name a b` for a list,
    `--name` for true, nothing for false (a flag cannot be unset on Locust's command line)."""
    args: list[str] = []
    for name, value in options.items():
        flag = f"--{name}"
        if value is True:
            args.append(flag)
        elif isinstance(value, list | tuple):
            args.extend([flag, *(str(v) for v in value)])
        elif value is not False:
            args.extend([flag, str(value)])
    return tuple(args)


class LocustConfig(_Frozen):
    """run.json `locust_config`: what Locust ran with beyond loadctl's own arguments."""

    # Locust's configuration files that gave settings (locust.conf, pyproject.toml, ~/.locust.conf, --config)
    files: tuple[str, ...] = ()
    # {option: value} of every setting from those files and LOCUST_* variables, as Locust parsed it
    options: dict[str, Any] = Field(default_factory=dict)
    sources: dict[str, str] = Field(default_factory=dict)  # {option: a file's path or `$LOCUST_X`}
    args: tuple[str, ...] = ()  # the user's own arguments loadctl added (profile, aliases, after `--`)
    user_classes: tuple[str, ...] = ()  # the classes named to run (empty: all)
    workdir: str | None = None  # the folder Locust ran in
    locustfiles: tuple[str, ...] = ()  # the locustfiles -f named, as Locust resolved them


RUN_WINDOW = "run"
# Locust's shape worker blocks until a stage's users are all spawned (runners.py shape_worker), so a
# stage whose ramp is longer than its duration is held longer and swallows the stages after it.
# A little slack for float rounding in tables written by hand (e.g. 190 users at 0.352/s in 540 s).
_RAMP_SLACK = 1.001


def ramp_seconds(from_users: int, to_users: int, spawn_rate: float) -> float:
    """How long Locust takes to go from one user count to another at `spawn_rate` users/s."""
    return abs(to_users - from_users) / spawn_rate


def slow_stage(stages: tuple[Stage, ...]) -> tuple[int, float] | None:
    """(index, ramp seconds) of the first stage that cannot reach its users within its duration."""
    users = 0
    for index, stage in enumerate(stages):
        needed = ramp_seconds(users, stage.users, stage.spawn_rate)
        if needed > stage.duration * _RAMP_SLACK:
            return index, needed
        users = stage.users
    return None


def phase_names(stages: tuple[Stage, ...]) -> frozenset[str]:
    """The windows a gate can use on a run of this stage table: its phases, and `run`."""
    return frozenset({RUN_WINDOW, *(stage.phase for stage in stages)})


def simple_stages(*, users: int, spawn_rate: float, duration: float) -> tuple[Stage, ...]:
    """`-u/-r/-t` as a stage table: a ramp_up stage, then steady, so gates can skip the ramp.

    `duration` is the total run time, ramp included (as Locust's own -t). Raises ValueError when
    the ramp alone is longer, instead of silently running longer than asked.
    """
    needed = ramp_seconds(0, users, spawn_rate)
    if needed > duration * _RAMP_SLACK:
        raise ValueError(
            f"ramping up to {users} users at {spawn_rate:g}/s takes {needed:.0f}s, longer than the "
            f"{duration:g}s run time (the total, ramp included): raise the spawn rate or the duration"
        )
    ramp = min(duration, float(math.ceil(needed)))
    stages = [Stage(duration=ramp, users=users, spawn_rate=spawn_rate, phase="ramp_up")]
    if duration - ramp > 0:
        stages.append(Stage(duration=duration - ramp, users=users, spawn_rate=spawn_rate, phase="steady"))
    return tuple(stages)


class UserShape(_Frozen):
    """The locustfile's own LoadTestShape, which runs the load instead of a stage table
    (conventions in locust_workers/shapes.py), and the -u/-r/-t that reach it on Locust's command line."""

    name: str
    phases: tuple[Annotated[str, Field(pattern=PHASE_PATTERN)], ...] = (RUN_WINDOW,)
    own_end_s: float | None = Field(default=None, gt=0)  # its `time_limit` or its stages' end
    use_common_options: bool = False
    users: int | None = Field(default=None, ge=1, le=1_000_000)
    spawn_rate: float | None = Field(default=None, gt=0, le=100_000)
    run_time_s: float | None = Field(default=None, gt=0)  # -t: Locust stops the shape then

    @property
    def planned_s(self) -> float:
        """When the run ends: the shape's own end or -t, whichever comes first."""
        ends = [end for end in (self.own_end_s, self.run_time_s) if end is not None]
        assert ends, "a user shape needs its own end or -t (profiles.py checks)"
        return min(ends)


def peak_users(stages: Sequence[Stage], shape: UserShape | None) -> int | None:
    """The most users a run asks for: its largest stage, or the -u its own shape gets (None: only
    the shape itself knows)."""
    if stages:
        return max(stage.users for stage in stages)
    return shape.users if shape is not None else None


class RunPlan(_Frozen):
    """Everything one run needs, resolved: paths absolute, flags applied, stages expanded."""

    run_id: str = Field(pattern=RUN_ID_PATTERN)
    profile: str
    profile_file: Path | None = None
    locustfile: Path
    host: str | None  # None: each user class has its own `host` (class_hosts), which Locust keeps
    stages: tuple[Stage, ...] = ()  # empty when the locustfile's own shape runs the load
    shape: UserShape | None = None
    class_hosts: dict[str, str] = Field(default_factory=dict)  # {UserClass: its own host}
    workers: int = Field(ge=1, le=MAX_WORKERS)
    user_weights: dict[str, int] = Field(default_factory=dict)
    latency_buckets: str = AUTO_LATENCY_BUCKETS
    gates: Path | None = None
    gates_opt_out: bool = False  # `gates: none`: not judged at all (never silently: it is explicit)
    # The gate file's absolute bounds, set once it is validated (runs.execute): the master publishes
    # them (loadctl_gate_threshold) for the dashboards' lines.
    gate_thresholds: tuple[GateThreshold, ...] = ()
    scrape_targets: tuple[ScrapeTarget, ...] = ()
    probes: ProbeList = ()
    skip_if_alerts: tuple[str, ...] = ()
    summary_peaks: tuple[str, ...] = ()
    analysis: AnalysisSettings = AnalysisSettings()
    results_dir: Path
    # A finished run's results folder (run.json, tsdb/) that max_change/min_change gates compare with.
    baseline: Path | None = None
    report_template: Path | None = None  # the folder of the team's own report templates
    grafana_url: str | None = None  # checked base URL (--grafana-url): report.html links its dashboard
    locust_config: LocustConfig | None = None  # set by the pre-flight (Locust's own view of the run)
    command: tuple[str, ...] = ()  # the command line as typed, for the report
    # The folder Locust runs in (where `loadctl run` started): its locust.conf, relative data files
    # and sibling modules are the user's. Results still go to run_dir.
    workdir: Path = Field(default_factory=Path.cwd)
    # More locustfiles after `locustfile` (-f a.py,b.py: Locust's comma-separated list)
    more_locustfiles: tuple[Path, ...] = ()
    locust_options: dict[str, LocustOptionValue] = Field(default_factory=dict)  # the profile's
    # The command line's own Locust arguments: --tags/--exclude-tags/--loglevel, then what follows `--`
    locust_args: tuple[str, ...] = ()
    user_classes: tuple[str, ...] = ()  # Locust's positional user classes (empty: all)

    @field_validator("host")
    @classmethod
    def _host(cls, host: str | None) -> str | None:
        return None if host is None else check_host(host)

    @model_validator(mode="after")
    def _one_load(self) -> RunPlan:
        if (self.shape is None) == (not self.stages):
            raise ValueError("a run has either a stage table or the locustfile's own shape")
        return self

    @property
    def duration(self) -> float:
        """The planned run time: the stage table's, or the user's shape's end (the overrun guard's base)."""
        if self.shape is not None:
            return self.shape.planned_s
        return sum(stage.duration for stage in self.stages)

    @property
    def peak_users(self) -> int | None:
        return peak_users(self.stages, self.shape)

    @property
    def locustfile_arg(self) -> str:
        """Locust's -f value for the user's locustfile(s): a file, a folder or a comma-separated list."""
        return ",".join(str(path) for path in (self.locustfile, *self.more_locustfiles))

    @property
    def user_locust_args(self) -> tuple[str, ...]:
        """The user's own Locust arguments: the profile's locust_options, then the command line's
        (later wins in Locust's parser, so the command line wins over the profile)."""
        return (*locust_option_args(self.locust_options), *self.locust_args)

    @property
    def phases(self) -> frozenset[str]:
        """The windows a gate can use on this run: its phases, and `run`."""
        if self.shape is not None:
            return frozenset({RUN_WINDOW, *self.shape.phases})
        return phase_names(self.stages)

    @property
    def hosts(self) -> tuple[str, ...]:
        """Every host the run's users reach: --host overrides each class's own (as in Locust)."""
        if self.host is not None:
            return (self.host,)
        return tuple(sorted(set(self.class_hosts.values())))

    @property
    def run_dir(self) -> Path:
        return self.results_dir / self.run_id


class PhaseWindow(_Frozen):
    """When one stage actually ran, as unix times (what gates query over)."""

    stage: int
    phase: str
    start: float
    end: float


# The verdicts and their exit codes are decided in controller/verdict.py (the table is there).
# "no_gates" is no longer produced (a run without gates is judged on its failures); it stays so
# that run.json files of older runs still load.
Verdict = Literal["pass", "warn", "fail", "inconclusive", "interrupted", "error", "skipped", "no_gates"]
GATES_OPT_OUT = "none"  # `gates: none` in a profile (or --gates none): the run is not judged


class Peak(_Frozen):
    """The maximum of one series of a system-under-test gauge over the run."""

    metric: str
    labels: str  # e.g. '{domain="food.example.com"}'; empty for a single series
    value: float
    initial: float | None = None  # the value when the load started (None: no sample yet)
    final: float | None = None  # the last value before the load ended


class PushedSummary(_Frozen):
    """Where `loadctl run --pushgateway` pushed the run's summary (controller/pushgateway), and whether
    it got there: a failed push is a warning, never a change of verdict."""

    url: str  # the group's URL: <pushgateway>/metrics/job/loadctl/run_id/<run_id>
    pushed: bool
    error: str | None = None


class RunRecord(_Frozen):
    """run.json: what happened in one run, enough to query its Prometheus data again later."""

    run_id: str
    profile: str
    profile_file: str | None
    locustfile: str
    host: str | None  # None: the user classes' own hosts (`hosts`)
    backend: str
    workers: int
    planned_duration_s: float
    started_at: float | None
    ended_at: float | None
    phases: tuple[PhaseWindow, ...]
    verdict: Verdict
    exit_code: int
    reason: str | None = None
    gates_file: str | None = None
    aborted_by: str | None = None  # the live gate that stopped the load early
    locust_exit_code: int | None = None
    requests: int | None = None
    failures: int | None = None
    files: tuple[str, ...] = ()
    # Where stats.csv/failures.csv came from: Locust's own CSVs, or rebuilt from Prometheus (k8s).
    stats_source: Literal["locust", "prometheus"] | None = None
    peaks: tuple[Peak, ...] = ()  # the profile's summary_peaks
    release: str | None = None  # the Helm release of a k8s run
    namespace: str | None = None
    # Why the load generator's numbers are suspect (verdict "inconclusive"): a worker lost, users
    # short of the plan, a saturated worker, the master killed.
    generator_problems: tuple[str, ...] = ()
    alerts_fired: tuple[str, ...] = ()  # the run's Prometheus alerts that fired during it
    locust_warnings: tuple[str, ...] = ()  # WARNING/ERROR lines of Locust's own log (local runs)
    loadctl_version: str
    # What `loadctl report` needs to analyse the run again offline, and `loadctl compare` to tell
    # whether two runs are like for like; None in run.json files written before they were recorded.
    stages: tuple[Stage, ...] | None = None
    analysis_settings: AnalysisSettings | None = None
    # What the report's metadata shows (older run.json files lack them: defaults)
    command: tuple[str, ...] = ()  # argv as typed, `loadctl` first
    user_weights: dict[str, int] = {}
    locust_version: str | None = None
    python_version: str | None = None
    machine: str | None = None  # the controller's host name
    grafana_url: str | None = None
    locust_config: LocustConfig | None = None  # Locust's own settings of the run (None: older runs)
    # Every host the run's users reach (--host, or each class's own); the locustfile's own shape
    hosts: tuple[str, ...] = ()
    shape: UserShape | None = None
    pushgateway: PushedSummary | None = None  # None: no --pushgateway
