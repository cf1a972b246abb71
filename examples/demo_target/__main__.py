"""Entry point: ``python -m examples.demo_target [--host ...] [--port ...] ...``.

Runs one uvicorn process. uvicorn handles SIGTERM/SIGINT by draining in-flight requests and
running the app's shutdown (which stops the crawler); we bound that drain so a stuck client
cannot keep the process alive after the controller asked it to stop.
"""

from __future__ import annotations

import logging
import os
import signal
import socket
import sys
from collections.abc import Sequence
from types import FrameType

import uvicorn

from .app import create_app
from .config import DemoConfig, parse_config

log = logging.getLogger("examples.demo_target")


class _AnnouncingServer(uvicorn.Server):
    """Logs our one start line once the socket is bound, with the real port (even for --port 0)."""

    def __init__(self, config: uvicorn.Config, demo: DemoConfig) -> None:
        super().__init__(config)
        self._demo = demo

    async def startup(self, sockets: list[socket.socket] | None = None) -> None:
        await super().startup(sockets)
        if not self.started or not self.servers or not self.servers[0].sockets:
            return
        host, port = self.servers[0].sockets[0].getsockname()[:2]
        shown = f"[{host}]" if ":" in host else host
        d = self._demo
        log.info(
            "demo_target listening on http://%s:%d (harvest %g/min burst %d, pool %d, queue %d, latency x%g)",
            shown,
            port,
            d.harvest_rate_per_minute,
            d.harvest_burst,
            d.pool_size,
            d.queue_size,
            d.latency_scale,
        )


def _exit_cleanly(signum: int, frame: FrameType | None) -> None:
    sys.exit(0)


def main(argv: Sequence[str] | None = None) -> int:
    config = parse_config(argv, os.environ)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    server = _AnnouncingServer(
        uvicorn.Config(
            create_app(config),
            host=config.host,
            port=config.port,
            # Our start line replaces uvicorn's; per-request access logs would flood under load
            # (the metrics already count every request).
            log_level="warning",
            access_log=False,
            lifespan="on",
            timeout_graceful_shutdown=5,
        ),
        config,
    )
    # uvicorn drains, then re-raises the signal it caught against the previous handler. For
    # SIGTERM that would end the process as "killed by signal 15"; a stop the controller asked
    # for and that completed cleanly is a success, so make it exit 0 instead.
    signal.signal(signal.SIGTERM, _exit_cleanly)
    try:
        server.run()
    except KeyboardInterrupt:
        # uvicorn re-raises the SIGINT it handled after shutting down cleanly; nothing to add.
        return 130
    return 0


if __name__ == "__main__":
    sys.exit(main())
