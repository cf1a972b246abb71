"""`loadctl ls`: which runs a namespace holds, in what state, for how long. Pure."""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from controller.k8s.release import RUN_LABEL, VERDICT_ANNOTATION

# helm list's "updated": 2026-11-25 12:00:01.123456789 +0000 UTC
_HELM_TIME = re.compile(r"^(\d{4}-\d\d-\d\d \d\d:\d\d:\d\d)(?:\.\d+)? ([+-]\d{4})")


@dataclass(frozen=True)
class RunRow:
    run_id: str
    release: str
    state: str
    pods: str
    age_s: float | None
    verdict: str


def parse_time(text: str | None) -> datetime | None:
    """Kubernetes' RFC 3339 or helm list's timestamp; None if neither."""
    if not text:
        return None
    match = _HELM_TIME.match(text)
    try:
        if match:
            return datetime.strptime(f"{match.group(1)} {match.group(2)}", "%Y-%m-%d %H:%M:%S %z")
        return datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return None


def format_age(seconds: float | None) -> str:
    """kubectl-style age: 45s, 12m, 3h, 2d."""
    if seconds is None:
        return "-"
    whole = max(0, int(seconds))
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if whole >= size:
            return f"{whole // size}{unit}"
    return f"{whole}s"


def job_state(job: Mapping[str, Any] | None) -> str:
    if job is None:
        return "finished (jobs expired)"
    status = job.get("status", {})
    for condition in status.get("conditions") or ():
        if condition.get("status") == "True" and condition.get("type") == "Complete":
            return "succeeded"
        if condition.get("status") == "True" and condition.get("type") == "Failed":
            return f"failed ({condition.get('reason', 'unknown')})"
    return "running" if status.get("active") else "starting"


def run_rows(
    releases: Sequence[tuple[str, str, str, str | None]],
    master_jobs: Sequence[Mapping[str, Any]],
    pods: Sequence[Mapping[str, Any]],
    *,
    now: datetime | None = None,
) -> list[RunRow]:
    """One row per run release: (name, helm status, helm updated, run id) joined with its master
    Job and pods. Releases without a run (schedules only) are left out."""
    now = now or datetime.now(UTC)
    jobs_by_run = {j["metadata"].get("labels", {}).get(RUN_LABEL): j for j in master_jobs}
    rows = []
    for name, helm_status, updated, run_id in releases:
        if run_id is None:
            continue
        job = jobs_by_run.get(run_id)
        state = job_state(job) if helm_status == "deployed" else f"helm: {helm_status}"
        mine = [p for p in pods if p["metadata"].get("labels", {}).get(RUN_LABEL) == run_id]
        running = sum(1 for p in mine if p.get("status", {}).get("phase") == "Running")
        created = parse_time(job["metadata"].get("creationTimestamp") if job else None) or parse_time(updated)
        annotations = (job or {}).get("metadata", {}).get("annotations") or {}
        rows.append(
            RunRow(
                run_id=run_id,
                release=name,
                state=state,
                pods=f"{running}/{len(mine)} running",
                age_s=None if created is None else (now - created).total_seconds(),
                verdict=annotations.get(VERDICT_ANNOTATION, "-"),
            )
        )
    return sorted(rows, key=lambda r: (r.age_s is None, r.age_s or 0.0))
