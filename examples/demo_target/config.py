"""Settings for the demo target, from command-line flags with environment fallbacks.

The demo target is started both by hand and by `make run`/the controller, which find it
easier to pass environment variables than to rewrite a command line; so every tunable has a
``DEMO_*`` variable, and an explicit flag always wins over the environment.
Parsing is pure (argv and environ are parameters) so it can be tested without a process.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass


@dataclass(frozen=True)
class DemoConfig:
    host: str = "127.0.0.1"
    port: int = 8000
    # Harvest is the expensive, abuse-prone endpoint, so it gets a per-caller token bucket.
    harvest_rate_per_minute: float = 60.0
    harvest_burst: int = 5
    # Worker slots for Studio generation (the "DB pool" the platform watches) and how many
    # requests may wait for a slot before we shed load with 503.
    pool_size: int = 4
    queue_size: int = 200
    # Multiplies every simulated delay; 0 makes the service answer as fast as it can.
    latency_scale: float = 1.0
    # Bound of the background crawl queue; when full, enqueue=true answers 429.
    crawl_queue_size: int = 1000
    # Seed for simulated latencies and crawl outcomes, so runs are comparable.
    seed: int = 1234


# DemoConfig field -> environment variable that sets it when the flag is absent
ENV_VARS: dict[str, str] = {
    "harvest_rate_per_minute": "DEMO_HARVEST_RATE_PER_MINUTE",
    "harvest_burst": "DEMO_HARVEST_BURST",
    "pool_size": "DEMO_POOL_SIZE",
    "queue_size": "DEMO_QUEUE_SIZE",
    "latency_scale": "DEMO_LATENCY_SCALE",
    "crawl_queue_size": "DEMO_CRAWL_QUEUE_SIZE",
}


def _positive_float(text: str) -> float:
    value = float(text)
    # A zero rate would mean "never refill", which is a misconfiguration, not a policy.
    if not value > 0:
        raise argparse.ArgumentTypeError(f"must be > 0, got {text!r}")
    return value


def _non_negative_float(text: str) -> float:
    value = float(text)
    if not value >= 0:
        raise argparse.ArgumentTypeError(f"must be >= 0, got {text!r}")
    return value


def _positive_int(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be >= 1, got {text!r}")
    return value


def _non_negative_int(text: str) -> int:
    value = int(text)
    if value < 0:
        raise argparse.ArgumentTypeError(f"must be >= 0, got {text!r}")
    return value


def _port(text: str) -> int:
    value = int(text)
    if not 0 <= value <= 65535:
        raise argparse.ArgumentTypeError(f"not a TCP port: {text!r}")
    return value


def build_parser(environ: Mapping[str, str]) -> argparse.ArgumentParser:
    defaults = DemoConfig()
    parser = argparse.ArgumentParser(
        prog="python -m examples.demo_target",
        description="Bundled system under test: a small recipe API with search, studio and harvest.",
    )
    parser.add_argument("--host", default=defaults.host)
    parser.add_argument("--port", type=_port, default=defaults.port, help="0 picks a free port")

    def add(name: str, kind: Callable[[str], object], help_text: str) -> None:
        env = ENV_VARS[name]
        # String defaults go through `type`, so a bad env value fails exactly like a bad flag.
        default = environ.get(env, str(getattr(defaults, name)))
        parser.add_argument(
            "--" + name.replace("_", "-"),
            type=kind,
            default=default,
            help=f"{help_text} (env {env}, default {getattr(defaults, name)})",
        )

    add("harvest_rate_per_minute", _positive_float, "harvest tokens refilled per caller per minute")
    add("harvest_burst", _positive_int, "harvest token bucket capacity per caller")
    add("pool_size", _positive_int, "studio generation worker slots")
    add("queue_size", _non_negative_int, "max requests waiting for a generation slot before 503")
    add("latency_scale", _non_negative_float, "multiplier for all simulated latencies")
    add("crawl_queue_size", _positive_int, "bound of the background crawl queue")
    return parser


def parse_config(argv: Sequence[str] | None, environ: Mapping[str, str]) -> DemoConfig:
    args = build_parser(environ).parse_args(argv)
    return DemoConfig(
        host=args.host,
        port=args.port,
        harvest_rate_per_minute=args.harvest_rate_per_minute,
        harvest_burst=args.harvest_burst,
        pool_size=args.pool_size,
        queue_size=args.queue_size,
        latency_scale=args.latency_scale,
        crawl_queue_size=args.crawl_queue_size,
    )
