"""Probe settings: the `probes:` list of a profile, and the JSON file the probe process reads.

The same pydantic models validate a profile (controller/models.py imports them, so a typo fails
before any load is sent) and the config file the controller writes for `python -m
locust_workers.probes` (in a pod: the chart's probes.json). Pure data, no I/O except `load_config`.

Credentials never live here: a probe names the environment variable that holds its DSN or URL
(`dsn_env`, `url_env`, `headers_env`), so the profile, the config file and the Helm values can be
committed and logged; the process reads the variable (from a Secret, in a pod) when it samples.
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from pathlib import Path
from typing import Annotated, Any, Literal
from urllib.parse import urlsplit

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Discriminator,
    Field,
    Tag,
    ValidationError,
    field_validator,
    model_validator,
)

from locust_workers.contract import parse_duration

DEFAULT_INTERVAL_S = 5.0
# A sample that takes longer than this is abandoned, unless `timeout` says otherwise (or the
# interval is shorter): a hung server must not hold a probe past its next sample.
DEFAULT_TIMEOUT_S = 5.0
# Label names the probe process sets itself on every series.
RESERVED_LABELS = ("run_id", "probe")

ENV_NAME = r"^[A-Za-z_][A-Za-z0-9_]*$"
METRIC_NAME = r"^[a-zA-Z_:][a-zA-Z0-9_:]*$"
LABEL_NAME = r"^[a-zA-Z_][a-zA-Z0-9_]*$"


Duration = Annotated[float, BeforeValidator(parse_duration)]
EnvName = Annotated[str, Field(pattern=ENV_NAME)]


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class _Probe(_Frozen):
    name: str = Field(pattern=r"^[a-z][a-z0-9_-]{0,62}$")
    interval: Duration = Field(default=DEFAULT_INTERVAL_S, le=3600)
    timeout: Duration | None = Field(default=None, le=300)

    @model_validator(mode="after")
    def _timeout_within_interval(self) -> _Probe:
        if self.timeout is not None and self.timeout > self.interval:
            raise ValueError("timeout must not be longer than interval (one sample at a time)")
        return self

    @property
    def sample_timeout(self) -> float:
        return self.timeout if self.timeout is not None else min(self.interval, DEFAULT_TIMEOUT_S)


class PostgresProbe(_Probe):
    """pg_stat_activity, max_connections and waiting locks of one PostgreSQL server."""

    type: Literal["postgres"]
    dsn_env: EnvName
    # The application's pool size: utilisation is connections / pool_size when given, else
    # connections / max_connections.
    pool_size: int | None = Field(default=None, ge=1, le=1_000_000)


class RedisProbe(_Probe):
    """INFO of one Redis server: hit ratio, memory, evictions, clients."""

    type: Literal["redis"]
    url_env: EnvName


class EachField(_Frozen):
    """One series per entry of a JSON object: `{each: domains, label: domain, value: failure_rate}`."""

    each: str = Field(min_length=1)
    label: str = Field(default="key", pattern=LABEL_NAME)
    value: str | None = None  # a path inside each entry; None: the entry itself is the number
    max_series: int = Field(default=200, ge=1, le=10_000)

    @field_validator("label")
    @classmethod
    def _not_reserved(cls, label: str) -> str:
        if label in RESERVED_LABELS:
            raise ValueError(f"'{label}' is set by the probe itself: pick another label name")
        return label


JsonPath = Annotated[str, Field(min_length=1)]
MetricName = Annotated[str, Field(pattern=METRIC_NAME)]


def _field_kind(value: Any) -> str:
    return "path" if isinstance(value, str) else "each"


# A string is a path, anything else must be an EachField: errors then name the right one.
FieldSpec = Annotated[
    Annotated[JsonPath, Tag("path")] | Annotated[EachField, Tag("each")], Discriminator(_field_kind)
]


class HttpJsonProbe(_Probe):
    """GET a JSON document every interval and export chosen fields as gauges."""

    type: Literal["http_json"]
    url: str | None = None
    url_env: EnvName | None = None
    # header name -> environment variable holding its value (e.g. Authorization: STATS_TOKEN)
    headers_env: dict[Annotated[str, Field(pattern=r"^[A-Za-z0-9-]{1,64}$")], EnvName] = Field(
        default_factory=dict
    )
    # gauge name -> dotted path ("stats.retryable_jobs", "items.0.count") or an EachField
    fields: dict[MetricName, FieldSpec] = Field(min_length=1)

    @field_validator("url")
    @classmethod
    def _http_url(cls, url: str | None) -> str | None:
        if url is None:
            return None
        if not re.fullmatch(r"https?://[^/\s]+(/\S*)?", url):
            raise ValueError(f"'{url}' is not an http(s) URL like http://127.0.0.1:8000/stats")
        parts = urlsplit(url)
        if parts.username is not None or parts.password is not None:
            raise ValueError("credentials do not belong in the profile: put the URL in url_env")
        return url

    @field_validator("fields")
    @classmethod
    def _own_names(cls, fields: dict[str, Any]) -> dict[str, Any]:
        for name in fields:
            if name.startswith("loadctl_"):
                raise ValueError(f"'{name}': names starting with loadctl_ are the probes' own")
        return fields

    @model_validator(mode="after")
    def _one_url(self) -> HttpJsonProbe:
        if (self.url is None) == (self.url_env is None):
            raise ValueError("give either 'url' or 'url_env' (the name of a variable holding the URL)")
        return self


class ProcessProbe(_Probe):
    """CPU and memory of local processes, by pid, pid file or a command-line substring."""

    type: Literal["process"]
    pid: int | None = Field(default=None, ge=1)
    pid_file: str | None = None
    # every process whose command line contains this (the probe process itself excluded), summed
    match: str | None = Field(default=None, min_length=1)

    @field_validator("pid_file")
    @classmethod
    def _absolute(cls, path: str | None) -> str | None:
        if path is not None and not Path(path).is_absolute():
            raise ValueError(f"'{path}' is not an absolute path (use ${{VAR}} for where it lives)")
        return path

    @model_validator(mode="after")
    def _one_selector(self) -> ProcessProbe:
        if sum(v is not None for v in (self.pid, self.pid_file, self.match)) != 1:
            raise ValueError("give exactly one of 'pid', 'pid_file' or 'match'")
        return self


ProbeConfig = Annotated[
    PostgresProbe | RedisProbe | HttpJsonProbe | ProcessProbe, Field(discriminator="type")
]


def _unique_names(probes: tuple[ProbeConfig, ...]) -> tuple[ProbeConfig, ...]:
    seen: set[str] = set()
    for probe in probes:
        if probe.name in seen:
            raise ValueError(f"probe names must be unique: '{probe.name}' is used twice")
        seen.add(probe.name)
    return probes


# What a profile's `probes:` and the config file hold.
ProbeList = Annotated[tuple[ProbeConfig, ...], AfterValidator(_unique_names)]


class ProbesFile(_Frozen):
    """The JSON file of `python -m locust_workers.probes --config FILE`."""

    probes: ProbeList = Field(min_length=1)


class ConfigError(Exception):
    """An unreadable or invalid probes file; str() is one line naming the file and the field."""


def dump_config(probes: Sequence[ProbeConfig]) -> str:
    """The config file's text (what the controller writes next to a run, and the chart renders)."""
    return json.dumps({"probes": [p.model_dump(mode="json") for p in probes]}, indent=2) + "\n"


def load_config(path: Path) -> ProbesFile:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except OSError as e:
        raise ConfigError(f"{path}: cannot read: {e.strerror}") from e
    except ValueError as e:
        raise ConfigError(f"{path}: invalid JSON: {e}") from e
    try:
        return ProbesFile.model_validate(data)
    except ValidationError as e:
        first = e.errors()[0]
        where = "".join(f"[{p}]" if isinstance(p, int) else f".{p}" for p in first["loc"]).lstrip(".")
        message = first["msg"].removeprefix("Value error, ")
        raise ConfigError(f"{path}: {where or 'probes'}: {message}") from e
