"""Throughput overhead of `loadctl run` versus plain `locust --headless`.

Why this exists
---------------
`loadctl run` wraps Locust: it adds a Prometheus exporter to the Locust master,
drives users through a stage-table load shape, and runs a Prometheus server
that scrapes the master every second. None of that should make Locust generate
noticeably less load. This benchmark checks that claim: the same locustfile,
user count and worker count are run against a private, very fast nginx on
127.0.0.1, once through plain Locust and once through `loadctl run`, and the
achieved request rates are compared. Target: loadctl gets >= 97 % of plain.

How the ratio is computed
-------------------------
Both sides write Locust's `stats_history.csv` (one "Aggregated" row per second
with the cumulative "Total Request Count"). For each run we keep the *steady*
rows: "User Count" equals the requested user count, minus the first
WARMUP_S seconds after that (connection setup, the first worker reports) and
the last TAIL_S seconds before the stop. The run's RPS is the least-squares
slope of Total Request Count over Timestamp on those rows. A slope rather than
(last - first) / (t_last - t_first) because the master's counters only move
when a worker report arrives (every 3 s per worker) and the timestamps are
whole seconds: any two single rows can be off by a whole report, which is
5-15 % on a 30 s run. The slope uses every row of the window and cuts that to
about 2 % per 30 s run (about 1 % per 60 s run); the median over --repeats
runs narrows it further.

For reference each run also shows Locust's own whole-run figure (the
"Aggregated" Requests/s in stats.csv: all requests over the time from the
start of spawning to the last request, ramp included).

Runs are interleaved (plain, loadctl, loadctl, plain, ...) so slow drift of
the machine hits both sides equally, and the reported number is

    ratio = median(loadctl RPS) / median(plain RPS)

The script always exits 0 whatever the ratio is (it is a benchmark, not a
test); it exits 1 only if a run could not be completed.

Usage: .venv/bin/python bench/overhead.py [--users 20] [--workers N]
       [--duration 30] [--repeats 3] [--only plain|loadctl] [--keep-tmp]
"""

from __future__ import annotations

import argparse
import contextlib
import csv
import os
import shutil
import signal
import statistics
import string
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from types import FrameType

import httpx

from controller.processes import free_port
from controller.rundir import STATS_HISTORY_CSV, RunDir
from locust_workers.contract import LocustCommand

BENCH_DIR = Path(__file__).resolve().parent
REPO_ROOT = BENCH_DIR.parent
LOCUSTFILE = BENCH_DIR / "locustfile_overhead.py"
NGINX_TEMPLATE = BENCH_DIR / "nginx.conf.template"

TARGET_RATIO = 0.97
WARMUP_S = 4  # steady window starts this long after all users are running
TAIL_S = 1  # ... and ends this long before the last full-user row
MIN_STEADY_ROWS = 4
STOP_TIMEOUT_S = 15.0  # grace period after SIGTERM before SIGKILL
RUN_SLACK_S = 120.0  # how much longer than --duration a run may take
LOG_TAIL_LINES = 25


class BenchError(Exception):
    """A run could not be completed; the message says why."""


@dataclass(frozen=True)
class RunResult:
    side: str
    rps: float
    requests: int
    window_s: int
    rows: int
    whole_run_rps: float | None


# --------------------------------------------------------------------------- processes


