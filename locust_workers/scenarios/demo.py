"""Scenario for the bundled demo target (examples/demo_target): search, studio, harvest.

Request names follow the pilot report (../shared/reference/000_...): ids in URLs are grouped under
one name each, so the exporter's label set stays bounded. Three user classes let a profile set the
traffic mix with `user_weights`.

Env: DEMO_HARVEST_ENQUEUE=true sends harvests with enqueue=true (202 queued instead of 429 throttles).
"""

from locust import FastHttpUser, between, task  # isort: skip  (locust first: gevent monkey-patching)

import itertools
import os
import random

_user_ids = itertools.count(1)
QUERIES = ("pasta", "curry", "tofu", "salad", "soup", "bread", "tacos", "ramen")
DOMAINS = ("recipes.example.org", "cooking.example.net", "food.example.com")


class DemoUser(FastHttpUser):
    """Authenticates once with a dev token, like the pilot's clients."""

    abstract = True
    wait_time = between(0.5, 1.5)

    auth: dict[str, str] = {}

    def on_start(self) -> None:
        user = f"lt-{os.getpid()}-{next(_user_ids)}"
        with self.client.post(
            "/v1/auth/dev-token", json={"user": user}, name="auth/dev-token", catch_response=True
        ) as response:
            token = response.json().get("token") if response.status_code == 200 else None
            if not token:
                response.failure(f"no token (status {response.status_code})")
                return
        # FastHttpSession has no session-wide headers: every request passes self.auth
        self.auth = {"Authorization": f"Bearer {token}"}


class SearchUser(DemoUser):
    @task(4)
    def search(self) -> None:
        self.client.get(
            "/v1/recipes", params={"q": random.choice(QUERIES)}, name="recipes_search", headers=self.auth
        )

    @task(1)
    def make_now(self) -> None:
        self.client.get("/v1/recommendations/make-now", name="recommendations_make_now", headers=self.auth)


class StudioUser(DemoUser):
    @task(4)
    def studio_flow(self) -> None:
        response = self.client.post(
            "/v1/studio/sessions",
            json={"title": "weeknight"},
            name="studio_create_session",
            headers=self.auth,
        )
        if response.status_code != 201:
            return
        session = response.json()["id"]
        base = f"/v1/studio/sessions/{session}"
        self.client.post(
            f"{base}/constraints",
            json={"kind": "max_minutes", "value": 30},
            name="studio_create_constraint",
            headers=self.auth,
        )
        self.client.post(f"{base}/generate", name="studio_generate", headers=self.auth)
        self.client.get(f"{base}/versions", name="studio_versions", headers=self.auth)

    @task(1)
    def summary(self) -> None:
        self.client.get("/v1/studio/analytics/summary", name="studio_summary", headers=self.auth)


class HarvestUser(DemoUser):
    @task
    def harvest(self) -> None:
        enqueue = os.environ.get("DEMO_HARVEST_ENQUEUE", "false").lower() == "true"
        url = f"https://{random.choice(DOMAINS)}/r/{random.randint(1, 500)}"
        params = {"enqueue": "true"} if enqueue else None
        self.client.post(
            "/v1/recipes/harvest/auto",
            json={"url": url},
            params=params,
            name="harvest_auto",
            headers=self.auth,
        )


class HealthCheckUser(DemoUser):
    """Probes /health like a load balancer would (the 1 % class of the sustained mix)."""

    @task
    def health(self) -> None:
        self.client.get("/health", name="health")
