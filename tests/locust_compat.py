"""Plain Locust as the reference: one locustfile run through `locust --headless` and through
`loadctl run`, and what each sent, to compare (issue 13: a drop-in for Locust users).

Both read Locust's own stats.csv (loadctl keeps it in results/<run_id>/), so the comparison is
of what Locust itself counted on each side: request names, methods, counts and failures.
"""

from __future__ import annotations

import csv
import subprocess
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from controller.rundir import STATS_CSV
from tests.support import run_loadctl

Request = tuple[str, str]  # (method, name) as Locust's stats.csv has them


@dataclass(frozen=True)
class Outcome:
    exit_code: int
    requests: dict[Request, int]
    failures: dict[Request, int]
    output: str  # stdout + stderr, for assertion messages

    @property
    def total(self) -> int:
        return sum(self.requests.values())


def read_stats(stats_csv: Path) -> tuple[dict[Request, int], dict[Request, int]]:
    """Requests and failures per (method, name) from a Locust stats.csv; no file: nothing sent."""
    if not stats_csv.exists():
        return {}, {}
    with open(stats_csv, newline="", encoding="utf-8") as handle:
        rows = [r for r in csv.DictReader(handle) if r["Name"] != "Aggregated"]
    return (
        {(r["Type"], r["Name"]): int(r["Request Count"]) for r in rows},
        {(r["Type"], r["Name"]): int(r["Failure Count"]) for r in rows},
    )


def plain_locust(
    args: Sequence[str], *, cwd: Path, timeout: float = 180, env: Mapping[str, str] | None = None
) -> Outcome:
    """`python -m locust --headless --csv <cwd>/plain ARGS` in `cwd`, as a user would run it."""
    prefix = cwd / "plain"
    done = subprocess.run(
        [sys.executable, "-m", "locust", "--headless", "--csv", str(prefix), *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=timeout,
        env=dict(env) if env is not None else None,
        stdin=subprocess.DEVNULL,
    )
    requests, failures = read_stats(Path(f"{prefix}_stats.csv"))
    return Outcome(done.returncode, requests, failures, done.stdout + done.stderr)


def loadctl_locust(
    args: Sequence[str],
    *,
    cwd: Path,
    results_dir: Path,
    run_id: str,
    timeout: float = 300,
    env: Mapping[str, str] | None = None,
) -> Outcome:
    """`loadctl run ARGS --results-dir RESULTS --run-id ID` in `cwd`, and Locust's stats.csv it kept."""
    # loadctl's own options before a `--`: what follows it goes to Locust
    cut = list(args).index("--") if "--" in args else len(args)
    done = run_loadctl(
        ["run", *args[:cut], "--results-dir", str(results_dir), "--run-id", run_id, *args[cut:]],
        cwd=cwd,
        timeout=timeout,
        env=dict(env) if env is not None else None,
    )
    requests, failures = read_stats(results_dir / run_id / STATS_CSV)
    return Outcome(done.returncode, requests, failures, done.stdout + done.stderr)


def share_differences(plain: Outcome, loadctl: Outcome, *, tolerance: float = 0.1) -> list[str]:
    """How the two runs' traffic differs: request kinds only one side sent, and each kind's share
    of all requests apart by more than `tolerance` (absolute, e.g. 0.1 = 10 points: run-to-run
    noise of short runs). Empty when they sent the same requests in the same proportions."""
    problems = [
        f"{side} only: {method} {name}"
        for side, mine, other in (("plain", plain, loadctl), ("loadctl", loadctl, plain))
        for method, name in sorted(set(mine.requests) - set(other.requests))
    ]
    for request in sorted(set(plain.requests) & set(loadctl.requests)):
        a, b = (o.requests[request] / o.total for o in (plain, loadctl))
        if abs(a - b) > tolerance:
            problems.append(f"{request[0]} {request[1]}: share {a:.1%} plain vs {b:.1%} loadctl")
    return problems
