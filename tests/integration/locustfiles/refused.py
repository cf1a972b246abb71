"""Requests to a host where nothing listens: every one fails fast with ConnectionRefusedError."""

from locust import FastHttpUser, constant, task  # isort: skip


class Refused(FastHttpUser):
    wait_time = constant(0.05)

    @task
    def root(self) -> None:
        self.client.get("/", name="root")
