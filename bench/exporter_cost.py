"""What one scrape of the master's exporter costs, at 10, 50 and 200 request names.

Why this exists
---------------
Issue 15 measured 19 ms / 349 kB per scrape at 10 names, 100 ms / 1.7 MB at 50 and 1.0-1.8 s /
6.9 MB at 200 (327 buckets per name and method, families built per scrape on Locust's event loop).
This fills a real Locust RequestStats (a local runner's, in this process: the same structures a
master aggregates into) with N names x REQUESTS requests of a wide lognormal spread, 2 % of them
failed (two statuses each), then measures per resolution (histogram.py):

  series     samples in one exposition (what Prometheus stores per scrape)
  bytes      the exposition as Prometheus asks for it (OpenMetrics; protobuf for native), plain and gzipped
  build      snapshot + families + encoding, with the stats changed before each scrape (every
             scrape builds: the worst case, as during load with reports every second)
  on loop    the part of that which runs on the event loop (exposition.py: the snapshot)
  cached     a scrape of an unchanged version (served from the cache)
  uncached   prometheus_client's generate_latest over the collector: the pre-cache path

Times are medians of SCRAPES scrapes, in ms. Goals (issue 15): build < 20 ms at 50 names and
< 100 ms at 200. Always exits 0 (a benchmark, not a test).

Usage: .venv/bin/python bench/exporter_cost.py [--names 10 50 200] [--resolutions standard fine]
"""

from locust import User, task  # isort: skip  (locust first: gevent monkey-patching)

import argparse
import gzip
import math
import random
import statistics
import time
from collections.abc import Callable

from locust.env import Environment
from prometheus_client import CollectorRegistry, generate_latest

from locust_workers.contract import LATENCY_BUCKETS, NATIVE_LATENCY
from locust_workers.exporter import LocustCollector
from locust_workers.exposition import CachedExposition
from locust_workers.failed_times import FailedTimes, record_failures
from locust_workers.protobuf_exposition import CONTENT_TYPE as PROTOBUF_CONTENT_TYPE

REQUESTS = 2000
SCRAPES = 15
OPENMETRICS = "application/openmetrics-text;version=1.0.0,text/plain;version=0.0.4;q=0.5"


class Idle(User):
    @task
    def nothing(self) -> None:
        pass


def filled(names: int, rng: random.Random) -> tuple[Environment, FailedTimes]:
    env = Environment(user_classes=[Idle])
    env.create_local_runner()
    failed = FailedTimes(local=True)
    record_failures(env, failed)
    for index in range(names):
        median = math.exp(rng.uniform(math.log(5), math.log(2000)))
        for n in range(REQUESTS):
            fire(env, f"/api/endpoint/{index}", rng.lognormvariate(math.log(median), 1.0), n)
    return env, failed


def fire(env: Environment, name: str, ms: float, n: int = 1) -> None:
    error = None if n % 50 else (ConnectionError("refused") if n % 100 else TimeoutError("slow"))
    env.events.request.fire(
        request_type="GET", name=name, response_time=ms, response_length=0, exception=error, context={}
    )


def median_ms(action: Callable[[], object], before: Callable[[], object] = lambda: None) -> float:
    times = []
    for _ in range(SCRAPES):
        before()
        start = time.perf_counter()
        action()
        times.append(time.perf_counter() - start)
    return 1000 * statistics.median(times)


def measure(names: int, resolution: str) -> dict[str, float]:
    env, failed = filled(names, random.Random(names))
    collector = LocustCollector(
        env, run_id="bench", profile="bench", latency_buckets=resolution, failed=failed
    )
    native = resolution == NATIVE_LATENCY
    # native histograms travel as protobuf, which Prometheus 3 asks for (as the plugin negotiates)
    app = CachedExposition(collector, negotiate=native)
    accept = PROTOBUF_CONTENT_TYPE if native else OPENMETRICS
    environ = {"REQUEST_METHOD": "GET", "HTTP_ACCEPT": accept, "HTTP_ACCEPT_ENCODING": ""}

    def scrape(encoding: str = "") -> bytes:
        return b"".join(app(environ | {"HTTP_ACCEPT_ENCODING": encoding}, lambda *_a: None))

    def change() -> None:
        fire(env, "/api/endpoint/0", 12.0)

    body = scrape()
    # one stored series per sample; a native histogram's sample is one series with all its buckets
    series = sum(len(family.samples) for family in collector.collect())
    registry = CollectorRegistry(auto_describe=False)
    registry.register(collector)
    result = {
        "series": series,
        "kB": len(body) / 1000,
        "kB gzip": len(gzip.compress(body)) / 1000,
        "build": median_ms(scrape, change),
        "on loop": median_ms(collector.snapshot),
        "cached": median_ms(scrape),
        "uncached": median_ms(lambda: generate_latest(registry), change),
    }
    env.runner.quit()
    return result


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--names", type=int, nargs="+", default=[10, 50, 200])
    parser.add_argument("--resolutions", nargs="+", default=list(LATENCY_BUCKETS), choices=LATENCY_BUCKETS)
    args = parser.parse_args()
    columns = ("series", "kB", "kB gzip", "build", "on loop", "cached", "uncached")
    print(f"{REQUESTS} requests per name, 2 % failed; times: median ms of {SCRAPES} scrapes")
    print("| names | resolution | " + " | ".join(columns) + " |")
    print("|---" * (len(columns) + 2) + "|")
    for names in args.names:
        for resolution in args.resolutions:
            found = measure(names, resolution)
            cells = [f"{found[c]:.0f}" if c == "series" else f"{found[c]:.1f}" for c in columns]
            print(f"| {names} | {resolution} | " + " | ".join(cells) + " |", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
