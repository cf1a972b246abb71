"""loadctl's piece of every Locust process, loaded next to the user's locustfile (`-f user.py,plugin.py`).

The user's locustfile stays unchanged. Configuration comes from environment variables, which work
the same for local processes and for pods; contract.py names them, with their defaults: the run id
and profile (labels), where the master serves /metrics, the stage table (when set, this file
defines the run's shape; unset when the locustfile has its own shape, whose phases this file notes),
user class weights, how long the master waits for a final scrape (and
serves Locust's own files, locust_files.py), and
three knobs (worker report interval, the cap on distinct request names, the latency buckets'
resolution).

The heartbeat (heartbeat.py, k8s only): the master stops the test when the controller stops
renewing its Lease.

The locustfile's own verdict (locustfile_end.py): the exit code its quitting hook asked for and a
stop of its own, exported by the master for the controller's verdict.

Custom metrics (metrics.py) and failed requests' response times (failed_times.py): workers ship
what their users observed with every stats report; the master adds the reports up and the
exporter serves them.

Workers report every second rather than Locust's 3 s: a request reaches the master's counters
(and so Prometheus) only with a report, and gates cut phases at their boundaries; with 3 s
reports a 60 s phase could gain or lose up to ~3 s of requests at each edge. A report is a
msgpack of the stats entries: about a millisecond of CPU per report on the worker and the master.
"""

from __future__ import annotations

import logging
import os
import signal
import time
from collections.abc import Iterable

import gevent
import locust.runners
from gevent.pywsgi import WSGIServer
from locust import events
from locust.runners import WorkerRunner

from locust_workers.contract import (
    GATE_THRESHOLDS_ENV,
    NATIVE_LATENCY,
    STAGES_ENV,
    ProcessSettings,
    decode_gate_thresholds,
    settings_from_env,
)
from locust_workers.custom_totals import CustomTotals, merge_worker_reports
from locust_workers.exporter import LocustCollector
from locust_workers.exposition import CachedExposition
from locust_workers.failed_times import FailedTimes, record_failures
from locust_workers.failed_times import merge_worker_reports as merge_failed_times
from locust_workers.failed_times import ship_with_worker_reports as ship_failed_times
from locust_workers.gate_thresholds import GateThresholdCollector
from locust_workers.heartbeat import watch as watch_heartbeat
from locust_workers.locust_files import LocustFiles
from locust_workers.locustfile_end import watch_locustfile_end
from locust_workers.metrics import custom, ship_with_worker_reports
from locust_workers.shapes import StageTableShape, track_phases

logger = logging.getLogger("loadctl")

if os.environ.get(STAGES_ENV):

    class LoadctlStageTable(StageTableShape):
        """The profile's stage table (from STAGES_ENV), picked up by Locust as the run's shape."""


def apply_user_weights(
    user_classes: list[type], weights: dict[str, int], available: Iterable[type] = ()
) -> None:
    by_name = {cls.__name__: cls for cls in [*available, *user_classes]}
    unknown = sorted(set(weights) - set(by_name))
    if unknown:
        raise ValueError(f"user_weights names classes not in the locustfile: {', '.join(unknown)}")
    for name, weight in weights.items():
        by_name[name].weight = weight  # type: ignore[attr-defined]
        if weight > 0 and by_name[name] not in user_classes:
            # Locust drops classes of weight 0 before plugins run; weights name them to take part.
            user_classes.append(by_name[name])


