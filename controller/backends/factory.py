"""The one place a backend is chosen and built: the options' type decides which."""

from __future__ import annotations

from controller.backends.base import Backend, BackendEvents
from controller.backends.options import BackendOptions, K8sOptions, LocalOptions
from controller.models import RunPlan


def create_backend(plan: RunPlan, options: BackendOptions, events: BackendEvents) -> Backend:
    """A LocalBackend for LocalOptions; for K8sOptions a K8sBackend with a real cluster and Helm.

    Connecting to the cluster checks the kubeconfig and context (an input error, exit 2) before
    anything runs, and so does the namespace's target allowlist (controller/k8s/policy_source.py):
    a refused host leaves no release and no results folder behind. The cluster libraries are
    imported only for a k8s run.
    """
    if isinstance(options, LocalOptions):
        from controller.backends.local import LocalBackend

        return LocalBackend(plan, options, events)
    return _k8s_backend(plan, options, events)


def _k8s_backend(plan: RunPlan, options: K8sOptions, events: BackendEvents) -> Backend:
    from controller.backends.k8s import K8sBackend
    from controller.k8s.cluster import Cluster
    from controller.k8s.helm import Helm
    from controller.k8s.policy_source import check_namespace_policy

    cluster = Cluster(
        namespace=options.namespace,
        kubeconfig=options.kubeconfig,
        context=options.context,
        in_cluster=options.in_cluster,
    )
    try:
        check_namespace_policy(cluster, plan.hosts)  # the platform's allowlist, before anything exists
        helm = Helm(namespace=cluster.namespace, kubeconfig=cluster.kubeconfig, context=cluster.context)
        return K8sBackend(plan, options, events, cluster=cluster, helm=helm)
    except BaseException:
        cluster.close()  # teardown would close it; without a backend nobody else will
        raise
