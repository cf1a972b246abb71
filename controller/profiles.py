"""Read profile files and turn a profile plus CLI flags into a RunPlan (the files themselves are
read by inputs.py).

Errors name the file and the field (`profiles/x.yaml: stages[1].users: ...`) and carry exit code 2,
because they are raised before any load is sent.
"""

from __future__ import annotations

import math
import os
import secrets
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Literal

from pydantic import ValidationError

from controller.chart import SHIPPED_PROFILES
from controller.errors import InputError
from controller.extras import require_probe_extras
from controller.inputs import expand_env, load_yaml_mapping, parse_model, validation_error
from controller.locustfile_check import LocustfileFacts, ShapeFacts
from controller.models import (
    GATES_OPT_OUT,
    AnalysisSettings,
    Profile,
    RunPlan,
    Stage,
    UserShape,
    check_host,
    peak_users,
    simple_stages,
    slow_stage,
)
from controller.rundir import RESULTS_ROOT
from controller.sizing import WorkerSizing, auto_workers, capacity_warning
from locust_workers.contract import AUTO_LATENCY_BUCKETS, MAX_DURATION_S, parse_duration


def resolve_profile_path(
    ref: str, *, profiles_dir: Path = Path("profiles"), shipped_dir: Path = SHIPPED_PROFILES
) -> Path:
    """A path if `ref` is one (an existing file, or anything with a slash or a .yaml suffix);
    otherwise a name: ./profiles/NAME.yaml in the current folder, else the profile shipped with
    loadctl, so that `loadctl run demo` works from any folder once the package is installed."""
    if Path(ref).is_file() or "/" in ref or ref.endswith((".yaml", ".yml")):
        return Path(ref)
    found = profile_files(profiles_dir=profiles_dir, shipped_dir=shipped_dir)
    if ref not in found:
        hint = f" (known: {', '.join(sorted(found))})" if found else ""
        raise InputError(f"no profile named '{ref}'{hint}", source=str(profiles_dir / f"{ref}.yaml"))
    return found[ref]


def profile_files(
    *, profiles_dir: Path = Path("profiles"), shipped_dir: Path = SHIPPED_PROFILES
) -> dict[str, Path]:
    """Every profile `loadctl run NAME` finds, by name: the shipped ones, each replaced by a
    ./profiles/NAME.yaml of the same name."""
    found: dict[str, Path] = {}
    for folder in (shipped_dir, profiles_dir):  # the later folder wins
        if folder.is_dir():
            found.update((path.stem, path) for path in folder.glob("*.yaml"))
    return dict(sorted(found.items()))


def profile_load(profile: Profile) -> tuple[float | None, int | None]:
    """What a profile asks for without flags: its run time in seconds and its peak users."""
    if profile.stages is not None:
        return sum(stage.duration for stage in profile.stages), max(stage.users for stage in profile.stages)
    return profile.duration, profile.users


def load_profile(path: Path, *, env: dict[str, str] | None = None) -> Profile:
    source = str(path)
    data = load_yaml_mapping(path)
    data.setdefault("name", path.stem.lower())
    data = expand_env(data, source=source, env=dict(os.environ) if env is None else env)
    profile = parse_model(Profile, data, source=source)
    require_probe_extras((probe.type for probe in profile.probes), source=source)
    return profile


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
    workers: int | Literal["auto"] | None = None,
    gates: str | None = None,
    run_id: str | None = None,
    results_dir: Path = RESULTS_ROOT,
    baseline: Path | None = None,
    report_template: Path | None = None,
    cpu_count: int | None = None,
    sizing: WorkerSizing | None = None,
    inspect: Callable[[Path], LocustfileFacts] | None = None,
) -> RunPlan:
    """Apply CLI flags over a profile (flags win). Paths in a profile are relative to its file.
    `inspect` reads the locustfile (locustfile_check.inspect_locustfile): with it, the classes' own
    hosts stand in for --host, and the locustfile's own shape for the stage table. `workers: auto`
    is one worker per CPU core, or with `sizing` (Kubernetes) one per users_per_worker peak users."""
    source = str(profile_file) if profile_file else "command line"
    base = profile_file.parent if profile_file else Path.cwd()
    locust_path = _locustfile_path(profile, locustfile, base=base, source=source)
    facts = inspect(locust_path) if inspect is not None and locust_path.is_file() else None  # not -f DIR
    target = host or (profile.host if profile else None)
    class_hosts = _class_hosts(facts, target=target, locustfile=locust_path, source=source)
    own_shape = facts.shape if facts else None
    load = {"users": users, "spawn_rate": spawn_rate, "duration": duration, "source": source}
    shape = user_shape(own_shape, profile, **load) if own_shape else None  # type: ignore[arg-type]
    gates_path, opt_out = _gates_path(profile, gates, base=base, source=source)
    stages = () if shape else _stages(profile, **load)  # type: ignore[arg-type]
    requested = workers or (profile.workers if profile else "auto")
    worker_count = _worker_count(
        requested, peak=peak_users(stages, shape), sizing=sizing, cpu_count=cpu_count
    )
    name = profile.name if profile else "adhoc"
    data: dict[str, object] = {
        "run_id": run_id or default_run_id(name),
        "profile": name,
        "profile_file": profile_file,
        "locustfile": locust_path,
        "host": target,
        "stages": stages,
        "shape": shape,
        "class_hosts": class_hosts,
        "workers": worker_count,
        "gates": gates_path,
        "gates_opt_out": opt_out,
        **_taken_as_written(profile),
        "results_dir": results_dir.resolve(),
        "baseline": baseline.resolve() if baseline is not None else None,
        "report_template": report_template.resolve()
        if report_template is not None
        else _in_profile_dir(base, profile.report_template if profile else None),
    }
    return _validated_plan(data)


