"""How many users of the shipped scenario one Locust worker carries below 80 % of one CPU core.

Why this exists
---------------
`workers: auto` on Kubernetes starts ceil(peak users / users per worker) worker pods
(controller/sizing.py). The default users per worker comes from this benchmark: one Locust master
and ONE worker, both with loadctl's plugin exactly as a run starts them (contract.LocustCommand,
run_env), run the shipped scenario (locust_workers/scenarios/demo.py, with the demo profile's
user weights) through a stage table that steps the users up. For each step we sample the worker
process's CPU time (psutil) once a second, and read the users, requests and failures from the
master's own exporter (/metrics).

The target is a private nginx on 127.0.0.1 standing in for the demo service
(nginx_demo.conf.template): it answers each route the scenario calls at once, with the status and
the JSON fields the scenario reads. A slow target would make every user send less and one worker
look bigger than it is; an instant one is the worst case a worker meets with this scenario.

Per step: mean worker CPU (% of one core) over the samples taken with all the step's users
running, after SETTLE_S seconds of settling, and the requests per user per second. The capacity is
the largest step carried before the first one that was not: below --limit (80 %) CPU, and with the
pace kept (requests per user within PACE_KEPT of the lightest step's: a worker that cannot keep
up, or is not given the CPU on a busy machine, holds its users back, and then its CPU figure
understates its load). The machine may be shared: the table shows the load average at the start,
and a cross-check line extrapolates the CPU per user to the limit.

Usage: .venv/bin/python -m bench.worker_capacity [--steps 50,100,...] [--step-seconds 15]
       [--limit 80] [--keep-tmp]
Exit 0 with the table and the capacity; 1 when a run could not be completed.
"""

from __future__ import annotations

import argparse
import os
import shutil
import signal
import statistics
import string
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import httpx
import psutil
from prometheus_client.parser import text_string_to_metric_families

from controller.models import Stage
from controller.processes import ManagedProcess, free_port, wait_until
from locust_workers.contract import LocustCommand, locustfile_arg, run_env

BENCH_DIR = Path(__file__).resolve().parent
REPO_ROOT = BENCH_DIR.parent
SCENARIO = REPO_ROOT / "locust_workers" / "scenarios" / "demo.py"
NGINX_TEMPLATE = BENCH_DIR / "nginx_demo.conf.template"
# profiles/demo.yaml's mix (also peak, staged, spike, soak): mostly search, some studio
DEMO_WEIGHTS = {"SearchUser": 5, "StudioUser": 4, "HarvestUser": 1, "HealthCheckUser": 1}
DEFAULT_STEPS = (50, 100, 200, 300, 400, 500, 600, 700, 800, 900, 1000, 1250, 1500)
SETTLE_S = 3.0  # after a step's users are all running: spawning and first connections settle
STOP_ABOVE = 95.0  # a step this busy ends the run: later steps only measure an overloaded worker
SPAWN_RATE = 100.0
PACE_KEPT = 0.85  # of the first step's requests per user per second (kept_pace)


class BenchError(Exception):
    """The run could not be completed; the message says why."""


@dataclass(frozen=True)
class Sample:
    at: float
    phase: str | None
    users: int
    cpu_percent: float
    requests: float
    failures: float


@dataclass(frozen=True)
class StepResult:
    users: int
    cpu_percent: float
    rps: float
    failures: float
    samples: int


def phase_name(users: int) -> str:
    return f"u{users}"


def step_results(samples: Sequence[Sample], steps: Sequence[int]) -> list[StepResult]:
    """One row per step that has settled samples: mean CPU, request rate and failures."""
    results = []
    for users in steps:
        full = [s for s in samples if s.phase == phase_name(users) and s.users == users]
        settled = [s for s in full if s.at >= full[0].at + SETTLE_S] if full else []
        if len(settled) < 2:
            continue
        span = settled[-1].at - settled[0].at
        results.append(
            StepResult(
                users=users,
                cpu_percent=statistics.fmean(s.cpu_percent for s in settled[1:]),
                rps=(settled[-1].requests - settled[0].requests) / span if span > 0 else 0.0,
                failures=settled[-1].failures - settled[0].failures,
                samples=len(settled),
            )
        )
    return results


def kept_pace(result: StepResult, first: StepResult) -> bool:
    """The worker sent what its users asked for: requests per user per second within PACE_KEPT of
    the first (lightest) step's. Below that the worker, or a busy machine's scheduler, holds the
    users back, and its CPU figure no longer says how loaded it is."""
    return result.rps / result.users >= PACE_KEPT * first.rps / first.users


