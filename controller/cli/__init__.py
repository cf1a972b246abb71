"""The `loadctl` command line. Thin: parse flags, build models, call runs."""

from __future__ import annotations

import signal
import sys
import threading
from pathlib import Path

import click
from rich.console import Console
from rich.markup import escape

from controller.backends.options import BackendOptions, LocalOptions
from controller.cli_grafana import grafana_run_options, run_annotator
from controller.cli_k8s import k8s_connection_options, k8s_options
from controller.crash import report_crash
from controller.errors import EXIT_INPUT, EXIT_INTERRUPTED, InfraError, InputError, LoadctlError
from controller.profiles import build_plan, load_profile, resolve_profile_path
from controller.rundir import RUN_REPORT, RunDir

console = Console(soft_wrap=True)
BASELINE_HELP = "A finished run's results folder: what max_change/min_change gates compare with."


def _error(message: str) -> None:
    print(f"loadctl: error{message}", file=sys.stderr)


class ConsoleEvents:
    """A backend's events (controller/backends/base.py BackendEvents) as lines on the CLI's console."""

    def __init__(self, console: Console) -> None:
        self.console = console

    def note(self, message: str) -> None:
        self.console.print(escape(message), highlight=False)

    def progress(self, message: str) -> None:
        self.console.print(escape(message), highlight=False)

    def warning(self, message: str) -> None:
        self.console.print(f"[yellow]{escape(message)}[/]", highlight=False)


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="loadctl")
def cli() -> None:
    """Distributed load tests with Locust, live metrics in Prometheus, gated verdicts."""


@cli.command()
@click.argument("profile", required=False)
@click.option("-f", "--locustfile", help="Locustfile (overrides the profile's).")
@click.option("--host", help="Target base URL, e.g. http://127.0.0.1:8000.")
@click.option("-u", "--users", type=int, help="Peak users (with -t, replaces the stage table).")
@click.option("-r", "--spawn-rate", type=float, help="Users started per second.")
@click.option("-t", "--duration", "duration", help="Run time: 90s, 5m, 1h30m.")
@click.option("--workers", type=click.IntRange(1, 1024), help="Worker processes (default: one per CPU core).")
@click.option("--gates", help="Gate file (YAML).")
@click.option("--baseline", type=click.Path(path_type=Path), help=BASELINE_HELP)
@click.option(
    "--backend",
    type=click.Choice(["local", "k8s"]),
    default="local",
    show_default=True,
    help="local: processes on this machine; k8s: a Helm release of charts/loadctl.",
)
@click.option("--run-id", help="Run id (default: <profile>-<UTC timestamp>).")
@click.option(
    "--results-dir",
    type=click.Path(file_okay=False, path_type=Path),
    default=Path("results"),
    show_default=True,
)
@k8s_connection_options
@click.option(
    "--prometheus",
    "prometheus_url",
    envvar="LOADCTL_PROMETHEUS_URL",
    help="[k8s] The cluster's Prometheus (follow, gates). Default/unreachable: a port-forward to the master.",
)
@click.option(
    "--image", envvar="LOADCTL_IMAGE", help="[k8s] loadctl image, repo[:tag] (default: the chart's)."
)
@click.option(
    "--values",
    "values_files",
    multiple=True,
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="[k8s] Extra chart values file (resources, nodeSelector, ports...); repeatable.",
)
@click.option(
    "--timeout",
    "ready_timeout",
    default="5m",
    show_default=True,
    help="[k8s] How long the pods may take to become ready.",
)
@click.option("--keep-on-fail", is_flag=True, help="[k8s] Keep the release when the verdict is fail.")
@grafana_run_options
def run(
    profile: str | None,
    locustfile: str | None,
    host: str | None,
    users: int | None,
    spawn_rate: float | None,
    duration: str | None,
    workers: int | None,
    gates: str | None,
    baseline: Path | None,
    backend: str,
    run_id: str | None,
    results_dir: Path,
    namespace: str | None,
    context: str | None,
    kubeconfig: Path | None,
    in_cluster: bool,
    prometheus_url: str | None,
    image: str | None,
    values_files: tuple[Path, ...],
    ready_timeout: str,
    keep_on_fail: bool,
    grafana_url: str | None,
    grafana_token_env: str | None,
) -> None:
    """Run PROFILE (a name under profiles/ or a YAML path); flags override it."""
    from controller.backends.factory import create_backend
    from controller.runs import execute

    k8s_only = {
        "namespace": namespace,
        "context": context,
        "kubeconfig": kubeconfig,
        "in_cluster": in_cluster,
        "image": image,
        "values_files": values_files,
        "keep_on_fail": keep_on_fail,
    }
    if backend == "local":
        given = [name for name, value in k8s_only.items() if value]
        if given:
            flag = "--" + given[0].removesuffix("_files").replace("_", "-")
            raise InputError("only with --backend k8s", source="command line", field=flag)

    profile_file = resolve_profile_path(profile) if profile else None
    loaded = load_profile(profile_file) if profile_file else None
    plan = build_plan(
        loaded,
        profile_file=profile_file,
        locustfile=locustfile,
        host=host,
        users=users,
        spawn_rate=spawn_rate,
        duration=duration,
        workers=workers,
        gates=gates,
        run_id=run_id,
        results_dir=results_dir,
        baseline=baseline,
    )
    observer = run_annotator(plan, url=grafana_url, token_env=grafana_token_env, console=console)
    options: BackendOptions = LocalOptions()
    if backend == "k8s":
        options = k8s_options(
            namespace=namespace,
            context=context,
            kubeconfig=kubeconfig,
            in_cluster=in_cluster,
            prometheus_url=prometheus_url,
            image=image,
            values_files=values_files,
            ready_timeout=ready_timeout,
            keep_on_fail=keep_on_fail,
        )
    runner = create_backend(plan, options, ConsoleEvents(console))
    record = execute(plan, backend=runner, console=console, observer=observer)
    style = {
        "interrupted": "yellow",
        "error": "red",
        "fail": "red",
        "inconclusive": "red",
        "warn": "yellow",
    }.get(record.verdict, "green")
    totals = "" if record.requests is None else f", {record.requests} requests, {record.failures} failures"
    console.print(f"[{style}]verdict: {record.verdict}[/] (exit {record.exit_code}){totals}", highlight=False)
    if record.reason:
        console.print(f"reason: {record.reason}", highlight=False)
    if record.alerts_fired:
        console.print(f"alerts fired during the run: {', '.join(record.alerts_fired)}", highlight=False)
    if record.locust_warnings:
        first = record.locust_warnings[0]
        more = (
            f" (+{len(record.locust_warnings) - 1} more in {RUN_REPORT})"
            if len(record.locust_warnings) > 1
            else ""
        )
        console.print(f"locust warned: {first}{more}", highlight=False)
    # a k8s run followed by the cluster's Prometheus keeps no tsdb of its own
    run_dir = RunDir(plan.run_dir)
    again = f"; query again: loadctl prometheus {plan.run_dir}" if run_dir.tsdb.is_dir() else ""
    console.print(f"results: {plan.run_dir}  (report: {run_dir.report_md}{again})", highlight=False)
    sys.exit(record.exit_code)


