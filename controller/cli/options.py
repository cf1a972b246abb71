"""The CLI's option groups, each spelled once, and the typed objects they are gathered into.

A group decorator adds its options to a command and hands the command one frozen object instead
of their loose values (kopf's cli.py does the same for its logging options): `run` takes a
PlanFlags, a K8sConnection, a K8sDeployFlags and a GrafanaFlags instead of twenty-odd arguments.
What the values mean (a profile, a cluster, a backend's options) is built from these objects by
the command modules, not here.
"""

from __future__ import annotations

import functools
import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import click
from click.core import ParameterSource

from controller.errors import InfraError, InputError
from controller.rundir import RESULTS_ROOT, TSDB_DIR
from controller.sizing import DEFAULT_MAX_WORKERS, MAX_WORKERS, MEASURED_USERS_PER_WORKER

Command = Callable[..., None]
Decorator = Callable[[Command], Command]

# The same two environment variables for `run --grafana-*` and `grafana push`
GRAFANA_URL_ENV = "LOADCTL_GRAFANA_URL"
GRAFANA_TOKEN_ENV_ENV = "LOADCTL_GRAFANA_TOKEN_ENV"  # names the variable that holds the token
# `run --pushgateway` (controller/pushgateway); the chart's CronJobs set both (templates/cronjob.yaml)
PUSHGATEWAY_URL_ENV = "LOADCTL_PUSHGATEWAY_URL"
SCHEDULE_ENV = "LOADCTL_SCHEDULE"  # the schedule's name: the pushed summary's `schedule` label


def option_group(options: Sequence[Decorator], build: Callable[..., object], *, into: str) -> Decorator:
    """Add `options` to a command, which then receives `build(**their values)` as its `into` argument."""
    names = _parameter_names(options)

    def decorate(command: Command) -> Command:
        @functools.wraps(command)  # keeps the options decorated below this group
        def gathered(*args: Any, **kwargs: Any) -> None:
            values = {name: kwargs.pop(name) for name in names}
            command(*args, **kwargs, **{into: build(**values)})

        decorated: Command = gathered
        for option in reversed(options):
            decorated = option(decorated)
        return decorated

    return decorate


def _parameter_names(options: Sequence[Decorator]) -> list[str]:
    """The keyword names click gives the values of `options` (`--spawn-rate` -> spawn_rate)."""

    def probe() -> None: ...

    for option in options:
        option(probe)
    params: list[click.Parameter] = getattr(probe, "__click_params__", [])
    return [param.name for param in params if param.name is not None]


# `run` and `validate`: what builds the run's plan over the profile (controller/profiles.py build_plan)


@dataclass(frozen=True)
class PlanFlags:
    """The flags that win over the profile; None: not given, the profile's value stays."""

    locustfile: str | None = None
    host: str | None = None
    users: int | None = None
    spawn_rate: float | None = None
    duration: str | None = None
    workers: int | Literal["auto"] | None = None
    gates: str | None = None
    baseline: Path | None = None
    run_id: str | None = None
    results_dir: Path = RESULTS_ROOT
    report_template: Path | None = None


class WorkerCount(click.ParamType):
    """--workers: a number of worker processes, or `auto` (as a profile's `workers:`)."""

    name = "N|auto"

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> int | str:
        if value == "auto" or isinstance(value, int):
            return value
        try:
            count = int(value)
        except ValueError:
            self.fail(f"'{value}' is not a whole number or 'auto'", param, ctx)
        if not 1 <= count <= MAX_WORKERS:
            self.fail(f"{count} is not between 1 and {MAX_WORKERS}", param, ctx)
        return count


GATES = click.option("--gates", help="Gate file (YAML).")
BASELINE = click.option(
    "--baseline",
    type=click.Path(path_type=Path),
    help="A finished run's results folder: what max_change/min_change gates compare with.",
)
RESULTS_DIR = click.option(
    "--results-dir",
    type=click.Path(file_okay=False, path_type=Path),
    default=RESULTS_ROOT,
    show_default=True,
)
REPORT_TEMPLATE = click.option(
    "--report-template",
    type=click.Path(path_type=Path),
    help="Folder whose report.md.j2 / report.html.j2 replace the shipped report templates.",
)

plan_flags = option_group(
    [
        click.option(
            "-f",
            "--locustfile",
            help="Locustfile (overrides the profile's): a file, folder or comma-separated list, as Locust's.",
        ),
        click.option("-H", "--host", help="Target base URL, e.g. http://127.0.0.1:8000."),
        click.option("-u", "--users", type=int, help="Peak users (with -t, replaces the stage table)."),
        click.option("-r", "--spawn-rate", type=float, help="Users started per second."),
        click.option("-t", "--duration", "--run-time", "duration", help="Run time: 90s, 5m, 1h30m."),
        click.option(
            "--workers",
            type=WorkerCount(),
            metavar="N|auto",
            help="Worker processes, or auto (the default): one per CPU core locally, "
            "ceil(peak users / --users-per-worker) on k8s.",
        ),
        GATES,
        BASELINE,
        click.option("--run-id", help="Run id (default: <profile>-<UTC timestamp>)."),
        RESULTS_DIR,
        REPORT_TEMPLATE,
    ],
    PlanFlags,
    into="flags",
)
"""`run`: every flag over the profile."""

