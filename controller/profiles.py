"""Read profile files and turn a profile plus CLI flags into a RunPlan.

Errors name the file and the field (`profiles/x.yaml: stages[1].users: ...`) and carry exit code 2,
because they are raised before any load is sent.
"""

from __future__ import annotations

import os
import re
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TypeVar

import yaml
from pydantic import BaseModel, ValidationError

from controller.errors import InputError
from controller.models import (
    GATES_OPT_OUT,
    Profile,
    RunPlan,
    ScrapeTarget,
    Stage,
    parse_duration,
    simple_stages,
)

M = TypeVar("M", bound=BaseModel)
_ENV_REF = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)(?::-([^}]*))?\}")


def field_path(loc: tuple[int | str, ...]) -> str:
    """pydantic's ('stages', 1, 'users') as `stages[1].users`."""
    out = ""
    for part in loc:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out


def validation_error(source: str, error: ValidationError) -> InputError:
    """The first pydantic error as one line naming the file and field."""
    first = error.errors()[0]
    loc = tuple(p for p in first["loc"] if not (isinstance(p, str) and p.startswith("function-")))
    message = first["msg"].removeprefix("Value error, ")
    if first["type"] == "extra_forbidden":
        message = "unknown field (check the spelling)"
    return InputError(message, source=source, field=field_path(loc) or None)


def expand_env(value: Any, *, source: str, env: dict[str, str], where: str = "") -> Any:
    """Replace ${VAR} and ${VAR:-default} in string values, so one profile serves several hosts."""
    if isinstance(value, dict):
        return {
            k: expand_env(v, source=source, env=env, where=f"{where}.{k}" if where else str(k))
            for k, v in value.items()
        }
    if isinstance(value, list):
        return [expand_env(v, source=source, env=env, where=f"{where}[{i}]") for i, v in enumerate(value)]
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

    return _ENV_REF.sub(substitute, value)


