"""Flags and DEMO_* environment variables of the demo target."""

from __future__ import annotations

import pytest

from examples.demo_target.config import DemoConfig, parse_config


def test_defaults() -> None:
    assert parse_config([], {}) == DemoConfig()


def test_environment_sets_values_and_flags_win() -> None:
    env = {
        "DEMO_HARVEST_RATE_PER_MINUTE": "12.5",
        "DEMO_HARVEST_BURST": "3",
        "DEMO_POOL_SIZE": "2",
        "DEMO_QUEUE_SIZE": "7",
        "DEMO_LATENCY_SCALE": "0",
    }
    config = parse_config(["--pool-size", "9", "--port", "0"], env)

    assert config.harvest_rate_per_minute == 12.5
    assert config.harvest_burst == 3
    assert config.pool_size == 9
    assert config.queue_size == 7
    assert config.latency_scale == 0.0
    assert config.port == 0


@pytest.mark.parametrize(
    ("argv", "env"),
    [
        (["--harvest-rate-per-minute", "0"], {}),
        (["--pool-size", "0"], {}),
        (["--queue-size", "-1"], {}),
        (["--latency-scale", "-0.5"], {}),
        (["--port", "70000"], {}),
        ([], {"DEMO_HARVEST_BURST": "lots"}),
    ],
)
def test_invalid_values_are_rejected(argv: list[str], env: dict[str, str]) -> None:
    with pytest.raises(SystemExit):
        parse_config(argv, env)