plan_check_flags = option_group([GATES, BASELINE, RESULTS_DIR, REPORT_TEMPLATE], PlanFlags, into="flags")
"""`validate`: the flags that change what a check looks at (not the load: nothing is sent)."""


# `run --backend k8s`, `ls`, `teardown`: which cluster and namespace


@dataclass(frozen=True)
class K8sConnection:
    namespace: str | None
    context: str | None
    kubeconfig: Path | None
    in_cluster: bool


k8s_connection = option_group(
    [
        click.option(
            "-n",
            "--namespace",
            help="[k8s] Namespace of the runs (default: the context's, or the pod's with --in-cluster).",
        ),
        click.option("--context", help="[k8s] kubeconfig context (default: the current one)."),
        click.option(
            "--kubeconfig",
            type=click.Path(exists=True, dir_okay=False, path_type=Path),
            help="[k8s] kubeconfig file (default: $KUBECONFIG, then ~/.kube/config).",
        ),
        click.option(
            "--in-cluster",
            is_flag=True,
            help="[k8s] Use the pod's ServiceAccount (the chart's scheduled runs).",
        ),
    ],
    K8sConnection,
    into="k8s",
)


# `run --backend k8s`: how the release is deployed and followed (checked in cli/k8s.py k8s_options)


@dataclass(frozen=True)
class K8sDeployFlags:
    prometheus_url: str | None
    image: str | None
    values_files: tuple[Path, ...]
    ready_timeout: str
    keep_on_fail: bool
    users_per_worker: int | None = None  # how --workers auto sizes the worker pods (None: the
    max_workers: int | None = None  # profile's users_per_worker / max_workers, else sizing.py's)
    wait_for_lock: str | None = None  # how long to wait for another run's hold on the target


k8s_deploy_flags = option_group(
    [
        click.option(
            "--prometheus",
            "prometheus_url",
            envvar="LOADCTL_PROMETHEUS_URL",
            help="[k8s] The cluster's Prometheus (follow, gates). "
            "Default/unreachable: a port-forward to the master.",
        ),
        click.option(
            "--image", envvar="LOADCTL_IMAGE", help="[k8s] loadctl image, repo[:tag] (default: the chart's)."
        ),
        click.option(
            "--values",
            "values_files",
            multiple=True,
            type=click.Path(exists=True, dir_okay=False, path_type=Path),
            help="[k8s] Extra chart values file (resources, nodeSelector, ports...); repeatable.",
        ),
        click.option(
            "--timeout",
            "ready_timeout",
            default="5m",
            show_default=True,
            help="[k8s] How long the pods may take to become ready.",
        ),
        click.option("--keep-on-fail", is_flag=True, help="[k8s] Keep the release when the verdict is fail."),
        click.option(
            "--users-per-worker",
            type=click.IntRange(1, 1_000_000),
            help=f"[k8s] Users one worker pod carries, for --workers auto (default: "
            f"{MEASURED_USERS_PER_WORKER}, measured: README Worker sizing).",
        ),
        click.option(
            "--max-workers",
            type=click.IntRange(1, MAX_WORKERS),
            help=f"[k8s] The most worker pods --workers auto starts (default {DEFAULT_MAX_WORKERS}).",
        ),
        click.option(
            "--wait-for-lock",
            "wait_for_lock",
            help="[k8s] Wait this long (5m) while another run holds the target's Lease, then exit 3 "
            "(default: do not wait).",
        ),
    ],
    K8sDeployFlags,
    into="deploy",
)


def _group_parameter_names(group: Decorator) -> tuple[str, ...]:
    """The keyword names of an option group's options (`--timeout` -> ready_timeout)."""

    def probe() -> None: ...

    params: list[click.Parameter] = getattr(group(probe), "__click_params__", [])
    return tuple(param.name for param in params if param.name is not None)


# `run --backend`: the one owner of which flags belong to one backend only (`run` refuses them
# with any other backend, cli/run.py); every flag not named here means the same to every backend.
BACKEND_ONLY_FLAGS: dict[str, tuple[str, ...]] = {
    "k8s": _group_parameter_names(k8s_connection) + _group_parameter_names(k8s_deploy_flags),
}

# `run`: annotate the run in a Grafana (checked in cli/grafana.py run_annotator)


@dataclass(frozen=True)
class GrafanaFlags:
    url: str | None
    token_env: str | None
    # --grafana-token-env typed on this command line, not set by the environment for every command
    token_env_typed: bool


