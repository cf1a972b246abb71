"""Pure pieces of the controller: phase windows, progress line, Prometheus config."""

from controller.models import ScrapeTarget
from controller.progress import Snapshot, format_snapshot
from controller.prom.config import EXPORTER_JOB, scrape_config
from controller.prom.timeline import phase_windows


def test_phase_windows_end_where_the_next_begins():
    windows = phase_windows({1: ("steady", 110.0), 0: ("ramp_up", 100.0), 2: ("ramp_down", 170.0)}, 180.0)
    assert [(w.stage, w.phase, w.start, w.end) for w in windows] == [
        (0, "ramp_up", 100.0, 110.0),
        (1, "steady", 110.0, 170.0),
        (2, "ramp_down", 170.0, 180.0),
    ]


def test_phase_windows_of_an_interrupted_run_stop_at_the_stop():
    windows = phase_windows({0: ("ramp_up", 100.0)}, 104.5)
    assert [(w.phase, w.end) for w in windows] == [("ramp_up", 104.5)]


def test_progress_line():
    snap = Snapshot(
        phase="steady",
        users=20,
        workers=2,
        rps=41.26,
        p95_ms=63.7,
        requests=1000,
        failures=25,
        started_at=1000.0,
    )
    line = format_snapshot(snap, planned_s=90, now=1030.0)
    for part in (
        "phase steady",
        "users    20",
        "workers 2",
        "rps    41.3",
        "p95    64 ms",
        "requests 1000",
        "failures 25 (2.5%)",
        "1:00 left",
    ):
        assert part in line, (part, line)


def test_progress_line_before_start():
    snap = Snapshot(None, None, None, None, None, None, None, None)
    assert "waiting for workers" in format_snapshot(snap, planned_s=90, now=0)


def test_scrape_config_labels_every_job_with_the_run_id():
    config = scrape_config(
        run_id="r9",
        exporter_address="127.0.0.1:9646",
        targets=(ScrapeTarget(name="target", url="https://10.0.0.5:8443/custom/metrics"),),
    )
    jobs = {job["job_name"]: job for job in config["scrape_configs"]}
    assert set(jobs) == {EXPORTER_JOB, "target"}
    assert jobs["target"]["scheme"] == "https" and jobs["target"]["metrics_path"] == "/custom/metrics"
    assert jobs["target"]["static_configs"] == [{"targets": ["10.0.0.5:8443"], "labels": {"run_id": "r9"}}]
    assert all(job["scrape_interval"] == "1s" for job in jobs.values())


def test_scrape_target_url_parts_default_to_the_metrics_path():
    plain = ScrapeTarget(name="t", url="http://127.0.0.1:8000")
    assert (plain.scheme, plain.address, plain.metrics_path) == ("http", "127.0.0.1:8000", "/metrics")
    federate = ScrapeTarget(name="t", url="https://sut.example/federate?match[]=up")
    assert (federate.scheme, federate.address) == ("https", "sut.example")
    assert federate.metrics_path == "/federate?match[]=up"  # the query as written
