"""The absolute bounds of a gate file, as the run's master publishes them (loadctl_gate_threshold).

The controller knows the gates before the load starts; it hands their max/min to the master
(locust_workers/contract.py GATE_THRESHOLDS_ENV), whose exporter serves them as series of the run, so
a dashboard draws the lines of the gate file that judges this run, not of the one it was generated
with. Relative bounds (max_change, min_change) have no fixed value and are left out.
"""

from __future__ import annotations

from controller.gates.models import GateFile
from locust_workers.contract import GateThreshold


def gate_thresholds(gate_file: GateFile) -> tuple[GateThreshold, ...]:
    """Every absolute bound of every gate, in the gate's own unit."""
    return tuple(
        GateThreshold(gate.name, gate.metric or "", bound, gate.severity, float(value))
        for gate in gate_file.gates
        for bound, value in (("max", gate.max), ("min", gate.min))
        if value is not None
    )