def _grafana_flags(grafana_url: str | None, grafana_token_env: str | None) -> GrafanaFlags:
    source = click.get_current_context().get_parameter_source("grafana_token_env")
    return GrafanaFlags(
        url=grafana_url,
        token_env=grafana_token_env,
        token_env_typed=source is ParameterSource.COMMANDLINE,
    )


grafana_flags = option_group(
    [
        click.option(
            "--grafana-url",
            envvar=GRAFANA_URL_ENV,
            help="Grafana base URL: the run posts annotations (start, phases, abort, end with the verdict).",
        ),
        click.option(
            "--grafana-token-env",
            envvar=GRAFANA_TOKEN_ENV_ENV,
            metavar="VAR",
            help="Environment variable holding the Grafana token (service account, Editor).",
        ),
    ],
    _grafana_flags,
    into="grafana",
)


# `gates eval` and `gates lock`: where the judged data is


def gate_file_option(help: str) -> Decorator:
    return click.option("--gates", "gates_path", required=True, type=click.Path(path_type=Path), help=help)


RUN_DIR = click.Path(exists=True, file_okay=False, path_type=Path)
GATES_PROMETHEUS = click.option(
    "--prometheus", help=f"Prometheus base URL (default: serve --run's own {TSDB_DIR}/)."
)


def check_output(path: Path | None, option: str) -> None:
    """Fail before Prometheus is started (or queried) when the report could not be written."""
    if path is None:
        return
    folder = path.parent
    if not folder.is_dir():
        raise InputError(f"folder {folder} does not exist", source="command line", field=option)
    if path.is_dir():
        raise InputError(f"{path} is a directory", source="command line", field=option)
    if not os.access(folder, os.W_OK):
        raise InputError(f"folder {folder} is not writable", source="command line", field=option)


def write_output(path: Path, text: str) -> None:
    # In place, not controller/rundir.write_atomic: the user named this path, and it may be a
    # symlink, a FIFO or /dev/stdout, which a rename would replace instead of writing through.
    try:
        path.write_text(text, encoding="utf-8", errors="replace")
    except OSError as e:  # a full disk after the verdict: exit 3, the verdict never reached CI
        raise InfraError(f"{path}: cannot write: {e.strerror}") from e


# `run`: Locust's own options, passed to the master and the workers as they are


# Locust's options that take any number of values (`--tags a b`), which click cannot parse, and
# --loglevel and --config: taken out of `run`'s arguments before click sees them, kept in order.
LOCUST_LIST_OPTIONS = ("-T", "--tags", "-E", "--exclude-tags")
LOCUST_VALUE_OPTIONS = ("-L", "--loglevel", "--config")
LOCUST_ARGS_EPILOG = (
    "Locust's own options: -T/--tags TAG..., -E/--exclude-tags TAG..., -L/--loglevel LEVEL, "
    "--config FILE, and "
    "user class names after the locustfile (loadctl run -f FILE UserA UserB) go to Locust as they "
    "are; so does everything after `--` (e.g. the locustfile's own arguments): "
    "loadctl run -f FILE -u 10 -t 1m -- --my-arg 5."
)


def take_locust_options(args: list[str]) -> tuple[list[str], list[str]]:
    """(the arguments for click, Locust's own options with their values) from `run`'s arguments
    before `--`. A list option takes the values up to the next option, as in Locust."""
    rest: list[str] = []
    taken: list[str] = []
    index = 0
    while index < len(args):
        arg = args[index]
        name = arg.split("=", 1)[0]
        index += 1
        if name in LOCUST_LIST_OPTIONS and "=" not in arg:
            taken.append(arg)
            while index < len(args) and not args[index].startswith("-"):
                taken.append(args[index])
                index += 1
        elif name in LOCUST_VALUE_OPTIONS and "=" not in arg and index < len(args):
            taken.extend([arg, args[index]])
            index += 1
        elif name in (*LOCUST_LIST_OPTIONS, *LOCUST_VALUE_OPTIONS):
            taken.append(arg)  # --tags=a, --loglevel=DEBUG, or a trailing --loglevel for Locust to refuse
        else:
            rest.append(arg)
    return rest, taken


class LocustArgsCommand(click.Command):
    """A command whose arguments after `--`, and Locust's own options (take_locust_options), are
    kept for Locust in ctx.meta[LOCUST_ARGS_META] instead of being parsed by click."""

    def parse_args(self, ctx: click.Context, args: list[str]) -> list[str]:
        head, tail = (args[: args.index("--")], args[args.index("--") + 1 :]) if "--" in args else (args, [])
        rest, taken = take_locust_options(head)
        ctx.meta[LOCUST_ARGS_META] = (*taken, *tail)
        return super().parse_args(ctx, rest)


LOCUST_ARGS_META = "loadctl.locust_args"


def locust_args() -> tuple[str, ...]:
    """The current command's arguments for Locust (LocustArgsCommand)."""
    args: tuple[str, ...] = click.get_current_context().meta.get(LOCUST_ARGS_META, ())
    return args
