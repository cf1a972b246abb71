"""The Prometheus HTTP API, over an injected httpx.Client (tests and callers choose the transport)."""

from __future__ import annotations

import math
import re
import time
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import httpx

from controller.errors import PrometheusError, PrometheusUnreachable, tail
from controller.prom.queries import run_stop_query

_RFC3339 = re.compile(r"^(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d)(\.\d+)?(Z|[+-]\d\d:\d\d)$")


@dataclass(frozen=True)
class Sample:
    labels: dict[str, str]
    value: float


def _api(client: httpx.Client, path: str, params: dict[str, Any]) -> Any:
    try:
        response = client.get(path, params=params)
    except httpx.HTTPError as e:
        raise PrometheusUnreachable(f"Prometheus at {client.base_url} unreachable: {e}") from e
    if response.status_code in (502, 503, 504):  # starting up, or a proxy without its backend
        raise PrometheusUnreachable(f"Prometheus at {client.base_url} unavailable ({response.status_code})")
    try:
        body = response.json()
    except ValueError:
        raise PrometheusError(
            f"Prometheus answered {response.status_code}: {tail(response.text, 200)}"
        ) from None
    if body.get("status") != "success":
        raise PrometheusError(f"Prometheus query failed ({body.get('errorType')}): {body.get('error')}")
    return body["data"]


def query(*, client: httpx.Client, promql: str, at: float | None = None) -> list[Sample]:
    """Instant query; an instant vector as Samples (a scalar becomes one Sample with no labels)."""
    params: dict[str, Any] = {"query": promql}
    if at is not None:
        params["time"] = f"{at:.3f}"
    data = _api(client, "/api/v1/query", params)
    if data["resultType"] == "scalar":
        return [Sample({}, float(data["result"][1]))]
    if data["resultType"] != "vector":
        raise PrometheusError(f"expected an instant vector from {promql!r}, got {data['resultType']}")
    return [Sample(item["metric"], float(item["value"][1])) for item in data["result"]]


def query_value(*, client: httpx.Client, promql: str, at: float | None = None) -> float | None:
    """The single value of a query, None when it returned no series (or NaN)."""
    samples = query(client=client, promql=promql, at=at)
    if not samples or math.isnan(samples[0].value):
        return None
    if len(samples) > 1:
        raise PrometheusError(f"expected one series from {promql!r}, got {len(samples)}")
    return samples[0].value


@dataclass(frozen=True)
class Series:
    labels: dict[str, str]
    points: tuple[tuple[float, float], ...]  # (unix time, value), NaN values left out


def query_range(*, client: httpx.Client, promql: str, start: float, end: float, step: float) -> list[Series]:
    """Range query: each series' values at start, start + step, ... <= end."""
    params = {"query": promql, "start": f"{start:.3f}", "end": f"{end:.3f}", "step": f"{step:.3f}"}
    data = _api(client, "/api/v1/query_range", params)
    if data["resultType"] != "matrix":
        raise PrometheusError(f"expected a range vector from {promql!r}, got {data['resultType']}")
    return [_series(item) for item in data["result"]]


def query_samples(*, client: httpx.Client, promql: str, at: float | None = None) -> list[Series]:
    """Instant query of a range vector (`x[5m] @ t`): each series' raw samples, as scraped."""
    params: dict[str, Any] = {"query": promql}
    if at is not None:
        params["time"] = f"{at:.3f}"
    data = _api(client, "/api/v1/query", params)
    if data["resultType"] != "matrix":
        raise PrometheusError(f"expected a range vector from {promql!r}, got {data['resultType']}")
    return [_series(item) for item in data["result"]]


def _series(item: dict[str, Any]) -> Series:
    points = ((float(t), float(v)) for t, v in item["values"])
    return Series(item["metric"], tuple((t, v) for t, v in points if not math.isnan(v)))


def targets(*, client: httpx.Client) -> list[dict[str, Any]]:
    return list(_api(client, "/api/v1/targets", {"state": "active"})["activeTargets"])


def firing_alerts(*, client: httpx.Client) -> set[str]:
    """Names of the alerts firing now (the alerts API: the ALERTS series lags it by an evaluation)."""
    alerts = _api(client, "/api/v1/alerts", {})["alerts"]
    return {a["labels"].get("alertname", "") for a in alerts if a.get("state") == "firing"}


def is_ready(*, client: httpx.Client) -> bool:
    try:
        return client.get("/-/ready").status_code == 200
    except httpx.HTTPError:
        return False


def wait_for_scrapes_after(*, client: httpx.Client, moment: float, timeout: float) -> bool:
    """Wait until every active target was scraped after `moment` (unix time). True if they were."""
    deadline = time.monotonic() + timeout
    while True:
        active = targets(client=client)
        if active and all(_scraped_at(t) > moment for t in active):
            return True
        if time.monotonic() >= deadline:
            return False
        time.sleep(0.2)


def _scraped_at(target: dict[str, Any]) -> float:
    """Unix time of a target's last scrape; Prometheus gives RFC 3339 with up to nanoseconds."""
    match = _RFC3339.match(target.get("lastScrape") or "")
    if not match or match.group(1).startswith("0001-"):
        return 0.0
    seconds, fraction, zone = match.groups()
    stamp = datetime.fromisoformat(seconds + ("+00:00" if zone == "Z" else zone)).timestamp()
    return stamp + float(fraction or 0)


def wait_for_stop_scraped(*, client: httpx.Client, run_id: str, planned_s: float, timeout: float) -> bool:
    """Wait until Prometheus scraped the run's test-stop timestamp, i.e. the exporter's final totals.

    Scoped to the run's own series: a cluster's Prometheus has many targets, some always down.
    """
    promql = run_stop_query(run_id, planned_s=planned_s)
    deadline = time.monotonic() + timeout
    while query_value(client=client, promql=promql) is None:
        if time.monotonic() >= deadline:
            return False
        time.sleep(0.5)
    return True
