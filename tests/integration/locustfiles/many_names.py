"""200 request names (the exporter's default cap), latencies spread over 2-200 ms by the target."""

from locust import FastHttpUser, constant, task  # isort: skip

import math
import random

NAMES = 200


class ManyNames(FastHttpUser):
    wait_time = constant(0.05)

    @task
    def item(self) -> None:
        ms = math.exp(random.uniform(math.log(2), math.log(200)))
        self.client.get(f"/sleep?ms={ms:.2f}", name=f"/item/{random.randrange(NAMES)}")