def capacity(results: Sequence[StepResult], *, limit: float) -> int | None:
    """The largest step carried (below `limit` % CPU, pace kept) before the first step that was
    not; None: not even the first step was."""
    ordered = sorted(results, key=lambda r: r.users)
    carried = None
    for result in ordered:
        if result.cpu_percent >= limit or not kept_pace(result, ordered[0]):
            break
        carried = result.users
    return carried


def cost_estimate(results: Sequence[StepResult], *, limit: float) -> int | None:
    """Users at `limit` % of a core the worker had to itself: `limit` over the CPU per user of the
    steps that kept pace (median). A cross-check on a shared machine, where steps stop keeping
    pace before the worker's own CPU reaches the limit."""
    ordered = sorted(results, key=lambda r: r.users)
    per_user = [r.cpu_percent / r.users for r in ordered if ordered and kept_pace(r, ordered[0])]
    return int(limit / statistics.median(per_user)) if per_user else None


# --------------------------------------------------------------------------- processes


def start_nginx(tmp: Path) -> tuple[ManagedProcess, str]:
    nginx = os.environ.get("NGINX_BIN") or shutil.which("nginx") or "/usr/sbin/nginx"
    if not os.access(nginx, os.X_OK):
        raise BenchError("nginx not found: `make bench-worker-capacity` installs it, or set NGINX_BIN")
    prefix = tmp / "nginx"
    prefix.mkdir()
    port = free_port()
    conf = prefix / "nginx.conf"
    conf.write_text(string.Template(NGINX_TEMPLATE.read_text()).substitute(prefix=prefix, port=port))
    argv = [nginx, "-p", str(prefix), "-c", str(conf), "-e", str(prefix / "error.log")]
    proc = ManagedProcess("nginx", argv, log_path=prefix / "stdout.log")
    url = f"http://127.0.0.1:{port}"
    if not wait_until(lambda: _answers(f"{url}/health"), timeout=10, watch=[proc]):
        raise BenchError(f"nginx did not answer on {url}: {proc.log_tail()}")
    return proc, url


def _answers(url: str) -> bool:
    try:
        return httpx.get(url, timeout=1.0).status_code == 200
    except httpx.TransportError:
        return False


def start_locust(
    tmp: Path, *, host: str, steps: Sequence[int], step_s: float
) -> tuple[ManagedProcess, ManagedProcess, str]:
    """A master and one worker as `loadctl run` starts them (plugin, exporter, stage table), and
    the master's /metrics URL."""
    stages = [Stage(duration=step_s, users=u, spawn_rate=SPAWN_RATE, phase=phase_name(u)) for u in steps]
    exporter_port = free_port()
    env = {
        **os.environ,
        **run_env(
            run_id="bench-worker-capacity",
            profile="demo",
            stages=stages,
            user_weights=DEMO_WEIGHTS,
            exporter_host="127.0.0.1",
            exporter_port=exporter_port,
            final_scrape_timeout_s=0,
        ),
    }
    command = LocustCommand(
        locustfile=locustfile_arg(SCENARIO),
        host=host,
        workers=1,
        master_host="127.0.0.1",
        bind_host="127.0.0.1",
        master_port=free_port(),
        csv_prefix=str(tmp / "locust"),
        html_path=str(tmp / "locust_report.html"),
    )
    locust = [sys.executable, "-m", "locust"]
    master = ManagedProcess(
        "locust master", [*locust, *command.master_args()], log_path=tmp / "master.log", env=env
    )
    worker = ManagedProcess(
        "locust worker", [*locust, *command.worker_args()], log_path=tmp / "worker.log", env=env
    )
    metrics = f"http://127.0.0.1:{exporter_port}/metrics"
    if not wait_until(lambda: _answers(metrics), timeout=60, watch=[master, worker]):
        raise BenchError(f"the master's exporter did not answer: {master.log_tail()}")
    return master, worker, metrics


# --------------------------------------------------------------------------- sampling


def read_exporter(text: str) -> tuple[str | None, int, float, float]:
    """(current phase, users, requests, failures) from the master's exporter."""
    phase, users, requests, failures = None, 0, 0.0, 0.0
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name == "locust_run_info" and sample.value == 1:
                phase = sample.labels.get("phase")
            elif sample.name == "locust_users":
                users = int(sample.value)
            elif sample.name == "locust_requests_total":
                requests += sample.value
            elif sample.name == "locust_request_failures_total":
                failures += sample.value
    return phase, users, requests, failures


