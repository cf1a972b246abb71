"""The exporter against a real in-process Locust Environment and its real RequestStats."""

from locust import User, task  # isort: skip  (locust first: gevent monkey-patching)

import pytest
from locust.contrib.fasthttp import LocustBadStatusCode
from locust.env import Environment
from locust.exception import CatchResponseError
from locust.stats import calculate_response_time_percentile
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.parser import text_string_to_metric_families

from locust_workers.contract import OTHER_NAME
from locust_workers.exporter import LocustCollector, failure_status
from locust_workers.histogram import quantile_from_buckets


class Idle(User):
    @task
    def nothing(self) -> None:
        pass


@pytest.mark.parametrize(
    ("error", "status"),
    [
        (repr(LocustBadStatusCode("http://t/x", code=429)), "429"),
        ("HTTPError('503 Server Error: Service Unavailable for url: harvest_auto')", "503"),
        (repr(ConnectionRefusedError(111, "Connection refused")), "ConnectionRefusedError"),
        (repr(CatchResponseError("no token (status 500)")), "CatchResponseError"),
        ("requests.exceptions.ReadTimeout('x')", "ReadTimeout"),
        ("something odd", "unknown"),
    ],
)
def test_failure_status(error, status):
    assert failure_status(error) == status


def scrape(env: Environment, **kwargs) -> dict:
    registry = CollectorRegistry(auto_describe=False)
    registry.register(LocustCollector(env, run_id="r1", profile="p", **kwargs))
    samples = {}
    for family in text_string_to_metric_families(generate_latest(registry).decode()):
        for sample in family.samples:
            samples.setdefault(sample.name, []).append(sample)
    return samples


def fire(
    env: Environment, name: str, ms: float, exception: Exception | None = None, method: str = "GET"
) -> None:
    env.events.request.fire(
        request_type=method, name=name, response_time=ms, response_length=0, exception=exception, context={}
    )


@pytest.fixture
def env():
    environment = Environment(user_classes=[Idle])
    environment.create_local_runner()
    yield environment
    environment.runner.quit()


def test_counts_and_failures_equal_locusts_stats(env):
    for i in range(300):
        fire(env, "search", 5 + i % 40)
    for _ in range(7):
        fire(env, "harvest", 12, LocustBadStatusCode("http://t/x", code=429), method="POST")
    for _ in range(2):
        fire(env, "harvest", 30, ConnectionRefusedError(111, "refused"), method="POST")
    fire(env, "harvest", 3, method="POST")

    samples = scrape(env)
    requests = {(s.labels["name"], s.labels["method"]): s.value for s in samples["locust_requests_total"]}
    stats = env.runner.stats
    assert requests == {
        ("search", "GET"): stats.get("search", "GET").num_requests,
        ("harvest", "POST"): stats.get("harvest", "POST").num_requests,
    }
    assert requests == {("search", "GET"): 300, ("harvest", "POST"): 10}
    failures = {
        (s.labels["name"], s.labels["status"]): s.value for s in samples["locust_request_failures_total"]
    }
    assert failures == {("harvest", "429"): 7, ("harvest", "ConnectionRefusedError"): 2}
    assert all(s.labels["run_id"] == "r1" for s in samples["locust_requests_total"])


def test_histogram_quantiles_match_locusts_percentiles(env):
    for i in range(2000):
        fire(env, "search", (i * 7919) % 1500 + 0.5)  # a spread from ~0.5 ms to 1.5 s
    samples = scrape(env)
    buckets = [(float(s.labels["le"]), s.value) for s in samples["locust_response_time_seconds_bucket"]]
    finite = [(le, count) for le, count in buckets if le != float("inf")]
    count = samples["locust_response_time_seconds_count"][0].value
    entry = env.runner.stats.get("search", "GET")
    assert count == entry.num_requests
    assert samples["locust_response_time_seconds_sum"][0].value == pytest.approx(
        entry.total_response_time / 1000
    )
    for q in (0.5, 0.95, 0.99):
        ours = quantile_from_buckets(q, [le for le, _ in finite], [c for _, c in finite], int(count)) * 1000
        theirs = calculate_response_time_percentile(entry.response_times, entry.num_requests, q)
        assert abs(ours - theirs) <= 0.05 * theirs, (q, ours, theirs)


def test_names_beyond_the_cap_are_folded(env):
    for i in range(5):
        fire(env, f"/item/{i}", 10, LocustBadStatusCode("http://t/x", code=404))
    samples = scrape(env, max_names=3)
    names = {s.labels["name"] for s in samples["locust_requests_total"]}
    assert names == {"/item/0", "/item/1", "/item/2", OTHER_NAME}
    folded = {s.labels["name"]: s.value for s in samples["locust_request_failures_total"]}
    assert folded[OTHER_NAME] == 2 and sum(folded.values()) == 5


def test_runner_gauges_and_phase(env):
    samples = scrape(env)
    assert samples["locust_users"][0].value == 0
    info = samples["locust_run_info"][0]
    assert info.value == 1 and info.labels["profile"] == "p" and info.labels["phase"] == "ready"
    assert "locust_workers" not in samples  # a local runner has no workers to report


