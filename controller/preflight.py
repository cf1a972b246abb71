"""Every check of a run that can be made before any load is sent, in one place.

`loadctl run` and `loadctl validate` both call check_run(), so "validate says ok" means "run will
start". Each problem is an InputError (exit 2) naming the file or flag and the field. The checks
are pure over the plan and the files it names, except two small subprocesses (promtool for the
gates' PromQL, `locust --list` for the locustfile); claim_run_dir() is the one that writes.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from controller.baseline import FLAG as BASELINE_FLAG
from controller.baseline import read_baseline
from controller.errors import InputError
from controller.gates.load import gate_label, load_gate_file
from controller.gates.models import GateFile
from controller.locustfile_check import (
    LocustFacts,
    check_config_settings,
    check_owned,
    check_user_weights,
    inspect_locust,
)
from controller.models import (
    LocustConfig,
    RunPlan,
    Stage,
    UserShape,
    hide_secret_settings,
    hide_secret_values,
    phase_names,
)
from controller.policy import ENV_VAR as ALLOWED_HOSTS_ENV
from controller.policy import Allowlist, parse_allowlist, refusal, split_entries
from controller.reports.render import check_report_templates
from controller.rundir import RunDir
from controller.user_config import read_user_config
from locust_workers.contract import LocustCommand

RESULTS_FLAG = "--results-dir"
RUN_ID_FLAG = "--run-id"


@dataclass(frozen=True)
class Checked:
    gate_file: GateFile | None  # validated; None without gates
    locust_config: LocustConfig  # what Locust will run with beyond loadctl's own arguments


def check_run(plan: RunPlan) -> Checked:
    """All pre-load checks of `plan`."""
    check_own_allowlists(plan)
    check_results_dir(plan)
    if plan.baseline is not None:
        read_baseline(plan.baseline)
    gate_file = load_gate_file(plan.gates) if plan.gates is not None else None
    if gate_file is not None:
        assert plan.gates is not None
        check_gate_windows(gate_file, plan.phases, source=str(plan.gates), shape=plan.shape)
        check_baseline_rules(gate_file, baseline=plan.baseline, source=str(plan.gates))
    source = str(plan.profile_file) if plan.profile_file else "command line"
    check_report_templates(plan.report_template, source=source)
    facts = check_locust(plan, source=source)
    check_user_weights(plan.user_weights, facts.user_classes, source=source)
    return Checked(gate_file, locust_config_of(plan, facts))


def check_own_allowlists(plan: RunPlan) -> None:
    """The test author's own target allowlists ($LOADCTL_ALLOWED_HOSTS, the user config file's
    allowed_hosts; controller/policy.py) must each allow every host the load goes to. A k8s run
    must also pass the namespace's policy, checked before its release is installed
    (controller/k8s/policy_source.py)."""
    problem = refusal(plan.hosts, own_allowlists())
    if problem is not None:
        raise problem


def own_allowlists(environ: Mapping[str, str] = os.environ) -> list[Allowlist]:
    path, config = read_user_config(environ)
    from_env = split_entries(environ.get(ALLOWED_HOSTS_ENV, ""))
    found = [
        parse_allowlist(from_env, source=ALLOWED_HOSTS_ENV, field=None),
        parse_allowlist(config.allowed_hosts, source=str(path), field="allowed_hosts"),
    ]
    return [allowlist for allowlist in found if allowlist is not None]


def check_locust(plan: RunPlan, *, source: str) -> LocustFacts:
    """Locust loads the locustfile and parses the master's command line in the run's folder (so
    its config files and LOCUST_* variables count, as in Locust); the user's own arguments and the
    settings from files and variables must leave loadctl's options alone."""
    check_owned(list(plan.locust_options), source=source, in_profile=True)
    folder = RunDir(plan.run_dir)
    command = LocustCommand(
        locustfile=plan.locustfile_arg,
        host=plan.host,
        workers=plan.workers,
        master_host="127.0.0.1",
        bind_host="127.0.0.1",
        master_port=5557,  # parsed, never bound
        csv_prefix=str(folder.locust_csv_prefix),
        html_path=str(folder.locust_html),
        extra_args=plan.user_locust_args,
        user_classes=plan.user_classes,
    )
    argv = command.master_args()
    mine = len(plan.user_locust_args) + (len(plan.user_classes) + 1 if plan.user_classes else 0)
    try:
        facts = inspect_locust(
            argv, passthrough_start=len(argv) - mine, cwd=plan.workdir, source=plan.locustfile_arg
        )
    except InputError as e:
        raise _named_option_error(e, plan, source=source) from e
    check_owned(facts.passthrough_changes, source="command line")
    check_config_settings(facts.settings)
    return facts


