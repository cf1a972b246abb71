"""What the user sees when loadctl itself breaks: one line on stderr, the traceback in a file.

A traceback in a CI log is noise to the SRE reading it and, worse, ends with exit 1, which means
"a gate failed". A bug is exit 3 (gates not evaluated, never a pass) with one line saying what
broke and where the traceback went: the run's results folder when a command has named one
(`remember_run_dir`), else a file in the system temp directory ($TMPDIR).

The messages are pure functions; `report_crash` is the only I/O, and it never raises.
"""

from __future__ import annotations

import contextlib
import errno
import os
import sys
import tempfile
import time
import traceback
from pathlib import Path

from controller.errors import EXIT_INFRA
from controller.rundir import RunDir, crash_log_name, write_atomic

MESSAGE_LIMIT = 300

_run_dir: Path | None = None


def remember_run_dir(path: Path | None) -> None:
    """The results folder of the run a command works on: a crash log belongs with the run."""
    global _run_dir
    _run_dir = path


def _text(exc: BaseException) -> str:
    try:
        text = str(exc)
    except Exception:  # a broken __str__ must not hide the original error
        text = ""
    text = " ".join(text.split())
    return text if len(text) <= MESSAGE_LIMIT else text[: MESSAGE_LIMIT - 3] + "..."


def _where(log: Path | None) -> str:
    return f" (traceback in {log})" if log is not None else " (the traceback could not be saved)"


def crash_message(exc: BaseException, log: Path | None) -> str:
    """`loadctl: error: unexpected KeyError: 'x' (traceback in /tmp/loadctl-1-....log)`"""
    text = _text(exc)
    return f"loadctl: error: unexpected {type(exc).__name__}{': ' + text if text else ''}{_where(log)}"


def os_error_message(exc: OSError, log: Path | None) -> str:
    """`loadctl: error: /results/x/junit.xml: No space left on device (ENOSPC) (traceback in ...)`"""
    code = errno.errorcode.get(exc.errno or 0)
    what = " ".join((exc.strerror or _text(exc) or type(exc).__name__).split())
    if code:
        what += f" ({code})"
    paths = [str(p) for p in (exc.filename, exc.filename2) if p is not None]
    where = " -> ".join(paths) + ": " if paths else ""
    return f"loadctl: error: {where}{what}{_where(log)}"


def log_candidates(*, run_dir: Path | None, tmp_dir: Path, pid: int, now: float) -> list[Path]:
    """Where a crash log may go, best first: the run's logs/ folder, then the temp directory."""
    name = crash_log_name(pid=pid, now=now)
    found = [RunDir(run_dir).crash_log(name)] if run_dir is not None else []
    return [*found, tmp_dir / name]


def write_crash_log(exc: BaseException, *, argv: list[str], run_dir: Path | None = None) -> Path | None:
    """The full traceback (and the command line) in the first place that takes it; None if none did."""
    text = "".join(
        [
            f"loadctl crashed at {time.strftime('%Y-%m-%dT%H:%M:%S%z')}\n",
            f"command: {' '.join(argv)}\n",
            f"python: {sys.version.split()[0]}\n\n",
            *traceback.format_exception(exc),
        ]
    )
    now = time.time()
    for path in log_candidates(
        run_dir=run_dir, tmp_dir=Path(tempfile.gettempdir()), pid=os.getpid(), now=now
    ):
        try:
            write_atomic(path, text=text)  # it replaces a lone surrogate in a message with "?"
        except OSError:
            continue  # a full disk or a read-only run folder: try the next place
        return path
    return None


def report_crash(exc: BaseException) -> int:
    """Save the traceback, print one line on stderr; returns the exit code (3). Never raises."""
    try:
        log = write_crash_log(exc, argv=sys.argv, run_dir=_run_dir)
    except Exception:
        log = None
    line = os_error_message(exc, log) if isinstance(exc, OSError) else crash_message(exc, log)
    with contextlib.suppress(Exception):  # stderr itself is gone: the exit code still tells
        print(line, file=sys.stderr, flush=True)
    return EXIT_INFRA
