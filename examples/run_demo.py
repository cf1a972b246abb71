"""`make run`: start the bundled demo target, run profiles/demo.yaml against it, stop the target.

The target is this script's child in its own session; loadctl runs in the foreground so Ctrl-C
reaches it directly and it cleans up its own processes; the target is stopped last, always.
"""

from __future__ import annotations

import argparse
import signal
import socket
import subprocess
import sys
from pathlib import Path

import httpx

from controller.errors import InfraError, InputError
from controller.extras import require_extra
from controller.processes import ManagedProcess, wait_until
from controller.profiles import default_run_id

ROOT = Path(__file__).resolve().parent.parent


def _port_free(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def _healthy(url: str) -> bool:
    try:
        return httpx.get(url, timeout=1.0).status_code == 200
    except httpx.HTTPError:
        return False


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--port", type=int, default=8765)
    parser.add_argument("--results-dir", default="results")
    args, loadctl_args = parser.parse_known_args()
    try:
        require_extra("demo", what="the demo target")
    except InputError as e:
        print(f"error: {e}", file=sys.stderr)
        return e.exit_code

    if not _port_free(args.port):
        print(
            f"port {args.port} on 127.0.0.1 is in use: run with DEMO_PORT=<free port> make run",
            file=sys.stderr,
        )
        return 3
    run_id = default_run_id("demo")
    results = ROOT / args.results_dir
    log = results / f".{run_id}-demo-target.log"  # moved into the run's logs/ at the end
    target = ManagedProcess(
        "demo target",
        [
            sys.executable,
            "-m",
            "examples.demo_target",
            "--host",
            "127.0.0.1",
            "--port",
            str(args.port),
        ],
        log_path=log,
        cwd=ROOT,
    )
    try:
        try:
            healthy = wait_until(
                lambda: _healthy(f"http://127.0.0.1:{args.port}/health"), timeout=30, watch=[target]
            )
        except InfraError as e:  # the target exited during start-up
            healthy = False
            print(e, file=sys.stderr)
        if not healthy:
            print(f"demo target did not become healthy on port {args.port}; see {log}", file=sys.stderr)
            return 3
        print(f"demo target up on http://127.0.0.1:{args.port}")
        command = [
            str(Path(sys.executable).parent / "loadctl"),
            "run",
            str(ROOT / "profiles" / "demo.yaml"),
            "--results-dir",
            args.results_dir,
            "--run-id",
            run_id,
            *loadctl_args,
        ]
        run = subprocess.Popen(command, cwd=ROOT)
        # loadctl does its own orderly cleanup on SIGINT/SIGTERM: pass the signal on and wait for it
        # (a terminal Ctrl-C reaches it too; a second SIGINT during its cleanup is harmless).
        for signum in (signal.SIGINT, signal.SIGTERM):
            signal.signal(signum, lambda sig, _frame: run.send_signal(sig))
        return run.wait()
    finally:
        target.stop(timeout=5.0)
        logs = results / run_id / "logs"
        if logs.is_dir():
            log.replace(logs / "demo-target.log")


if __name__ == "__main__":
    sys.exit(main())
