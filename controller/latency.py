"""Which latency layout a run's master serves: a classic bucket resolution, or native histograms.

Pure. The names are locust_workers/contract.py's; the profile's default is `auto`, decided here
from the version of the Prometheus that scrapes the master.
"""

from __future__ import annotations

from controller.errors import InputError
from locust_workers.contract import AUTO_LATENCY_BUCKETS, DEFAULT_LATENCY_BUCKETS, NATIVE_LATENCY


def latency_layout(requested: str, prometheus_major: int | None) -> str:
    """The latency layout the master serves for a profile's `latency_buckets`, given the major
    version of the Prometheus that scrapes it (None: unknown, e.g. a cluster's). `auto` is native
    on 3.x (one series per name and method) and the classic default otherwise; `native` where the
    scraper is not known to be 3.x is refused: 2.x neither asks for protobuf nor stores them."""
    if requested == AUTO_LATENCY_BUCKETS:
        return NATIVE_LATENCY if (prometheus_major or 0) >= 3 else DEFAULT_LATENCY_BUCKETS
    if requested == NATIVE_LATENCY and (prometheus_major or 0) < 3:
        found = f"Prometheus {prometheus_major}.x" if prometheus_major else "a Prometheus of unknown version"
        raise InputError(
            f"native histograms need Prometheus 3 and this run's is {found}: use auto, or a classic "
            "layout (fine, standard, coarse), or set PROMETHEUS_BIN to a Prometheus 3",
            field="latency_buckets",
        )
    return requested


def cluster_latency_layout(requested: str) -> str:
    """On Kubernetes the scraper's version is not known: `auto` is the classic default there, and
    `native` is taken as the user's word that their Prometheus is 3.x (and scrapes native histograms)."""
    return DEFAULT_LATENCY_BUCKETS if requested == AUTO_LATENCY_BUCKETS else requested
