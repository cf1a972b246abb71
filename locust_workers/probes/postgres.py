"""PostgreSQL probe (psycopg 3): connections by state, max_connections, pool use, waiting locks.

What an SRE otherwise watches by hand during a load test (`SELECT state, count(*) FROM
pg_stat_activity GROUP BY state`). Counted: client backends of every database on the server, the
probe's own connection left out, so the numbers are the application's. One connection is kept
open between samples (and reopened after a failure) instead of connecting every interval.
"""

from __future__ import annotations

import contextlib
import math
from collections.abc import Mapping
from typing import Any

from locust_workers.probes.base import ProbeError, Reading, env_secret, secret_parts
from locust_workers.probes.config import PostgresProbe

# pg_stat_activity.state values -> label values; "unknown": NULL, e.g. another role's session
# seen without pg_read_all_stats.
STATES = {
    "active": "active",
    "idle": "idle",
    "idle in transaction": "idle_in_transaction",
    "idle in transaction (aborted)": "idle_in_transaction_aborted",
    "fastpath function call": "fastpath_function_call",
    "disabled": "disabled",
}
UNKNOWN_STATE = "unknown"

CONNECTIONS_SQL = """
SELECT state, count(*) FROM pg_stat_activity
WHERE backend_type = 'client backend' AND pid <> pg_backend_pid()
GROUP BY state
"""
MAX_CONNECTIONS_SQL = "SELECT current_setting('max_connections')::int"
LOCKS_WAITING_SQL = "SELECT count(*) FROM pg_locks WHERE NOT granted"


def state_label(state: str | None) -> str:
    return STATES.get(state or "", UNKNOWN_STATE)


def postgres_readings(
    states: Mapping[str | None, int], *, max_connections: int, locks_waiting: int, pool_size: int | None
) -> list[Reading]:
    """Readings from pg_stat_activity's (state, count) rows and the two single numbers."""
    by_label = dict.fromkeys([*STATES.values(), UNKNOWN_STATE], 0)
    for state, count in states.items():
        by_label[state_label(state)] += int(count)
    total = sum(by_label.values())
    capacity = pool_size or max_connections
    readings = [
        Reading(
            "loadctl_postgres_connections",
            float(count),
            "Client connections by pg_stat_activity state (the probe's own excluded).",
            (("state", label),),
        )
        for label, count in by_label.items()
    ]
    readings += [
        Reading("loadctl_postgres_max_connections", float(max_connections), "The server's max_connections."),
        Reading("loadctl_postgres_locks_waiting", float(locks_waiting), "Locks not granted (pg_locks)."),
    ]
    if capacity > 0:
        readings.append(
            Reading(
                "loadctl_postgres_pool_utilization_ratio",
                total / capacity,
                "Client connections / the probe's pool_size (else max_connections).",
            )
        )
    return readings


class PostgresSampler:
    def __init__(self, config: PostgresProbe, env: Mapping[str, str] | None = None) -> None:
        self.config = config
        self._env = env
        self._dsn: str | None = None
        self._conn: Any = None

    def secrets(self) -> list[str]:
        return secret_parts(self._dsn) if self._dsn else []

    def _connect(self) -> Any:
        import psycopg  # here, so a profile without postgres probes never loads libpq

        self._dsn = env_secret(self.config.dsn_env, self._env)
        timeout = self.config.sample_timeout
        try:
            conn = psycopg.connect(
                self._dsn,
                autocommit=True,
                connect_timeout=max(1, math.ceil(timeout)),
                application_name="loadctl-probe",
            )
        except psycopg.Error as e:
            # from None: libpq may quote the DSN (password included); the message is masked, a cause is not
            raise ProbeError(f"cannot connect: {' '.join(str(e).split())}") from None
        conn.execute(f"SET statement_timeout = {int(timeout * 1000)}")
        return conn

    def sample(self) -> list[Reading]:
        if self._conn is None or self._conn.closed:
            self._conn = self._connect()
        try:
            states = {row[0]: row[1] for row in self._conn.execute(CONNECTIONS_SQL).fetchall()}
            (max_connections,) = self._conn.execute(MAX_CONNECTIONS_SQL).fetchone()
            (locks_waiting,) = self._conn.execute(LOCKS_WAITING_SQL).fetchone()
        except Exception:
            self.close()  # next sample reconnects
            raise
        return postgres_readings(
            states,
            max_connections=int(max_connections),
            locks_waiting=int(locks_waiting),
            pool_size=self.config.pool_size,
        )

    def close(self) -> None:
        conn, self._conn = self._conn, None
        if conn is not None:
            with contextlib.suppress(Exception):  # a broken connection may fail to close: gone anyway
                conn.close()
