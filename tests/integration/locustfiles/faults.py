"""One user class whose behaviour the fault tests pick with FAULTS_MODE (inherited by Locust's processes).

steady          GET /v1/recipes every 50 ms
one_failure     the same, but the very first request of the process is marked failed
raise_on_start  every user raises in on_start: no request is ever sent
burn            the first user of a worker starts two OS threads hashing without pause: the worker's
                CPU saturates (hashlib releases the GIL, so gevent's loop and heartbeats still run)
"""

from locust import HttpUser, constant, task  # isort: skip

import hashlib
import os

from gevent import monkey

MODE = os.environ.get("FAULTS_MODE", "steady")
_failed_once = [False]
_burning: list[object] = []


def _burn() -> None:
    block = b"x" * 4_000_000
    while True:
        hashlib.sha256(block).digest()


def _start_burning() -> None:
    # a real OS thread: gevent patches threading.Thread (and threading's own start function) into
    # greenlets, which would never yield here and starve the worker
    start_new_thread = monkey.get_original("_thread", "start_new_thread")
    for _ in range(2):
        _burning.append(start_new_thread(_burn, ()))


class FaultUser(HttpUser):
    wait_time = constant(0.05)

    def on_start(self) -> None:
        if MODE == "raise_on_start":
            raise RuntimeError("on_start always fails in this test")
        if MODE == "burn" and not _burning:
            _start_burning()

    @task
    def search(self) -> None:
        with self.client.get("/v1/recipes", params={"q": "soup"}, name="search", catch_response=True) as r:
            if MODE == "one_failure" and not _failed_once[0]:
                _failed_once[0] = True
                r.failure("the one planned failure")