@cli.command()
@click.argument("profile")
@click.option("--gates", help="Gate file (YAML), as `run --gates`.")
@click.option("--baseline", type=click.Path(path_type=Path), help=BASELINE_HELP)
@click.option(
    "--results-dir",
    type=click.Path(file_okay=False, path_type=Path),
    default=Path("results"),
    show_default=True,
)
def validate(profile: str, gates: str | None, baseline: Path | None, results_dir: Path) -> None:
    """Check a profile as `run` would (locustfile, gates, windows, baseline), without sending any load."""
    from controller.preflight import check_run

    profile_file = resolve_profile_path(profile)
    plan = build_plan(
        load_profile(profile_file),
        profile_file=profile_file,
        gates=gates,
        baseline=baseline,
        results_dir=results_dir,
    )
    check_run(plan)
    console.print(
        f"{profile_file}: ok ({len(plan.stages)} stages, {plan.duration:.0f}s, {plan.workers} workers)",
        highlight=False,
    )


@cli.command()
@click.argument("run_dir", type=click.Path(exists=True, file_okay=False, path_type=Path))
@click.option("--port", type=click.IntRange(1, 65535), help="Port on 127.0.0.1 (default: a free one).")
def prometheus(run_dir: Path, port: int | None) -> None:
    """Serve a finished run's Prometheus data (RUN_DIR/tsdb) until Ctrl-C."""
    from controller.prom.server import serve_run_tsdb

    stop = threading.Event()
    # explicit handlers: a shell's background job inherits SIGINT as ignored
    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, lambda *_: stop.set())
    with serve_run_tsdb(run_dir, port=port) as server:
        console.print(f"serving {RunDir(run_dir).tsdb} at {server.url}  (Ctrl-C to stop)", highlight=False)
        sys.stdout.flush()
        while not stop.wait(0.5):
            if server.process is not None and server.process.poll() is not None:
                raise InfraError(f"prometheus exited: {server.process.log_tail()}")


def _register_gates() -> None:
    from controller.cli_gates import gates
    from controller.cli_grafana import grafana
    from controller.cli_k8s import ls, teardown

    cli.add_command(gates)
    cli.add_command(grafana)
    cli.add_command(ls)
    cli.add_command(teardown)


_register_gates()


def main() -> None:
    """Every way out is an exit code and at most one line on stderr; a traceback goes to a file."""
    try:
        cli.main(standalone_mode=False)
    except (click.exceptions.Abort, KeyboardInterrupt) as e:
        # click turns Ctrl-C (and EOF at a prompt) into Abort; a run handles its own Ctrl-C
        interrupted = isinstance(e, KeyboardInterrupt) or isinstance(e.__cause__, KeyboardInterrupt)
        _error(": interrupted" if interrupted else ": aborted")
        sys.exit(EXIT_INTERRUPTED)
    except click.UsageError as e:
        where = f" ({e.ctx.command_path})" if e.ctx else ""
        _error(f"{where}: {e.format_message()}")
        sys.exit(EXIT_INPUT)
    except click.ClickException as e:
        _error(f": {e.format_message()}")
        sys.exit(e.exit_code)
    except LoadctlError as e:
        _error(f": {e}")
        sys.exit(e.exit_code)
    except Exception as e:  # a bug, or an OSError (full disk, permissions) nobody turned into one line
        sys.exit(report_crash(e))
