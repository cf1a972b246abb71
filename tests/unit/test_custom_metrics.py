"""Custom metrics, pure: worker store -> snapshot -> Locust's wire format -> master totals -> /metrics."""

from locust import User, task  # isort: skip  (locust first: gevent monkey-patching)

import logging
import math
from itertools import pairwise

import pytest
from locust.env import Environment
from locust.rpc.protocol import Message
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.parser import text_string_to_metric_families

from locust_workers.contract import OTHER_NAME
from locust_workers.custom_totals import CustomTotals, merge_worker_reports
from locust_workers.exporter import LocustCollector
from locust_workers.metrics import (
    DEFAULT_SECONDS_BUCKETS,
    REPORT_KEY,
    CustomMetricError,
    CustomMetrics,
    ship_with_worker_reports,
)


class Idle(User):
    @task
    def nothing(self) -> None:
        pass


def wire(snapshot: dict) -> dict:
    """What the master receives: the snapshot inside a stats message, through Locust's msgpack."""
    message = Message("stats", {"stats": [], REPORT_KEY: snapshot}, "worker-1")
    return Message.unserialize(message.serialize()).data[REPORT_KEY]


def exported(totals: CustomTotals, run_id: str = "r1") -> dict[str, dict[tuple, float]]:
    """{sample name: {(labels...): value}} as Prometheus would scrape it from the exporter."""
    environment = Environment(user_classes=[Idle])
    environment.create_local_runner()
    try:
        registry = CollectorRegistry(auto_describe=False)
        registry.register(LocustCollector(environment, run_id=run_id, profile="p", custom=totals))
        text = generate_latest(registry).decode()
    finally:
        environment.runner.quit()
    samples: dict[str, dict[tuple, float]] = {}
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            if s.name.startswith("locust_custom_"):
                samples.setdefault(s.name, {})[tuple(sorted(s.labels.items()))] = s.value
    return samples


def labels(name: str, run_id: str = "r1", **extra: str) -> tuple:
    return tuple(sorted({"run_id": run_id, "name": name, **extra}.items()))


# --- worker side: the API and its snapshot -----------------------------------------------------


def test_observations_drain_as_per_bucket_counts_then_start_over():
    store = CustomMetrics()
    hist = store.histogram("wait_seconds", buckets=[0.1, 0.5, 1])
    for value in (0.05, 0.1, 0.3, 0.7, 3.0):  # 0.1 is on a bound: counted in le="0.1"
        hist.observe(value, name="a")
    store.observe("wait_seconds", 0.2, name="b")
    store.inc("tokens", 57, name="a")
    store.inc("tokens", name="a")

    assert store.drain() == {
        "histograms": {
            "wait_seconds": {
                "buckets": [0.1, 0.5, 1.0],
                "help": "Custom histogram wait_seconds from the locustfile.",
                "series": [["a", [2, 1, 1, 1], pytest.approx(4.15)], ["b", [0, 1, 0, 0], 0.2]],
            }
        },
        "counters": {
            "tokens": {"help": "Custom counter tokens from the locustfile.", "series": [["a", 58.0]]}
        },
    }
    assert store.drain() == {}  # each observation is shipped once
    hist.observe(0.3, name="a")  # a handle outlives drains
    assert store.drain()["histograms"]["wait_seconds"]["series"] == [["a", [0, 1, 0, 0], 0.3]]


def test_default_buckets_are_seconds_from_1ms_to_100s_in_small_steps():
    bounds = DEFAULT_SECONDS_BUCKETS
    assert bounds[0] == 0.001 and bounds[-1] == 100.0
    assert {0.005, 0.01, 0.1, 0.25, 0.4, 0.5, 1.0, 2.5, 5.0, 10.0} <= set(bounds)
    assert all(1.2 <= b / a <= 1.3 for a, b in pairwise(bounds))
    assert CustomMetrics().histogram("x_seconds").bounds == bounds


@pytest.mark.parametrize("metric", ["sse-ttft", "9lives", "_hidden", "ttft seconds", "a:b", "", "x" * 121, 7])
def test_bad_metric_names_fail_at_first_use(metric):
    store = CustomMetrics()
    with pytest.raises(CustomMetricError, match=r"custom metric name .*letters, digits and underscores"):
        store.observe(metric, 1.0, name="n")
    with pytest.raises(CustomMetricError):
        store.inc(metric)


def test_counter_names_leave_off_total():
    with pytest.raises(CustomMetricError, match=r"leave off '_total'.*locust_custom_sse_tokens_total"):
        CustomMetrics().inc("sse_tokens_total", 3)


def test_one_name_is_one_kind():
    store = CustomMetrics()
    store.observe("ttft_seconds", 0.4)
    with pytest.raises(CustomMetricError, match="'ttft_seconds' is a histogram, not a counter"):
        store.inc("ttft_seconds")
    store.inc("tokens")
    with pytest.raises(CustomMetricError, match="'tokens' is a counter, not a histogram"):
        store.observe("tokens", 1.0)


