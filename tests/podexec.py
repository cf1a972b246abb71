"""Running a chart container's command as a local process (no container engine on this machine).

The container's command, args and env are taken as rendered; pod paths are mapped to local
directories (the ConfigMap's files, the emptyDir /tmp, a claim's volume, the image's /opt/loadctl =
this checkout) and Service names to 127.0.0.1. A mount inside the image root (the controller's
/opt/loadctl/results) wins over the image root: the longest pod path is mapped first.
"""

from __future__ import annotations

import os
import re
import sys
from collections.abc import Collection, Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from tests.support import LOADCTL, REPO_ROOT

IMAGE_ROOT = "/opt/loadctl"

# the image's entry points, run with this checkout's interpreter (`loadctl`: the venv's console
# script, which imports this checkout's controller as the tests do)
ENTRY_POINTS = {
    "locust": [sys.executable, "-m", "locust"],
    "python": [sys.executable],
    "loadctl": [LOADCTL],
}


def local_argv(container: Mapping[str, Any], mounts: Mapping[str, Path], hosts: Collection[str]) -> list[str]:
    """The container's command + args with pod paths mapped to local ones and `hosts` to 127.0.0.1."""
    # one pass, longest pod path first: a mapped local path (itself under /tmp) is never re-mapped,
    # and /opt/loadctl/results goes to its volume, not into the checkout
    pattern = re.compile("|".join(re.escape(p) for p in sorted(mounts, key=len, reverse=True)))

    def mapped(arg: str) -> str:
        arg = pattern.sub(lambda m: str(mounts[m.group(0)]), arg)
        return "127.0.0.1" if arg in hosts else arg

    argv = [*container.get("command", []), *container.get("args", [])]
    assert argv[0] in ENTRY_POINTS, argv
    return [*ENTRY_POINTS[argv[0]], *(mapped(a) for a in argv[1:])]


def local_env(container: Mapping[str, Any], home: Path) -> dict[str, str]:
    env = dict(os.environ)
    for item in container.get("env", []):
        if "value" in item:
            env[item["name"]] = item["value"]
    env["HOME"] = str(home)
    return env


def pod_mounts(container: Mapping[str, Any], volumes: Mapping[str, Path]) -> dict[str, Path]:
    """mountPath -> local directory, given each volume's local directory; plus the image root."""
    mounts = {m["mountPath"]: volumes[m["name"]] for m in container.get("volumeMounts", [])}
    mounts[IMAGE_ROOT] = REPO_ROOT
    return mounts


def write_configmap_volume(directory: Path, data: Mapping[str, str]) -> None:
    """A ConfigMap's keys laid out as the kubelet writes a configMap volume: the files in a
    timestamped folder, `..data` linking to it (swapped atomically when written again), and each
    key a link through `..data` -- so code that resolves a mounted file's path (a profile's folder)
    sees what it sees in a pod."""
    stamp = f"..{datetime.now(UTC):%Y_%m_%d_%H_%M_%S.%f}"
    (directory / stamp).mkdir(parents=True)
    for key, content in data.items():
        (directory / stamp / key).write_text(content)
    (directory / "..data_tmp").symlink_to(stamp)
    os.replace(directory / "..data_tmp", directory / "..data")
    for key in data:
        if not (directory / key).is_symlink():
            (directory / key).symlink_to(Path("..data") / key)
