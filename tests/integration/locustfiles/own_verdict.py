"""A locustfile that judges its own run, the two ways Locust documents (OWN_VERDICT picks one).

hook   every 20th request asks for a missing page (404: 5 % fail) and a quitting hook fails the
       run above 1 % failed, else sets exit code 0, as in Locust's docs ("Controlling the exit
       code of the Locust process")
clean  the same hook, and no request fails
quit   from FAIL_AFTER_S after its first request a process asks only for missing pages, and a
       checker greenlet in the master quits the test once over 20 % failed, as in Locust's docs
       ("Run a background greenlet": environment.runner.quit() on a threshold)
"""

from locust import HttpUser, constant, events, task  # isort: skip

import logging
import os
import time

import gevent
from locust.runners import STATE_CLEANUP, STATE_STOPPED, STATE_STOPPING, WorkerRunner

MODE = os.environ.get("OWN_VERDICT", "hook")
FAIL_AFTER_S = 4.0
_first_request: list[float] = []
_sent = [0]


class Shopper(HttpUser):
    wait_time = constant(0.05)

    @task
    def search(self) -> None:
        _sent[0] += 1
        _first_request[:] = _first_request or [time.monotonic()]
        failing_now = time.monotonic() - _first_request[0] > FAIL_AFTER_S
        missing = {"hook": _sent[0] % 20 == 0, "quit": failing_now}.get(MODE, False)
        path = "/v1/no-such-page" if missing else "/v1/recipes"
        self.client.get(path, params={"q": "soup"}, name="search")


@events.quitting.add_listener
def _(environment, **kw):
    if MODE not in ("hook", "clean"):
        return
    if environment.stats.total.fail_ratio > 0.01:
        logging.error("Test failed due to failure ratio > 1%")
        environment.process_exit_code = 1
    else:
        environment.process_exit_code = 0


def checker(environment):
    while environment.runner.state not in [STATE_STOPPING, STATE_STOPPED, STATE_CLEANUP]:
        time.sleep(1)
        if environment.runner.stats.total.fail_ratio > 0.2:
            logging.error(f"fail ratio was {environment.runner.stats.total.fail_ratio:.2f}, quitting")
            environment.runner.quit()
            return


@events.init.add_listener
def on_locust_init(environment, **_kwargs):
    if MODE == "quit" and not isinstance(environment.runner, WorkerRunner):
        gevent.spawn(checker, environment)
