"""`python -m locust_workers.probes --config FILE --port PORT --host HOST --run-id ID`.

Serves /metrics until SIGTERM or SIGINT, then exits 0. Exit 2: the config file is invalid (one
line naming the file and field); exit 3: the port cannot be bound.
"""

from __future__ import annotations

import argparse
import logging
import os
import signal
import sys
import threading
from collections.abc import Mapping, Sequence
from pathlib import Path
from types import FrameType

from prometheus_client import CollectorRegistry, start_http_server

from locust_workers.contract import DEFAULT_RUN_ID, PROBES_PORT, RUN_ID_ENV
from locust_workers.probes.base import Sampler
from locust_workers.probes.config import (
    ConfigError,
    HttpJsonProbe,
    PostgresProbe,
    ProbeConfig,
    RedisProbe,
    load_config,
)
from locust_workers.probes.http_json import HttpJsonSampler
from locust_workers.probes.postgres import PostgresSampler
from locust_workers.probes.process import ProcessSampler
from locust_workers.probes.redis_info import RedisSampler
from locust_workers.probes.runner import ProbeCollector, ProbeRunner, logger


def build_sampler(config: ProbeConfig, env: Mapping[str, str] | None = None) -> Sampler:
    if isinstance(config, PostgresProbe):
        return PostgresSampler(config, env)
    if isinstance(config, RedisProbe):
        return RedisSampler(config, env)
    if isinstance(config, HttpJsonProbe):
        return HttpJsonSampler(config, env)
    return ProcessSampler(config, env)


def _describe(config: ProbeConfig) -> str:
    return f"{config.name} ({config.type} every {config.interval:g}s)"


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m locust_workers.probes", description=__doc__)
    parser.add_argument("--config", required=True, type=Path, help="probes JSON file ({probes: [...]})")
    parser.add_argument(
        "--port", type=int, default=PROBES_PORT, help=f"/metrics port (default {PROBES_PORT})"
    )
    parser.add_argument("--host", default="0.0.0.0", help="address to bind (default 0.0.0.0)")
    parser.add_argument("--run-id", default=os.environ.get(RUN_ID_ENV, DEFAULT_RUN_ID), help="run_id label")
    args = parser.parse_args(argv)
    # Our own lines only: library loggers (httpx logs every request URL at INFO) stay at WARNING.
    logging.basicConfig(level=logging.WARNING, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    logger.setLevel(logging.INFO)

    try:
        config = load_config(args.config)
    except ConfigError as e:
        print(f"loadctl probes: {e}", file=sys.stderr)
        return 2
    runner = ProbeRunner([(probe, build_sampler(probe)) for probe in config.probes])
    registry = CollectorRegistry(auto_describe=False)
    registry.register(ProbeCollector(runner, run_id=args.run_id))
    try:
        server, _thread = start_http_server(args.port, addr=args.host, registry=registry)
    except OSError as e:
        print(f"loadctl probes: cannot serve on {args.host}:{args.port}: {e.strerror}", file=sys.stderr)
        return 3

    stop = threading.Event()

    def _stop(signum: int, frame: FrameType | None) -> None:
        stop.set()

    signal.signal(signal.SIGTERM, _stop)
    signal.signal(signal.SIGINT, _stop)
    runner.start()
    logger.info(
        "serving http://%s:%d/metrics for run %s: %s",
        args.host,
        args.port,
        args.run_id,
        ", ".join(_describe(p) for p in config.probes),
    )
    while not stop.wait(1.0):
        pass
    runner.stop()
    server.shutdown()
    server.server_close()
    logger.info("stopped")
    return 0


if __name__ == "__main__":
    sys.exit(main())
