"""Locust's own CSVs and HTML, fetched from a k8s master before its pod (and its disk) goes.

The master serves them on its exporter port once the load has stopped, and holds until told it may
go (locust_workers/locust_files.py; contract.py: LOCUST_FILES_PATH). The backend calls fetch()
while it polls the run, and again while it stops the load: each call asks for what is still
missing, and once everything is in (or will never come) POSTs so the master exits. fetch() never
raises: a run is never failed for these files (the backend rebuilds stats.csv from Prometheus).

Only the contract's fixed names are asked for, and a name from the network is never used: the
backend decides where each file goes (LOCUST_FILE_DESTINATIONS in k8s.py).
"""

from __future__ import annotations

import contextlib

import httpx

from locust_workers.contract import LOCUST_FILE_MAX_BYTES, LOCUST_FILE_NAMES, LOCUST_FILES_PATH


class _GiveUp(Exception):
    """The master will never serve the files (it serves none, or one is too large)."""


class MasterFiles:
    """What has been fetched from one master, and why the rest has not (`problem`)."""

    def __init__(
        self,
        base_url: str,
        *,
        timeout_s: float = 5.0,
        max_bytes: int = LOCUST_FILE_MAX_BYTES,
        transport: httpx.BaseTransport | None = None,  # None: real HTTP
    ) -> None:
        self.base_url = base_url
        self.timeout_s = timeout_s
        self.max_bytes = max_bytes
        self.transport = transport
        self.files: dict[str, bytes] = {}
        self.problem: str | None = "the load had not stopped yet"
        self.finished = False  # all fetched, or given up; either way the master was told

    @property
    def complete(self) -> bool:
        return set(self.files) == set(LOCUST_FILE_NAMES)

    def fetch(self) -> None:
        """Fetch what is still missing; once complete (or hopeless) tell the master it may exit."""
        if self.finished:
            return
        client = httpx.Client(
            base_url=self.base_url, timeout=self.timeout_s, transport=self.transport, trust_env=False
        )
        with client:
            try:
                for name in LOCUST_FILE_NAMES:
                    if name not in self.files:
                        body = self._get(client, name)
                        if body is None:
                            return  # not ready yet: the next call asks again
                        self.files[name] = body
                self.problem = None
            except _GiveUp as e:
                self.files.clear()  # all or nothing: no half Locust, half Prometheus results
                self.problem = str(e)
            except httpx.HTTPError as e:
                self.problem = f"the master did not answer ({type(e).__name__}: {e})"
                return
            self._release(client)

    def _get(self, client: httpx.Client, name: str) -> bytes | None:
        with client.stream("GET", f"{LOCUST_FILES_PATH}{name}") as response:
            if response.status_code == 503:
                self.problem = "the load had not stopped yet"
                return None
            if response.status_code != 200:
                raise _GiveUp(f"the master serves no {name} (HTTP {response.status_code})")
            body = bytearray()
            for chunk in response.iter_bytes():
                body += chunk
                if len(body) > self.max_bytes:
                    raise _GiveUp(f"{name} is larger than {self.max_bytes // (1024 * 1024)} MiB")
            return bytes(body)

    def _release(self, client: httpx.Client) -> None:
        # if this fails the master waits out its own timeout; what was fetched is kept
        with contextlib.suppress(httpx.HTTPError):
            client.post(LOCUST_FILES_PATH)
        self.finished = True
