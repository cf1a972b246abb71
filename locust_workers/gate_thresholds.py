"""The run's gate thresholds as series of the master's exporter (contract.GATE_THRESHOLD).

The controller passes the gate file's absolute bounds in GATE_THRESHOLDS_ENV; this collector serves
them, with the run's id, at every scrape, so whatever Prometheus scrapes the master (the local
backend's, a cluster's ServiceMonitor) holds the lines the run is judged by. A custom collector of
its own, beside the exporter's, because the values never change during the run.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence

from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from locust_workers.contract import GATE_THRESHOLD, GateThreshold

LABELS = ("run_id", "gate", "metric", "bound", "severity")


class GateThresholdCollector(Collector):
    def __init__(self, *, run_id: str, thresholds: Sequence[GateThreshold]) -> None:
        self.run_id = run_id
        self.thresholds = tuple(thresholds)

    def collect(self) -> Iterator[Metric]:
        if not self.thresholds:
            return  # a run without gates has no lines (an empty family would be noise)
        family = GaugeMetricFamily(
            GATE_THRESHOLD, "An absolute bound of the run's gate file, in the gate's unit.", labels=LABELS
        )
        for t in self.thresholds:
            family.add_metric([self.run_id, t.gate, t.metric, t.bound, t.severity], t.value)
        yield family
