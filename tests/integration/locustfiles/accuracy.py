"""A mixed load with a latency spread, HTTP 429s and connection errors, for exporter accuracy."""

from locust import FastHttpUser, constant, task  # isort: skip

import random


class Mixed(FastHttpUser):
    wait_time = constant(0.02)

    @task(6)
    def search(self) -> None:
        self.client.get("/v1/recipes", params={"q": random.choice(["pasta", "soup"])}, name="recipes_search")

    @task(3)
    def make_now(self) -> None:
        self.client.get("/v1/recommendations/make-now", name="recommendations_make_now")

    @task(2)
    def harvest(self) -> None:
        # no token: every user shares the client IP's bucket, so most of these are 429s
        self.client.post(
            "/v1/recipes/harvest/auto", json={"url": "https://a.example.org/r/1"}, name="harvest_auto"
        )

    @task(1)
    def refused(self) -> None:
        # nothing listens on loopback port 1: a failure without a response (ConnectionRefusedError)
        self.client.get("http://127.0.0.1:1/", name="refused")
