"""The probes' pure parts: server answers -> readings, JSON paths, CPU arithmetic, masking.

No server here: what pg_stat_activity, INFO or a stats page answer is given as data, so every
branch (NULL states, a restarted Redis, null JSON values, recycled pids) is checked exactly.
"""

from __future__ import annotations

import pytest

from locust_workers.probes.base import MASK, ProbeError, Reading, describe, mask, secret_parts
from locust_workers.probes.config import EachField
from locust_workers.probes.http_json import FieldError, json_readings, lookup
from locust_workers.probes.postgres import postgres_readings, state_label
from locust_workers.probes.process import ProcessSample, cpu_percent, matching_pids, read_pid_file
from locust_workers.probes.redis_info import redis_readings


def values(readings: list[Reading]) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    return {(r.name, r.labels): r.value for r in readings}


# --- postgres ----------------------------------------------------------------------------------


def test_postgres_connections_by_state_with_every_state_present():
    readings = postgres_readings(
        {"active": 3, "idle": 5, "idle in transaction": 1, None: 1},
        max_connections=100,
        locks_waiting=2,
        pool_size=None,
    )
    got = values(readings)
    by_state = {
        labels[0][1]: v for (name, labels), v in got.items() if name == "loadctl_postgres_connections"
    }
    assert by_state == {
        "active": 3,
        "idle": 5,
        "idle_in_transaction": 1,
        "idle_in_transaction_aborted": 0,
        "fastpath_function_call": 0,
        "disabled": 0,
        "unknown": 1,  # NULL: a session the probe's role may not see
    }
    assert got[("loadctl_postgres_max_connections", ())] == 100
    assert got[("loadctl_postgres_locks_waiting", ())] == 2
    assert got[("loadctl_postgres_pool_utilization_ratio", ())] == pytest.approx(10 / 100)


def test_postgres_utilisation_is_over_the_pool_size_when_given():
    readings = postgres_readings({"active": 6, "idle": 9}, max_connections=100, locks_waiting=0, pool_size=20)
    assert values(readings)[("loadctl_postgres_pool_utilization_ratio", ())] == pytest.approx(0.75)


@pytest.mark.parametrize(
    ("state", "label"),
    [
        ("idle in transaction (aborted)", "idle_in_transaction_aborted"),
        ("something new", "unknown"),
        (None, "unknown"),
    ],
)
def test_postgres_state_labels_stay_bounded(state, label):
    assert state_label(state) == label


# --- redis -------------------------------------------------------------------------------------

INFO = {
    "keyspace_hits": 1000,
    "keyspace_misses": 500,
    "used_memory": 1048576,
    "evicted_keys": 7,
    "connected_clients": 4,
    "redis_version": "7.0.15",
}


def test_redis_readings_and_the_hit_ratio_since_the_first_sample():
    first, baseline = redis_readings(INFO, None)
    got = values(first)
    assert got[("loadctl_redis_used_memory_bytes", ())] == 1048576
    assert got[("loadctl_redis_evicted_keys", ())] == 7
    assert got[("loadctl_redis_keyspace_hits", ())] == 1000
    assert got[("loadctl_redis_connected_clients", ())] == 3  # the probe's own connection left out
    assert ("loadctl_redis_keyspace_hit_ratio", ()) not in got  # no lookup during the run yet
    assert {r.name: r.kind for r in first}["loadctl_redis_evicted_keys"] == "counter"

    later, baseline = redis_readings({**INFO, "keyspace_hits": 1030, "keyspace_misses": 510}, baseline)
    assert values(later)[("loadctl_redis_keyspace_hit_ratio", ())] == pytest.approx(30 / 40)
    assert baseline == (1000, 500)


def test_a_restarted_redis_starts_the_ratio_again():
    _, baseline = redis_readings(INFO, None)
    restarted, baseline = redis_readings({**INFO, "keyspace_hits": 3, "keyspace_misses": 1}, baseline)
    assert baseline == (3, 1)
    assert ("loadctl_redis_keyspace_hit_ratio", ()) not in values(restarted)


def test_redis_without_the_fields_is_an_error_and_partial_info_is_not():
    with pytest.raises(ProbeError, match="INFO has none of"):
        redis_readings({"redis_version": "7"}, None)
    readings, baseline = redis_readings({"used_memory": "12"}, None)
    assert values(readings) == {("loadctl_redis_used_memory_bytes", ()): 12.0} and baseline is None


# --- http_json ---------------------------------------------------------------------------------

DOC = {
    "stats": {"retryable_jobs": 3, "healthy": True, "pending": None, "name": "x"},
    "items": [{"count": 4}, {"count": 5}],
    "domains": {"b.org": {"failure_rate": 0.5}, "a.org": {"failure_rate": 0.25}},
    "flat": {"a.org": 1, "b.org": 2},
}


@pytest.mark.parametrize(
    ("path", "value"),
    [("stats.retryable_jobs", 3), ("items.1.count", 5), ("stats.healthy", True), ("stats.pending", None)],
)
def test_lookup(path, value):
    assert lookup(DOC, path) == value


@pytest.mark.parametrize(
    ("path", "missing"), [("stats.nope", "stats.nope"), ("items.2.count", "items.2"), ("nope.x", "nope")]
)
def test_lookup_names_the_missing_part(path, missing):
    with pytest.raises(FieldError, match=f"no '{missing}' in the document"):
        lookup(DOC, path)


