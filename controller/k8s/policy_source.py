"""The namespace's target allowlist: ConfigMap `loadctl-policy`, owned by the platform team.

The chart renders it from `policy.allowedHosts` in a release without a run (`run.enabled: false`,
charts/loadctl/templates/policy-configmap.yaml), one per namespace; its `allowedHosts` key holds
the entries one per line (controller/policy.py parses them). `loadctl run --backend k8s` reads it
before anything is installed (backends/factory.py) and refuses, exit 2, a host it does not allow.

Authority: this allowlist and the test author's own ($LOADCTL_ALLOWED_HOSTS, the user config file;
preflight.py) must *each* allow the host, so nothing the test author sets can widen the platform
team's policy. No ConfigMap (404) is no policy: the namespace has not opted in. A ConfigMap that
cannot be read (403, no answer) is exit 3, never "no policy": a policy that cannot be read must
not be taken as absent (the run's identity needs `get configmaps`, as Helm does anyway).
"""

from __future__ import annotations

from collections.abc import Sequence

from kubernetes.client.exceptions import ApiException

from controller.errors import InfraError, InputError
from controller.k8s.cluster import Cluster
from controller.policy import Allowlist, parse_allowlist, refusal, split_entries

POLICY_CONFIGMAP = "loadctl-policy"  # the chart's templates/policy-configmap.yaml renders this name
ALLOWED_HOSTS_KEY = "allowedHosts"


def namespace_allowlist(cluster: Cluster) -> Allowlist | None:
    """The namespace's policy, None when it has none (no ConfigMap, or one listing no host)."""
    name = f"{cluster.namespace}/{POLICY_CONFIGMAP}"
    try:
        found = cluster.call(
            f"read ConfigMap {POLICY_CONFIGMAP} (the target policy)",
            cluster.core.read_namespaced_config_map,
            POLICY_CONFIGMAP,
            cluster.namespace,
        )
    except InfraError as e:
        status = e.__cause__.status if isinstance(e.__cause__, ApiException) else None
        if status == 404:
            return None
        if status == 403:  # not "no policy": a policy that cannot be read must not be taken as absent
            raise InfraError(f"{e}; the run's identity needs get on configmaps to read it") from e
        raise
    data = found.data or {}
    if ALLOWED_HOSTS_KEY not in data:
        raise InputError(
            f"the target policy has no {ALLOWED_HOSTS_KEY} key (entries one per line)",
            source=f"ConfigMap {name}",
        )
    return parse_allowlist(
        split_entries(data[ALLOWED_HOSTS_KEY]), source=f"ConfigMap {name}", field=ALLOWED_HOSTS_KEY
    )


def check_namespace_policy(cluster: Cluster, hosts: Sequence[str]) -> None:
    """Exit 2 (InputError) when the namespace's policy does not allow one of the run's hosts."""
    allowlist = namespace_allowlist(cluster)
    problem = refusal(hosts, [allowlist] if allowlist is not None else [])
    if problem is not None:
        raise problem
