"""`make run`: start the bundled demo target, run profiles/demo.yaml against it, stop the target.

The target is this script's child in its own session; loadctl runs in the foreground so Ctrl-C
reaches it directly and it cleans up its own processes; the target is stopped last, always.
"""

from __future__ import annotations

import argparse
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx

from controller.processes import ManagedProcess, wait_until

ROOT = Path(__file__).resolve().parent.parent


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

    log = ROOT / args.results_dir / f"demo-target-{time.strftime('%Y%m%d-%H%M%S')}.log"
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
            "--harvest-rate-per-minute",
            "30",
        ],
        log_path=log,
        cwd=ROOT,
    )
    try:
        if not wait_until(
            lambda: _healthy(f"http://127.0.0.1:{args.port}/health"), timeout=30, watch=[target]
        ):
            print(f"demo target did not become healthy on port {args.port}; see {log}", file=sys.stderr)
            return 3
        print(f"demo target up on http://127.0.0.1:{args.port} (log {log})")
        command = [
            str(Path(sys.executable).parent / "loadctl"),
            "run",
            str(ROOT / "profiles" / "demo.yaml"),
            "--results-dir",
            args.results_dir,
            *loadctl_args,
        ]
        run = subprocess.Popen(command, cwd=ROOT)
        # loadctl does its own orderly cleanup on SIGINT/SIGTERM: pass the signal on and wait for it
        # (a terminal Ctrl-C reaches it too; a second SIGINT during its cleanup is harmless).
        for signum in (signal.SIGINT, signal.SIGTERM):
            signal.signal(signum, lambda sig, _frame: run.send_signal(sig))
        code = run.wait()
        print(f"results are in {ROOT / args.results_dir}/ (newest run last: ls -t {args.results_dir})")
        return code
    finally:
        target.stop(timeout=5.0)


if __name__ == "__main__":
    sys.exit(main())
