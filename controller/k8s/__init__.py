"""The Kubernetes side of `loadctl run --backend k8s`: release values, pod health, cluster and Helm I/O."""

from controller.extras import require_extra

# Every cluster module imports the `k8s` extra's libraries: a missing one is exit 2 naming the pip
# command, wherever the package is first imported (run --backend k8s, `loadctl k8s ...`)
require_extra("k8s", what="the Kubernetes backend")
