"""One run per target: a coordination.k8s.io Lease per target host, held while a run loads it.

Every `--backend k8s` run takes the Lease named after its target host (lease_name) in its
namespace before it installs anything, renews it from a daemon thread while it runs, and deletes
it at teardown. A second run for the same host finds it held and waits (--wait-for-lock), then
gives up naming the holder. A holder that crashed stops renewing: its Lease expires by itself
(renewTime + leaseDurationSeconds) and the next run takes it over. The run's master reads the same
Lease as its heartbeat (locust_workers/heartbeat.py): no renewal, no load.

Acquiring is optimistic concurrency on the API server: create (AlreadyExists: someone was first),
or replace an expired Lease at the resourceVersion we read (Conflict: someone else took it first):
two runs racing get exactly one winner.

The decisions (who holds it, expired or not, what to say) are pure functions; the API calls come
in through LeaseApi (controller/k8s/cluster.py's Cluster; an in-memory one in the unit tests).
"""

from __future__ import annotations

import hashlib
import re
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Protocol
from urllib.parse import urlsplit

LEASE_PREFIX = "loadctl-target-"
# A run with no single target host (the user classes' own hosts, a non-HTTP locustfile) locks this
# one name: such runs exclude each other in a namespace. Host names always end in a hash, so no
# host maps here.
HOSTLESS_LEASE = LEASE_PREFIX + "hostless"
NAME_MAX = 63  # a DNS-1123 label, valid as any object name
# How long a Lease stays valid after its last renewal; the master's heartbeat timeout too. A
# renewal every RENEW_EVERY_S survives two missed renewals (an API server hiccup).
LEASE_DURATION_S = 30
RENEW_EVERY_S = 10.0
WAIT_POLL_S = 2.0
WAIT_NOTE_EVERY_S = 10.0
Obj = dict[str, Any]


class LeaseConflict(Exception):
    """The API server refused a create (AlreadyExists) or an update (stale resourceVersion)."""


class LockHeld(Exception):
    """Another run still holds the target's Lease after the wait."""


class LeaseApi(Protocol):
    namespace: str

    def read_lease(self, name: str) -> Obj | None: ...
    def create_lease(self, body: Obj) -> Obj: ...
    def replace_lease(self, name: str, body: Obj) -> Obj: ...
    def delete_lease(self, name: str, *, resource_version: str) -> None: ...


# -- pure ----------------------------------------------------------------------------------------
def target_key(host: str | None, hosts: tuple[str, ...] = ()) -> str | None:
    """What a run locks: its --host (else its one class host) as `host[:port]`; None: hostless."""
    chosen = host or (hosts[0] if len(hosts) == 1 else None)
    if not chosen:
        return None
    parts = urlsplit(chosen if "//" in chosen else f"//{chosen}")
    netloc = (parts.hostname or "") + (f":{parts.port}" if parts.port else "")
    return netloc or chosen.lower()


def lease_name(key: str | None) -> str:
    """`loadctl-target-<host>-<hash>`: a valid DNS-1123 name, distinct for distinct hosts."""
    if key is None:
        return HOSTLESS_LEASE
    digest = hashlib.sha256(key.encode()).hexdigest()[:10]
    readable = re.sub(r"[^a-z0-9]+", "-", key.lower()).strip("-")
    room = NAME_MAX - len(LEASE_PREFIX) - len(digest) - 1
    readable = readable[:room].strip("-")
    return f"{LEASE_PREFIX}{readable}-{digest}" if readable else f"{LEASE_PREFIX}{digest}"


