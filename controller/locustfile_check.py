"""Pre-flight check of a locustfile: let Locust load it and parse the run's command line in the
user's folder (locust_workers/locust_config.py) before any load is sent.

A syntax error, a failing import, a data file missing at import, a bad Locust option (in a config
file, a variable, a profile's locust_options or after `--`) or a user_weights entry naming a
missing class becomes exit 2 here, instead of a master that dies after Prometheus and workers were
started. The same run tells which of Locust's settings came from its config files and variables.
inspect_locustfile reads what the plan depends on: the classes' own hosts and the locustfile's
own shape.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from controller.errors import InputError, tail
from locust_workers.contract import FACTS_PREFIX
from locust_workers.locust_config import LOCUSTFILE_ONLY_FLAG, MARKER, PASSTHROUGH_FLAG

# Settings a Locust config file or LOCUST_* variable may not make, as they would break how loadctl
# drives Locust. (Those loadctl puts on the command line itself -- host, csv, html, headless,
# expect-workers, master-bind-port... -- win over a file anyway, as in Locust.)
CONFIG_REFUSED = {
    "processes": "loadctl starts the workers itself (--workers N)",
    "master": "loadctl starts the master and its workers itself",
    "worker": "loadctl starts the master and its workers itself",
    "headful": "loadctl runs Locust headless",
    "autoquit": "loadctl runs Locust headless (it quits when the load ends)",
    "users": "loadctl sets the load: give -u/-r/-t or the profile's stages",
    "spawn-rate": "loadctl sets the load: give -u/-r/-t or the profile's stages",
    "run-time": "loadctl sets the load: give -u/-r/-t or the profile's stages",
    "list": "it would only list the user classes",
    "show-task-ratio": "it would only print the task ratios",
    "show-task-ratio-json": "it would only print the task ratios",
}
# Options the user's own arguments (after `--`, locust_options) may not set: loadctl owns them.
OWNED = {
    **CONFIG_REFUSED,
    **dict.fromkeys(
        ("master-host", "master-port", "master-bind-host", "master-bind-port", "expect-workers"),
        "loadctl connects the master and its workers itself",
    ),
    "expect-workers-max-wait": "loadctl connects the master and its workers itself",
    **dict.fromkeys(
        ("headless", "autostart", "web-port", "web-host", "web-login", "web-base-path", "class-picker"),
        "loadctl runs Locust headless (no web UI)",
    ),
    "locustfile": "give -f LOCUSTFILE to loadctl",
    "host": "give --host to loadctl",
    "csv": "give --csv PREFIX to loadctl (Locust's files are kept in the run's folder)",
    "csv-full-history": "loadctl keeps the full history in the run's folder",
    "html": "give --html FILE to loadctl (Locust's report is kept in the run's folder)",
    "only-summary": "loadctl sets it",
    "exit-code-on-error": "loadctl decides the exit code (gates, verdict)",
    "user_classes": "name user classes before `--` (loadctl run -f FILE UserA UserB)",
}


@dataclass(frozen=True, kw_only=True)
class ShapeFacts:
    """The locustfile's own LoadTestShape as declared (locust_workers/shapes.py's conventions)."""

    name: str
    use_common_options: bool
    phases: tuple[str, ...]
    own_end_s: float | None  # None: it cannot say when it ends


@dataclass(frozen=True, kw_only=True)
class LocustfileFacts:
    class_hosts: dict[str, str | None]  # {UserClass: its own host, None when it sets none}
    shape: ShapeFacts | None


def inspect_locustfile(
    locustfile: Path, *, env: dict[str, str] | None = None, timeout: float = 60.0
) -> LocustfileFacts:
    """Import `locustfile` as Locust does (locust_workers/locustfile_facts.py, in a subprocess)."""
    argv = [sys.executable, "-m", "locust_workers.locustfile_facts", str(locustfile)]
    try:
        done = subprocess.run(
            argv,
            capture_output=True,
            text=True,
            timeout=timeout,
            env=env if env is not None else dict(os.environ),
            stdin=subprocess.DEVNULL,
        )
    except subprocess.TimeoutExpired:
        raise InputError(f"importing took over {timeout:.0f}s", source=str(locustfile)) from None
    lines = [line for line in done.stdout.splitlines() if line.startswith(FACTS_PREFIX)]
    if done.returncode != 0 or not lines:
        output = done.stdout + done.stderr
        raise InputError(f"Locust cannot load it: {tail(_last_error(output), 300)}", source=str(locustfile))
    return parse_facts(lines[-1].removeprefix(FACTS_PREFIX))


def parse_facts(text: str) -> LocustfileFacts:
    data = json.loads(text)
    shape = data.get("shape")
    return LocustfileFacts(
        class_hosts=dict(data.get("classes") or {}),
        shape=None
        if shape is None
        else ShapeFacts(
            name=str(shape["name"]),
            use_common_options=bool(shape["use_common_options"]),
            phases=tuple(shape["phases"]),
            own_end_s=None if shape["own_end_s"] is None else float(shape["own_end_s"]),
        ),
    )


@dataclass(frozen=True)
class LocustSetting:
    value: Any
    source: str  # a config file's absolute path, or `$LOCUST_X`


@dataclass(frozen=True)
class LocustFacts:
    """What Locust made of the run's command line in the user's folder."""

    user_classes: tuple[str, ...]
    locustfiles: tuple[str, ...] = ()  # what -f named, as Locust resolved it (a folder's files)
    settings: dict[str, LocustSetting] = field(default_factory=dict)
    passthrough_changes: tuple[str, ...] = ()  # Locust's options the user's own arguments set

    @property
    def files(self) -> tuple[str, ...]:
        return tuple(sorted({s.source for s in self.settings.values() if not s.source.startswith("$")}))


def locusts_locustfile(*, cwd: Path, args: Sequence[str] = (), timeout: float = 60.0) -> str | None:
    """The locustfile Locust would run in `cwd` without -f: a config file's `locustfile = ...`,
    $LOCUST_LOCUSTFILE, else its default `locustfile.py`; None if Locust's view cannot be had."""
    command = [sys.executable, "-m", "locust_workers.locust_config", LOCUSTFILE_ONLY_FLAG, *args]
    try:
        done = subprocess.run(
            command, capture_output=True, text=True, timeout=timeout, cwd=cwd, stdin=subprocess.DEVNULL
        )
    except subprocess.TimeoutExpired:
        return None
    found = [line for line in done.stdout.splitlines() if line.startswith(MARKER)]
    if done.returncode != 0 or not found:
        return None  # e.g. a broken config file: the pre-flight says so, naming it
    locustfile: str = json.loads(found[-1].removeprefix(MARKER))["locustfile"]
    return locustfile


