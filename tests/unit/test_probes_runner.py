"""The probe runner without threads or servers: failures shown and counted, never raised, logs
rate-limited, secrets masked, and the collector's families as Prometheus parses them.

The samplers here are small scripted stand-ins implementing the Sampler protocol (the real ones
run against real servers in tests/integration/test_probes.py); the clocks are driven by hand.
"""

from __future__ import annotations

import logging

import pytest
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.parser import text_string_to_metric_families

from locust_workers.probes.base import ProbeError, Reading
from locust_workers.probes.config import ProbesFile
from locust_workers.probes.runner import FailureLog, ProbeCollector, ProbeRunner

SECRET_DSN = "postgresql://app:pa55word@db.internal/shop"


class Scripted:
    """Answers each sample() with the next item: a list of readings, or an exception to raise."""

    def __init__(self, *answers: list[Reading] | Exception, secrets: tuple[str, ...] = ()) -> None:
        self.answers = list(answers)
        self._secrets = list(secrets)
        self.closed = False

    def sample(self) -> list[Reading]:
        answer = self.answers.pop(0) if len(self.answers) > 1 else self.answers[0]
        if isinstance(answer, Exception):
            raise answer
        return answer

    def secrets(self) -> list[str]:
        return self._secrets

    def close(self) -> None:
        self.closed = True


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


CONFIGS = ProbesFile.model_validate(
    {
        "probes": [
            {"name": "db", "type": "postgres", "dsn_env": "PG_DSN"},
            {"name": "crawler", "type": "http_json", "url": "http://h/stats", "fields": {"g": "a"}},
        ]
    }
).probes
GAUGE = Reading("crawler_domain_failure_rate", 0.25, "help", (("domain", "a.org"),))


def scrape(runner: ProbeRunner, run_id: str = "r-1") -> dict[tuple[str, frozenset], float]:
    registry = CollectorRegistry(auto_describe=False)
    registry.register(ProbeCollector(runner, run_id=run_id))
    text = generate_latest(registry).decode()
    return {
        (s.name, frozenset(s.labels.items())): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }


def labels(**kw: str) -> frozenset:
    return frozenset(kw.items())


def test_failure_log_first_failure_then_one_summary_a_minute_then_recovery():
    log = FailureLog("db", every_s=60)
    assert log.failed("refused", now=0) == "probe db: failing: refused"
    assert [log.failed("refused", now=t) for t in (5, 10, 59)] == [None, None, None]
    assert log.failed("timed out", now=61) == "probe db: still failing (4 more errors in 60s): timed out"
    assert log.failed("timed out", now=62) is None
    assert log.succeeded() == "probe db: recovered after 6 failed samples"
    assert log.succeeded() is None
    assert log.failed("refused", now=200) == "probe db: failing: refused"


def test_a_failing_probe_shows_up_0_and_counts_while_the_other_keeps_reporting(caplog):
    clock = Clock()
    db = Scripted(ProbeError("cannot connect: refused"))
    crawler = Scripted([GAUGE])
    runner = ProbeRunner(list(zip(CONFIGS, [db, crawler], strict=True)), clock=clock, wall_clock=clock)
    assert scrape(runner) == {
        ("loadctl_probe_errors_total", labels(run_id="r-1", probe="db", type="postgres")): 0.0,
        ("loadctl_probe_errors_total", labels(run_id="r-1", probe="crawler", type="http_json")): 0.0,
    }  # before the first sample: no up yet, errors from 0 so rate() works from the start

    with caplog.at_level(logging.INFO, logger="loadctl.probes"):
        for _ in range(30):  # 30 samples over 60 s
            runner.sample_once(0)
            runner.sample_once(1)
            clock.now += 2
    got = scrape(runner)
    db_labels = labels(run_id="r-1", probe="db", type="postgres")
    crawler_labels = labels(run_id="r-1", probe="crawler", type="http_json")
    assert got[("loadctl_probe_up", db_labels)] == 0.0
    assert got[("loadctl_probe_errors_total", db_labels)] == 30.0
    assert got[("loadctl_probe_up", crawler_labels)] == 1.0
    assert got[("loadctl_probe_errors_total", crawler_labels)] == 0.0
    assert got[("crawler_domain_failure_rate", labels(run_id="r-1", probe="crawler", domain="a.org"))] == 0.25
    assert got[("loadctl_probe_last_success_timestamp_seconds", crawler_labels)] == 1058.0
    assert ("loadctl_probe_last_success_timestamp_seconds", db_labels) not in got
    assert not any(name.startswith("loadctl_postgres") for name, _ in got)  # down: no stale values
    # 30 failures in 58 s: one line, not thirty
    assert [r.getMessage() for r in caplog.records] == ["probe db: failing: cannot connect: refused"]

    db.answers = [[Reading("loadctl_postgres_max_connections", 100.0, "h")]]
    with caplog.at_level(logging.INFO, logger="loadctl.probes"):
        runner.sample_once(0)
    got = scrape(runner)
    assert got[("loadctl_probe_up", db_labels)] == 1.0
    assert got[("loadctl_postgres_max_connections", labels(run_id="r-1", probe="db"))] == 100.0
    assert caplog.records[-1].getMessage() == "probe db: recovered after 30 failed samples"