def micro_time(moment: float) -> str:
    """A Kubernetes MicroTime (RFC 3339, microseconds, UTC)."""
    return datetime.fromtimestamp(moment, UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def parse_time(text: str | None) -> float | None:
    if not text:
        return None
    return datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()


@dataclass(frozen=True)
class Holding:
    """Who holds a Lease, as read from it."""

    holder: str | None
    acquired_at: float | None
    renewed_at: float | None
    duration_s: float
    resource_version: str

    @classmethod
    def of(cls, lease: Obj) -> Holding:
        spec = lease.get("spec") or {}
        return cls(
            holder=spec.get("holderIdentity") or None,
            acquired_at=parse_time(spec.get("acquireTime")),
            renewed_at=parse_time(spec.get("renewTime") or spec.get("acquireTime")),
            duration_s=float(spec.get("leaseDurationSeconds") or LEASE_DURATION_S),
            resource_version=str(lease["metadata"].get("resourceVersion", "")),
        )

    def expired(self, now: float) -> bool:
        return self.holder is None or self.renewed_at is None or now >= self.renewed_at + self.duration_s


def lease_body(name: str, *, holder: str, now: float, resource_version: str | None = None) -> Obj:
    metadata: Obj = {"name": name, "labels": {"app.kubernetes.io/managed-by": "loadctl"}}
    if resource_version is not None:
        metadata["resourceVersion"] = resource_version
    return {
        "apiVersion": "coordination.k8s.io/v1",
        "kind": "Lease",
        "metadata": metadata,
        "spec": {
            "holderIdentity": holder,
            "leaseDurationSeconds": LEASE_DURATION_S,
            "acquireTime": micro_time(now),
            "renewTime": micro_time(now),
        },
    }


def held_message(target: str, lease: str, namespace: str, holding: Holding, *, now: float) -> str:
    since = f" since {micro_time(holding.acquired_at)[:19]}Z" if holding.acquired_at else ""
    ago = max(0.0, now - (holding.renewed_at or now))
    return (
        f"target {target} is held by run {holding.holder}{since} (Lease {namespace}/{lease}, "
        f"renewed {ago:.0f}s ago; a holder that stops renewing loses it after {holding.duration_s:.0f}s)"
    )


# -- against the API ---------------------------------------------------------------------------
class TargetLease:
    """The Lease of one run's target: acquire (waiting), keep renewed, release."""

    def __init__(self, api: LeaseApi, *, target: str | None, holder: str) -> None:
        self.api = api
        self.target = target or "(no single host)"
        self.name = lease_name(target)
        self.holder = holder
        self.lost: str | None = None  # why the Lease is no longer ours, once it is not
        self._held = False
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._renewed_at = 0.0  # monotonic

    def acquire(self, *, wait_s: float, progress: Callable[[str], None]) -> None:
        """Hold the Lease, waiting up to `wait_s` for its holder; LockHeld naming it after that."""
        deadline = time.monotonic() + wait_s
        noted_at: float | None = None
        while True:
            holding = self._try_take()
            if holding is None:
                self._held, self._renewed_at = True, time.monotonic()
                return
            message = held_message(self.target, self.name, self.api.namespace, holding, now=time.time())
            left = deadline - time.monotonic()
            if left <= 0:
                raise LockHeld(message)
            if noted_at is None or time.monotonic() - noted_at >= WAIT_NOTE_EVERY_S:
                noted_at = time.monotonic()
                progress(f"{message}: waiting up to {left:.0f}s more (--wait-for-lock)")
            time.sleep(min(WAIT_POLL_S, left))

    def _try_take(self) -> Holding | None:
        """One attempt: None when the Lease is ours now, else who holds it."""
        now = time.time()
        lease = self.api.read_lease(self.name)
        try:
            if lease is None:
                self.api.create_lease(lease_body(self.name, holder=self.holder, now=now))
                return None
            holding = Holding.of(lease)
            if holding.holder != self.holder and not holding.expired(now):
                return holding
            body = lease_body(
                self.name, holder=self.holder, now=now, resource_version=holding.resource_version
            )
            self.api.replace_lease(self.name, body)
            return None
        except LeaseConflict:  # another run was quicker: read again, it is (most likely) theirs
            again = self.api.read_lease(self.name)
            if again is None:
                return Holding(None, None, None, LEASE_DURATION_S, "")
            return Holding.of(again)

    def start_renewing(self) -> None:
        self._thread = threading.Thread(target=self._renew_loop, name=f"lease-{self.name}", daemon=True)
        self._thread.start()

    def _renew_loop(self) -> None:
        while not self._stop.wait(RENEW_EVERY_S):
            try:
                self.renew()
            except Exception as e:  # an API hiccup: the next round tries again, until it expires
                if time.monotonic() - self._renewed_at >= LEASE_DURATION_S:
                    self.lost = (
                        f"Lease {self.api.namespace}/{self.name} not renewed for {LEASE_DURATION_S}s: {e}"
                    )
            if self.lost:
                return

    def renew(self) -> None:
        lease = self.api.read_lease(self.name)
        holding = Holding.of(lease) if lease is not None else None
        if holding is None or holding.holder != self.holder:
            by = f"run {holding.holder}" if holding and holding.holder else "nobody (deleted)"
            self.lost = f"Lease {self.api.namespace}/{self.name} of target {self.target} is now held by {by}"
            self._held = False
            return
        assert lease is not None
        lease["spec"]["renewTime"] = micro_time(time.time())
        self.api.replace_lease(self.name, lease)
        self._renewed_at = time.monotonic()

    def release(self) -> None:
        """Stop renewing and delete the Lease if it is still ours (a taken-over one is not)."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=15)
        if not self._held:
            return
        self._held = False
        lease = self.api.read_lease(self.name)
        if lease is not None and Holding.of(lease).holder == self.holder:
            self.api.delete_lease(self.name, resource_version=Holding.of(lease).resource_version)
