"""Helm releases of charts/loadctl through pyhelm3 (which drives the helm binary).

pyhelm3 is asyncio-based; the controller is not, so each call runs its own short event loop.
Errors become one-line InfraErrors naming the release; "not found" on uninstall is success.
"""

from __future__ import annotations

import asyncio
import os
import shutil
from collections.abc import Coroutine, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import pyhelm3
import pyhelm3.errors
import yaml

from controller.chart import REPO_ROOT, chart_path
from controller.errors import InfraError, InputError, tail

T = TypeVar("T")


def find_tool(name: str, env: str) -> str:
    """$ENV, then the project's .tools/bin (make setup), then PATH."""
    candidates = [os.environ.get(env), str(REPO_ROOT / ".tools" / "bin" / name), shutil.which(name)]
    for candidate in candidates:
        if candidate and os.access(candidate, os.X_OK):
            return candidate
    raise InfraError(f"{name} not found: run `make setup` (installs it into .tools/bin) or set {env}")


def deep_merge(base: Mapping[str, Any], override: Mapping[str, Any]) -> dict[str, Any]:
    """Maps merge key by key, anything else (lists too) is replaced: Helm's own -f semantics."""
    merged = dict(base)
    for key, value in override.items():
        if isinstance(value, Mapping) and isinstance(merged.get(key), Mapping):
            merged[key] = deep_merge(merged[key], value)
        else:
            merged[key] = value
    return merged


def load_values_files(paths: tuple[Path, ...]) -> dict[str, object]:
    """--values files, merged in order; a bad file is an input error (exit 2, before any load)."""
    merged: dict[str, Any] = {}
    for path in paths:
        try:
            data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
        except (OSError, yaml.YAMLError) as e:
            raise InputError(" ".join(str(e).split()), source=str(path), field="--values") from None
        if not isinstance(data, dict):
            raise InputError("expected a mapping of chart values", source=str(path), field="--values")
        merged = deep_merge(merged, data)
    return merged


@dataclass(frozen=True)
class ReleaseInfo:
    name: str
    chart: str
    status: str
    updated: str


def _run(coro: Coroutine[Any, Any, T]) -> T:
    return asyncio.run(coro)


class Helm:
    def __init__(self, *, namespace: str, kubeconfig: Path | None = None, context: str | None = None) -> None:
        self.namespace = namespace
        self.client = pyhelm3.Client(
            executable=find_tool("helm", "HELM_BIN"),
            kubeconfig=kubeconfig,
            kubecontext=context,
        )

    def install(self, release: str, values: Mapping[str, Any], *, timeout_s: float) -> None:
        """Install the release without --wait: readiness is watched (and explained) by the backend."""

        async def install() -> None:
            chart = await self.client.get_chart(chart_path())
            await self.client.install_or_upgrade_release(
                release,
                chart,
                dict(values),
                namespace=self.namespace,
                create_namespace=False,
                timeout=f"{max(1, int(timeout_s))}s",
            )

        try:
            _run(install())
        except pyhelm3.errors.FailedToRenderChartError as e:
            raise InputError(f"the chart rejected the values: {tail(str(e), 600)}", source="helm") from e
        except pyhelm3.errors.Error as e:
            raise InfraError(f"helm install {release} failed: {tail(str(e), 600)}") from e

    def uninstall(self, release: str, *, wait: bool = True, timeout_s: float = 120) -> None:
        try:
            _run(
                self.client.uninstall_release(
                    release, namespace=self.namespace, wait=wait, timeout=f"{max(1, int(timeout_s))}s"
                )
            )
        except pyhelm3.errors.Error as e:
            raise InfraError(f"helm uninstall {release} failed: {tail(str(e), 600)}") from e

    def releases(self) -> list[ReleaseInfo]:
        """Every release of charts/loadctl in the namespace, whatever its state."""
        try:
            found = _run(self.client.list_release_definitions(all=True, namespace=self.namespace))
        except pyhelm3.errors.Error as e:
            raise InfraError(f"helm list -n {self.namespace} failed: {tail(str(e), 600)}") from e
        return [
            ReleaseInfo(name=r["name"], chart=r["chart"], status=r["status"], updated=r["updated"])
            for r in found
            if str(r.get("chart", "")).startswith("loadctl-")
        ]

    def run_id_of(self, release: str) -> str | None:
        """The run id a release was installed with (None for a schedules-only release)."""

        async def current_values() -> Mapping[str, object]:
            revision = await self.client.get_current_revision(release, namespace=self.namespace)
            return await revision.values()

        try:
            run = _run(current_values()).get("run") or {}
        except pyhelm3.errors.Error as e:
            raise InfraError(f"helm get values {release} failed: {tail(str(e), 600)}") from e
        if not isinstance(run, Mapping):  # not a release of this chart's values
            return None
        enabled = run.get("enabled", True)
        return str(run["id"]) if enabled and run.get("id") else None
