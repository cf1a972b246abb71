"""In-memory Studio state: sessions, their constraints and generated versions.

Plain dicts, because the demo's cost must sit in the deliberate places (the worker pool),
not in storage. Everything is capped so a long soak test cannot exhaust memory: the oldest
sessions are evicted first and each session keeps only its most recent items.
"""

from __future__ import annotations

import secrets
import time
from collections import OrderedDict, deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any


@dataclass
class Session:
    id: str
    title: str
    created_at: float
    constraints: deque[dict[str, Any]]
    versions: deque[dict[str, Any]]
    # Version numbers keep counting even after old versions are dropped.
    last_version: int = field(default=0)


class StudioStore:
    def __init__(
        self,
        max_sessions: int = 100_000,
        max_items_per_session: int = 1_000,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._sessions: OrderedDict[str, Session] = OrderedDict()
        self._max_sessions = max_sessions
        self._max_items = max_items_per_session
        self._clock = clock
        # Lifetime counters for the analytics summary; they survive eviction.
        self.sessions_created = 0
        self.constraints_added = 0
        self.versions_generated = 0

    def __len__(self) -> int:
        return len(self._sessions)

    def create(self, title: str) -> Session:
        session = Session(
            id=f"s_{secrets.token_hex(8)}",
            title=title,
            created_at=self._clock(),
            constraints=deque(maxlen=self._max_items),
            versions=deque(maxlen=self._max_items),
        )
        self._sessions[session.id] = session
        if len(self._sessions) > self._max_sessions:
            self._sessions.popitem(last=False)
        self.sessions_created += 1
        return session

    def get(self, session_id: str) -> Session | None:
        return self._sessions.get(session_id)

    def add_constraint(self, session_id: str, kind: str, value: Any) -> dict[str, Any] | None:
        session = self._sessions.get(session_id)
        if session is None:
            return None
        constraint = {"kind": kind, "value": value, "added_at": self._clock()}
        session.constraints.append(constraint)
        self.constraints_added += 1
        return constraint

    def add_version(self, session_id: str) -> dict[str, Any] | None:
        session = self._sessions.get(session_id)
        if session is None:
            return None
        session.last_version += 1
        version = {
            "version": session.last_version,
            "constraints": len(session.constraints),
            "created_at": self._clock(),
        }
        session.versions.append(version)
        self.versions_generated += 1
        return version

    def summary(self) -> dict[str, int]:
        return {
            "sessions_live": len(self._sessions),
            "sessions_created": self.sessions_created,
            "constraints_added": self.constraints_added,
            "versions_generated": self.versions_generated,
        }