def inspect_locust(
    argv: Sequence[str],
    *,
    passthrough_start: int,
    cwd: Path,
    source: str,
    env: Mapping[str, str] | None = None,
    timeout: float = 60.0,
) -> LocustFacts:
    """Locust's view of `argv` (the master's arguments, the user's locustfile without loadctl's
    plugin) run in `cwd`; InputError naming `source` when Locust cannot load or parse it."""
    command = [sys.executable, "-m", "locust_workers.locust_config", PASSTHROUGH_FLAG]
    try:
        done = subprocess.run(
            [*command, str(passthrough_start), *argv],
            capture_output=True,
            text=True,
            timeout=timeout,
            env=dict(env) if env is not None else dict(os.environ),
            cwd=cwd,
            stdin=subprocess.DEVNULL,
        )
    except subprocess.TimeoutExpired:
        raise InputError(f"importing took over {timeout:.0f}s", source=source) from None
    found = [line for line in done.stdout.splitlines() if line.startswith(MARKER)]
    if done.returncode != 0 or not found:
        output = done.stdout + done.stderr
        raise InputError(f"Locust cannot load it: {tail(_last_error(output), 300)}", source=source)
    data = json.loads(found[-1].removeprefix(MARKER))
    if not data["user_classes"]:
        raise InputError("no User classes found", source=source)
    return LocustFacts(
        user_classes=tuple(data["user_classes"]),
        locustfiles=tuple(data["locustfiles"]),
        settings={k: LocustSetting(v["value"], v["source"]) for k, v in data["settings"].items()},
        passthrough_changes=tuple(data["passthrough_changes"]),
    )


def _last_error(output: str) -> str:
    lines = [line for line in output.strip().splitlines() if line.strip()]
    errors = [line for line in lines if "Error" in line or "error" in line]
    return (errors or lines or ["(no output)"])[-1]


def check_config_settings(settings: Mapping[str, LocustSetting]) -> None:
    """A config file's or variable's setting that would break the run: exit 2 naming it."""
    for name, setting in sorted(settings.items()):
        if name in CONFIG_REFUSED:
            where = "unset it" if setting.source.startswith("$") else "remove it from the file"
            raise InputError(f"{CONFIG_REFUSED[name]}; {where}", source=setting.source, field=name)


def check_owned(names: Sequence[str], *, source: str, in_profile: bool = False) -> None:
    """The user's own Locust arguments (a profile's locust_options, or the command line's for
    Locust) must not set what loadctl owns."""
    for name in names:
        if name in OWNED:
            field = f"locust_options.{name}" if in_profile else f"--{name}"
            raise InputError(OWNED[name], source=source, field=field)


def check_user_weights(weights: dict[str, int], classes: Sequence[str], *, source: str) -> None:
    unknown = sorted(set(weights) - set(classes))
    if unknown:
        raise InputError(
            f"{', '.join(unknown)} not in the locustfile (it has {', '.join(classes)})",
            source=source,
            field="user_weights",
        )
