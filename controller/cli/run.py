"""`loadctl run` and `loadctl validate`: a profile and the flags over it -> a plan -> controller/runs.py."""

from __future__ import annotations

import re
import sys
from collections.abc import Sequence

import click
from click.core import ParameterSource

from controller.backends.options import BackendOptions, LocalOptions
from controller.cli.grafana import report_grafana_url, run_annotator
from controller.cli.k8s import k8s_options
from controller.cli.options import (
    BACKEND_ONLY_FLAGS,
    GrafanaFlags,
    K8sConnection,
    K8sDeployFlags,
    PlanFlags,
    grafana_flags,
    k8s_connection,
    k8s_deploy_flags,
    plan_check_flags,
    plan_flags,
)
from controller.cli.render import ConsoleEvents, console, print_outcome
from controller.errors import InputError
from controller.models import RunPlan
from controller.profiles import build_plan, load_profile, resolve_profile_path


def load_plan(profile: str | None, flags: PlanFlags) -> RunPlan:
    """PROFILE (a path, a name: ./profiles/ then shipped, or none: flags only) with the flags over it."""
    profile_file = resolve_profile_path(profile) if profile else None
    return build_plan(
        load_profile(profile_file) if profile_file else None,
        profile_file=profile_file,
        locustfile=flags.locustfile,
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
    )


# An option whose name says it is about a credential has its value hidden in run.json and the
# report (the token itself never is an argument; where it lives is nobody else's business either).
SECRET_OPTION = re.compile(r"^--?[\w-]*(token|password|secret|credential)[\w-]*$", re.IGNORECASE)


def recorded_command(args: Sequence[str]) -> tuple[str, ...]:
    """The command line as run, for run.json and the report, credential-named options' values hidden."""
    shown: list[str] = ["loadctl"]
    hide_next = False
    for arg in args:
        name, eq, _ = arg.partition("=")
        if hide_next:
            shown.append("***")
        elif eq and SECRET_OPTION.match(name):
            shown.append(f"{name}=***")
        else:
            shown.append(arg)
        hide_next = not hide_next and not eq and SECRET_OPTION.match(arg) is not None
    return tuple(shown)


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


@click.command()
@click.argument("profile", required=False)
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
def run(
    profile: str | None,
    backend: str,
    flags: PlanFlags,
    k8s: K8sConnection,
    deploy: K8sDeployFlags,
    grafana: GrafanaFlags,
) -> None:
    """Run PROFILE (a YAML path, or a name: ./profiles/NAME.yaml, else a shipped one); flags override it."""
    from controller.backends.factory import create_backend
    from controller.runs import execute

    refuse_other_backends_flags(backend)
    plan = load_plan(profile, flags)
    # every flag is checked before anything is deployed: Grafana's first, then the cluster's
    observer = run_annotator(plan, grafana)
    plan = plan.model_copy(
        update={"command": recorded_command(sys.argv[1:]), "grafana_url": report_grafana_url(grafana)}
    )
    options: BackendOptions = k8s_options(k8s, deploy) if backend == "k8s" else LocalOptions()
    record = execute(
        plan, backend=create_backend(plan, options, ConsoleEvents()), console=console, observer=observer
    )
    print_outcome(record, run_dir=plan.run_dir)
    sys.exit(record.exit_code)


@click.command()
@click.argument("profile")
@plan_check_flags
def validate(profile: str, flags: PlanFlags) -> None:
    """Check a profile as `run` would (locustfile, gates, windows, baseline), without sending any load."""
    from controller.preflight import check_run

    plan = load_plan(profile, flags)
    check_run(plan)
    console.print(
        f"{plan.profile_file}: ok ({len(plan.stages)} stages, {plan.duration:.0f}s, {plan.workers} workers)",
        highlight=False,
    )