class ProcessSet:
    """Every child process the benchmark started, so `finally` can stop them all.

    Children get their own session (start_new_session=True): a Ctrl-C in the
    terminal reaches only this script, which then stops them in a defined order.
    """

    def __init__(self) -> None:
        self._procs: list[tuple[str, subprocess.Popen[bytes]]] = []

    def start(self, name: str, argv: Sequence[str], log_path: Path) -> subprocess.Popen[bytes]:
        with open(log_path, "wb") as log:
            proc = subprocess.Popen(
                list(argv),
                cwd=REPO_ROOT,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        self._procs.append((name, proc))
        return proc

    def stop(self, proc: subprocess.Popen[bytes]) -> None:
        """SIGTERM, wait, SIGKILL; then sweep the child's own process group."""
        if proc.poll() is None:
            proc.terminate()
            try:
                proc.wait(timeout=STOP_TIMEOUT_S)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        # Grandchildren (nginx workers, loadctl's Locust/Prometheus processes)
        # share the group whose id is this child's pid; kill any that outlived it.
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(proc.pid, signal.SIGKILL)
        self._procs = [(n, p) for n, p in self._procs if p is not proc]

    def stop_all(self) -> None:
        for _, proc in reversed(list(self._procs)):
            self.stop(proc)


def wait_or_fail(proc: subprocess.Popen[bytes], name: str, timeout: float, log_path: Path) -> None:
    """Wait for a process to exit on its own; raise BenchError on timeout or non-zero exit."""
    try:
        rc = proc.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        raise BenchError(f"{name} did not finish within {timeout:.0f} s\n{log_tail(log_path)}") from None
    if rc != 0:
        raise BenchError(f"{name} exited with status {rc}\n{log_tail(log_path)}")


def log_tail(path: Path, lines: int = LOG_TAIL_LINES) -> str:
    try:
        text = path.read_text(errors="replace").splitlines()
    except OSError:
        return f"  (no log at {path})"
    tail = text[-lines:] or ["(empty)"]
    return f"  --- last {len(tail)} lines of {path.name} ---\n" + "\n".join(f"  | {line}" for line in tail)


def raise_keyboard_interrupt(signum: int, frame: FrameType | None) -> None:
    """SIGTERM (e.g. from make or CI) gets the same cleanup path as Ctrl-C."""
    raise KeyboardInterrupt


# --------------------------------------------------------------------------- nginx


def find_nginx() -> str:
    candidates = [os.environ.get("NGINX_BIN"), shutil.which("nginx"), "/usr/sbin/nginx"]
    for candidate in candidates:
        if candidate and os.path.isfile(candidate) and os.access(candidate, os.X_OK):
            return candidate
    raise BenchError("nginx not found: install it (apt-get install nginx-light) or set NGINX_BIN")


def render_nginx_conf(prefix: Path, port: int) -> Path:
    template = string.Template(NGINX_TEMPLATE.read_text())
    conf = prefix / "nginx.conf"
    conf.write_text(template.substitute(prefix=str(prefix), port=port))
    return conf


def start_nginx(procs: ProcessSet, tmp: Path) -> str:
    """Start a private nginx and return its base URL once it answers."""
    nginx = find_nginx()
    prefix = tmp / "nginx"
    prefix.mkdir()
    port = free_port()
    conf = render_nginx_conf(prefix, port)
    log = prefix / "stdout.log"
    argv = [nginx, "-p", str(prefix), "-c", str(conf), "-e", str(prefix / "error.log")]
    proc = procs.start("nginx", argv, log)
    url = f"http://127.0.0.1:{port}"
    wait_for_http(url, proc, prefix / "error.log")
    return url


def wait_for_http(url: str, proc: subprocess.Popen[bytes], log_path: Path, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise BenchError(f"nginx exited with status {proc.returncode}\n{log_tail(log_path)}")
        try:
            if httpx.get(url + "/", timeout=1.0).text == "ok\n":
                return
        except httpx.TransportError:
            pass
        time.sleep(0.1)
    raise BenchError(f"nginx did not answer on {url} within {timeout:.0f} s\n{log_tail(log_path)}")


# --------------------------------------------------------------------------- RPS


def read_aggregated_history(path: Path) -> list[tuple[int, int, int, int]]:
    """(timestamp, user_count, total_requests, total_failures) of every Aggregated row."""
    if not path.is_file():
        raise BenchError(f"missing stats history: {path}")
    rows = []
    with open(path, newline="") as fh:
        for row in csv.DictReader(fh):
            if row.get("Name") != "Aggregated":
                continue
            try:
                rows.append(
                    (
                        int(row["Timestamp"]),
                        int(row["User Count"]),
                        int(row["Total Request Count"]),
                        int(row["Total Failure Count"]),
                    )
                )
            except (KeyError, ValueError) as exc:
                raise BenchError(f"unexpected stats history format in {path}: {exc!r}") from None
    return rows


def steady_rows(rows: list[tuple[int, int, int, int]], users: int) -> list[tuple[int, int]]:
    """(timestamp, total_requests) of the rows inside the steady window."""
    full = [(ts, reqs) for ts, count, reqs, _ in rows if count == users]
    if not full:
        return []
    start, end = full[0][0] + WARMUP_S, full[-1][0] - TAIL_S
    return [(ts, reqs) for ts, reqs in full if start <= ts <= end]


def slope(points: list[tuple[int, int]]) -> float:
    """Least-squares slope dy/dx."""
    n = len(points)
    mean_x = sum(x for x, _ in points) / n
    mean_y = sum(y for _, y in points) / n
    sxx = sum((x - mean_x) ** 2 for x, _ in points)
    sxy = sum((x - mean_x) * (y - mean_y) for x, y in points)
    if sxx == 0:
        raise BenchError("steady window has a single timestamp; use a longer --duration")
    return sxy / sxx


def read_whole_run_rps(path: Path) -> float | None:
    """Locust's "Aggregated" Requests/s from stats.csv (whole run), if the file has one."""
    try:
        with open(path, newline="") as fh:
            for row in csv.DictReader(fh):
                if row.get("Name") == "Aggregated":
                    return float(row["Requests/s"])
    except (OSError, KeyError, ValueError):
        pass
    return None


def measure(history: Path, stats: Path, users: int, side: str) -> RunResult:
    """Steady-state RPS from stats_history.csv, plus the whole-run figure from stats.csv."""
    rows = read_aggregated_history(history)
    failures = rows[-1][3] if rows else 0
    if failures:
        raise BenchError(f"{side}: {failures} requests failed; is the target overloaded?")
    window = steady_rows(rows, users)
    if len(window) < MIN_STEADY_ROWS:
        raise BenchError(
            f"{side}: only {len(window)} steady rows with {users} users in {history.name} "
            f"(need {MIN_STEADY_ROWS}); use a longer --duration"
        )
    return RunResult(
        side=side,
        rps=slope(window),
        requests=window[-1][1] - window[0][1],
        window_s=window[-1][0] - window[0][0],
        rows=len(window),
        whole_run_rps=read_whole_run_rps(stats),
    )


# --------------------------------------------------------------------------- runs


@dataclass(frozen=True)
class Config:
    bin_dir: Path
    tmp: Path
    host: str
    users: int
    workers: int
    duration: int


def run_plain(procs: ProcessSet, cfg: Config, n: int) -> RunResult:
    """Plain `locust --headless --master` plus N `locust --worker` processes.

    The command lines are loadctl's own (contract.LocustCommand, the same flags, CSV and HTML
    output) minus the plugin: users, rate and time from the command line instead of a stage table.
    """
    prefix = cfg.tmp / f"plain-{n}"
    command = LocustCommand(
        locustfile=str(LOCUSTFILE),
        host=cfg.host,
        workers=cfg.workers,
        master_host="127.0.0.1",
        bind_host="127.0.0.1",
        master_port=free_port(),
        csv_prefix=str(prefix),
        html_path=f"{prefix}_report.html",
    )
    locust = str(cfg.bin_dir / "locust")
    load = ["-u", str(cfg.users), "-r", str(cfg.users), "-t", f"{cfg.duration}s"]
    master_argv = [locust, *command.master_args(), *load]
    worker_argv = [locust, *command.worker_args()]
    master_log = cfg.tmp / f"plain-{n}-master.log"
    master = procs.start("locust master", master_argv, master_log)
    workers = [
        procs.start(f"locust worker {i}", worker_argv, cfg.tmp / f"plain-{n}-worker-{i}.log")
        for i in range(cfg.workers)
    ]
    try:
        wait_or_fail(master, "plain locust master", cfg.duration + RUN_SLACK_S, master_log)
        for worker in workers:  # they quit once the master is gone
            with contextlib.suppress(subprocess.TimeoutExpired):
                worker.wait(timeout=STOP_TIMEOUT_S)
    finally:
        for proc in [*workers, master]:
            procs.stop(proc)
    return measure(Path(f"{prefix}_stats_history.csv"), Path(f"{prefix}_stats.csv"), cfg.users, "plain")


def run_loadctl(procs: ProcessSet, cfg: Config, n: int) -> RunResult:
    """`loadctl run` with the same locustfile, users, duration and worker count."""
    loadctl = cfg.bin_dir / "loadctl"
    if not loadctl.exists():
        raise BenchError(f"{loadctl} not found; install the project (pip install -e .)")
    results_dir = cfg.tmp / "loadctl"
    run_id = f"bench-{n}"
    argv = [
        str(loadctl),
        "run",
        "-f",
        str(LOCUSTFILE),
        "--host",
        cfg.host,
        "-u",
        str(cfg.users),
        "-r",
        str(cfg.users),
        "-t",
        f"{cfg.duration}s",
        "--workers",
        str(cfg.workers),
        "--results-dir",
        str(results_dir),
        "--run-id",
        run_id,
    ]
    log = cfg.tmp / f"loadctl-{n}.log"
    proc = procs.start("loadctl run", argv, log)
    try:
        wait_or_fail(proc, "loadctl run", cfg.duration + RUN_SLACK_S, log)
    finally:
        procs.stop(proc)
    run_dir = RunDir(results_dir / run_id)
    history = run_dir.path / STATS_HISTORY_CSV
    if not history.is_file():
        raise BenchError(f"loadctl run exited 0 but wrote no {history}\n{log_tail(log)}")
    return measure(history, run_dir.stats_csv, cfg.users, "loadctl")


def schedule(repeats: int, only: str | None) -> list[str]:
    """Interleaved order, mirrored every other repeat: plain, loadctl, loadctl, plain, ..."""
    order: list[str] = []
    for i in range(repeats):
        pair = ["plain", "loadctl"] if i % 2 == 0 else ["loadctl", "plain"]
        order.extend(side for side in pair if only in (None, side))
    return order


# --------------------------------------------------------------------------- report


def print_run(index: int, total: int, result: RunResult) -> None:
    whole = "n/a" if result.whole_run_rps is None else f"{result.whole_run_rps:,.1f}"
    print(
        f"run {index:>2}/{total}  {result.side:<8} {result.rps:>10,.1f} req/s steady"
        f"  ({result.requests:,} requests, {result.window_s} s window, {result.rows} rows;"
        f" whole run {whole} req/s)",
        flush=True,
    )


def report(results: list[RunResult]) -> None:
    medians = {}
    for side in ("plain", "loadctl"):
        values = [r.rps for r in results if r.side == side]
        if values:
            medians[side] = statistics.median(values)
            print(f"median {side:<8} {medians[side]:>10,.1f} req/s  (n={len(values)})")
    if len(medians) == 2:
        ratio = medians["loadctl"] / medians["plain"]
        verdict = "OK" if ratio >= TARGET_RATIO else "BELOW TARGET"
        print(
            f"overhead ratio (loadctl/plain median rps): {ratio:.3f}  target >= {TARGET_RATIO:.2f}  {verdict}"
        )


# --------------------------------------------------------------------------- main


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--users", type=int, default=20, help="concurrent users (default 20)")
    parser.add_argument(
        "--workers", type=int, default=os.cpu_count() or 1, help="Locust workers (default: CPU count)"
    )
    parser.add_argument("--duration", type=int, default=30, help="seconds per run (default 30)")
    parser.add_argument("--repeats", type=int, default=3, help="runs per side (default 3)")
    parser.add_argument(
        "--only", choices=["plain", "loadctl"], help="debugging: run just one side (no ratio is printed)"
    )
    parser.add_argument("--keep-tmp", action="store_true", help="debugging: keep the temp directory")
    args = parser.parse_args(argv)
    for name in ("users", "workers", "duration", "repeats"):
        if getattr(args, name) < 1:
            parser.error(f"--{name} must be >= 1")
    return args


def venv_bin_dir() -> Path:
    """The bin/ next to the running interpreter (not resolved: .venv/bin/python is a symlink)."""
    bin_dir = Path(sys.executable).parent
    if not (bin_dir / "locust").exists():
        raise BenchError(f"no locust in {bin_dir}; run this with the project venv's python")
    return bin_dir


def run_all(args: argparse.Namespace, procs: ProcessSet, tmp: Path) -> list[RunResult]:
    bin_dir = venv_bin_dir()
    host = start_nginx(procs, tmp)
    cfg = Config(bin_dir, tmp, host, args.users, args.workers, args.duration)
    order = schedule(args.repeats, args.only)
    print(
        f"target {host} (nginx)  users={cfg.users} workers={cfg.workers} "
        f"duration={cfg.duration}s runs={len(order)}",
        flush=True,
    )
    results = []
    for index, side in enumerate(order, start=1):
        runner = run_plain if side == "plain" else run_loadctl
        result = runner(procs, cfg, index)
        print_run(index, len(order), result)
        results.append(result)
    return results


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    signal.signal(signal.SIGTERM, raise_keyboard_interrupt)
    tmp = Path(tempfile.mkdtemp(prefix="loadctl-bench-"))
    procs = ProcessSet()
    try:
        report(run_all(args, procs, tmp))
        return 0
    except BenchError as exc:
        print(f"bench-overhead: error: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("bench-overhead: interrupted", file=sys.stderr)
        return 130
    finally:
        # A second Ctrl-C must not cut the cleanup short.
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        procs.stop_all()
        if args.keep_tmp:
            print(f"temp files kept in {tmp}", file=sys.stderr)
        else:
            shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
