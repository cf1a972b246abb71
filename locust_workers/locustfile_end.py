"""How the locustfile itself ended the run, seen from the master (plugin.py), for the verdict.

Locust documents two ways for a locustfile to fail a run, and both must fail `loadctl run` too:
  - a `quitting` hook setting `environment.process_exit_code` (e.g. on a fail ratio), and
  - `environment.runner.quit()` from its own greenlet on a threshold, in the middle of the test.
The master runs with `--exit-code-on-error 0` (the gates judge failed requests), so its exit code
can no longer tell the locustfile's ask from Locust's own failure exit or a crash, and a pod's exit
code may not reach the controller at all. So both are exported as metrics, one path through
Prometheus for local processes and pods:

  locust_process_exit_code{run_id,message}         environment.process_exit_code when set, read at
                                                   Locust's `quit` event: it fires after every
                                                   quitting hook, whatever their order
  locust_locustfile_stop_timestamp_seconds{run_id,caller,message}
                                                   when code outside Locust stopped the test
                                                   (runner.quit() / runner.stop()), and from where

`caller` says which call and from where: "runner.quit() from locustfile.py:51" (or "from a
greenlet" when the call was a greenlet's own function);
`message` the locustfile's last WARNING-or-worse log line before that moment (Locust's documented
hooks log why they fail the run), cut to MESSAGE_CHARS. Locust's own stops (the stage table's end,
Ctrl-C, SIGTERM, a lost worker) come from Locust's own code and are not the locustfile's.
"""

from __future__ import annotations

import logging
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from types import FrameType
from typing import Any

import locust
import locust.runners

MESSAGE_CHARS = 200
_LOCUST_DIR = Path(locust.__file__).resolve().parent
_RUNNERS_FILE = Path(locust.runners.__file__).resolve()
_RUNNER_STOPS = ("stop", "quit")
# Loggers that are not the locustfile's voice: Locust's, loadctl's, and libraries Locust runs on.
_NOT_LOCUSTFILE = ("locust", "loadctl", "gevent", "urllib3", "geventhttpclient", "stderr", "stdout")


@dataclass
class LocustfileEnd:
    """What the locustfile said about the end of the run; nothing set when it said nothing."""

    exit_code: int | None = None  # environment.process_exit_code at Locust's quit event
    exit_message: str = ""
    stopped_at: float | None = None  # unix time the locustfile stopped the test itself
    stopped_by: str = ""  # the call and where from: "runner.quit() from locustfile.py:51"
    stop_message: str = ""


class LastWords(logging.Handler):
    """The last WARNING-or-worse line logged by anything but Locust and loadctl: the locustfile."""

    def __init__(self) -> None:
        super().__init__(logging.WARNING)
        self.line = ""

    def emit(self, record: logging.LogRecord) -> None:
        if record.name.split(".")[0] in _NOT_LOCUSTFILE:
            return
        try:
            text = record.getMessage()
        except Exception:  # a bad format string in the locustfile's own log call
            text = str(record.msg)
        self.line = " ".join(text.split())[:MESSAGE_CHARS]


def stop_caller(frame: FrameType | None) -> str | None:
    """Who called the runner's stop()/quit() whose event `frame` is inside: "runner.quit() from
    file.py:23" when code outside Locust did ("... from a greenlet" when the call was a greenlet's
    own function), None when Locust itself did.

    Walks out of the event's frames to the outermost of the runner's nested stop/quit frames
    (MasterRunner.quit calls stop); the frame above it is the caller.
    """
    outermost = None
    while frame is not None:
        code = frame.f_code
        if code.co_name in _RUNNER_STOPS and Path(code.co_filename).resolve() == _RUNNERS_FILE:
            outermost = frame
        elif outermost is not None:
            break
        frame = frame.f_back
    if outermost is None:
        return None
    call = f"runner.{outermost.f_code.co_name}()"
    caller = outermost.f_back
    if caller is None or "gevent" in Path(caller.f_code.co_filename).parts:
        return f"{call} from a greenlet"  # Locust never spawns its runner's stop or quit: a locustfile did
    filename = Path(caller.f_code.co_filename).resolve()
    if filename.is_relative_to(_LOCUST_DIR):
        return None
    return f"{call} from {filename.name}:{caller.f_lineno}"


def watch_locustfile_end(environment: Any) -> LocustfileEnd:
    """Listen, in the master, for the locustfile ending the run; fills the returned LocustfileEnd."""
    end = LocustfileEnd()
    last_words = LastWords()
    logging.getLogger().addHandler(last_words)

    @environment.events.test_stopping.add_listener
    def _stopping(**_kw: Any) -> None:
        if getattr(environment, "loadctl_heartbeat_stopped", None):
            return  # loadctl's heartbeat stopped it (heartbeat.py), not the locustfile
        caller = stop_caller(sys._getframe(1))
        if caller is not None and end.stopped_at is None:
            end.stopped_at, end.stopped_by, end.stop_message = time.time(), caller, last_words.line

    @environment.events.quit.add_listener
    def _quit(**_kw: Any) -> None:
        # Fired after every quitting hook: process_exit_code is final here.
        code = environment.process_exit_code
        if code is not None and not getattr(environment, "loadctl_heartbeat_stopped", None):
            end.exit_code, end.exit_message = int(code), last_words.line

    return end
