"""Response times spread log-uniformly over 5-500 ms (the target sleeps `ms`), and one failure.

Exactly one request of the run fails (HTTP 500 from /fail): run it with one worker.
"""

from locust import FastHttpUser, constant, task  # isort: skip

import math
import random

_failed = False  # per process: one worker makes exactly one failure


class Spread(FastHttpUser):
    wait_time = constant(0)

    @task
    def spread(self) -> None:
        global _failed
        if not _failed:
            _failed = True
            self.client.get("/fail", name="once")
            return
        ms = math.exp(random.uniform(math.log(5), math.log(500)))
        self.client.get(f"/sleep?ms={ms:.2f}", name="spread")