def sample_run(
    master: ManagedProcess, worker: ManagedProcess, metrics: str, *, deadline_s: float
) -> list[Sample]:
    """One Sample a second until the master ends, the deadline passes, or a finished step was
    busier than STOP_ABOVE."""
    process = psutil.Process(worker.pid)
    samples: list[Sample] = []
    before, then = _cpu_seconds(process), time.monotonic()
    started = then
    with httpx.Client(timeout=2.0) as http:
        while master.poll() is None and time.monotonic() - started < deadline_s:
            time.sleep(1.0)
            try:
                text = http.get(metrics).text
                cpu, now = _cpu_seconds(process), time.monotonic()
            except (httpx.TransportError, psutil.Error):
                break  # the run ended between two samples
            phase, users, requests, failures = read_exporter(text)
            samples.append(
                Sample(now - started, phase, users, 100 * (cpu - before) / (now - then), requests, failures)
            )
            before, then = cpu, now
            if _overloaded_step_done(samples):
                break
    return samples


def _cpu_seconds(process: psutil.Process) -> float:
    times = process.cpu_times()
    return float(times.user + times.system)


def _overloaded_step_done(samples: Sequence[Sample]) -> bool:
    """The step just left (the phase changed at the last sample) ran above STOP_ABOVE."""
    if len(samples) < 2 or samples[-1].phase == samples[-2].phase or samples[-2].phase is None:
        return False
    users = int(samples[-2].phase.removeprefix("u"))
    done = step_results(samples[:-1], [users])
    return bool(done) and done[0].cpu_percent >= STOP_ABOVE


# --------------------------------------------------------------------------- report


def print_table(results: Sequence[StepResult], *, limit: float) -> None:
    # req/s per user stays flat while the worker keeps the scenario's pace; it drops once the
    # worker (or the machine) cannot keep up, whatever its CPU figure says
    print(f"{'users':>6} {'req/s':>8} {'req/s/user':>11} {'worker CPU %':>13} {'failures':>9}")
    for r in results:
        mark = "" if r.cpu_percent < limit else f"  >= {limit:g} %"
        mark += "" if kept_pace(r, results[0]) else "  pace not kept"
        per_user = r.rps / r.users
        print(f"{r.users:>6} {r.rps:>8.0f} {per_user:>11.2f} {r.cpu_percent:>13.0f} {r.failures:>9.0f}{mark}")
    found = capacity(results, limit=limit)
    if found is None:
        print(
            f"capacity: not even {results[0].users} users were carried below {limit:g} % with the pace kept"
        )
    else:
        print(f"capacity: {found} users of the shipped scenario per worker below {limit:g} % of one core")
    estimate = cost_estimate(results, limit=limit)
    if estimate is not None:
        print(f"cross-check: CPU per user of the steps that kept pace -> ~{estimate} users at {limit:g} %")


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--steps", default=",".join(map(str, DEFAULT_STEPS)), help="user counts, ascending")
    parser.add_argument("--step-seconds", type=float, default=15.0, help="seconds per step (default 15)")
    parser.add_argument("--limit", type=float, default=80.0, help="CPU %% of one core (default 80)")
    parser.add_argument("--keep-tmp", action="store_true", help="keep the logs and Locust's CSVs")
    args = parser.parse_args(argv)
    try:
        args.steps = [int(s) for s in args.steps.split(",")]
    except ValueError:
        parser.error("--steps: comma-separated whole numbers")
    if args.steps != sorted(set(args.steps)) or args.steps[0] < 1 or args.step_seconds < 8:
        parser.error("--steps must ascend from >= 1, --step-seconds must be >= 8")
    return args


def run(args: argparse.Namespace, tmp: Path) -> list[StepResult]:
    nginx, host = start_nginx(tmp)
    master = worker = None
    try:
        master, worker, metrics = start_locust(tmp, host=host, steps=args.steps, step_s=args.step_seconds)
        load = os.getloadavg()[0]
        print(f"target {host} (nginx stand-in), 1 worker, {os.cpu_count()} cores, load average {load:.2f}")
        samples = sample_run(master, worker, metrics, deadline_s=len(args.steps) * args.step_seconds + 60)
        if worker.poll() not in (None, 0):
            raise BenchError(f"the worker exited with {worker.poll()}: {worker.log_tail()}")
        return step_results(samples, args.steps)
    finally:
        for proc in (worker, master, nginx):
            if proc is not None:
                proc.stop(timeout=15, signum=signal.SIGINT if proc is master else signal.SIGTERM)


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    signal.signal(signal.SIGTERM, signal.default_int_handler)  # make/CI's SIGTERM cleans up like Ctrl-C
    tmp = Path(tempfile.mkdtemp(prefix="loadctl-capacity-"))
    try:
        results = run(args, tmp)
        if not results:
            raise BenchError("no step ran long enough to measure")
        print_table(results, limit=args.limit)
        return 0
    except BenchError as e:
        print(f"bench-worker-capacity: error: {e}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("bench-worker-capacity: interrupted", file=sys.stderr)
        return 130
    finally:
        if args.keep_tmp:
            print(f"logs kept in {tmp}", file=sys.stderr)
        else:
            shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