@events.init.add_listener
def _on_init(environment, **_kwargs) -> None:
    settings = settings_from_env(os.environ)
    if settings.user_weights:
        available = (getattr(environment, "available_user_classes", None) or {}).values()
        apply_user_weights(environment.user_classes, settings.user_weights, available)
    max_names = settings.max_names
    custom.max_names = max_names
    if isinstance(environment.runner, WorkerRunner):
        # read by WorkerRunner.stats_reporter at every loop, so setting it here takes effect
        locust.runners.WORKER_REPORT_INTERVAL = settings.worker_report_interval_s
        ship_with_worker_reports(environment, custom)
        worker_failures = FailedTimes()
        record_failures(environment, worker_failures)
        ship_failed_times(environment, worker_failures)
        return  # workers only run users; the master aggregates and exports

    shape = environment.shape_class
    if shape is not None and not isinstance(shape, StageTableShape):
        # the locustfile's own shape runs the load (the controller set no stage table): its phases
        # are noted at each tick, for locust_run_info and the gates' windows
        track_phases(shape)
        logger.info("loadctl: running the locustfile's own shape %s", type(shape).__name__)

    # Locust (2.47) installs its SIGTERM handler only after a headless shape test has finished, so
    # a SIGTERM during the test (pod deletion, controller stop) kills the master with no final stats.
    # Until then, treat SIGTERM like Ctrl-C, which Locust handles gracefully at every point.
    signal.signal(signal.SIGTERM, signal.default_int_handler)

    # In a local run the users observe in this process: the totals drain its store at each scrape.
    totals = CustomTotals(max_names=max_names, local=custom)
    merge_worker_reports(environment, totals)
    failed = FailedTimes(local=True)  # a local runner's users record here; a master only merges
    record_failures(environment, failed)
    merge_failed_times(environment, failed)
    # Before _final_scrape below: the quit event's listeners run in order, and the exit code the
    # locustfile asked for must be set before the exporter holds for its final scrape.
    locustfile_end = watch_locustfile_end(environment)
    collector = LocustCollector(
        environment,
        run_id=settings.run_id,
        profile=settings.profile,
        max_names=max_names,
        latency_buckets=settings.latency_buckets,
        custom=totals,
        failed=failed,
        locustfile_end=locustfile_end,
    )
    # the run's gate thresholds are served with the exporter's families (constant over the run)
    thresholds = decode_gate_thresholds(os.environ.get(GATE_THRESHOLDS_ENV, ""))
    gates = GateThresholdCollector(run_id=settings.run_id, thresholds=thresholds)
    # Families are built in gevent's thread pool (a real OS thread), cached per stats change:
    # the loop keeps receiving reports and heartbeats while a scrape is encoded (exposition.py)
    app = CachedExposition(
        collector,
        run_off_loop=gevent.get_hub().threadpool.apply,
        extra=(gates,),
        # native histograms travel only as protobuf, which Prometheus 3 asks for (scrape_native_histograms)
        negotiate=settings.latency_buckets == NATIVE_LATENCY,
    )
    # Locust's own files, for a master whose disk the controller cannot read (a pod): LOCUST_FILES_PATH
    files = LocustFiles() if settings.locust_files_timeout_s > 0 else None
    address = (settings.exporter_host, settings.exporter_port)
    server = WSGIServer(address, files.wrap(app) if files else app, log=None, error_log=logger)
    server.start()  # fails loudly (OSError) if the port is taken: better than a run without metrics
    logger.info("loadctl exporter serving http://%s:%d/metrics", *address)

    # the load dies with its controller: the master watches the Lease loadctl renews (k8s only)
    watch_heartbeat(environment)

    @environment.events.test_start.add_listener
    def _started(**_kw) -> None:
        collector.test_started_at = collector.test_started_at or time.time()

    @environment.events.test_stop.add_listener
    def _stopped(**_kw) -> None:
        collector.test_stopped_at = time.time()

    @environment.events.quit.add_listener
    def _final_scrape(**_kw) -> None:
        if files is not None:
            files.render(environment)
        if not getattr(environment, "loadctl_heartbeat_stopped", None):  # else nobody would collect
            hold_until_collected(collector, files, settings)
        server.stop(timeout=1)


def hold_until_collected(
    collector: LocustCollector, files: LocustFiles | None, settings: ProcessSettings
) -> None:
    """The load has stopped and the workers' last stats are in: keep the exporter up until
    Prometheus has scraped these final numbers (so its counters equal Locust's own totals) and the
    controller has fetched Locust's files -- each for at most its own timeout."""
    final_at = time.time()
    scrape_deadline = final_at + settings.final_scrape_timeout_s
    files_deadline = final_at + settings.locust_files_timeout_s

    def scrape_pending() -> bool:
        return collector.last_scrape_at <= final_at and time.time() < scrape_deadline

    def files_pending() -> bool:
        return files is not None and not files.fetched and time.time() < files_deadline

    while scrape_pending() or files_pending():
        gevent.sleep(0.1)
    if collector.last_scrape_at <= final_at and settings.final_scrape_timeout_s > 0:
        logger.warning(
            "loadctl exporter: no scrape within %.0fs after the load stopped", settings.final_scrape_timeout_s
        )
    if files is not None and not files.fetched:
        logger.warning(
            "loadctl exporter: Locust's files not fetched within %.0fs after the load stopped",
            settings.locust_files_timeout_s,
        )
