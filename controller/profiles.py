"""Read profile files and turn a profile plus CLI flags into a RunPlan.

Errors name the file and the field (`profiles/x.yaml: stages[1].users: ...`) and carry exit code 2,
because they are raised before any load is sent.
"""

from __future__ import annotations

import math
import os
import re
import secrets
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
    simple_stages,
    slow_stage,
)
from locust_workers.contract import MAX_DURATION_S, parse_duration

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

    def compose_node(self, parent: Any, index: Any) -> Any:
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
    """`<profile>-<UTC timestamp>-<8 random hex>`: two runs started in the same second differ
    (one in ~4e9; the run folder is claimed atomically, so even then they never share one)."""
    stamp = (now or datetime.now(UTC)).strftime("%Y%m%d-%H%M%S")
    tail = f"-{stamp}-{secrets.token_hex(4)}"
    return profile[: 63 - len(tail)].rstrip("._-") + tail


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
    baseline: Path | None = None,
    cpu_count: int | None = None,
) -> RunPlan:
    """Apply CLI flags over a profile (flags win). Paths in a profile are relative to its file."""
    source = str(profile_file) if profile_file else "command line"
    base = profile_file.parent if profile_file else Path.cwd()
    locust_path = _locustfile_path(profile, locustfile, base=base, source=source)
    target = host or (profile.host if profile else None)
    if target is None:
        raise InputError(
            "no target host: give --host URL or 'host:' in the profile", source=source, field="host"
        )
    stages = _stages(profile, users=users, spawn_rate=spawn_rate, duration=duration, source=source)
    worker_count = workers or (profile.workers if profile else "auto")
    if worker_count == "auto":
        worker_count = cpu_count or os.cpu_count() or 1
    gates_path, opt_out = _gates_path(profile, gates, base=base, source=source)
    name = profile.name if profile else "adhoc"
    data: dict[str, object] = {
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
        "baseline": baseline.resolve() if baseline is not None else None,
    }
    return _validated_plan(data)


def _in_profile_dir(base: Path, path: str | None) -> Path | None:
    """A path written in a profile, which is relative to the profile's folder."""
    return None if path is None else (base / path).resolve()


def _locustfile_path(profile: Profile | None, flag: str | None, *, base: Path, source: str) -> Path:
    """-f, else the profile's locustfile; it must exist."""
    path = Path(flag).resolve() if flag else _in_profile_dir(base, profile.locustfile if profile else None)
    if path is None:
        raise InputError(
            "no locustfile: give -f LOCUSTFILE or 'locustfile:' in the profile",
            source=source,
            field="locustfile",
        )
    if not path.is_file():
        field = "-f" if flag else "locustfile"
        raise InputError(f"locustfile not found: {path}", source=source, field=field)
    return path


def _gates_path(
    profile: Profile | None, flag: str | None, *, base: Path, source: str
) -> tuple[Path | None, bool]:
    """--gates, else the profile's gates: the gate file (if any, it must exist) and whether the user
    opted out of gates (GATES_OPT_OUT)."""
    if (flag or (profile.gates if profile else None)) == GATES_OPT_OUT:
        return None, True
    path = Path(flag).resolve() if flag else _in_profile_dir(base, profile.gates if profile else None)
    if path is not None and not path.is_file():
        raise InputError(f"gates file not found: {path}", source=source, field="--gates" if flag else "gates")
    return path, False


def _validated_plan(data: dict[str, object]) -> RunPlan:
    """RunPlan's own checks; an error names the flag it came from (--run-id, --host, --workers)."""
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


def _checked_stage_table(stages: tuple[Stage, ...], *, source: str) -> tuple[Stage, ...]:
    """A profile's stage table as it is, once it is known to fit in a week and in Locust's pace."""
    if sum(stage.duration for stage in stages) > MAX_DURATION_S:
        raise InputError(
            f"the stages add up to more than {MAX_DURATION_S / 3600:.0f}h", source=source, field="stages"
        )
    slow = slow_stage(stages)
    if slow is not None:
        index, needed = slow
        stage = stages[index]
        raise InputError(
            f"reaching {stage.users} users at spawn_rate {stage.spawn_rate:g}/s takes {needed:.0f}s, "
            f"longer than the stage's {stage.duration:g}s (Locust would hold the stage until they "
            "are all spawned and skip later stages): raise spawn_rate or duration",
            source=source,
            field=f"stages[{index}]",
        )
    return stages


def _stages(
    profile: Profile | None, *, users: int | None, spawn_rate: float | None, duration: str | None, source: str
) -> tuple[Stage, ...]:
    flags_given = any(v is not None for v in (users, spawn_rate, duration))
    if profile is not None and profile.stages is not None and not flags_given:
        return _checked_stage_table(profile.stages, source=source)
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
    if r is not None and (r <= 0 or not math.isfinite(r)):
        raise InputError("spawn rate must be a number greater than 0", source="command line", field="-r")
    try:
        return simple_stages(users=u, spawn_rate=r or 1.0, duration=t)
    except ValidationError as e:  # a bound of Stage (users, spawn_rate)
        first = e.errors()[0]
        name = str(first["loc"][0]) if first["loc"] else ""
        flag = {"users": "-u", "spawn_rate": "-r", "duration": "-t"}.get(name, "-u")
        from_flags = {"-u": users, "-r": spawn_rate, "-t": duration}[flag] is not None
        raise InputError(
            f"{first['msg']}",
            source="command line" if from_flags else source,
            field=flag if from_flags else name or None,
        ) from e
    except ValueError as e:
        # name what the user wrote: the flags, or the profile's fields
        if duration is not None or spawn_rate is not None:
            flags = "-t" if spawn_rate is None else ("-r" if duration is None else "-t/-r")
            raise InputError(str(e), source="command line", field=flags) from None
        raise InputError(str(e), source=source, field="duration") from None


def scrape_target_parts(target: ScrapeTarget) -> tuple[str, str, str]:
    """(scheme, host:port, metrics_path) for a Prometheus static_config."""
    match = re.fullmatch(r"(https?)://([^/]+)(/.*)?", target.url)
    assert match is not None  # guaranteed by ScrapeTarget's validator
    return match.group(1), match.group(2), match.group(3) or "/metrics"
