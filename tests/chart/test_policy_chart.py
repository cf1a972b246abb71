"""The chart's target policy (policy.allowedHosts, policy.egress), rendered offline: the ConfigMap
the controller reads, the worker egress NetworkPolicy, and what the schema and templates refuse.
(ci/policy-values.yaml also goes through test_chart.py's lint, validity, labels and PSS checks.)"""

from __future__ import annotations

from typing import Any

import pytest

from controller.k8s.policy_source import ALLOWED_HOSTS_KEY, POLICY_CONFIGMAP
from controller.policy import parse_allowlist, split_entries
from tests.chart.test_chart import (
    SCENARIOS,
    component,
    of_kind,
    render,
    rendered,
    scenario_values,
    template_args,
    write_values,
)
from tests.support import helm

pytestmark = pytest.mark.integration


def policy_objects(objects: list[dict[str, Any]]) -> list[str]:
    return [
        f"{o['kind']}/{o['metadata']['name']}"
        for o in objects
        if o["metadata"].get("labels", {}).get("loadctl.io/policy") == "true"
    ]


def test_the_platform_release_renders_the_configmap_the_controller_reads():
    values = scenario_values("policy")
    (policy,) = [
        c for c in of_kind(rendered("policy"), "ConfigMap") if c["metadata"]["name"] == POLICY_CONFIGMAP
    ]
    assert policy["metadata"]["namespace"] == "loadtest"
    entries = split_entries(policy["data"][ALLOWED_HOSTS_KEY])
    assert entries == values["policy"]["allowedHosts"]
    # the controller's parser takes every entry the schema let through
    assert parse_allowlist(entries, source="chart", field=ALLOWED_HOSTS_KEY) is not None


def test_the_egress_policy_limits_every_loadctl_worker_to_dns_masters_and_the_given_networks():
    egress = scenario_values("policy")["policy"]["egress"]
    (policy,) = of_kind(rendered("policy"), "NetworkPolicy")
    run_objects = rendered("default")  # a run release: another release in the namespace
    worker_labels = component(run_objects, "Job", "worker")["spec"]["template"]["metadata"]["labels"]
    master_labels = component(run_objects, "Job", "master")["spec"]["template"]["metadata"]["labels"]

    selector = policy["spec"]["podSelector"]["matchLabels"]
    assert selector.items() <= worker_labels.items()
    assert not selector.items() <= master_labels.items()
    assert "app.kubernetes.io/instance" not in selector  # every release's workers, not only its own
    assert policy["spec"]["policyTypes"] == ["Egress"]
    dns, masters, target = policy["spec"]["egress"]
    assert dns["to"] == [egress["dns"]]
    assert dns["ports"] == [{"protocol": "UDP", "port": 53}, {"protocol": "TCP", "port": 53}]
    ((to_masters,),) = [masters["to"]]
    assert set(to_masters) == {"podSelector"}  # this namespace's masters, on any port
    assert to_masters["podSelector"]["matchLabels"].items() <= master_labels.items()
    assert "ports" not in masters
    assert target["to"] == [{"ipBlock": {"cidr": cidr}} for cidr in egress["cidrs"]]
    assert target["ports"] == [{"protocol": "TCP", "port": port} for port in egress["ports"]]


def test_no_ports_allows_every_port_of_the_networks(tmp_path):
    values = {"run": {"enabled": False}, "policy": {"egress": {"enabled": True, "cidrs": ["10.1.0.0/16"]}}}
    (policy,) = of_kind(render(write_values(tmp_path, values)), "NetworkPolicy")
    assert policy["spec"]["egress"][2] == {"to": [{"ipBlock": {"cidr": "10.1.0.0/16"}}]}
    assert policy_objects(render(write_values(tmp_path, values))) == [
        policy["kind"] + "/lt-loadctl-worker-egress"
    ]


def test_no_policy_objects_by_default_nor_in_a_run_release():
    assert policy_objects(rendered("default")) == []
    assert policy_objects(rendered("schedules")) == []


def hosts(*entries: object) -> dict[str, Any]:
    return {"policy": {"allowedHosts": list(entries)}}


ENTRY = "policy.allowedHosts.0"
REFUSED = {
    # a run release would clash with the platform release's ConfigMap, and must not bring a policy
    "run-release-hosts": ("default", {"policy": {"allowedHosts": ["a.example.com"]}}, "platform release"),
    "run-release-egress": (
        "default",
        {"policy": {"egress": {"enabled": True, "cidrs": ["10.0.0.0/8"]}}},
        "platform release",
    ),
    "egress-without-cidrs": ("policy", {"policy": {"egress": {"cidrs": []}}}, "needs policy.egress.cidrs"),
    "url-entry": ("policy", hosts("https://a.example.com"), ENTRY),
    "open-tld": ("policy", hosts("example.*"), ENTRY),
    "bare-star": ("policy", hosts("*"), ENTRY),
    "spaces": (
        "policy",
        {"policy": {"allowedHosts": ["a.example.com b.example.com"]}},
        "policy.allowedHosts.0",
    ),
    "comma": (
        "policy",
        {"policy": {"allowedHosts": ["a.example.com,b.example.com"]}},
        "policy.allowedHosts.0",
    ),
    "empty": ("policy", hosts(""), ENTRY),
    "not-a-string": ("policy", hosts(8080), ENTRY),
    "cidr-without-prefix": (
        "policy",
        {"policy": {"egress": {"cidrs": ["10.0.0.1"]}}},
        "policy.egress.cidrs.0",
    ),
    "port-0": ("policy", {"policy": {"egress": {"ports": [0]}}}, "policy.egress.ports.0"),
    "unknown-key": ("policy", {"policy": {"allowed_hosts": ["a.example.com"]}}, "allowed_hosts"),
}


@pytest.mark.parametrize("case", REFUSED)
def test_bad_policy_values_are_refused(tmp_path, case):
    scenario, override, message = REFUSED[case]
    done = helm(*template_args(SCENARIOS[scenario], write_values(tmp_path, override)))
    assert done.returncode != 0, f"{case} was accepted"
    assert message in done.stderr, done.stderr
