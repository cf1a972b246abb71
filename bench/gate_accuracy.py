"""How close gate values come to what Locust measured, over a 15 s, a 60 s and (--long) a 5 min window.

Why this exists
---------------
Gates are PromQL over the exporter's counters and histograms, cut at phase boundaries. This
checks the numbers they give against Locust's own, on one real `loadctl run` against the demo
target (latencies scaled 3x: about 15-450 ms, plus a few refused connections):

  - over `run`: requests and failures against stats.csv (must be equal), rps of all requests and
    p50/p95/p99 (outcome: all) against the Aggregated row;
  - over each phase window (w15, w60, w300): against the ground truth of the requests that
    completed inside the window, logged by the locustfile itself (bench/locustfile_accuracy.py,
    one line per request, on every worker): requests, failures, successful rps, and
    p50/p95/p99 of the successful requests computed the way Locust does (its own rounding and
    percentile functions).

The stage table: ramp_up 5 s, w15 15 s, w60 60 s, [w300 300 s], tail 5 s; every window is an
inner phase, so both of its edges are cut while load flows.

The script always exits 0 whatever the numbers (a benchmark, not a test); 1 only if the run
could not be made.

Usage: .venv/bin/python bench/gate_accuracy.py [--users 20] [--workers 1] [--long] [--keep-tmp]
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import httpx

from controller.processes import ManagedProcess, free_port, wait_until
from controller.rundir import GATES_JSON, RunDir

from locust.stats import bucket_response_time, calculate_response_time_percentile  # isort: skip

REPO_ROOT = Path(__file__).resolve().parents[1]
LOCUSTFILE = REPO_ROOT / "bench" / "locustfile_accuracy.py"
LOADCTL = str(Path(sys.executable).parent / "loadctl")
QUANTILES = (("p50", 0.5, "50%"), ("p95", 0.95, "95%"), ("p99", 0.99, "99%"))


def gates_yaml(windows: list[str]) -> str:
    lines = ["version: 1", "name: accuracy", "window: run", "gates:"]

    def add(name: str, metric: str, window: str, extra: str = "") -> None:
        limit = "min: 0" if metric in ("requests", "rps") else "max: 1.0e12"
        lines.append(f"  - {{name: {name}, metric: {metric}, window: {window}, {limit}{extra}}}")

    for window in ["run", *windows]:
        add(f"{window}_requests", "requests", window)
        add(f"{window}_failures", "failures", window)
        add(f"{window}_rps", "rps", window)
        add(f"{window}_rps_all", "rps", window, ", outcome: all")
        for label, _, _ in QUANTILES:
            add(f"{window}_{label}", f"latency_{label}_ms", window)
            add(f"{window}_{label}_all", f"latency_{label}_ms", window, ", outcome: all")
    return "\n".join(lines) + "\n"


def profile_yaml(host: str, users: int, workers: int, windows: list[tuple[str, int]], gates: Path) -> str:
    stages = [("ramp_up", 5), *windows, ("tail", 5)]
    rows = "\n".join(
        f"  - {{phase: {p}, duration: {d}s, users: {users}, spawn_rate: {users}}}" for p, d in stages
    )
    return (
        f"name: gate-accuracy\nlocustfile: {LOCUSTFILE}\nhost: {host}\nworkers: {workers}\n"
        f"gates: {gates}\nstages:\n{rows}\n"
    )


def truth(log_dir: Path) -> list[tuple[float, float, bool]]:
    """(completion time, response time ms, failed) of every request any Locust process made."""
    rows = []
    for path in log_dir.glob("*.csv"):
        for line in path.read_text().splitlines():
            at, ms, failed, _name = line.split(",", 3)
            rows.append((float(at), float(ms), failed == "1"))
    return rows


def percentile(times: list[float], q: float) -> float:
    counts: dict[int, int] = {}
    for ms in times:
        key = bucket_response_time(ms)
        counts[key] = counts.get(key, 0) + 1
    return float(calculate_response_time_percentile(counts, len(times), q)) if times else float("nan")


def row(label: str, gate: float | None, reference: float) -> str:
    if gate is None:
        return f"  {label:<26} {'-':>12} {reference:>12.2f}   (no value)"
    diff = (gate - reference) / reference * 100 if reference else float("nan")
    return f"  {label:<26} {gate:>12.2f} {reference:>12.2f}   {diff:+7.2f} %"


def report(run_dir: Path, log_dir: Path, windows: list[str]) -> None:
    gates = {g["name"]: g for g in json.loads((run_dir / GATES_JSON).read_text())["gates"]}
    record = json.loads(RunDir(run_dir).record.read_text())
    with open(RunDir(run_dir).stats_csv, newline="") as handle:
        aggregated = next(r for r in csv.DictReader(handle) if r["Name"] == "Aggregated")
    value = {name: g.get("value") for name, g in gates.items()}

    print(f"\nrun {record['run_id']}: {record['ended_at'] - record['started_at']:.1f} s")
    print(f"  {'':<26} {'gate':>12} {'Locust':>12}   diff")
    print(row("requests (stats.csv)", value["run_requests"], float(aggregated["Request Count"])))
    print(row("failures (stats.csv)", value["run_failures"], float(aggregated["Failure Count"])))
    print(row("rps, all (stats.csv)", value["run_rps_all"], float(aggregated["Requests/s"])))
    for label, _, column in QUANTILES:
        print(row(f"{label}, all (stats.csv)", value[f"run_{label}_all"], float(aggregated[column])))

    requests = truth(log_dir)
    for window in windows:
        [phase] = [p for p in record["phases"] if p["phase"] == window]
        start, end = phase["start"], phase["end"]
        inside = [r for r in requests if start < r[0] <= end]
        ok = [ms for _, ms, failed in inside if not failed]
        print(f"\nwindow {window}: {end - start:.1f} s, {len(inside)} requests completed inside (logged)")
        print(f"  {'':<26} {'gate':>12} {'logged':>12}   diff")
        print(row("requests", value[f"{window}_requests"], float(len(inside))))
        print(row("failures", value[f"{window}_failures"], float(len(inside) - len(ok))))
        print(row("rps, successful", value[f"{window}_rps"], len(ok) / (end - start)))
        print(row("rps, all", value[f"{window}_rps_all"], len(inside) / (end - start)))
        for label, q, _ in QUANTILES:
            print(row(f"{label}, successful", value[f"{window}_{label}"], percentile(ok, q)))
        for label, q, _ in QUANTILES:
            print(row(f"{label}, all", value[f"{window}_{label}_all"], percentile([r[1] for r in inside], q)))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--users", type=int, default=20)
    parser.add_argument("--workers", type=int, default=1)
    parser.add_argument("--long", action="store_true", help="also a 5 min window (adds 5 minutes)")
    parser.add_argument("--keep-tmp", action="store_true")
    args = parser.parse_args()

    windows = [("w15", 15), ("w60", 60), *([("w300", 300)] if args.long else [])]
    tmp = Path(tempfile.mkdtemp(prefix="gate-accuracy-"))
    log_dir = tmp / "requests"
    log_dir.mkdir()
    port = free_port()
    target = ManagedProcess(
        "demo target",
        [
            sys.executable,
            "-m",
            "examples.demo_target",
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--latency-scale",
            "3",
        ],
        log_path=tmp / "target.log",
        cwd=REPO_ROOT,
    )
    try:
        host = f"http://127.0.0.1:{port}"

        def healthy() -> bool:
            try:
                return httpx.get(f"{host}/health", timeout=1).status_code == 200
            except httpx.HTTPError:
                return False

        if not wait_until(healthy, timeout=15, watch=[target]):
            print(f"demo target did not start: {target.log_tail()}", file=sys.stderr)
            return 1
        gates = tmp / "gates.yaml"
        gates.write_text(gates_yaml([w for w, _ in windows]))
        profile = tmp / "profile.yaml"
        profile.write_text(profile_yaml(host, args.users, args.workers, windows, gates))
        env = {**os.environ, "GATE_ACCURACY_LOG": str(log_dir)}
        done = subprocess.run(
            [
                LOADCTL,
                "run",
                str(profile),
                "--run-id",
                "gate-accuracy",
                "--results-dir",
                str(tmp / "results"),
            ],
            capture_output=True,
            text=True,
            env=env,
            cwd=REPO_ROOT,
            stdin=subprocess.DEVNULL,
        )
        run_dir = tmp / "results" / "gate-accuracy"
        if not (run_dir / GATES_JSON).exists():
            print(f"the run failed (exit {done.returncode}):\n{done.stdout[-3000:]}{done.stderr[-3000:]}")
            return 1
        report(run_dir, log_dir, [w for w, _ in windows])
        return 0
    finally:
        target.stop(timeout=10)
        if args.keep_tmp:
            print(f"\nkept {tmp}")
        else:
            shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
