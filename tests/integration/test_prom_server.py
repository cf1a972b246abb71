"""The local Prometheus launcher against a real Prometheus."""

from __future__ import annotations

import socket

import pytest

from controller.prom.config import empty_config
from controller.prom.server import PrometheusServer

pytestmark = pytest.mark.integration


def test_a_port_taken_before_prometheus_binds_it_is_replaced_by_a_free_one(tmp_path):
    with socket.socket() as squatter:
        squatter.bind(("127.0.0.1", 0))
        squatter.listen()
        taken = squatter.getsockname()[1]
        server = PrometheusServer(
            config=empty_config(),
            config_path=tmp_path / "prometheus.yml",
            data_dir=tmp_path / "tsdb",
            log_path=tmp_path / "prometheus.log",
            port=taken,
        )
        server.start()
        try:
            assert server.port != taken
            with server.client() as client:
                assert client.get("/-/ready").status_code == 200
        finally:
            server.stop()
    assert "address already in use" in (tmp_path / "prometheus.log").read_text()
