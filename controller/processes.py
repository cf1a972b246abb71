"""Child processes the controller owns: started in their own session, always stopped by PID.

Each child gets its own session so a terminal Ctrl-C reaches only the controller, which then
stops the children in the right order (master first, so the load stops and the final stats are
scraped; Prometheus last). On Linux each child also gets PR_SET_PDEATHSIG, so even a SIGKILLed
controller leaves nothing running.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Mapping, Sequence
from pathlib import Path

from controller.errors import InfraError, tail

_PR_SET_PDEATHSIG = 1


def _detach_and_die_with_parent() -> None:
    os.setsid()
    if sys.platform.startswith("linux"):
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(_PR_SET_PDEATHSIG, signal.SIGTERM)


class ManagedProcess:
    """One child process with its output in a log file."""

    def __init__(
        self,
        name: str,
        argv: Sequence[str],
        *,
        log_path: Path,
        env: Mapping[str, str] | None = None,
        cwd: Path | None = None,
    ) -> None:
        self.name = name
        self.argv = list(argv)
        self.log_path = log_path
        log_path.parent.mkdir(parents=True, exist_ok=True)
        with open(log_path, "ab") as log:
            try:
                self.popen = subprocess.Popen(
                    self.argv,
                    stdout=log,
                    stderr=subprocess.STDOUT,
                    stdin=subprocess.DEVNULL,
                    env=dict(env) if env is not None else None,
                    cwd=cwd,
                    preexec_fn=_detach_and_die_with_parent,
                )
            except OSError as e:
                raise InfraError(f"cannot start {name} ({self.argv[0]}): {e.strerror}") from e

    @property
    def pid(self) -> int:
        return self.popen.pid

    def poll(self) -> int | None:
        return self.popen.poll()

    def log_tail(self, limit: int = 400) -> str:
        try:
            return tail(self.log_path.read_text(encoding="utf-8", errors="replace"), limit)
        except OSError:
            return ""

    def send_signal(self, signum: int) -> None:
        if self.popen.poll() is None:
            with contextlib.suppress(ProcessLookupError):  # it exited between poll() and kill()
                os.kill(self.popen.pid, signum)

    def wait(self, timeout: float) -> int | None:
        try:
            return self.popen.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            return None

    def stop(self, *, timeout: float = 5.0, signum: int = signal.SIGTERM) -> int:
        """Signal, wait up to `timeout`, then SIGKILL. Returns the exit code."""
        self.send_signal(signum)
        code = self.wait(timeout)
        if code is None:
            self.send_signal(signal.SIGKILL)
            code = self.popen.wait()
        return code


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


def wait_until(
    predicate, *, timeout: float, interval: float = 0.1, watch: Sequence[ManagedProcess] = ()
) -> bool:
    """Poll `predicate` until true or timeout; fail early if a watched process exits."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        for process in watch:
            if process.poll() is not None:
                raise InfraError(f"{process.name} exited with code {process.poll()}: {process.log_tail()}")
        time.sleep(interval)
    return bool(predicate())
