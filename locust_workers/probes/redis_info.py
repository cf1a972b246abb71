"""Redis probe (redis-py): keyspace hit ratio, used memory, evictions and clients from INFO.

The hit ratio is the run's: hits / (hits + misses) since the probe's first sample, so a cache
that was warm for days does not hide a run that misses. The raw counters are exported too, for
windowed ratios in PromQL (rate(hits) / (rate(hits) + rate(misses))). A server restart (counters
going down) starts the ratio again from there.
"""

from __future__ import annotations

import contextlib
from collections.abc import Mapping
from typing import Any

from locust_workers.probes.base import ProbeError, Reading, env_secret, secret_parts
from locust_workers.probes.config import RedisProbe

# (INFO field, metric, kind, help); counters get _total from their family.
FIELDS = (
    ("keyspace_hits", "loadctl_redis_keyspace_hits", "counter", "Successful key lookups (INFO)."),
    ("keyspace_misses", "loadctl_redis_keyspace_misses", "counter", "Failed key lookups (INFO)."),
    ("evicted_keys", "loadctl_redis_evicted_keys", "counter", "Keys evicted for maxmemory (INFO)."),
    ("used_memory", "loadctl_redis_used_memory_bytes", "gauge", "Memory used by Redis (INFO used_memory)."),
)


def _number(info: Mapping[str, Any], key: str) -> float | None:
    value = info.get(key)
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        return None
    try:
        return float(value)
    except ValueError:
        return None


def redis_readings(
    info: Mapping[str, Any], baseline: tuple[float, float] | None
) -> tuple[list[Reading], tuple[float, float] | None]:
    """Readings from INFO, and the (hits, misses) baseline for the next call."""
    readings: list[Reading] = []
    for key, name, kind, help_text in FIELDS:
        value = _number(info, key)
        if value is not None:
            readings.append(Reading(name, value, help_text, kind="counter" if kind == "counter" else "gauge"))
    clients = _number(info, "connected_clients")
    if clients is not None:
        # INFO is answered over the probe's own connection: leave it out, as the postgres probe does
        readings.append(
            Reading(
                "loadctl_redis_connected_clients",
                max(0.0, clients - 1),
                "Connected clients (the probe's own excluded).",
            )
        )
    hits, misses = _number(info, "keyspace_hits"), _number(info, "keyspace_misses")
    if hits is None or misses is None:
        if not readings:
            raise ProbeError("INFO has none of keyspace_hits, used_memory, evicted_keys, connected_clients")
        return readings, baseline
    if baseline is None or hits < baseline[0] or misses < baseline[1]:
        baseline = (hits, misses)  # first sample, or the server restarted
    lookups = (hits - baseline[0]) + (misses - baseline[1])
    if lookups > 0:
        readings.append(
            Reading(
                "loadctl_redis_keyspace_hit_ratio",
                (hits - baseline[0]) / lookups,
                "Key lookups that hit, since the probe started (the run).",
            )
        )
    return readings, baseline


class RedisSampler:
    def __init__(self, config: RedisProbe, env: Mapping[str, str] | None = None) -> None:
        self.config = config
        self._env = env
        self._url: str | None = None
        self._client: Any = None
        self._baseline: tuple[float, float] | None = None

    def secrets(self) -> list[str]:
        return secret_parts(self._url) if self._url else []

    def sample(self) -> list[Reading]:
        import redis

        if self._client is None:
            self._url = env_secret(self.config.url_env, self._env)
            timeout = self.config.sample_timeout
            try:
                self._client = redis.Redis.from_url(
                    self._url,
                    socket_timeout=timeout,
                    socket_connect_timeout=timeout,
                    client_name="loadctl-probe",
                )
            except ValueError as e:  # a malformed URL; redis-py's message may quote it (masked later)
                raise ProbeError(f"invalid {self.config.url_env}: {e}") from None
        try:
            info = self._client.info()
        except redis.RedisError as e:  # from None, like above: a cause would escape the masking
            raise ProbeError(" ".join(str(e).split()) or type(e).__name__) from None
        readings, self._baseline = redis_readings(info, self._baseline)
        return readings

    def close(self) -> None:
        client, self._client = self._client, None
        if client is not None:
            with contextlib.suppress(Exception):  # the connection may already be broken
                client.close()
