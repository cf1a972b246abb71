"""The master's watchdog: the load dies with the controller that started it.

`loadctl run --backend k8s` holds its target's Lease and renews it every few seconds
(controller/k8s/lease.py). The chart passes the Lease's name to the master (HEARTBEAT_LEASE_ENV)
with a token allowed to `get` that one Lease. Every POLL_S the master reads it; when its holder is
no longer this run, when it is gone, or when its renewTime has not changed for the timeout, the
controller is gone (killed, its CI job cancelled, its node lost) or another run owns the target:
the master logs why and stops the test the way the end of a stage table does (runner.quit(): the
workers get `quit` and exit), then exits with HEARTBEAT_EXIT_CODE, so its Job ends Failed.

"Not changed" is judged on the master's own monotonic clock, never by comparing the controller's
timestamps with this node's clock (no clock skew between nodes). A Lease that cannot be read
(API unreachable, 403) counts as not renewed: fail safe.

Plain HTTP with the standard library: the master does not need the kubernetes package.
"""

from __future__ import annotations

import json
import logging
import os
import ssl
import time
import urllib.error
import urllib.request
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import gevent

from locust_workers.contract import (
    DEFAULT_HEARTBEAT_TIMEOUT_S,
    HEARTBEAT_LEASE_ENV,
    HEARTBEAT_TIMEOUT_ENV,
    RUN_ID_ENV,
    service_account_dir,
)

logger = logging.getLogger("loadctl")
POLL_S = 5.0
READ_TIMEOUT_S = 4.0
# Distinct from Locust's own exit codes (0, 1, 2): the Job fails and nobody reads it as a pass.
HEARTBEAT_EXIT_CODE = 4


@dataclass
class Judge:
    """Whether the Lease says the controller is still there. Pure: give it what was read and when."""

    run_id: str
    timeout_s: float
    _renew_time: str | None = None
    _changed_at: float | None = None  # monotonic, when renewTime last changed (or first seen)

    def observe(self, lease: Mapping[str, Any] | None, *, now: float, error: str | None = None) -> str | None:
        """The reason to stop the test, or None. `lease` None with no error: it was deleted."""
        if self._changed_at is None:
            self._changed_at = now  # the timeout runs from the watchdog's start at the earliest
        if error is None and lease is None:
            return "is gone (the controller released it or never held it)"
        if lease is not None:
            spec = lease.get("spec") or {}
            holder = spec.get("holderIdentity")
            if holder != self.run_id:
                return f"is held by {holder or 'nobody'}, not by this run {self.run_id}"
            renew_time = spec.get("renewTime")
            if renew_time != self._renew_time:
                self._renew_time, self._changed_at = renew_time, now
                return None
        silent = now - self._changed_at
        if silent >= self.timeout_s:
            why = f"; last read failed: {error}" if error else ""
            return f"not renewed for {silent:.0f}s (controller gone?){why}"
        return None


@dataclass(frozen=True)
class LeaseReader:
    """GET one Lease with the pod's ServiceAccount token (re-read each time: the kubelet rotates it)."""

    url: str
    token_path: str
    context: ssl.SSLContext

    @classmethod
    def from_env(cls, environ: Mapping[str, str], lease: str) -> LeaseReader:
        account = service_account_dir(environ)
        namespace = (account / "namespace").read_text().strip()
        host, port = environ["KUBERNETES_SERVICE_HOST"], environ.get("KUBERNETES_SERVICE_PORT", "443")
        host = f"[{host}]" if ":" in host else host
        url = f"https://{host}:{port}/apis/coordination.k8s.io/v1/namespaces/{namespace}/leases/{lease}"
        context = ssl.create_default_context(cafile=str(account / "ca.crt"))
        return cls(url=url, token_path=str(account / "token"), context=context)

    def read(self) -> dict[str, Any] | None:
        """The Lease, or None when it does not exist; OSError/ValueError when it cannot be read."""
        with open(self.token_path) as f:
            token = f.read().strip()
        request = urllib.request.Request(self.url, headers={"Authorization": f"Bearer {token}"})
        try:
            with urllib.request.urlopen(request, timeout=READ_TIMEOUT_S, context=self.context) as answer:
                return dict(json.loads(answer.read()))
        except urllib.error.HTTPError as e:
            if e.code == 404:
                return None
            raise OSError(f"HTTP {e.code} {e.reason}") from None


def watch(environment: Any, environ: Mapping[str, str] = os.environ) -> bool:
    """Start the watchdog greenlet on the master when the chart named a Lease; True if started."""
    lease = environ.get(HEARTBEAT_LEASE_ENV)
    if not lease:
        return False
    timeout_s = float(environ.get(HEARTBEAT_TIMEOUT_ENV) or DEFAULT_HEARTBEAT_TIMEOUT_S)
    reader = LeaseReader.from_env(environ, lease)
    judge = Judge(run_id=environ.get(RUN_ID_ENV, ""), timeout_s=timeout_s)
    where = f"{reader.url.rsplit('/namespaces/', 1)[1].replace('/leases/', '/')}"

    def loop() -> None:
        while True:
            try:
                reason = judge.observe(reader.read(), now=time.monotonic())
            except (OSError, ValueError) as e:
                reason = judge.observe(None, now=time.monotonic(), error=str(e) or type(e).__name__)
            if reason:
                stop(environment, f"loadctl heartbeat: lease {where} {reason}: stopping the test")
                return
            gevent.sleep(POLL_S)

    gevent.spawn(loop)
    logger.info("loadctl heartbeat: watching lease %s (timeout %.0fs)", where, timeout_s)
    return True


def stop(environment: Any, line: str) -> None:
    logger.error(line)
    environment.loadctl_heartbeat_stopped = line  # plugin.py: nobody will fetch files or scrape
    # Locust's documented way to set the exit code; its quitting hooks run before it is read
    environment.events.quitting.add_listener(_exit_code)
    environment.runner.quit()


def _exit_code(environment: Any, **_kw: Any) -> None:
    environment.process_exit_code = HEARTBEAT_EXIT_CODE
