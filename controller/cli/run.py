"""`loadctl run` and `loadctl validate`: a profile and the flags over it -> a plan -> controller/runs.py."""

from __future__ import annotations

import os
import shutil
import sys
from collections.abc import Sequence
from pathlib import Path

import click
from click.core import ParameterSource

from controller.backends.options import BackendOptions, LocalOptions
from controller.cli.grafana import report_grafana_url, run_annotator
from controller.cli.k8s import k8s_options
from controller.cli.options import (
    BACKEND_ONLY_FLAGS,
    LOCUST_ARGS_EPILOG,
    PUSHGATEWAY_URL_ENV,
    SCHEDULE_ENV,
    GrafanaFlags,
    K8sConnection,
    K8sDeployFlags,
    LocustArgsCommand,
    PlanFlags,
    check_output,
    grafana_flags,
    k8s_connection,
    k8s_deploy_flags,
    locust_args,
    plan_check_flags,
    plan_flags,
)
from controller.cli.render import ConsoleEvents, console, print_outcome, warn
from controller.errors import InfraError, InputError
from controller.locustfile_check import inspect_locustfile, locusts_locustfile
from controller.models import RunPlan, RunRecord, hide_secret_values
from controller.profiles import (
    build_plan,
    load_profile,
    profile_files,
    resolve_profile_path,
    sizing_warning,
    worker_sizing,
)
from controller.pushgateway.push import check_pushgateway_url, push_run
from controller.rundir import EXCEPTIONS_CSV, FAILURES_CSV, STATS_CSV, STATS_HISTORY_CSV, RunDir


def load_plan(profile: str | None, flags: PlanFlags, *, k8s: K8sDeployFlags | None = None) -> RunPlan:
    """PROFILE (a path, a name: ./profiles/ then shipped, or none: flags only) with the flags over
    it. `workers: auto` is one worker per core, or with `k8s` worker pods sized by peak users."""
    profile_file = resolve_profile_path(profile) if profile else None
    given = flags.locustfile or (None if profile_file else _locusts_own_locustfile())
    first, *more = given.split(",") if given else [""]
    loaded = load_profile(profile_file) if profile_file else None
    pods = (
        worker_sizing(loaded, users_per_worker=k8s.users_per_worker, max_workers=k8s.max_workers)
        if k8s
        else None
    )
    plan = build_plan(
        loaded,
        profile_file=profile_file,
        locustfile=first.strip() or None,
        host=flags.host,
        users=flags.users,
        spawn_rate=flags.spawn_rate,
        duration=flags.duration,
        workers=flags.workers,
        gates=flags.gates,
        run_id=flags.run_id,
        results_dir=flags.results_dir,
        baseline=flags.baseline,
        report_template=flags.report_template,
        sizing=pods,
        inspect=inspect_locustfile,
    )
    return plan.model_copy(update={"more_locustfiles": tuple(_more_locustfiles(more))}) if more else plan


def recorded_command(args: Sequence[str]) -> tuple[str, ...]:
    """The command line as run, for run.json and the report, credential-named options' values hidden."""
    return ("loadctl", *hide_secret_values(args))


def refuse_other_backends_flags(backend: str) -> None:
    """Another backend's flag would be silently ignored: exit 2, naming both backends. Only flags
    typed on this command line count: --prometheus and --image may come from the environment (set
    for every run), --timeout has a default."""
    context = click.get_current_context()
    for param in context.command.params:
        owner = next((b for b, names in BACKEND_ONLY_FLAGS.items() if param.name in names), backend)
        if owner != backend and context.get_parameter_source(param.name or "") is ParameterSource.COMMANDLINE:
            raise InputError(
                f"only with --backend {owner}, not with --backend {backend}",
                source="command line",
                field=max(param.opts, key=len),
            )


def _warn_if_workers_are_short(plan: RunPlan) -> None:
    """Before any load: more users per worker than one was measured to carry (README: Worker sizing)."""
    warning = sizing_warning(plan)
    if warning:
        warn(f"warning: {warning}")


