"""Kubernetes commands: `loadctl ls`, `loadctl teardown`, and the k8s options of `loadctl run`."""

from __future__ import annotations

from typing import TYPE_CHECKING

import click
from rich.table import Table

from controller.backends.options import K8sOptions
from controller.cli.options import K8sConnection, K8sDeployFlags, k8s_connection
from controller.cli.render import console
from controller.errors import InfraError, InputError
from locust_workers.contract import parse_duration

if TYPE_CHECKING:  # the cluster libraries are imported only by the commands that connect
    from controller.k8s.cluster import Cluster


def _check_in_cluster(k8s: K8sConnection) -> None:
    if k8s.in_cluster and (k8s.context or k8s.kubeconfig):
        raise InputError(
            "--in-cluster uses the pod's ServiceAccount: drop --context/--kubeconfig", field="--in-cluster"
        )


def open_cluster(k8s: K8sConnection) -> Cluster:
    from controller.k8s.cluster import Cluster

    _check_in_cluster(k8s)
    return Cluster(
        namespace=k8s.namespace, kubeconfig=k8s.kubeconfig, context=k8s.context, in_cluster=k8s.in_cluster
    )


def _duration_flag(value: str, flag: str) -> float:
    try:
        return parse_duration(value)
    except ValueError as e:
        raise InputError(str(e), source="command line", field=flag) from None


def k8s_options(k8s: K8sConnection, deploy: K8sDeployFlags) -> K8sOptions:
    """The k8s options of `loadctl run`; every flag is checked before anything is installed."""
    from controller.k8s.helm import load_values_files

    timeout_s = _duration_flag(deploy.ready_timeout, "--timeout")
    wait_for_lock_s = _duration_flag(deploy.wait_for_lock, "--wait-for-lock") if deploy.wait_for_lock else 0.0
    url = deploy.prometheus_url
    if url and not url.startswith(("http://", "https://")):
        raise InputError(f"'{url}' is not an http(s) URL", source="command line", field="--prometheus")
    values = load_values_files(deploy.values_files)
    _check_in_cluster(k8s)
    return K8sOptions(
        namespace=k8s.namespace,
        kubeconfig=k8s.kubeconfig,
        context=k8s.context,
        in_cluster=k8s.in_cluster,
        prometheus_url=url or None,
        image=deploy.image,
        ready_timeout_s=timeout_s,
        keep_on_fail=deploy.keep_on_fail,
        wait_for_lock_s=wait_for_lock_s,
        values=values,
    )


@click.command()
@k8s_connection
def ls(k8s: K8sConnection) -> None:
    """List the load-test runs (Helm releases of charts/loadctl) in a namespace."""
    from controller.k8s.helm import Helm
    from controller.k8s.inventory import format_age, run_rows
    from controller.k8s.release import RUN_LABEL

    with open_cluster(k8s) as cluster:
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
@k8s_connection
@click.option("--run-id", "run_ids", multiple=True, help="Run to remove (repeatable).")
@click.option("--all", "everything", is_flag=True, help="Remove every run release in the namespace.")
@click.option("--timeout", "timeout", default="2m", show_default=True, help="Wait this long for pods to go.")
def teardown(k8s: K8sConnection, run_ids: tuple[str, ...], everything: bool, timeout: str) -> None:
    """Remove leftover runs (helm uninstall, then wait until their Jobs and pods are gone).

    Releases that only hold schedules are never touched.
    """
    from controller.k8s.helm import Helm

    if bool(run_ids) == everything:
        raise InputError("give --run-id ID (repeatable) or --all", source="command line", field="--run-id")
    timeout_s = _duration_flag(timeout, "--timeout")
    with open_cluster(k8s) as cluster:
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
