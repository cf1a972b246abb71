"""How many Locust workers a run gets, and whether they are enough. Pure.

`workers: auto` (the default) means one worker process per CPU core on the local backend, where
the cores are what there is. On Kubernetes a worker is a pod, and the question is how many users
one worker carries: auto becomes ceil(peak users / users per worker), at least 1 and at most the
maximum. The default users per worker is what bench/worker_capacity.py measured one worker to
carry of the shipped scenario below CPU_LIMIT_PERCENT of one core (README: Worker sizing); a
scenario heavier per user than the shipped one wants a lower --users-per-worker.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

CPU_LIMIT_PERCENT = 80
# bench/worker_capacity.py, 2026-11-26 (README: Worker sizing): the largest step of the shipped
# scenario one worker carried below CPU_LIMIT_PERCENT of a core with its users' pace kept, on a
# shared 2-core machine (at 41 % CPU: the next step lost pace to the other load, not to the
# worker's own CPU). Its CPU per user puts a dedicated core's limit near 950 users; a pod shares
# its node too, so the default keeps the measured step.
MEASURED_USERS_PER_WORKER = 500
# A cap on pods started by `auto` alone: a typo'd 1_000_000-user stage should not ask a
# staging cluster for thousands of pods (an explicit `workers:` goes up to 1024).
DEFAULT_MAX_WORKERS = 50
MAX_WORKERS = 1024  # the most workers a run may have at all (profile `workers:`, --workers)


@dataclass(frozen=True)
class WorkerSizing:
    """How `workers: auto` is sized on Kubernetes: the defaults here, a profile's fields over them,
    the flags over those (controller/profiles.py worker_sizing)."""

    users_per_worker: int = MEASURED_USERS_PER_WORKER
    max_workers: int = DEFAULT_MAX_WORKERS


def auto_workers(peak_users: int, sizing: WorkerSizing) -> int:
    """ceil(peak users / users per worker), within [1, max workers]: never 0, even for 0 users."""
    needed = math.ceil(max(peak_users, 0) / sizing.users_per_worker)
    return max(1, min(sizing.max_workers, needed))


def users_per_worker(peak_users: int, workers: int) -> int:
    """The users the busiest worker runs at the peak (Locust spreads users evenly, rounding up)."""
    return math.ceil(peak_users / workers)


def capacity_warning(
    *, profile: str, peak_users: int, workers: int, measured: int = MEASURED_USERS_PER_WORKER
) -> str | None:
    """A sentence when the peak puts more users on a worker than one was measured to carry below
    CPU_LIMIT_PERCENT; an overloaded worker queues its own requests and reports the delay as the
    target's latency. None when the workers are enough."""
    per_worker = users_per_worker(peak_users, workers)
    if per_worker <= measured:
        return None
    return (
        f"profile {profile}: {peak_users} users on {workers} worker{'s' if workers != 1 else ''} = "
        f"{per_worker} per worker, above the measured {measured} a worker carries below "
        f"{CPU_LIMIT_PERCENT} % CPU (README: Worker sizing): raise workers"
    )