def _locusts_own_locustfile() -> str | None:
    """Without -f or a profile, what `locust` would run here: locust.conf's `locustfile =`,
    $LOCUST_LOCUSTFILE, or ./locustfile.py when there is one."""
    found = locusts_locustfile(cwd=Path.cwd(), args=locust_args())
    if found is None or (found == "locustfile.py" and not Path(found).is_file()):
        return None  # loadctl's own error: give -f or a profile
    return found


def _more_locustfiles(paths: list[str]) -> list[Path]:
    """The rest of -f's comma-separated list (Locust's), each a file or a folder."""
    found = [Path(p.strip()).resolve() for p in paths if p.strip()]
    for path in found:
        if not path.exists():
            raise InputError(f"locustfile not found: {path}", source="command line", field="-f")
    return found


def split_positionals(
    positionals: tuple[str, ...], *, locustfile_given: bool
) -> tuple[str | None, tuple[str, ...]]:
    """(PROFILE, user classes) from `run`'s positional arguments. With -f, Locust's habit: a first
    name that is no profile (not a path, no profile of that name) is a user class, as are the rest."""
    if not positionals:
        return None, ()
    first, rest = positionals[0], tuple(positionals[1:])
    is_profile = Path(first).is_file() or "/" in first or first.endswith((".yaml", ".yml"))
    is_profile = is_profile or first in profile_files()  # ./profiles/ or shipped
    if locustfile_given and not is_profile:
        return None, positionals
    return first, rest


def _check_copy_target(path: Path | None, option: str) -> None:
    # A missing folder is created after the run, as Locust creates the folders of --csv and --html.
    if path is not None and path.parent.is_dir():
        check_output(path, option)


def copy_locust_outputs(run_dir: Path, *, csv_prefix: Path | None, html: Path | None) -> list[Path]:
    """Locust's CSVs (as --csv PREFIX names them) and HTML report of the run where the user asked."""
    folder = RunDir(run_dir)
    pairs = [(folder.locust_html, html)] if html else []
    if csv_prefix is not None:
        names = (STATS_CSV, STATS_HISTORY_CSV, FAILURES_CSV, EXCEPTIONS_CSV)
        pairs += [(run_dir / name, Path(f"{csv_prefix}_{name}")) for name in names]
    copied = []
    for source, target in pairs:
        if source.exists() and target is not None:
            try:
                target.parent.mkdir(parents=True, exist_ok=True)
                shutil.copyfile(source, target)
            except OSError as e:
                raise InfraError(f"{target}: cannot write: {e.strerror}") from e
            copied.append(target)
    return copied


def refuse_on_k8s(plan: RunPlan) -> None:
    """The chart runs a stage table against one --host (for now): a locustfile's own shape or
    classes' own hosts run with the local backend only."""
    source = str(plan.profile_file) if plan.profile_file else "command line"
    if plan.shape is not None:
        raise InputError(
            f"the locustfile's own shape {plan.shape.name} runs with the local backend only (for now)",
            source=source,
            field="--backend",
        )
    if plan.host is None:
        raise InputError(
            "the k8s backend needs --host (or 'host:' in the profile): the classes' own hosts run "
            "with the local backend only (for now)",
            source=source,
            field="--backend",
        )