def test_any_exception_is_caught_and_its_secrets_masked(caplog):
    clock = Clock()
    failing = Scripted(
        RuntimeError(f'invalid dsn: missing "=" after "{SECRET_DSN}"'), secrets=(SECRET_DSN, "pa55word")
    )
    runner = ProbeRunner([(CONFIGS[0], failing)], clock=clock, wall_clock=clock)
    with caplog.at_level(logging.INFO, logger="loadctl.probes"):
        runner.sample_once(0)
    (record,) = caplog.records
    assert record.getMessage() == 'probe db: failing: RuntimeError: invalid dsn: missing "=" after "***"'
    assert "pa55word" not in caplog.text and "pa55word" not in generate_latest_text(runner)


def generate_latest_text(runner: ProbeRunner) -> str:
    registry = CollectorRegistry(auto_describe=False)
    registry.register(ProbeCollector(runner, run_id="r"))
    return generate_latest(registry).decode()


def test_counter_readings_get_total_and_one_family_per_name_across_probes():
    clock = Clock()
    one = Scripted([Reading("loadctl_redis_evicted_keys", 7.0, "h", kind="counter"), GAUGE])
    two = Scripted([Reading("crawler_domain_failure_rate", 0.5, "h", (("domain", "b.org"),))])
    runner = ProbeRunner(list(zip(CONFIGS, [one, two], strict=True)), clock=clock, wall_clock=clock)
    runner.sample_once(0)
    runner.sample_once(1)
    text = generate_latest_text(runner)
    assert text.count("# TYPE crawler_domain_failure_rate gauge") == 1
    types = {f.name: f.type for f in text_string_to_metric_families(text)}
    assert types["loadctl_redis_evicted_keys"] == "counter"
    assert 'loadctl_redis_evicted_keys_total{probe="db",run_id="r"} 7.0' in text
    rates = {
        dict(s.labels)["domain"]: (dict(s.labels)["probe"], s.value)
        for f in text_string_to_metric_families(text)
        for s in f.samples
        if s.name == "crawler_domain_failure_rate"
    }
    assert rates == {"a.org": ("db", 0.25), "b.org": ("crawler", 0.5)}


def test_warnings_are_logged_once(caplog):
    clock = Clock()
    sampler = Scripted([GAUGE])
    sampler.warnings = ["g: 300 entries in 'domains', kept 200"]  # type: ignore[attr-defined]
    runner = ProbeRunner([(CONFIGS[1], sampler)], clock=clock, wall_clock=clock)
    with caplog.at_level(logging.INFO, logger="loadctl.probes"):
        for _ in range(3):
            runner.sample_once(0)
    assert [r.getMessage() for r in caplog.records] == [
        "probe crawler: g: 300 entries in 'domains', kept 200"
    ]


@pytest.mark.parametrize("run_id", ["soak-20261125-020000", "adhoc"])
def test_every_series_carries_run_id_and_probe(run_id):
    clock = Clock()
    runner = ProbeRunner(
        list(zip(CONFIGS, [Scripted(ProbeError("x")), Scripted([GAUGE])], strict=True)),
        clock=clock,
        wall_clock=clock,
    )
    runner.sample_once(0)
    runner.sample_once(1)
    for _, series_labels in scrape(runner, run_id=run_id):
        assert dict(series_labels)["run_id"] == run_id and dict(series_labels)["probe"] in ("db", "crawler")