def test_buckets_are_declared_once_before_first_use():
    store = CustomMetrics()
    tps = store.histogram("tps", buckets=[1, 10, 100, math.inf])  # +Inf is implied
    assert tps.bounds == (1.0, 10.0, 100.0)
    assert store.histogram("tps", buckets=[1, 10, 100]) is tps and store.histogram("tps") is tps
    with pytest.raises(CustomMetricError, match="already has buckets"):
        store.histogram("tps", buckets=[1, 5])
    store.observe("late_seconds", 1.0)
    with pytest.raises(CustomMetricError, match="before its first observation"):
        store.histogram("late_seconds", buckets=[1, 2])


@pytest.mark.parametrize(
    ("buckets", "message"),
    [([], "at least one finite"), ([1, 1, 2], "strictly increasing"), ([3, 2], "strictly increasing"),
     ([1, math.nan], "finite"), (["fast"], "must be numbers")],
)  # fmt: skip
def test_bad_buckets(buckets, message):
    with pytest.raises(CustomMetricError, match=message):
        CustomMetrics().histogram("h", buckets=buckets)


@pytest.mark.parametrize("value", [math.nan, math.inf, "soon", None])
def test_values_must_be_finite_numbers(value):
    store = CustomMetrics()
    with pytest.raises(CustomMetricError, match="'h'"):
        store.observe("h", value)
    assert store.drain() == {}  # nothing half-recorded


@pytest.mark.parametrize("amount", [-1, math.nan, math.inf])
def test_counters_only_go_up(amount):
    with pytest.raises(CustomMetricError, match="counters only go up"):
        CustomMetrics().inc("c", amount)


def test_label_names_must_be_strings():
    with pytest.raises(CustomMetricError, match="name must be a string"):
        CustomMetrics().observe("h", 1.0, name=42)  # type: ignore[arg-type]


def test_names_past_the_cap_count_as_other_on_the_worker():
    store = CustomMetrics(max_names=2)
    for name in ("a", "b", "c", "d", "c", "a"):
        store.inc("hits", name=name)
        store.observe("wait_seconds", 0.01, name=name)
    snapshot = store.drain()
    assert snapshot["counters"]["hits"]["series"] == [[OTHER_NAME, 3.0], ["a", 2.0], ["b", 1.0]]
    assert [(n, sum(c)) for n, c, _ in snapshot["histograms"]["wait_seconds"]["series"]] == [
        (OTHER_NAME, 3),
        ("a", 2),
        ("b", 1),
    ]
    store.inc("hits", name="c")  # still folded after a drain: "a" and "b" keep their places
    assert store.drain()["counters"]["hits"]["series"] == [[OTHER_NAME, 1.0]]


def test_metric_count_is_bounded():
    store = CustomMetrics(max_metrics=2)
    store.inc("one")
    store.observe("two", 1.0)
    with pytest.raises(CustomMetricError, match="already 2 custom metrics"):
        store.inc("three")


# --- master side: merge and export --------------------------------------------------------------


def test_two_workers_over_several_reports_add_up_exactly():
    workers = [CustomMetrics(), CustomMetrics()]
    totals = CustomTotals()
    observed: list[float] = []
    tokens = 0
    for interval in range(3):
        for index, store in enumerate(workers):
            for i in range(5 + interval + index):
                value = 0.3 + 0.11 * i + 0.5 * index
                store.observe("sse_ttft_seconds", value, name="chat_stream")
                store.inc("sse_tokens", 24, name="chat_stream")
                observed.append(value)
                tokens += 24
            assert totals.merge(wire(store.drain())) == []

    samples = exported(totals)
    chat = labels("chat_stream")
    assert samples["locust_custom_sse_ttft_seconds_count"] == {chat: len(observed)}
    assert samples["locust_custom_sse_ttft_seconds_sum"][chat] == pytest.approx(sum(observed))
    assert samples["locust_custom_sse_tokens_total"] == {chat: tokens}
    buckets = {
        float(dict(key)["le"]): value
        for key, value in samples["locust_custom_sse_ttft_seconds_bucket"].items()
    }
    for bound in DEFAULT_SECONDS_BUCKETS:
        assert buckets[bound] == sum(1 for v in observed if v <= bound), bound
    assert buckets[math.inf] == len(observed)
    assert buckets[0.25] == 0 and buckets[0.4] > 0  # nothing below the smallest value


def test_own_buckets_and_names_are_exported_per_name():
    store = CustomMetrics()
    store.histogram("tps", buckets=[10, 50])
    store.observe("tps", 36.0, name="chat_stream")
    store.observe("tps", 80.0, name="chat_batch")
    totals = CustomTotals()
    totals.merge(wire(store.drain()))
    samples = exported(totals, run_id="run-7")
    assert samples["locust_custom_tps_bucket"] == {
        labels("chat_stream", "run-7", le="10.0"): 0,
        labels("chat_stream", "run-7", le="50.0"): 1,
        labels("chat_stream", "run-7", le="+Inf"): 1,
        labels("chat_batch", "run-7", le="10.0"): 0,
        labels("chat_batch", "run-7", le="50.0"): 0,
        labels("chat_batch", "run-7", le="+Inf"): 1,
    }


