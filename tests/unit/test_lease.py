"""One run per target: Lease names, who holds a Lease, acquiring/renewing/releasing it (in memory),
and the master's heartbeat judge. The same against a real API server: tests/k8s/test_lease.py."""

from __future__ import annotations

import re
import time

import pytest
from hypothesis import given
from hypothesis import strategies as st

from controller.k8s import lease as lease_module
from controller.k8s.lease import (
    HOSTLESS_LEASE,
    LEASE_DURATION_S,
    Holding,
    LockHeld,
    TargetLease,
    lease_body,
    lease_name,
    micro_time,
    parse_time,
    target_key,
)
from locust_workers.heartbeat import Judge
from tests.unit.lease_store import LeaseStore

DNS_1123_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")


@given(st.text(min_size=1, max_size=300))
def test_every_host_gives_a_valid_lease_name(host):
    name = lease_name(host)
    assert len(name) <= 63 and DNS_1123_LABEL.match(name), name
    assert name != HOSTLESS_LEASE


@given(st.text(min_size=1, max_size=80), st.text(min_size=1, max_size=80))
def test_different_hosts_never_share_a_lease(a, b):
    if a != b:
        assert lease_name(a) != lease_name(b)


def test_the_name_is_readable_and_the_key_is_host_and_port():
    assert target_key("https://Staging.Example.com/api?q=1") == "staging.example.com"
    assert target_key("http://127.0.0.1:8080") == "127.0.0.1:8080"
    assert target_key(None, ("http://a.test",)) == "a.test"
    assert target_key(None, ("http://a.test", "http://b.test")) is None  # several: one namespace lock
    assert target_key(None) is None and lease_name(None) == HOSTLESS_LEASE
    assert lease_name("staging.example.com").startswith("loadctl-target-staging-example-com-")


def test_micro_time_round_trips():
    now = time.time()
    assert abs(parse_time(micro_time(now)) - now) < 1e-5  # type: ignore[operator]


def test_a_lease_expires_its_duration_after_its_last_renewal():
    holding = Holding.of(lease_body("x", holder="run-a", now=1000.0) | {"metadata": {"resourceVersion": "1"}})
    assert holding.holder == "run-a" and holding.duration_s == LEASE_DURATION_S
    assert not holding.expired(1000.0 + LEASE_DURATION_S - 1)
    assert holding.expired(1000.0 + LEASE_DURATION_S)


def keeper(store: LeaseStore, run_id: str, host: str = "http://t.test") -> TargetLease:
    return TargetLease(store, target=target_key(host), holder=run_id)


def test_a_free_target_is_taken_and_released():
    store = LeaseStore()
    first = keeper(store, "run-a")
    first.acquire(wait_s=0, progress=print)
    assert Holding.of(store.leases[first.name]).holder == "run-a"
    first.release()
    assert store.leases == {}


def test_a_held_target_waits_then_names_the_holder(monkeypatch):
    monkeypatch.setattr(lease_module, "WAIT_POLL_S", 0.05)
    store = LeaseStore()
    keeper(store, "run-a").acquire(wait_s=0, progress=print)
    notes: list[str] = []
    started = time.monotonic()
    with pytest.raises(
        LockHeld, match=r"target t\.test is held by run run-a since .*Lease loadtest/loadctl-target-t-test-"
    ):
        keeper(store, "run-b").acquire(wait_s=0.3, progress=notes.append)
    assert time.monotonic() - started >= 0.3
    assert notes and "waiting up to" in notes[0]
    keeper(store, "run-c", host="http://other.test").acquire(wait_s=0, progress=print)  # another host


def test_an_expired_lease_is_taken_over_and_its_old_holder_knows_it_lost():
    store = LeaseStore()
    old = keeper(store, "crashed")
    old.acquire(wait_s=0, progress=print)
    stale = store.leases[old.name]
    stale["spec"]["renewTime"] = micro_time(time.time() - LEASE_DURATION_S - 1)
    new = keeper(store, "next")
    new.acquire(wait_s=0, progress=print)
    assert Holding.of(store.leases[new.name]).holder == "next"
    old.renew()
    assert old.lost and "now held by run next" in old.lost
    old.release()  # not ours any more: left alone
    assert Holding.of(store.leases[new.name]).holder == "next"


def test_two_racers_for_an_expired_lease_get_one_winner():
    store = LeaseStore()
    keeper(store, "crashed").acquire(wait_s=0, progress=print)
    name = lease_name(target_key("http://t.test"))
    store.leases[name]["spec"]["renewTime"] = micro_time(time.time() - LEASE_DURATION_S - 1)
    seen = store.read_lease(name)
    assert seen is not None
    rv = seen["metadata"]["resourceVersion"]
    keeper(store, "quick").acquire(wait_s=0, progress=print)  # wins between the other's read and write
    with pytest.raises(lease_module.LeaseConflict):
        store.replace_lease(name, lease_body(name, holder="slow", now=time.time(), resource_version=rv))
    with pytest.raises(LockHeld, match="held by run quick"):
        keeper(store, "slow").acquire(wait_s=0, progress=print)


def test_renewing_moves_the_renew_time():
    store = LeaseStore()
    held = keeper(store, "run-a")
    held.acquire(wait_s=0, progress=print)
    before = store.leases[held.name]["spec"]["renewTime"]
    time.sleep(0.01)
    held.renew()
    assert store.leases[held.name]["spec"]["renewTime"] > before and held.lost is None


# -- the master's side -------------------------------------------------------------------------
def lease(holder: str, renewed: str) -> dict:
    return {"spec": {"holderIdentity": holder, "renewTime": renewed}}


def test_the_heartbeat_judge_stops_on_silence_by_its_own_clock():
    judge = Judge(run_id="run-a", timeout_s=30)
    assert judge.observe(lease("run-a", "t1"), now=100.0) is None
    assert judge.observe(lease("run-a", "t1"), now=129.0) is None
    assert judge.observe(lease("run-a", "t2"), now=129.5) is None  # renewed: the clock restarts
    assert judge.observe(lease("run-a", "t2"), now=150.0) is None
    reason = judge.observe(lease("run-a", "t2"), now=159.5)
    assert reason is not None and "not renewed for 30s" in reason


def test_the_heartbeat_judge_counts_unreadable_as_unrenewed():
    judge = Judge(run_id="run-a", timeout_s=30)
    assert judge.observe(lease("run-a", "t1"), now=0.0) is None
    assert judge.observe(None, now=20.0, error="HTTP 403 Forbidden") is None
    reason = judge.observe(None, now=31.0, error="HTTP 403 Forbidden")
    assert reason is not None and "403 Forbidden" in reason


def test_the_heartbeat_judge_stops_at_once_when_the_lease_is_gone_or_not_ours():
    assert "is gone" in (Judge(run_id="a", timeout_s=30).observe(None, now=0.0) or "")
    taken = Judge(run_id="a", timeout_s=30).observe(lease("b", "t"), now=0.0)
    assert taken is not None and "held by b" in taken
