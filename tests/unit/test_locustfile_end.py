"""locustfile_end.py against a real in-process Locust runner: who stopped the test, the exit code the
locustfile asked for, and the exporter's series that carry both to the controller."""

from locust import LoadTestShape, User, constant, task  # isort: skip  (locust first: gevent patching)

import logging
import sys
import time

import gevent
import pytest
from locust.env import Environment
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.parser import text_string_to_metric_families

from locust_workers.contract import LOCUSTFILE_STOP_TIMESTAMP_SECONDS, PROCESS_EXIT_CODE
from locust_workers.exporter import LocustCollector
from locust_workers.locustfile_end import MESSAGE_CHARS, LocustfileEnd, watch_locustfile_end

locustfile_log = logging.getLogger("my_locustfile")


class Idle(User):
    wait_time = constant(0.05)

    @task
    def nothing(self) -> None:
        pass


class HalfSecond(LoadTestShape):
    def tick(self) -> tuple[int, float] | None:
        return (1, 10) if self.get_run_time() < 0.5 else None


@pytest.fixture(autouse=True)
def root_handlers():
    """watch_locustfile_end adds a handler to the root logger: take it away after each test."""
    before = list(logging.getLogger().handlers)
    yield
    logging.getLogger().handlers[:] = before


def running(shape: type[LoadTestShape] | None = None) -> tuple[Environment, LocustfileEnd]:
    env = Environment(user_classes=[Idle], shape_class=shape() if shape else None)
    runner = env.create_local_runner()
    end = watch_locustfile_end(env)
    if shape:
        runner.start_shape()
    else:
        runner.start(1, spawn_rate=10, wait=False)
    gevent.sleep(0.2)
    return env, end


def series(env: Environment, end: LocustfileEnd) -> dict:
    registry = CollectorRegistry(auto_describe=False)
    registry.register(LocustCollector(env, run_id="r1", profile="p", locustfile_end=end))
    text = generate_latest(registry).decode()
    return {s.name: s for f in text_string_to_metric_families(text) for s in f.samples}


def test_a_quit_from_the_locustfile_is_recorded_with_where_and_its_last_words():
    env, end = running()
    assert env.runner is not None
    locustfile_log.error("fail ratio 0.31 > 0.2, quitting")
    logging.getLogger("locust.runners").warning("Locust's own words are not the locustfile's")
    before = time.time()
    line = sys._getframe().f_lineno + 1
    env.runner.quit()
    assert end.stopped_by == f"runner.quit() from test_locustfile_end.py:{line}"
    assert end.stop_message == "fail ratio 0.31 > 0.2, quitting"
    assert end.stopped_at is not None and before <= end.stopped_at <= time.time()
    sample = series(env, end)[LOCUSTFILE_STOP_TIMESTAMP_SECONDS]
    assert sample.value == pytest.approx(end.stopped_at)
    assert sample.labels == {
        "run_id": "r1",
        "caller": f"runner.quit() from test_locustfile_end.py:{line}",
        "message": "fail ratio 0.31 > 0.2, quitting",
    }
    assert PROCESS_EXIT_CODE not in series(env, end)  # it asked for no exit code


def test_a_test_stopped_mid_stage_is_reported_stopped_not_in_its_stage():
    """After the locustfile's quit the shape still names its stage; the phase must say the test
    stopped, or the controller sees workers leaving "during phase steady" and calls them lost."""

    class Steady(HalfSecond):
        current_phase = "steady"

    env, end = running(Steady)
    assert env.runner is not None
    assert series(env, end)["locust_run_info"].labels["phase"] == "steady"
    env.runner.quit()
    assert series(env, end)["locust_run_info"].labels["phase"] == "stopped"


def test_a_stop_from_the_locustfile_is_named_as_a_stop():
    env, end = running()
    assert env.runner is not None
    line = sys._getframe().f_lineno + 1
    env.runner.stop()
    assert end.stopped_by == f"runner.stop() from test_locustfile_end.py:{line}"


def test_a_quit_spawned_as_a_greenlet_is_the_locustfiles_too():
    env, end = running()
    assert env.runner is not None
    gevent.spawn(env.runner.quit).join(timeout=5)
    assert end.stopped_by == "runner.quit() from a greenlet" and end.stopped_at is not None


def test_locusts_own_stop_at_the_end_of_the_shape_is_not_the_locustfiles():
    env, end = running(HalfSecond)
    assert env.runner is not None
    deadline = time.monotonic() + 10
    while env.runner.state != "stopped" and time.monotonic() < deadline:
        gevent.sleep(0.1)
    assert env.runner.state == "stopped"
    assert end == LocustfileEnd()
    assert LOCUSTFILE_STOP_TIMESTAMP_SECONDS not in series(env, end)


def test_the_exit_code_is_read_after_every_quitting_hook():
    env, end = running()
    assert env.runner is not None

    @env.events.quitting.add_listener  # registered last, so with reverse=True it runs first...
    def _judge(environment, **_kw) -> None:
        locustfile_log.error("Test failed due to failure ratio > 1%%: %s", "x" * 500)
        environment.process_exit_code = 1

    @env.events.quitting.add_listener  # ...and this one, registered after it, before it
    def _too_early(environment, **_kw) -> None:
        assert environment.process_exit_code is None

    env.runner.stop()  # Locust's shutdown(): the test stopped, then quitting, then quit
    env.events.quitting.fire(environment=env, reverse=True)
    assert end.exit_code is None  # not before Locust's quit event
    env.events.quit.fire(exit_code=1)
    assert end.exit_code == 1
    assert end.exit_message == ("Test failed due to failure ratio > 1%: " + "x" * 500)[:MESSAGE_CHARS]
    sample = series(env, end)[PROCESS_EXIT_CODE]
    assert sample.value == 1 and sample.labels["message"] == end.exit_message


def test_an_explicit_exit_code_0_is_exported_as_0():
    env, end = running()
    env.process_exit_code = 0
    env.events.quit.fire(exit_code=0)
    assert series(env, end)[PROCESS_EXIT_CODE].value == 0
