"""Running a chart container's command as a local process (no container engine on this machine).

The container's command, args and env are taken as rendered; pod paths are mapped to local
directories (the ConfigMap's files, the emptyDir /tmp, the image's /opt/loadctl = this checkout)
and Service names to 127.0.0.1.
"""

from __future__ import annotations

import os
import re
import sys
from collections.abc import Collection, Mapping
from pathlib import Path
from typing import Any

from tests.support import REPO_ROOT

IMAGE_ROOT = "/opt/loadctl"


def local_argv(container: Mapping[str, Any], mounts: Mapping[str, Path], hosts: Collection[str]) -> list[str]:
    """The container's command + args with pod paths mapped to local ones and `hosts` to 127.0.0.1."""
    # one pass, longest pod path first: a mapped local path (itself under /tmp) is never re-mapped
    pattern = re.compile("|".join(re.escape(p) for p in sorted(mounts, key=len, reverse=True)))

    def mapped(arg: str) -> str:
        arg = pattern.sub(lambda m: str(mounts[m.group(0)]), arg)
        return "127.0.0.1" if arg in hosts else arg

    argv = [*container.get("command", []), *container.get("args", [])]
    # the image's entry points, run with this checkout's interpreter
    local = {"locust": [sys.executable, "-m", "locust"], "python": [sys.executable]}
    assert argv[0] in local, argv
    return [*local[argv[0]], *(mapped(a) for a in argv[1:])]


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
