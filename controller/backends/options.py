"""What the command line configures in each backend, as typed values (no cluster libraries imported).

The type of the options is also the choice of backend: factory.create_backend builds a
LocalBackend for LocalOptions and a K8sBackend for K8sOptions.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any


@dataclass(frozen=True)
class LocalOptions:
    """Nothing to set yet: a local run takes everything from its plan."""


@dataclass(frozen=True)
class K8sOptions:
    namespace: str | None = None
    kubeconfig: Path | None = None
    context: str | None = None
    in_cluster: bool = False
    prometheus_url: str | None = None
    image: str | None = None
    ready_timeout_s: float = 300.0
    keep_on_fail: bool = False
    wait_for_lock_s: float = 0.0  # how long to wait for another run's hold on the target (0: not at all)
    values: dict[str, Any] = field(default_factory=dict)  # from --values files, under ours


BackendOptions = LocalOptions | K8sOptions