def _named_option_error(error: InputError, plan: RunPlan, *, source: str) -> InputError:
    """Locust's parser errors are about arguments, not the locustfile: they name the profile's
    locust_options.x when x is one of them, else the command line."""
    text = str(error)
    if "locust: error:" not in text:
        return error  # the locustfile itself (an import, a data file, a user class)
    message = text.split("locust: error:", 1)[1].strip()
    named = {token for word in message.replace(":", " ").split() for token in word.split("/")}
    for name in plan.locust_options:
        if f"--{name}" in named:
            unknown = "unrecognized arguments" in message
            reason = "not an option of Locust or of the locustfile" if unknown else f"Locust: {message}"
            return InputError(reason, source=source, field=f"locust_options.{name}")
    return InputError(f"Locust: {message}", source="command line")


def check_pods_see_it(config: LocustConfig, *, backend: str) -> None:
    """Pods run Locust far from this machine's config files and LOCUST_* variables: a setting
    from them would silently not apply, so it is refused (the profile's locust_options or the
    arguments after `--` travel with the run)."""
    if backend == "local" or not config.sources:
        return
    name, where = sorted(config.sources.items())[0]
    raise InputError(
        f"the {backend} backend's pods do not see this machine's Locust config files or LOCUST_* "
        f"variables: give it in the profile's locust_options or after `--` instead",
        source=where,
        field=name,
    )


def locust_config_of(plan: RunPlan, facts: LocustFacts) -> LocustConfig:
    """run.json's locust_config: Locust's settings from files and variables, and the user's own
    arguments as given; credential-named options' values hidden, as in the recorded command."""
    return LocustConfig(
        files=facts.files,
        options=hide_secret_settings({name: s.value for name, s in facts.settings.items()}),
        sources={name: s.source for name, s in facts.settings.items()},
        args=hide_secret_values(plan.user_locust_args),
        user_classes=plan.user_classes,
        workdir=str(plan.workdir),
        locustfiles=facts.locustfiles,
    )


def check_gate_windows(
    gate_file: GateFile,
    phases: tuple[Stage, ...] | frozenset[str],
    *,
    source: str,
    shape: UserShape | None = None,
) -> None:
    """A gate's window must be a phase of this run (RunPlan.phases: its stage table's or its own
    shape's, and `run`); a stage table stands for its phases. A typo would otherwise only show after
    the whole load as a failed gate."""
    known = phases if isinstance(phases, frozenset) else phase_names(phases)
    declared = f"; the locustfile's shape {shape.name} declares them (`phases`, or `stages`)" if shape else ""
    for index, gate in enumerate(gate_file.gates):
        window = gate_file.window_of(gate)
        if window not in known:
            inherited = "" if gate.window else " (the file's default window)"
            raise InputError(
                f"'{window}'{inherited} is not a phase of this run (phases: {', '.join(sorted(known))}"
                f"{declared})",
                source=source,
                field=f"{gate_label(gate.name, index)}.window",
            )


def check_baseline_rules(gate_file: GateFile, *, baseline: Path | None, source: str) -> None:
    """A relative gate (max_change/min_change) can only be judged against a baseline run."""
    if baseline is not None:
        return
    for index, gate in enumerate(gate_file.gates):
        if gate.needs_baseline:
            field = "max_change" if gate.max_change is not None else "min_change"
            raise InputError(
                f"a relative gate needs a baseline run: give {BASELINE_FLAG} RESULTS/RUN_ID",
                source=source,
                field=f"{gate_label(gate.name, index)}.{field}",
            )


def check_results_dir(plan: RunPlan) -> None:
    """The results folder must be creatable and writable, and the run's folder not taken yet."""
    existing = plan.results_dir
    while not existing.exists() and existing != existing.parent:
        existing = existing.parent
    if not existing.is_dir():
        raise InputError(f"{existing} is not a directory", source="command line", field=RESULTS_FLAG)
    if not _writable(existing):
        raise InputError(f"{existing} is not writable", source="command line", field=RESULTS_FLAG)
    if plan.run_dir.exists():
        raise InputError(_taken(plan), source="command line", field=RUN_ID_FLAG)


def _writable(directory: Path) -> bool:
    if not os.access(directory, os.W_OK | os.X_OK):
        return False
    try:  # os.access does not know read-only mounts, and root passes it everywhere
        tempfile.TemporaryDirectory(dir=directory, prefix=".loadctl-check-").cleanup()
    except OSError:
        return False
    return True


def claim_run_dir(plan: RunPlan) -> Path:
    """Create the run's folder, failing if it exists: of two runs with one id, exactly one gets it."""
    try:
        plan.results_dir.mkdir(parents=True, exist_ok=True)
        plan.run_dir.mkdir()
    except FileExistsError:
        raise InputError(_taken(plan), source="command line", field=RUN_ID_FLAG) from None
    except OSError as e:
        raise InputError(
            f"cannot create {plan.run_dir}: {e.strerror}", source="command line", field=RESULTS_FLAG
        ) from e
    return plan.run_dir


def _taken(plan: RunPlan) -> str:
    return f"{plan.run_dir} already exists; choose another {RUN_ID_FLAG}"
