"""The master's /metrics: families built once per stats change, and never on Locust's event loop.

Why: building and encoding the families of a run with 200 request names took a second per scrape
(issue 15), on the gevent loop that also receives the workers' reports and heartbeats; under CPU
contention the master then lost its workers. Here a scrape
  1. asks the collector for its version (a few attributes) and, when the cached answer for that
     version is still there, serves it as is;
  2. otherwise takes a snapshot (plain dict copies, on the loop, no switch in between: the one
     part that must see Locust's structures) and hands building, encoding and gzip to
     `run_off_loop` (the plugin passes gevent's thread pool: a real OS thread, while the loop
     goes on serving); the answer is cached for later scrapes of the same version.
A version older than MAX_AGE_S is rebuilt anyway: gauges such as the workers' CPU change
without the stats changing.

The thread sees only the snapshot and prometheus_client's pure encoders, never a gevent-patched
lock or Locust's live structures. Content negotiation is prometheus_client's own (choose_encoder),
so an encoding that needs another format (a native histogram) only changes what it picks.
"""

from __future__ import annotations

import gzip
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any

from prometheus_client.exposition import choose_encoder, generate_latest, gzip_accepted
from prometheus_client.registry import Collector

from locust_workers.exporter import ClassicHistogram, LocustCollector, StatsSnapshot
from locust_workers.protobuf_exposition import choose_protobuf

MAX_AGE_S = 5.0
# Every Prometheus accepts the text format; the classic histograms write it themselves (fast_text)
TEXT_CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
RunOffLoop = Callable[[Callable[[], bytes]], bytes]


def fast_text(collector: Collector) -> bytes:
    """Text format 0.0.4: the classic histograms' own lines, prometheus_client's for the rest."""
    families = list(collector.collect())
    others = [f for f in families if not isinstance(f, ClassicHistogram)]
    texts = [f.text().encode() for f in families if isinstance(f, ClassicHistogram)]
    return generate_latest(_Families(others)) + b"".join(texts)


def run_here(render: Callable[[], bytes]) -> bytes:
    """For tests and processes without an event loop to spare."""
    return render()


@dataclass(frozen=True)
class _Families(Collector):
    """A finished list of families in the shape encoders take (they only call collect())."""

    families: list[Any]

    def collect(self) -> Iterator[Any]:
        return iter(self.families)


class CachedExposition:
    """A WSGI app serving `collector`'s families, cached per version and encoding."""

    def __init__(
        self,
        collector: LocustCollector,
        *,
        run_off_loop: RunOffLoop = run_here,
        negotiate: bool = False,
        max_age_s: float = MAX_AGE_S,
        clock: Callable[[], float] = time.time,
        extra: Sequence[Collector] = (),
    ) -> None:
        self.collector = collector
        # collectors of constant families served beside the collector's (the run's gate thresholds,
        # gate_thresholds.py): their collect() is cheap and touches no Locust structure
        self.extra = tuple(extra)
        self.run_off_loop = run_off_loop
        # False: always fast_text. True: prometheus_client's content negotiation (OpenMetrics...),
        # for families the text format cannot carry (a native histogram)
        self.negotiate = negotiate
        self.max_age_s = max_age_s
        self.clock = clock
        self.renders = 0  # how many scrapes built the families (tests, benchmark)
        # in a Locust process threading is gevent-patched: a scrape waits for another's render
        # cooperatively, and then finds the answer cached
        self._lock = threading.Lock()
        self._version: tuple[Any, ...] | None = None
        self._built_at = 0.0
        self._cache: dict[tuple[str, bool], bytes] = {}
        self._snapshot: StatsSnapshot | None = None

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        if environ.get("REQUEST_METHOD") != "GET":
            start_response("405 Method Not Allowed", [("Allow", "GET")])
            return [b"use GET\n"]
        if self.negotiate:
            accept = environ.get("HTTP_ACCEPT", "")
            encoder, content_type = choose_protobuf(accept) or choose_encoder(accept)
        else:
            encoder, content_type = fast_text, TEXT_CONTENT_TYPE
        gzipped = gzip_accepted(environ.get("HTTP_ACCEPT_ENCODING", ""))
        body = self.body(encoder, content_type, gzipped=gzipped)
        headers = [("Content-Type", content_type)] + ([("Content-Encoding", "gzip")] if gzipped else [])
        start_response("200 OK", headers)
        return [body]

    def body(self, encoder: Callable[[Any], bytes], content_type: str, *, gzipped: bool) -> bytes:
        """The encoded families of the collector's current version (cached, or built now)."""
        with self._lock:
            version = self.collector.version()
            now = self.clock()
            if version != self._version or now - self._built_at > self.max_age_s:
                self._version, self._built_at, self._cache = version, now, {}
                self._snapshot = self.collector.snapshot()
            key = (content_type, gzipped)
            if key not in self._cache:
                self._cache[key] = self._render(self._snapshot, encoder, gzipped=gzipped)
            # served numbers equal the current ones (same version): the final scrape has happened
            self.collector.last_scrape_at = now
            return self._cache[key]

    def _render(
        self, snapshot: StatsSnapshot | None, encoder: Callable[[Any], bytes], *, gzipped: bool
    ) -> bytes:
        collector = self.collector
        extra = [family for other in self.extra for family in other.collect()]

        def render() -> bytes:
            families = [*(collector.families(snapshot) if snapshot is not None else []), *extra]
            output = encoder(_Families(families))
            return gzip.compress(output) if gzipped else output

        self.renders += 1
        return self.run_off_loop(render)
