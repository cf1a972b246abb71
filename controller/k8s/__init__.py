"""The Kubernetes side of `loadctl run --backend k8s`: release values, pod health, cluster and Helm I/O."""
