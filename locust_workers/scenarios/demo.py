"""Scenario for the bundled demo target (examples/demo_target): search, studio, harvest.

Request names follow the pilot report (../shared/reference/000_...): ids in URLs are grouped under
one name each, so the exporter's label set stays bounded. Three user classes let a profile set the
traffic mix with `user_weights`.

Env: DEMO_HARVEST_ENQUEUE=true sends harvests with enqueue=true (202 queued instead of 429 throttles).

ChatUser streams chat answers (server-sent events) and records time to first token and tokens per
second as custom metrics; its own weight is 0, so only profiles that name it in user_weights run it
(profiles/chat.yaml).
"""

from locust import FastHttpUser, HttpUser, between, task  # isort: skip  (locust first: gevent monkey-patching)

import itertools
import os
import random
import time

from requests import RequestException

from locust_workers.metrics import custom

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


TTFT = custom.histogram(
    "sse_ttft_seconds", description="Seconds from sending a chat request to its first streamed token."
)
TOKENS_PER_SECOND = custom.histogram(
    "sse_tokens_per_second",
    buckets=[1, 2, 5, 10, 15, 20, 30, 40, 50, 75, 100, 150, 200, 300, 500, 1000],
    description="Tokens per second of a chat answer after its first token.",
)
TOKENS = custom.counter("sse_tokens", description="Tokens streamed in chat answers.")


class ChatUser(HttpUser):
    """Asks for a chat answer over SSE, like the reference's StreamUser (../shared/reference/001_...).

    HttpUser, not FastHttpUser: requests hands over each chunk of a chunked response as it arrives,
    so the first token is timed when it comes, not when the body is complete. The request is
    reported to Locust as `chat_stream` with the time of the whole stream. The custom metrics are
    recorded right before that report, with no I/O in between: a user stopped mid-stream reports
    neither, so TTFT's count stays equal to the requests Locust counted.
    """

    weight = 0  # not in the default mix: a profile's user_weights turns it on
    wait_time = between(1, 3)

    @task
    def chat_stream(self) -> None:
        started = time.perf_counter()
        first = last = None
        tokens = received = 0
        done = False
        with self.client.post(
            "/v1/chat/stream",
            json={"prompt": f"what can I cook with {random.choice(QUERIES)}?"},
            headers={"Accept": "text/event-stream"},
            name="chat_stream",
            stream=True,
            timeout=(5, 60),  # connect; and the longest wait for the next chunk
            catch_response=True,
        ) as response:
            if response.status_code == 200:
                try:
                    # read to the end (the server closes after [DONE]), so the connection is reused
                    for line in response.iter_lines():
                        received += len(line) + 1
                        if done or not line.startswith(b"data:"):
                            continue  # blank lines end events; comments and other fields carry no token
                        if line[5:].strip() == b"[DONE]":
                            done = True
                            continue
                        last = time.perf_counter()
                        if first is None:
                            first = last
                        tokens += 1
                except RequestException as e:
                    response.failure(e)
                else:
                    if not done:
                        response.failure("stream ended before data: [DONE]")
            if response.status_code:  # 0: no response at all, nothing to close
                response.close()
            finished = time.perf_counter()
            # the request's time is the whole stream's (Locust would time only the headers)
            response.request_meta["response_time"] = (finished - started) * 1000
            response.request_meta["response_length"] = received
            if first is not None:
                TTFT.observe(first - started, name="chat_stream")
                TOKENS.inc(tokens, name="chat_stream")
                if done and last is not None and tokens > 1 and last > first:
                    TOKENS_PER_SECOND.observe((tokens - 1) / (last - first), name="chat_stream")