def load_yaml_mapping(path: Path) -> dict[str, Any]:
    source = str(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise InputError("file not found", source=source) from None
    except OSError as e:
        raise InputError(f"cannot read: {e.strerror}", source=source) from e
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        where = f"line {mark.line + 1}" if mark is not None else None
        problem = getattr(e, "problem", None) or "invalid YAML"
        raise InputError(f"invalid YAML: {problem}", source=source, field=where) from e
    if not isinstance(data, dict):
        raise InputError("expected a mapping of fields at the top level", source=source)
    return data


def parse_model(model: type[M], data: dict[str, Any], *, source: str) -> M:
    try:
        return model.model_validate(data)
    except ValidationError as e:
        raise validation_error(source, e) from e


def resolve_profile_path(ref: str, *, profiles_dir: Path = Path("profiles")) -> Path:
    """`demo` means profiles/demo.yaml; anything with a slash or .yaml suffix is a path."""
    if "/" in ref or ref.endswith((".yaml", ".yml")):
        return Path(ref)
    candidate = profiles_dir / f"{ref}.yaml"
    if not candidate.exists():
        known = sorted(p.stem for p in profiles_dir.glob("*.yaml")) if profiles_dir.is_dir() else []
        hint = f" (known: {', '.join(known)})" if known else ""
        raise InputError(f"no profile named '{ref}'{hint}", source=str(candidate))
    return candidate


def load_profile(path: Path, *, env: dict[str, str] | None = None) -> Profile:
    source = str(path)
    data = load_yaml_mapping(path)
    data.setdefault("name", path.stem.lower())
    data = expand_env(data, source=source, env=dict(os.environ) if env is None else env)
    return parse_model(Profile, data, source=source)


def default_run_id(profile: str, now: datetime | None = None) -> str:
    stamp = (now or datetime.now(UTC)).strftime("%Y%m%d-%H%M%S")
    return f"{profile}-{stamp}"


def build_plan(
    profile: Profile | None,
    *,
    profile_file: Path | None,
    locustfile: str | None = None,
    host: str | None = None,
    users: int | None = None,
    spawn_rate: float | None = None,
    duration: str | None = None,
    workers: int | None = None,
    gates: str | None = None,
    run_id: str | None = None,
    results_dir: Path = Path("results"),
    cpu_count: int | None = None,
) -> RunPlan:
    """Apply CLI flags over a profile (flags win). Paths in a profile are relative to its file."""
    source = str(profile_file) if profile_file else "command line"
    base = profile_file.parent if profile_file else Path.cwd()

    def from_profile(path: str | None) -> Path | None:
        return None if path is None else (base / path).resolve()

    locust_path = (
        Path(locustfile).resolve() if locustfile else from_profile(profile.locustfile if profile else None)
    )
    if locust_path is None:
        raise InputError(
            "no locustfile: give -f LOCUSTFILE or 'locustfile:' in the profile",
            source=source,
            field="locustfile",
        )
    if not locust_path.is_file():
        field = "-f" if locustfile else "locustfile"
        raise InputError(f"locustfile not found: {locust_path}", source=source, field=field)

    target = host or (profile.host if profile else None)
    if target is None:
        raise InputError(
            "no target host: give --host URL or 'host:' in the profile", source=source, field="host"
        )

    stages = _stages(profile, users=users, spawn_rate=spawn_rate, duration=duration, source=source)
    worker_count = workers or (profile.workers if profile else "auto")
    if worker_count == "auto":
        worker_count = cpu_count or os.cpu_count() or 1
    gates_ref = gates or (profile.gates if profile else None)
    opt_out = gates_ref == GATES_OPT_OUT
    if opt_out:
        gates_path = None
    else:
        gates_path = Path(gates).resolve() if gates else from_profile(profile.gates if profile else None)
    if gates_path is not None and not gates_path.is_file():
        raise InputError(
            f"gates file not found: {gates_path}", source=source, field="--gates" if gates else "gates"
        )

    name = profile.name if profile else "adhoc"
    data = {
        "run_id": run_id or default_run_id(name),
        "profile": name,
        "profile_file": profile_file,
        "locustfile": locust_path,
        "host": target,
        "stages": stages,
        "workers": worker_count,
        "user_weights": dict(profile.user_weights) if profile else {},
        "gates": gates_path,
        "gates_opt_out": opt_out,
        "scrape_targets": tuple(profile.scrape_targets) if profile else (),
        "probes": tuple(profile.probes) if profile else (),
        "skip_if_alerts": tuple(profile.skip_if_alerts) if profile else (),
        "summary_peaks": tuple(profile.summary_peaks) if profile else (),
        "results_dir": results_dir.resolve(),
    }
    try:
        return RunPlan.model_validate(data)
    except ValidationError as e:
        flags = {"run_id": "--run-id", "host": "--host", "workers": "--workers"}
        err = validation_error("command line", e)
        loc = e.errors()[0]["loc"]
        flag = (flags.get(str(loc[0])) if loc else None) or err.field
        raise InputError(
            e.errors()[0]["msg"].removeprefix("Value error, "), source="command line", field=flag
        ) from e


def _stages(
    profile: Profile | None, *, users: int | None, spawn_rate: float | None, duration: str | None, source: str
) -> tuple[Stage, ...]:
    flags_given = any(v is not None for v in (users, spawn_rate, duration))
    if profile is not None and profile.stages is not None and not flags_given:
        return profile.stages
    if profile is not None and profile.stages is not None and (users is None or duration is None):
        raise InputError(
            "this profile has a stage table: -u and -t must be given together to replace it",
            source=source,
            field="stages",
        )
    u = users if users is not None else (profile.users if profile else None)
    r = spawn_rate if spawn_rate is not None else (profile.spawn_rate if profile else None)
    if duration is not None:
        try:
            t: float | None = parse_duration(duration)
        except ValueError as e:
            raise InputError(str(e), source="command line", field="-t") from None
    else:
        t = profile.duration if profile else None
    if u is None or t is None:
        raise InputError(
            "no load defined: give 'stages', or -u USERS and -t DURATION", source=source, field="stages"
        )
    if u < 1:
        raise InputError("users must be at least 1", source="command line", field="-u")
    if r is not None and r <= 0:
        raise InputError("spawn rate must be greater than 0", source="command line", field="-r")
    return simple_stages(users=u, spawn_rate=r or 1.0, duration=t)


def scrape_target_parts(target: ScrapeTarget) -> tuple[str, str, str]:
    """(scheme, host:port, metrics_path) for a Prometheus static_config."""
    match = re.fullmatch(r"(https?)://([^/]+)(/.*)?", target.url)
    assert match is not None  # guaranteed by ScrapeTarget's validator
    return match.group(1), match.group(2), match.group(3) or "/metrics"
