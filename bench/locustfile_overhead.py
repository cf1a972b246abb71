"""Locustfile for bench/overhead.py: the cheapest possible request loop.

No think time, one tiny request, so the Locust processes (and whatever loadctl
adds around them) are the bottleneck, not the target.
"""

# locust must be imported before anything else: it monkey-patches with gevent.
from locust import FastHttpUser, constant, task


class RootUser(FastHttpUser):
    wait_time = constant(0)

    @task
    def root(self) -> None:
        self.client.get("/", name="root")
