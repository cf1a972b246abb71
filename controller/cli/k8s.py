"""Kubernetes commands: `loadctl ls`, `loadctl teardown`, and the k8s options of `loadctl run`."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import click
from rich.console import Console
from rich.table import Table

from controller.backends.options import K8sOptions
from controller.errors import InputError
from locust_workers.contract import parse_duration

F = TypeVar("F", bound=Callable[..., Any])
console = Console(soft_wrap=True)


def k8s_connection_options(command: F) -> F:
    """--namespace, --context, --kubeconfig, --in-cluster: where the runs live."""
    options = [
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
    ]
    for option in reversed(options):
        command = option(command)
    return command


def _check_in_cluster(in_cluster: bool, context: str | None, kubeconfig: Path | None) -> None:
    if in_cluster and (context or kubeconfig):
        raise InputError(
            "--in-cluster uses the pod's ServiceAccount: drop --context/--kubeconfig", field="--in-cluster"
        )


def _cluster(namespace: str | None, context: str | None, kubeconfig: Path | None, in_cluster: bool) -> Any:
    from controller.k8s.cluster import Cluster

    _check_in_cluster(in_cluster, context, kubeconfig)
    return Cluster(namespace=namespace, kubeconfig=kubeconfig, context=context, in_cluster=in_cluster)


def k8s_options(
    *,
    namespace: str | None,
    context: str | None,
    kubeconfig: Path | None,
    in_cluster: bool,
    prometheus_url: str | None,
    image: str | None,
    values_files: tuple[Path, ...],
    ready_timeout: str,
    keep_on_fail: bool,
) -> K8sOptions:
    """The k8s options of `loadctl run`; every flag is checked before anything is installed."""
    from controller.k8s.helm import load_values_files

    try:
        timeout_s = parse_duration(ready_timeout)
    except ValueError as e:
        raise InputError(str(e), source="command line", field="--timeout") from None
    if prometheus_url and not prometheus_url.startswith(("http://", "https://")):
        raise InputError(
            f"'{prometheus_url}' is not an http(s) URL", source="command line", field="--prometheus"
        )
    values = load_values_files(values_files)
    _check_in_cluster(in_cluster, context, kubeconfig)
    return K8sOptions(
        namespace=namespace,
        kubeconfig=kubeconfig,
        context=context,
        in_cluster=in_cluster,
        prometheus_url=prometheus_url or None,
        image=image,
        ready_timeout_s=timeout_s,
        keep_on_fail=keep_on_fail,
        values=values,
    )


@click.command()
@k8s_connection_options
def ls(namespace: str | None, context: str | None, kubeconfig: Path | None, in_cluster: bool) -> None:
    """List the load-test runs (Helm releases of charts/loadctl) in a namespace."""
    from controller.k8s.helm import Helm
    from controller.k8s.inventory import format_age, run_rows
    from controller.k8s.release import RUN_LABEL

    with _cluster(namespace, context, kubeconfig, in_cluster) as cluster:
        helm = Helm(namespace=cluster.namespace, kubeconfig=cluster.kubeconfig, context=cluster.context)
        releases = [(r.name, r.status, r.updated, helm.run_id_of(r.name)) for r in helm.releases()]
        rows = run_rows(releases, cluster.master_jobs(), cluster.pods(RUN_LABEL))
        if not rows:
            console.print(f"no loadctl runs in namespace {cluster.namespace}", highlight=False)
            return
        table = Table(box=None, pad_edge=False, title=f"namespace {cluster.namespace}", title_justify="left")
        for header in ("RUN ID", "RELEASE", "STATE", "PODS", "AGE", "KEPT VERDICT"):
            table.add_column(header)
        for row in rows:
            table.add_row(row.run_id, row.release, row.state, row.pods, format_age(row.age_s), row.verdict)
        console.print(table)


@click.command()
@k8s_connection_options
@click.option("--run-id", "run_ids", multiple=True, help="Run to remove (repeatable).")
@click.option("--all", "everything", is_flag=True, help="Remove every run release in the namespace.")
@click.option("--timeout", "timeout", default="2m", show_default=True, help="Wait this long for pods to go.")
def teardown(
    namespace: str | None,
    context: str | None,
    kubeconfig: Path | None,
    in_cluster: bool,
    run_ids: tuple[str, ...],
    everything: bool,
    timeout: str,
) -> None:
    """Remove leftover runs (helm uninstall, then wait until their Jobs and pods are gone).

    Releases that only hold schedules are never touched.
    """
    from controller.errors import InfraError
    from controller.k8s.helm import Helm

    if bool(run_ids) == everything:
        raise InputError("give --run-id ID (repeatable) or --all", source="command line", field="--run-id")
    try:
        timeout_s = parse_duration(timeout)
    except ValueError as e:
        raise InputError(str(e), source="command line", field="--timeout") from None
    with _cluster(namespace, context, kubeconfig, in_cluster) as cluster:
        helm = Helm(namespace=cluster.namespace, kubeconfig=cluster.kubeconfig, context=cluster.context)
        releases = {r.name: helm.run_id_of(r.name) for r in helm.releases()}
        runs = {run_id: name for name, run_id in releases.items() if run_id is not None}
        wanted = sorted(runs) if everything else list(run_ids)
        unknown = [run_id for run_id in wanted if run_id not in runs]
        if unknown:
            raise InputError(
                f"no run release {', '.join(unknown)} in namespace {cluster.namespace} (see `loadctl ls`)",
                source="command line",
                field="--run-id",
            )
        if not wanted:
            console.print(f"no loadctl runs in namespace {cluster.namespace}", highlight=False)
            return
        for run_id in wanted:
            release = runs[run_id]
            console.print(f"helm uninstall {release} (run {run_id})", highlight=False)
            helm.uninstall(release, wait=True, timeout_s=timeout_s)
            left = cluster.wait_gone(run_id, timeout_s=timeout_s)
            if left:
                raise InfraError(f"run {run_id}: still present after {timeout}: {', '.join(left)}")
        console.print(f"removed {len(wanted)} run(s) from namespace {cluster.namespace}", highlight=False)
