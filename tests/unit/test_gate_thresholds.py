"""The run's gate thresholds: from a gate file, through the master's environment, to its series."""

from __future__ import annotations

from locust import User, task  # isort: skip  (locust first: gevent monkey-patching)

import pytest
from locust.env import Environment
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.parser import text_string_to_metric_families

from controller.gates.load import load_gate_file
from controller.gates.thresholds import gate_thresholds
from locust_workers.contract import (
    GATE_THRESHOLD,
    GATE_THRESHOLDS_ENV,
    GateThreshold,
    decode_gate_thresholds,
    run_env,
)
from locust_workers.exporter import LocustCollector
from locust_workers.exposition import CachedExposition
from locust_workers.gate_thresholds import GateThresholdCollector

GATES = (
    "version: 1\nname: t\ngates:\n"
    "  - {name: p95, metric: latency_p95_ms, max: 1200, min: 1}\n"
    "  - {name: soft, metric: error_rate, max: 0.02, severity: warn}\n"
    "  - {name: custom, promql: 'vector(1)', max: 3}\n"
    "  - {name: relative, metric: latency_p99_ms, max_change: '+10%'}\n"
)


def test_every_absolute_bound_of_the_gate_file(tmp_path):
    path = tmp_path / "gates.yaml"
    path.write_text(GATES)
    assert gate_thresholds(load_gate_file(path)) == (
        GateThreshold("p95", "latency_p95_ms", "max", "fail", 1200.0),
        GateThreshold("p95", "latency_p95_ms", "min", "fail", 1.0),
        GateThreshold("soft", "error_rate", "max", "warn", 0.02),
        GateThreshold("custom", "", "max", "fail", 3.0),
    )


def test_the_environment_carries_them_to_the_master(tmp_path):
    path = tmp_path / "gates.yaml"
    path.write_text(GATES)
    common = {"run_id": "r", "profile": "p", "stages": (), "user_weights": {}, "exporter_host": "127.0.0.1"}
    assert GATE_THRESHOLDS_ENV not in run_env(**common)  # a run without gates: no variable
    env = run_env(**common, gate_thresholds=gate_thresholds(load_gate_file(path)))
    assert decode_gate_thresholds(env[GATE_THRESHOLDS_ENV]) == gate_thresholds(load_gate_file(path))
    assert decode_gate_thresholds("") == ()


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("{", "is not JSON"),
        ('{"gate": "x"}', "must be a JSON list"),
        ('[{"gate": "x"}]', "[0] is not a valid threshold"),
        ('[{"gate": "x", "metric": "", "bound": "over", "severity": "fail", "value": 1}]', "bound max|min"),
        ('[{"gate": "x", "metric": "", "bound": "max", "severity": "fail", "value": "nan"}]', "finite"),
    ],
)
def test_a_bad_variable_is_named(text, message):
    with pytest.raises(
        ValueError, match=rf"^{GATE_THRESHOLDS_ENV}.*{message}".replace("[", r"\[").replace("|", r"\|")
    ):
        decode_gate_thresholds(text)


def test_the_collector_serves_them_with_the_run_id():
    registry = CollectorRegistry(auto_describe=False)
    thresholds = (GateThreshold("p95", "latency_p95_ms", "max", "warn", 1200.0),)
    registry.register(GateThresholdCollector(run_id="run-1", thresholds=thresholds))
    (family,) = text_string_to_metric_families(generate_latest(registry).decode())
    assert family.name == GATE_THRESHOLD and family.type == "gauge"
    ((_, labels, value, *_),) = family.samples
    assert labels == {
        "run_id": "run-1",
        "gate": "p95",
        "metric": "latency_p95_ms",
        "bound": "max",
        "severity": "warn",
    }
    assert value == 1200.0
    empty = CollectorRegistry(auto_describe=False)
    empty.register(GateThresholdCollector(run_id="run-1", thresholds=()))
    assert generate_latest(empty) == b""


class Idle(User):
    @task
    def nothing(self) -> None:
        pass


@pytest.mark.parametrize("accept", ["", "application/openmetrics-text; version=1.0.0"])
def test_the_masters_exposition_serves_them_beside_the_exporters_families(accept):
    environment = Environment(user_classes=[Idle])
    environment.create_local_runner()
    try:
        collector = LocustCollector(environment, run_id="run-1", profile="p")
        thresholds = (GateThreshold("p95", "latency_p95_ms", "max", "fail", 1200.0),)
        gates = GateThresholdCollector(run_id="run-1", thresholds=thresholds)
        app = CachedExposition(collector, negotiate=bool(accept), extra=(gates,))
        body = b"".join(app({"REQUEST_METHOD": "GET", "HTTP_ACCEPT": accept}, lambda *_: None)).decode()
    finally:
        environment.runner.quit()
    families = {f.name: f for f in text_string_to_metric_families(body.replace("# EOF\n", ""))}
    assert "locust_run_info" in families  # the exporter's own families are still there
    (sample,) = families[GATE_THRESHOLD].samples
    assert sample.labels["gate"] == "p95" and sample.value == 1200.0
