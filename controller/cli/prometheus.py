"""`loadctl prometheus`: look at a finished run's data again, in a Prometheus serving its tsdb/."""

from __future__ import annotations

import signal
import sys
import threading
from pathlib import Path

import click

from controller.cli.options import RUN_DIR
from controller.cli.render import console
from controller.errors import InfraError
from controller.rundir import RunDir


@click.command()
@click.argument("run_dir", type=RUN_DIR)
@click.option("--port", type=click.IntRange(1, 65535), help="Port on 127.0.0.1 (default: a free one).")
def prometheus(run_dir: Path, port: int | None) -> None:
    """Serve a finished run's Prometheus data (RUN_DIR/tsdb) until Ctrl-C."""
    from controller.prom.server import serve_run_tsdb

    stop = threading.Event()
    # explicit handlers: a shell's background job inherits SIGINT as ignored
    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, lambda *_: stop.set())
    with serve_run_tsdb(run_dir, port=port) as server:
        console.print(f"serving {RunDir(run_dir).tsdb} at {server.url}  (Ctrl-C to stop)", highlight=False)
        sys.stdout.flush()
        while not stop.wait(0.5):
            if server.process is not None and server.process.poll() is not None:
                raise InfraError(f"prometheus exited: {server.process.log_tail()}")
