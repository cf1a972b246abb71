"""Is a run's release healthy, ready, finished, or stuck? Pure functions over API objects as JSON.

Pods, Jobs and Events come in as the dicts the Kubernetes API returns (camelCase keys), so every
case here is testable from a literal. The point is to fail fast with the reason a user would dig
out of `kubectl describe` by hand: operators that only wait for "Running" hang forever on a missing
ServiceAccount or on one OOM-killed pod.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from controller.k8s.release import COMPONENT_LABEL

Obj = Mapping[str, Any]

# Container states that never resolve on their own: waiting longer cannot help.
STUCK_WAITING_REASONS = frozenset(
    {
        "ImagePullBackOff",
        "InvalidImageName",
        "ErrImageNeverPull",
        "CrashLoopBackOff",
        "CreateContainerConfigError",  # e.g. a Secret or ConfigMap the pod needs does not exist
        "CreateContainerError",
        "RunContainerError",
    }
)
# cluster-autoscaler's event on a pending pod it is adding a node for: Unschedulable is not final.
SCALE_UP_EVENT = "TriggeredScaleUp"
MAX_EVENTS_SHOWN = 3


@dataclass(frozen=True)
class RunPods:
    """Where the run's pods are: what the progress line and the readiness wait need."""

    master_ready: bool
    master_phase: str | None
    workers_running: int
    workers_expected: int

    @property
    def ready(self) -> bool:
        return self.master_ready and self.workers_running >= self.workers_expected

    def summary(self) -> str:
        master = "ready" if self.master_ready else (self.master_phase or "not created")
        return f"master {master}, workers {self.workers_running}/{self.workers_expected} running"


def component(obj: Obj) -> str:
    return str(obj.get("metadata", {}).get("labels", {}).get(COMPONENT_LABEL, "?"))


def _name(obj: Obj) -> str:
    return str(obj.get("metadata", {}).get("name", "?"))


def _condition(obj: Obj, kind: str) -> Obj | None:
    for condition in obj.get("status", {}).get("conditions") or ():
        if condition.get("type") == kind:
            return condition
    return None


def is_ready(pod: Obj) -> bool:
    return _holds(pod, "Ready")


def run_pods(pods: Sequence[Obj], *, workers: int) -> RunPods:
    masters = [p for p in pods if component(p) == "master" and not _deleting(p)]
    running_workers = [
        p for p in pods if component(p) == "worker" and p.get("status", {}).get("phase") == "Running"
    ]
    master = masters[0] if masters else None
    return RunPods(
        master_ready=master is not None and is_ready(master),
        master_phase=None if master is None else master.get("status", {}).get("phase"),
        workers_running=len(running_workers),
        workers_expected=workers,
    )


def master_exit_code(pods: Sequence[Obj]) -> int | None:
    """The master container's exit code once it terminated, else None."""
    for pod in pods:
        if component(pod) != "master":
            continue
        for status in pod.get("status", {}).get("containerStatuses") or ():
            terminated = (status.get("state") or {}).get("terminated")
            if terminated is not None:
                return int(terminated.get("exitCode", 0))
    return None


def master_finished(pods: Sequence[Obj], jobs: Sequence[Obj]) -> bool:
    """The master pod ended (Succeeded/Failed), or its Job completed or failed."""
    for pod in pods:
        if component(pod) == "master" and pod.get("status", {}).get("phase") in ("Succeeded", "Failed"):
            return True
    return any(
        component(job) == "master" and (_holds(job, "Complete") or _holds(job, "Failed")) for job in jobs
    )


def _holds(obj: Obj, kind: str) -> bool:
    condition = _condition(obj, kind)
    return condition is not None and condition.get("status") == "True"


def _deleting(obj: Obj) -> bool:
    return bool(obj.get("metadata", {}).get("deletionTimestamp"))


def _events_of(name: str, events: Iterable[Obj]) -> list[Obj]:
    mine = [e for e in events if e.get("involvedObject", {}).get("name") == name]
    return sorted(mine, key=lambda e: str(e.get("lastTimestamp") or e.get("eventTime") or ""))


def _event_lines(name: str, events: Iterable[Obj]) -> str:
    recent = _events_of(name, events)[-MAX_EVENTS_SHOWN:]
    if not recent:
        return ""
    shown = "; ".join(
        f"{e.get('reason', '?')}: {' '.join(str(e.get('message', '')).split())}" for e in recent
    )
    return f" (events: {shown})"


def pod_problem(pod: Obj, events: Sequence[Obj]) -> str | None:
    """Why this pod will never do its job, or None while it still might."""
    name, status = _name(pod), pod.get("status", {})
    where = f"{component(pod)} pod {name}"
    for container in status.get("containerStatuses") or ():
        for state in (container.get("state") or {}, container.get("lastState") or {}):
            terminated = state.get("terminated")
            if terminated and terminated.get("reason") == "OOMKilled":
                return (
                    f"{where}: container {container.get('name')} was OOMKilled (memory limit too low "
                    f"for this load; raise the chart's master/worker resources)" + _event_lines(name, events)
                )
        waiting = (container.get("state") or {}).get("waiting") or {}
        if waiting.get("reason") in STUCK_WAITING_REASONS:
            message = " ".join(str(waiting.get("message", "")).split())
            detail = f": {message}" if message else ""
            return f"{where}: {waiting['reason']}{detail}" + _event_lines(name, events)
    scheduled = _condition(pod, "PodScheduled") or {}
    scaling_up = any(e.get("reason") == SCALE_UP_EVENT for e in _events_of(name, events))
    if scheduled.get("status") == "False" and scheduled.get("reason") == "Unschedulable" and not scaling_up:
        message = " ".join(str(scheduled.get("message", "")).split())
        return f"{where}: Unschedulable: {message}" + _event_lines(name, events)
    if status.get("phase") == "Failed" and component(pod) == "worker":
        reason = status.get("reason") or "the worker exited with an error"
        return f"{where} failed: {reason}" + _event_lines(name, events)
    return None


def job_problem(job: Obj, events: Sequence[Obj]) -> str | None:
    """A Job that cannot create its pods (missing ServiceAccount, PodSecurity, quota) or gave up."""
    name = _name(job)
    failed_create = [e for e in _events_of(name, events) if e.get("reason") == "FailedCreate"]
    if failed_create and not job.get("status", {}).get("active"):
        message = " ".join(str(failed_create[-1].get("message", "")).split())
        return f"{component(job)} job {name} cannot create its pods: {message}"
    if _holds(job, "Failed") and component(job) == "worker":
        failed = _condition(job, "Failed") or {}
        return f"worker job {name} failed: {failed.get('reason')}: {failed.get('message', '')}".rstrip(": ")
    return None


def diagnose(pods: Sequence[Obj], jobs: Sequence[Obj], events: Sequence[Obj]) -> str | None:
    """The first reason the run cannot go on (jobs first: they explain missing pods), or None."""
    for job in jobs:
        problem = job_problem(job, events)
        if problem:
            return problem
    for pod in pods:
        if _deleting(pod):
            continue
        problem = pod_problem(pod, events)
        if problem:
            return problem
    return None
