"""An in-memory Lease store with the API server's optimistic concurrency (controller/k8s/lease.py's
LeaseApi): create fails on an existing name, replace and delete on a stale resourceVersion."""

from __future__ import annotations

import copy
from dataclasses import dataclass, field
from typing import Any

from controller.k8s.lease import LeaseConflict

Obj = dict[str, Any]


@dataclass
class LeaseStore:
    namespace: str = "loadtest"
    leases: dict[str, Obj] = field(default_factory=dict)
    version: int = 0
    writes: list[tuple[str, str]] = field(default_factory=list)

    def _stored(self, body: Obj) -> Obj:
        self.version += 1
        stored = copy.deepcopy(body)
        stored["metadata"]["resourceVersion"] = str(self.version)
        self.leases[stored["metadata"]["name"]] = stored
        return copy.deepcopy(stored)

    def read_lease(self, name: str) -> Obj | None:
        return copy.deepcopy(self.leases.get(name))

    def create_lease(self, body: Obj) -> Obj:
        name = body["metadata"]["name"]
        if name in self.leases:
            raise LeaseConflict("409 AlreadyExists")
        self.writes.append(("create", name))
        return self._stored(body)

    def replace_lease(self, name: str, body: Obj) -> Obj:
        current = self.leases.get(name)
        if current is None or current["metadata"]["resourceVersion"] != body["metadata"].get(
            "resourceVersion"
        ):
            raise LeaseConflict("409 Conflict")
        self.writes.append(("replace", name))
        return self._stored(body)

    def delete_lease(self, name: str, *, resource_version: str) -> None:
        current = self.leases.get(name)
        if current is not None and current["metadata"]["resourceVersion"] == resource_version:
            self.writes.append(("delete", name))
            del self.leases[name]