@click.command(cls=LocustArgsCommand, epilog=LOCUST_ARGS_EPILOG)
@click.argument("positionals", nargs=-1, metavar="[PROFILE] [USERCLASS]...")
@plan_flags
@click.option(
    "--backend",
    type=click.Choice(["local", "k8s"]),
    default="local",
    show_default=True,
    help="local: processes on this machine; k8s: a Helm release of charts/loadctl.",
)
@k8s_connection
@k8s_deploy_flags
@grafana_flags
@click.option("--headless", is_flag=True, expose_value=False, help="Accepted (Locust's); loadctl always is.")
@click.option(
    "--csv",
    "csv_prefix",
    type=click.Path(path_type=Path),
    metavar="PREFIX",
    help="Also copy Locust's CSVs to PREFIX_stats.csv...",
)
@click.option(
    "--html",
    "html_file",
    type=click.Path(path_type=Path),
    metavar="FILE",
    help="Also copy Locust's HTML report to FILE.",
)
@click.option(
    "--pushgateway",
    "pushgateway_url",
    envvar=PUSHGATEWAY_URL_ENV,
    metavar="URL",
    help="After the verdict, push the run's summary to this Prometheus Pushgateway "
    "(job=loadctl, one group per run_id); a failed push is a warning.",
)
def run(
    positionals: tuple[str, ...],
    backend: str,
    flags: PlanFlags,
    k8s: K8sConnection,
    deploy: K8sDeployFlags,
    grafana: GrafanaFlags,
    csv_prefix: Path | None,
    html_file: Path | None,
    pushgateway_url: str | None,
) -> None:
    """Run PROFILE (a YAML path, or a name: ./profiles/NAME.yaml, else a shipped one); flags override it."""
    from controller.backends.factory import create_backend
    from controller.runs import execute

    refuse_other_backends_flags(backend)
    profile, user_classes = split_positionals(positionals, locustfile_given=flags.locustfile is not None)
    plan = load_plan(profile, flags, k8s=deploy if backend == "k8s" else None)
    _check_copy_target(html_file.resolve() if html_file else None, "--html")
    _check_copy_target(Path(f"{csv_prefix.resolve()}_{STATS_CSV}") if csv_prefix else None, "--csv")
    if backend == "k8s":
        refuse_on_k8s(plan)
    _warn_if_workers_are_short(plan)
    pushgateway = check_pushgateway_url(pushgateway_url) if pushgateway_url else None
    # every flag is checked before anything is deployed: Grafana's first, then the cluster's
    observer = run_annotator(plan, grafana)
    plan = plan.model_copy(
        update={
            "command": recorded_command(sys.argv[1:]),
            "grafana_url": report_grafana_url(grafana),
            "locust_args": locust_args(),
            "user_classes": user_classes,
        }
    )
    options: BackendOptions = k8s_options(k8s, deploy) if backend == "k8s" else LocalOptions()
    record = execute(
        plan, backend=create_backend(plan, options, ConsoleEvents()), console=console, observer=observer
    )
    if pushgateway is not None:
        record = push_summary(record, run_dir=plan.run_dir, url=pushgateway)
    print_outcome(record, run_dir=plan.run_dir)
    for path in copy_locust_outputs(
        plan.run_dir, csv_prefix=csv_prefix and csv_prefix.resolve(), html=html_file and html_file.resolve()
    ):
        console.print(f"copied {path}", highlight=False)
    sys.exit(record.exit_code)


def push_summary(record: RunRecord, *, run_dir: Path, url: str) -> RunRecord:
    """The run's summary to the Pushgateway (after the verdict, which it never changes)."""
    pushed = push_run(
        record,
        run_dir=run_dir,
        url=url,
        schedule=os.environ.get(SCHEDULE_ENV, ""),
        warn=lambda m: console.print(f"[yellow]warning: {m}[/]", highlight=False),
    )
    if pushed.pushgateway is not None and pushed.pushgateway.pushed:
        console.print(f"summary pushed to {pushed.pushgateway.url}", highlight=False)
    return pushed


@click.command()
@click.argument("profile")
@plan_check_flags
def validate(profile: str, flags: PlanFlags) -> None:
    """Check a profile as `run` would (locustfile, gates, windows, baseline), without sending any load."""
    from controller.preflight import check_run

    plan = load_plan(profile, flags)
    check_run(plan)
    _warn_if_workers_are_short(plan)
    load = f"its own shape {plan.shape.name}" if plan.shape else f"{len(plan.stages)} stages"
    console.print(
        f"{plan.profile_file}: ok ({load}, {plan.duration:.0f}s, {plan.workers} workers)", highlight=False
    )