def test_json_fields_become_gauges_and_entries_become_labelled_series():
    readings, warnings = json_readings(
        DOC,
        {
            "retryable": "stats.retryable_jobs",
            "healthy": "stats.healthy",
            "pending": "stats.pending",  # null: no value yet, left out
            "failure_rate": EachField(each="domains", label="domain", value="failure_rate"),
            "flat": EachField(each="flat"),
        },
    )
    assert values(readings) == {
        ("retryable", ()): 3.0,
        ("healthy", ()): 1.0,
        ("failure_rate", (("domain", "a.org"),)): 0.25,
        ("failure_rate", (("domain", "b.org"),)): 0.5,
        ("flat", (("key", "a.org"),)): 1.0,
        ("flat", (("key", "b.org"),)): 2.0,
    }
    assert warnings == []


def test_json_series_per_field_are_capped():
    readings, warnings = json_readings(
        DOC, {"r": EachField(each="domains", value="failure_rate", max_series=1)}
    )
    assert [dict(r.labels) for r in readings] == [{"key": "a.org"}]
    assert warnings == ["r: 2 entries in 'domains', kept 1"]


@pytest.mark.parametrize(
    ("fields", "words"),
    [
        ({"n": "stats.name"}, "n (stats.name) is str, not a number"),
        ({"n": "stats"}, "is dict, not a number"),
        ({"n": EachField(each="items")}, "'items' is list, not an object"),
        ({"n": EachField(each="domains", value="nope")}, "no 'nope' in the document"),
    ],
)
def test_json_fields_that_are_not_numbers_fail_the_sample(fields, words):
    with pytest.raises(FieldError) as caught:
        json_readings(DOC, fields)
    assert words in str(caught.value)


# --- process -----------------------------------------------------------------------------------


def test_matching_pids_by_command_line_substring():
    listing = [
        (10, ["python", "-m", "examples.demo_target", "--port", "8765"]),
        (11, ["python", "-m", "locust_workers.probes", "--config", "x"]),
        (12, None),  # a zombie or a process we may not read
        (13, ["/usr/bin/python3", "-m", "examples.demo_target"]),
        (14, ["sh", "-c", "python -m examples.demo_target"]),
    ]
    assert matching_pids(listing, "examples.demo_target", exclude={14}) == [10, 13]
    assert matching_pids(listing, "-m examples.demo_target --port", exclude=set()) == [10]


def sample(pid: int, cpu: float, created: float = 100.0) -> ProcessSample:
    return ProcessSample(pid=pid, create_time=created, cpu_seconds=cpu, rss_bytes=1, threads=1)


def test_cpu_percent_between_two_samples():
    previous = {(1, 100.0): 10.0, (2, 100.0): 5.0}
    assert cpu_percent(previous, [sample(1, 11.0), sample(2, 5.5)], elapsed_s=2.0) == pytest.approx(75.0)
    assert cpu_percent({}, [sample(1, 11.0)], elapsed_s=2.0) is None  # first sample
    assert cpu_percent(previous, [sample(1, 11.0)], elapsed_s=0) is None
    # a recycled pid is a new process: no delta against the old one's CPU time
    assert cpu_percent(previous, [sample(1, 0.5, created=200.0)], elapsed_s=1.0) is None


@pytest.mark.parametrize(("text", "pid"), [("123\n", 123), ("  42 extra", 42)])
def test_read_pid_file(text, pid):
    assert read_pid_file(text, "/run/x.pid") == pid


@pytest.mark.parametrize("text", ["", "abc", "-5", "0"])
def test_read_pid_file_rejects(text):
    with pytest.raises(ProbeError, match=r"/run/x\.pid does not hold a pid"):
        read_pid_file(text, "/run/x.pid")


# --- secrets -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("secret", "hidden"),
    [
        ("postgresql://app:s3cr%40t@db.internal:5432/shop", ["s3cr%40t", "s3cr@t", "app:s3cr%40t"]),
        ("host=db.internal user=app password='s3cr@t' dbname=shop", ["s3cr@t"]),
        ("redis://:hunter22@cache:6379/0", ["hunter22"]),
        # malformed, as libpq quotes it back in its error: the password is found all the same
        ("postgresql://app:Secr3tPw@[127.0.0.1:1/db", ["Secr3tPw"]),
    ],
)
def test_secrets_and_their_parts_are_masked(secret, hidden):
    parts = secret_parts(secret)
    for text in (f"failed: {secret} refused", *(f"auth {h} refused" for h in hidden)):
        masked = mask(text, parts)
        assert MASK in masked
        assert not any(h in masked for h in hidden) and secret not in masked


def test_masking_ignores_tiny_secrets_and_describe_is_one_line():
    assert mask("a b c", ["a", ""]) == "a b c"
    assert secret_parts("postgresql://app@db/shop") == ["postgresql://app@db/shop"]  # a user is no secret
    assert describe(ProbeError("refused\n  twice")) == "refused twice"
    assert describe(TimeoutError()) == "TimeoutError"
    assert describe(ValueError("bad\nvalue")) == "ValueError: bad value"