def _taken_as_written(profile: Profile | None) -> dict[str, object]:
    """The plan's fields a profile gives as they are (no flag changes them)."""
    return {
        "user_weights": dict(profile.user_weights) if profile else {},
        "latency_buckets": profile.latency_buckets if profile else AUTO_LATENCY_BUCKETS,
        "locust_options": dict(profile.locust_options) if profile else {},
        "scrape_targets": tuple(profile.scrape_targets) if profile else (),
        "probes": tuple(profile.probes) if profile else (),
        "skip_if_alerts": tuple(profile.skip_if_alerts) if profile else (),
        "summary_peaks": tuple(profile.summary_peaks) if profile else (),
        "analysis": profile.analysis if profile else AnalysisSettings(),
    }


def worker_sizing(
    profile: Profile | None, *, users_per_worker: int | None = None, max_workers: int | None = None
) -> WorkerSizing:
    """How `workers: auto` is sized on Kubernetes: the flags, else the profile's fields, else the
    measured defaults (controller/sizing.py)."""
    default = WorkerSizing()
    return WorkerSizing(
        users_per_worker=users_per_worker
        or (profile.users_per_worker if profile else None)
        or default.users_per_worker,
        max_workers=max_workers or (profile.max_workers if profile else None) or default.max_workers,
    )


def _worker_count(
    requested: int | Literal["auto"], *, peak: int | None, sizing: WorkerSizing | None, cpu_count: int | None
) -> int:
    """A number of workers as it is; `auto` sized by peak users with `sizing`, else one per core.
    A peak only the locustfile's own shape knows counts as one worker's worth."""
    if requested != "auto":
        return requested
    if sizing is None:
        return cpu_count or os.cpu_count() or 1
    return auto_workers(peak or 0, sizing)


def sizing_warning(plan: RunPlan) -> str | None:
    """A sentence before the run when its peak puts more users on a worker than one carries below
    80 % CPU (controller/sizing.py); None when the workers are enough or the peak is not known."""
    peak = plan.peak_users
    if peak is None:
        return None
    return capacity_warning(profile=plan.profile, peak_users=peak, workers=plan.workers)


def _class_hosts(
    facts: LocustfileFacts | None, *, target: str | None, locustfile: Path, source: str
) -> dict[str, str]:
    """The user classes' own hosts, each checked; without --host (or the profile's), every class
    must have one, as Locust needs."""
    own = {name: host for name, host in (facts.class_hosts if facts else {}).items() if host}
    for name, host in own.items():
        try:
            check_host(host)
        except ValueError as e:
            raise InputError(str(e), source=str(locustfile), field=f"{name}.host") from None
    missing = [name for name, host in (facts.class_hosts if facts else {}).items() if not host]
    if target is None and (facts is None or missing or not own):
        without = f" (user classes without their own host: {', '.join(missing)})" if missing else ""
        raise InputError(
            f"no target host: give --host URL or 'host:' in the profile{without}", source=source, field="host"
        )
    return own


def user_shape(
    facts: ShapeFacts,
    profile: Profile | None,
    *,
    users: int | None,
    spawn_rate: float | None,
    duration: str | None,
    source: str,
) -> UserShape:
    """The locustfile's own shape runs the load: -u/-r/-t (or the profile's users/spawn_rate/
    duration) reach it on Locust's command line, and its end, or -t, bounds the run."""
    if profile is not None and profile.stages is not None:
        raise InputError(
            f"the locustfile has its own LoadTestShape ({facts.name}), which runs the load instead of "
            "a stage table: remove the profile's stages, or the shape",
            source=source,
            field="stages",
        )
    t = _flag_duration(duration) if duration is not None else (profile.duration if profile else None)
    if facts.own_end_s is None and t is None:
        raise InputError(
            f"the locustfile's shape {facts.name} does not say when it ends (no `time_limit`, no `stages` "
            "with a `duration`): give -t DURATION (or 'duration:' in the profile) to bound the run",
            source=source,
            field="-t",
        )
    if facts.own_end_s is not None and facts.own_end_s > MAX_DURATION_S:
        raise InputError(
            f"the shape {facts.name} lasts more than {MAX_DURATION_S / 3600:.0f}h",
            source=source,
            field="shape",
        )
    try:
        return UserShape(
            name=facts.name,
            phases=facts.phases,
            own_end_s=facts.own_end_s,
            use_common_options=facts.use_common_options,
            users=users if users is not None else (profile.users if profile else None),
            spawn_rate=spawn_rate if spawn_rate is not None else (profile.spawn_rate if profile else None),
            run_time_s=t,
        )
    except ValidationError as e:
        first = e.errors()[0]
        field = {"users": "-u", "spawn_rate": "-r"}.get(str(first["loc"][0]), f"{facts.name}.phases")
        raise InputError(first["msg"].removeprefix("Value error, "), source=source, field=field) from e


def _flag_duration(duration: str) -> float:
    try:
        return parse_duration(duration)
    except ValueError as e:
        raise InputError(str(e), source="command line", field="-t") from None


def _in_profile_dir(base: Path, path: str | None) -> Path | None:
    """A path written in a profile, which is relative to the profile's folder."""
    return None if path is None else (base / path).resolve()


def _locustfile_path(profile: Profile | None, flag: str | None, *, base: Path, source: str) -> Path:
    """-f, else the profile's locustfile; it must exist (a file, or a folder of them as Locust takes)."""
    path = Path(flag).resolve() if flag else _in_profile_dir(base, profile.locustfile if profile else None)
    if path is None:
        raise InputError(
            "no locustfile: give -f LOCUSTFILE or 'locustfile:' in the profile",
            source=source,
            field="locustfile",
        )
    if not (path.is_file() or path.is_dir()):
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
