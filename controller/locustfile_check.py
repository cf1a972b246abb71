"""Pre-flight check of a locustfile: import it with Locust (`--list`) before any load is sent.

A syntax error, a failing import or a user_weights entry naming a missing class becomes exit 2
here, instead of a master that dies after Prometheus and workers were started.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from controller.errors import InputError, tail


def list_user_classes(
    locustfile: Path, *, env: dict[str, str] | None = None, timeout: float = 60.0
) -> list[str]:
    argv = [sys.executable, "-m", "locust", "-f", str(locustfile), "--list"]
    try:
        done = subprocess.run(
            argv,
            capture_output=True,
            text=True,
            timeout=timeout,
            env=env if env is not None else dict(os.environ),
            stdin=subprocess.DEVNULL,
        )
    except subprocess.TimeoutExpired:
        raise InputError(f"importing took over {timeout:.0f}s", source=str(locustfile)) from None
    output = done.stdout + done.stderr
    if done.returncode != 0:
        raise InputError(f"Locust cannot load it: {tail(_last_error(output), 300)}", source=str(locustfile))
    classes = [line.strip() for line in done.stdout.splitlines()[1:] if line.strip()]
    if not classes:
        raise InputError("no User classes found", source=str(locustfile))
    return classes


def _last_error(output: str) -> str:
    lines = [line for line in output.strip().splitlines() if line.strip()]
    errors = [line for line in lines if "Error" in line or "error" in line]
    return (errors or lines or ["(no output)"])[-1]


def check_user_weights(weights: dict[str, int], classes: list[str], *, source: str) -> None:
    unknown = sorted(set(weights) - set(classes))
    if unknown:
        raise InputError(
            f"{', '.join(unknown)} not in the locustfile (it has {', '.join(classes)})",
            source=source,
            field="user_weights",
        )