def test_failed_response_times_are_their_own_histogram_with_the_same_buckets(env):
    from locust_workers.failed_times import FailedTimes, record_failures

    failed = FailedTimes(local=True)  # a local runner: the users record in this process
    record_failures(env, failed)
    for i in range(50):
        fire(env, "search", 40 + i)
    for ms in (1.4, 2.6, 480.0):
        fire(env, "search", ms, ConnectionRefusedError(111, "refused"))
    fire(env, "search", None, ConnectionRefusedError(111, "refused"))  # untimed, as Locust leaves it

    samples = scrape(env, failed=failed)
    failed_buckets = {s.labels["le"]: s.value for s in samples["locust_failed_response_time_seconds_bucket"]}
    all_buckets = {s.labels["le"]: s.value for s in samples["locust_response_time_seconds_bucket"]}
    assert failed_buckets.keys() == all_buckets.keys()
    assert failed_buckets["+Inf"] == 3 and samples["locust_failed_response_time_seconds_count"][0].value == 3
    # rounded like Locust's keys (1.4 -> 1, 2.6 -> 3): inside every bucket, failed <= all
    assert failed_buckets["0.001"] == 1 and failed_buckets["0.003"] == 2
    assert all(failed_buckets[le] <= all_buckets[le] for le in all_buckets)
    assert all_buckets["+Inf"] - failed_buckets["+Inf"] == 50  # the successful ones
    assert samples["locust_failed_response_time_seconds_sum"][0].value == pytest.approx(
        (1.4 + 2.6 + 480) / 1000
    )


def test_failed_times_travel_in_worker_reports():
    from locust_workers.failed_times import FailedTimes

    worker, master = FailedTimes(), FailedTimes()
    worker.record("a", "GET", 12.4)
    worker.record("a", "GET", 12.0)
    worker.record("b", "", 150.0)
    assert master.merge(worker.drain()) and worker.drain() == []
    worker.record("a", "GET", 731.0)  # Locust rounds to 730
    assert master.merge(worker.drain())
    assert master.totals() == {
        ("a", "GET"): ({12: 2, 730: 1}, 12.4 + 12.0 + 731.0),
        ("b", ""): ({150: 1}, 150.0),
    }
    assert not master.merge([["a", "GET", "not a list", 1.0]])  # malformed: skipped, nothing added
    assert master.totals()[("a", "GET")][0] == {12: 2, 730: 1}


def families_by_sample(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }


def served(app, accept: str = "") -> tuple[dict, bytes]:
    headers: dict = {}

    def start_response(status, header_list):
        headers.update(header_list, status=status)

    body = b"".join(app({"REQUEST_METHOD": "GET", "HTTP_ACCEPT": accept}, start_response))
    return headers, body


@pytest.mark.parametrize("resolution", ["fine", "standard", "coarse"])
def test_the_served_text_equals_prometheus_clients_encoding_of_the_same_families(env, resolution):
    from locust_workers.exposition import CachedExposition

    for i in range(400):
        fire(env, 'odd "name"\\ with\nnewline', (i * 37) % 900 + 0.3)
        fire(env, "search", 3 + i % 50, ConnectionRefusedError(111, "refused") if i % 9 == 0 else None)
    collector = LocustCollector(env, run_id="r1", profile="p", latency_buckets=resolution)
    headers, body = served(CachedExposition(collector))
    assert headers["status"] == "200 OK" and headers["Content-Type"].startswith("text/plain; version=0.0.4")
    registry = CollectorRegistry(auto_describe=False)
    registry.register(collector)
    ours, generic = families_by_sample(body.decode()), families_by_sample(generate_latest(registry).decode())
    assert ours == generic
    buckets = [
        k for k in ours if k[0] == "locust_response_time_seconds_bucket" and ("name", "search") in k[1]
    ]
    assert len(buckets) == len(collector.bounds_ms) + 1  # and +Inf


def test_the_families_are_built_once_per_stats_version_and_away_from_the_caller(env):
    from locust_workers.exposition import CachedExposition

    fire(env, "search", 10)
    collector = LocustCollector(env, run_id="r1", profile="p")
    rendered_in: list[str] = []

    def off_loop(render):
        rendered_in.append("pool")
        return render()

    app = CachedExposition(collector, run_off_loop=off_loop)
    first = served(app)[1]
    assert served(app)[1] == first and rendered_in == ["pool"]  # unchanged stats: the cached answer
    assert collector.last_scrape_at > 0  # served numbers are the current ones: a scrape happened
    fire(env, "search", 20)
    second = served(app)[1]
    assert rendered_in == ["pool", "pool"]
    count = families_by_sample(second.decode())
    key = ("locust_requests_total", (("method", "GET"), ("name", "search"), ("run_id", "r1")))
    assert count[key] == 2


def test_a_cached_answer_is_rebuilt_after_its_maximum_age(env):
    from locust_workers.exposition import CachedExposition

    now = [100.0]
    collector = LocustCollector(env, run_id="r1", profile="p")
    app = CachedExposition(collector, max_age_s=5.0, clock=lambda: now[0])
    served(app)
    now[0] += 4
    served(app)
    assert app.renders == 1
    now[0] += 2
    served(app)
    assert app.renders == 2


def test_negotiation_serves_openmetrics_when_asked_and_switched_on(env):
    from locust_workers.exposition import CachedExposition

    fire(env, "search", 10)
    collector = LocustCollector(env, run_id="r1", profile="p")
    accept = "application/openmetrics-text;version=1.0.0,text/plain;version=0.0.4;q=0.5"
    headers, body = served(CachedExposition(collector, negotiate=True), accept)
    assert headers["Content-Type"].startswith("application/openmetrics-text") and body.endswith(b"# EOF\n")
    assert served(CachedExposition(collector), accept)[0]["Content-Type"].startswith("text/plain")