def test_odd_label_values_survive_the_wire():
    # Locust's msgpack decoder rewrites dicts with some keys: series travel as lists, so any name works
    store = CustomMetrics()
    for name in ("__datetime__", "__ObjectId__", "", "ünïcode"):
        store.inc("c", name=name)
    totals = CustomTotals()
    assert totals.merge(wire(store.drain())) == []
    assert set(exported(totals)["locust_custom_c_total"]) == {
        labels(n) for n in ("__datetime__", "__ObjectId__", "", "ünïcode")
    }


def test_a_local_run_drains_its_own_store_at_each_scrape():
    store = CustomMetrics()
    totals = CustomTotals(local=store)
    store.inc("c", 2, name="x")
    assert exported(totals)["locust_custom_c_total"] == {labels("x"): 2}
    store.inc("c", 3, name="x")
    assert exported(totals)["locust_custom_c_total"] == {labels("x"): 5}
    assert exported(totals)["locust_custom_c_total"] == {labels("x"): 5}


def test_names_past_the_cap_count_as_other_on_the_master():
    totals = CustomTotals(max_names=2)
    for name in ("a", "b", "c", "d"):  # from different workers, each under its own cap
        store = CustomMetrics(max_names=2)
        store.inc("hits", 10, name=name)
        totals.merge(wire(store.drain()))
    assert exported(totals)["locust_custom_hits_total"] == {
        labels("a"): 10,
        labels("b"): 10,
        labels(OTHER_NAME): 20,
    }


def test_metrics_it_cannot_take_are_skipped_and_logged_once(caplog):
    first, other_buckets, as_counter = CustomMetrics(), CustomMetrics(), CustomMetrics()
    first.histogram("h", buckets=[1, 2]).observe(1.5)
    first.inc("ok")
    other_buckets.histogram("h", buckets=[1, 3]).observe(1.5)
    other_buckets.inc("ok")
    as_counter.inc("h")
    totals = CustomTotals()
    assert totals.merge(wire(first.drain())) == []
    with caplog.at_level(logging.WARNING, logger="loadctl"):
        problems = totals.merge(wire(other_buckets.drain()))
        assert problems == [
            "custom metric 'h': buckets [1.0, 3.0] differ from the first ones seen, [1.0, 2.0]"
        ]
        other_buckets.histogram("h").observe(1.5)
        assert totals.merge(wire(other_buckets.drain())) == []  # known already: not reported again
        assert totals.merge(wire(as_counter.drain())) == [
            "custom metric 'h': sent as a counter, but it is a histogram"
        ]
    assert [r.getMessage() for r in caplog.records] == [f"loadctl custom metrics: {p} (skipped)" for p in (
        "custom metric 'h': buckets [1.0, 3.0] differ from the first ones seen, [1.0, 2.0]",
        "custom metric 'h': sent as a counter, but it is a histogram",
    )]  # fmt: skip
    samples = exported(totals)
    assert samples["locust_custom_h_count"] == {labels(""): 1}  # only the first worker's
    assert samples["locust_custom_ok_total"] == {labels(""): 2}  # the rest of each snapshot counted


@pytest.mark.parametrize(
    "snapshot",
    [
        ["not", "a", "mapping"],
        {"histograms": ["h"]},
        {"histograms": {"h": {"buckets": [1], "series": [["n", [1], 0.5]]}}},  # counts: one too few
        {"histograms": {"h": {"buckets": [1], "series": [["n", [1, -1], 0.5]]}}},
        {"histograms": {"h": {"buckets": [2, 1], "series": []}}},
        {"histograms": {"h": {"series": []}}},
        {"histograms": {"bad-name": {"buckets": [1], "series": []}}},
        {"counters": {"c": {"series": [["n", -4]]}}},
        {"counters": {"c": {"series": [["n"]]}}},
    ],
)
def test_malformed_snapshots_never_raise(snapshot):
    totals = CustomTotals()
    assert totals.merge(snapshot)
    assert not any(exported(totals).get(name) for name in ("locust_custom_h_count", "locust_custom_c_total"))


# --- the report events, as Locust fires them ----------------------------------------------------


def test_worker_reports_carry_snapshots_to_the_master():
    worker, master = Environment(user_classes=[Idle]), Environment(user_classes=[Idle])
    store, totals = CustomMetrics(), CustomTotals()
    ship_with_worker_reports(worker, store)
    merge_worker_reports(master, totals)

    def report() -> dict:
        data: dict = {"stats": []}
        worker.events.report_to_master.fire(client_id="w1", data=data)
        received = Message.unserialize(Message("stats", data, "w1").serialize()).data
        master.events.worker_report.fire(client_id="w1", data=received)
        return received

    store.observe("sse_ttft_seconds", 0.5, name="chat_stream")
    report()
    store.observe("sse_ttft_seconds", 0.7, name="chat_stream")
    report()
    assert REPORT_KEY not in report()  # nothing new: nothing added to the report
    master.events.worker_report.fire(client_id="w2", data={"stats": []})  # a worker without any
    assert exported(totals)["locust_custom_sse_ttft_seconds_count"] == {labels("chat_stream"): 2}
