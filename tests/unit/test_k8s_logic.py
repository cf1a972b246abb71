"""The pure parts of the k8s backend: release naming and values, pod diagnosis, `ls` rows, stats rows."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest

from controller.backends.k8s import referenced_secrets
from controller.errors import InputError
from controller.k8s.helm import deep_merge
from controller.k8s.inventory import format_age, job_state, parse_time, run_rows
from controller.k8s.pod_health import diagnose, master_exit_code, master_finished, run_pods
from controller.k8s.release import (
    RELEASE_NAME_MAX,
    image_values,
    local_imports,
    release_name,
    run_files,
    run_values,
)
from controller.models import RunPlan, Stage
from controller.prom.stats import failure_rows, stats_rows


def plan_for(tmp_path: Path, **changes) -> RunPlan:
    locustfile = tmp_path / "user.py"
    if not locustfile.exists():
        locustfile.write_text("import helpers\nfrom locust import HttpUser\n")
    fields = {
        "run_id": "peak-20261125-120000",
        "profile": "peak",
        "locustfile": locustfile,
        "host": "http://127.0.0.1:8000",
        "stages": (
            Stage(duration=30, users=10, spawn_rate=5, phase="ramp_up"),
            Stage(duration=60, users=10, spawn_rate=5),
        ),
        "workers": 3,
        "user_weights": {"SearchUser": 7},
        "results_dir": tmp_path / "results",
    }
    return RunPlan(**(fields | changes))


# -- release ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("run_id", "expected"),
    [("demo-20261125-120000", "lt-demo-20261125-120000"), ("a.b_c", "lt-a-b-c"), ("x--", "lt-x")],
)
def test_release_names_are_dns_labels(run_id, expected):
    assert release_name(run_id) == expected


def test_long_run_ids_keep_distinct_release_names():
    a, b = "x" * 60 + "a", "x" * 60 + "b"
    assert release_name(a) != release_name(b)
    assert len(release_name(a)) <= RELEASE_NAME_MAX and not release_name(a).endswith("-")


@pytest.mark.parametrize(
    ("image", "expected"),
    [
        ("ghcr.io/loadctl/loadctl:1.2", {"repository": "ghcr.io/loadctl/loadctl", "tag": "1.2"}),
        ("registry:5000/loadctl", {"repository": "registry:5000/loadctl"}),
        ("registry:5000/loadctl:dev", {"repository": "registry:5000/loadctl", "tag": "dev"}),
    ],
)
def test_image_values_split_tag_not_registry_port(image, expected):
    assert image_values(image) == expected


def test_local_imports_names_top_level_modules():
    source = "import os, helpers.sub\nfrom data import x\nfrom . import rel\nfrom locust import task\n"
    assert local_imports(source) == {"os", "helpers", "data", "locust"}


def test_run_files_ship_the_locustfile_its_sibling_helpers_and_gates(tmp_path):
    (tmp_path / "helpers.py").write_text("X = 1\n")
    (tmp_path / "unrelated.py").write_text("Y = 2\n")
    gates = tmp_path / "g.yaml"
    gates.write_text("gates: []\n")
    files = run_files(plan_for(tmp_path, gates=gates))
    assert sorted(files) == ["gates.yaml", "helpers.py", "user.py"]
    assert files["helpers.py"] == "X = 1\n"


def test_run_values_carry_the_plan_in_the_charts_shape(tmp_path):
    plan = plan_for(tmp_path)
    values = run_values(plan, files={"user.py": "x"}, image="reg/loadctl:t", prometheus_url="http://p:9090")
    run = values["run"]
    assert run["id"] == plan.run_id and run["workers"] == 3 and run["host"] == plan.host
    assert run["stages"][0] == {"duration": 30.0, "users": 10, "spawnRate": 5.0, "phase": "ramp_up"}
    assert run["userWeights"] == {"SearchUser": 7} and run["locustfile"] == "user.py"
    # the profile's default `auto`: on a cluster the scraper's version is unknown, so classic
    assert plan.latency_buckets == "auto" and run["latencyBuckets"] == "standard"
    assert values["image"] == {"repository": "reg/loadctl", "tag": "t"}
    assert values["controller"] == {"prometheusUrl": "http://p:9090"}


def test_run_values_carry_the_users_locust_arguments_only_when_there_are_some(tmp_path):
    plain = run_values(plan_for(tmp_path), files={"user.py": "x"}, image=None)["run"]
    assert "locustArgs" not in plain and "userClasses" not in plain
    plan = plan_for(
        tmp_path, locust_options={"tags": ["a"]}, locust_args=("--my-arg", "5"), user_classes=("SearchUser",)
    )
    run = run_values(plan, files={"user.py": "x"}, image=None)["run"]
    assert run["locustArgs"] == ["--tags", "a", "--my-arg", "5"]
    assert run["userClasses"] == ["SearchUser"]


def test_run_files_refuse_a_folder_or_a_list_of_locustfiles(tmp_path):
    (tmp_path / "more.py").write_text("Y = 2\n")
    with pytest.raises(InputError, match=r"^command line: -f: a folder or a list of locustfiles"):
        run_files(plan_for(tmp_path, more_locustfiles=(tmp_path / "more.py",)))
    with pytest.raises(InputError, match=r"^command line: -f: a folder or a list of locustfiles"):
        run_files(plan_for(tmp_path, locustfile=tmp_path))


def test_run_values_refuse_files_a_configmap_cannot_hold(tmp_path):
    with pytest.raises(InputError, match="more than a ConfigMap can hold"):
        run_values(plan_for(tmp_path), files={"big.csv": "x" * 1_000_000}, image=None)
    with pytest.raises(InputError, match="cannot be a ConfigMap key"):
        run_values(plan_for(tmp_path), files={"a b.py": ""}, image=None)


def test_user_values_merge_under_ours_maps_deep_lists_replaced():
    user = {
        "run": {"exporterPort": 9000, "stages": [1, 2, 3]},
        "master": {"resources": {"limits": {"cpu": 1}}},
    }
    ours = {"run": {"stages": [9], "id": "r"}}
    assert deep_merge(user, ours) == {
        "run": {"exporterPort": 9000, "stages": [9], "id": "r"},
        "master": {"resources": {"limits": {"cpu": 1}}},
    }


# -- pod health -----------------------------------------------------------------------------------


def pod(
    name, component, phase="Pending", *, ready=False, waiting=None, terminated=None, last=None, conditions=()
):
    container = {"name": component, "state": {}, "lastState": {}}
    if waiting:
        container["state"] = {"waiting": waiting}
    if terminated:
        container["state"] = {"terminated": terminated}
    if last:
        container["lastState"] = {"terminated": last}
    return {
        "metadata": {"name": name, "labels": {"app.kubernetes.io/component": component}},
        "status": {
            "phase": phase,
            "conditions": [{"type": "Ready", "status": "True" if ready else "False"}, *conditions],
            "containerStatuses": [container],
        },
    }


def event(name, reason, message, when="2026-11-25T12:00:00Z"):
    return {"involvedObject": {"name": name}, "reason": reason, "message": message, "lastTimestamp": when}


def test_readiness_needs_a_ready_master_and_every_worker_running():
    pods = [pod("m", "master", "Running", ready=True), pod("w1", "worker", "Running"), pod("w2", "worker")]
    state = run_pods(pods, workers=2)
    assert not state.ready and state.summary() == "master ready, workers 1/2 running"
    pods[2]["status"]["phase"] = "Running"
    assert run_pods(pods, workers=2).ready


@pytest.mark.parametrize(
    "reason", ["ImagePullBackOff", "CrashLoopBackOff", "CreateContainerConfigError", "InvalidImageName"]
)
def test_stuck_containers_are_diagnosed_with_their_message_and_events(reason):
    stuck = pod("lt-x-worker-a", "worker", waiting={"reason": reason, "message": 'secret  "creds" not found'})
    events = [event("lt-x-worker-a", "Failed", 'Error: secret "creds" not found'), event("other", "X", "y")]
    problem = diagnose([stuck], [], events)
    assert problem == (
        f'worker pod lt-x-worker-a: {reason}: secret "creds" not found '
        '(events: Failed: Error: secret "creds" not found)'
    )


def test_transient_waiting_reasons_are_not_problems():
    assert diagnose([pod("m", "master", waiting={"reason": "ContainerCreating"})], [], []) is None
    assert diagnose([pod("m", "master", waiting={"reason": "ErrImagePull"})], [], []) is None


def test_oom_killed_now_or_before_is_a_problem():
    now = pod("w", "worker", "Failed", terminated={"reason": "OOMKilled", "exitCode": 137})
    before = pod("m", "master", "Running", last={"reason": "OOMKilled", "exitCode": 137})
    assert "OOMKilled" in diagnose([now], [], [])
    assert "master pod m: container master was OOMKilled" in diagnose([before], [], [])


def test_unschedulable_fails_fast_unless_the_autoscaler_is_adding_a_node():
    unschedulable = {
        "type": "PodScheduled",
        "status": "False",
        "reason": "Unschedulable",
        "message": "0/2 nodes",
    }
    pending = pod("m", "master", conditions=(unschedulable,))
    assert diagnose([pending], [], []) == "master pod m: Unschedulable: 0/2 nodes"
    assert diagnose([pending], [], [event("m", "TriggeredScaleUp", "pod triggered scale-up")]) is None


def test_a_job_that_cannot_create_pods_is_diagnosed_first():
    job = {
        "metadata": {"name": "lt-x-master", "labels": {"app.kubernetes.io/component": "master"}},
        "status": {},
    }
    events = [event("lt-x-master", "FailedCreate", 'Error creating: serviceaccount "runner" not found')]
    assert diagnose([], [job], events) == (
        'master job lt-x-master cannot create its pods: Error creating: serviceaccount "runner" not found'
    )
    job["status"]["active"] = 1  # it did create one after all: the old event no longer matters
    assert diagnose([], [job], events) is None


def test_deleting_pods_are_ignored():
    gone = pod("w", "worker", waiting={"reason": "CrashLoopBackOff"})
    gone["metadata"]["deletionTimestamp"] = "2026-11-25T12:00:00Z"
    assert diagnose([gone], [], []) is None


def test_master_end_is_seen_on_the_pod_or_the_job():
    done = pod("m", "master", "Succeeded", terminated={"reason": "Completed", "exitCode": 0})
    assert master_finished([done], []) and master_exit_code([done]) == 0
    job = {
        "metadata": {"name": "j", "labels": {"app.kubernetes.io/component": "master"}},
        "status": {"conditions": [{"type": "Failed", "status": "True", "reason": "DeadlineExceeded"}]},
    }
    assert master_finished([], [job])
    assert not master_finished([pod("m", "master", "Running")], [])


# -- guardrails, pre-flight -------------------------------------------------------------------------


def master_job(run_id, *conditions, created="2026-11-25T12:00:00Z", annotations=None):
    return {
        "metadata": {
            "name": f"lt-{run_id}-loadctl-master",
            "labels": {"loadctl.io/run-id": run_id, "app.kubernetes.io/component": "master"},
            "creationTimestamp": created,
            "annotations": annotations or {},
        },
        "status": {
            "conditions": [{"type": c, "status": "True", "reason": "R"} for c in conditions],
            "active": 1,
        },
    }


def test_referenced_secrets_cover_env_from_secret_env_and_pull_secrets():
    values = {
        "envFrom": [{"secretRef": {"name": "creds"}}, {"configMapRef": {"name": "cm"}}],
        "secretEnv": [{"name": "TOKEN", "secretName": "api", "key": "t"}],
        "imagePullSecrets": [{"name": "regcred"}],
    }
    assert referenced_secrets(values) == ["api", "creds", "regcred"]


# -- loadctl ls -------------------------------------------------------------------------------------


def test_ls_rows_join_releases_jobs_and_pods():
    now = datetime(2026, 11, 25, 12, 5, 0, tzinfo=UTC)
    releases = [
        ("lt-a", "deployed", "2026-11-25 12:00:00.1 +0000 UTC", "a"),
        ("lt-b", "deployed", "2026-11-25 10:00:00.1 +0000 UTC", "b"),
        ("lt-c", "failed", "2026-11-25 12:04:00.1 +0000 UTC", "c"),
        ("nightly", "deployed", "2026-11-20 00:00:00 +0000 UTC", None),
    ]
    jobs = [
        master_job("a"),
        master_job(
            "b", "Complete", created="2026-11-25T10:00:00Z", annotations={"loadctl.io/verdict": "fail"}
        ),
    ]
    pods = [pod("a-m", "master", "Running"), pod("a-w", "worker", "Pending")]
    for p in pods:
        p["metadata"]["labels"]["loadctl.io/run-id"] = "a"
    rows = run_rows(releases, jobs, pods, now=now)
    assert [(r.run_id, r.state, r.pods, format_age(r.age_s), r.verdict) for r in rows] == [
        ("c", "helm: failed", "0/0 running", "1m", "-"),
        ("a", "running", "1/2 running", "5m", "-"),
        ("b", "succeeded", "0/0 running", "2h", "fail"),
    ]


def test_job_states_and_ages():
    assert job_state(None) == "finished (jobs expired)"
    assert job_state(master_job("x", "Failed")) == "failed (R)"
    assert [format_age(s) for s in (None, 5, 61, 7200, 3 * 86400)] == ["-", "5s", "1m", "2h", "3d"]
    assert parse_time("2026-11-25T12:00:00Z") == datetime(2026, 11, 25, 12, tzinfo=UTC)
    assert parse_time("garbage") is None


# -- stats rebuilt from Prometheus ----------------------------------------------------------------


def test_stats_rows_have_locusts_columns_and_an_aggregated_row_last():
    rows = stats_rows(
        requests={("GET", "search"): 90.0, ("POST", "make"): 10.0, ("", "Aggregated"): 100.0},
        failures={("GET", "search"): 3.0, ("", "Aggregated"): 3.0},
        latency_sum_s={("GET", "search"): 4.5, ("POST", "make"): 2.0, ("", "Aggregated"): 6.5},
        quantiles_s={("GET", "search"): {0.5: 0.04, 0.95: 0.0912}, ("", "Aggregated"): {0.95: 0.2}},
        duration_s=50.0,
    )
    assert [(r["Type"], r["Name"]) for r in rows] == [("POST", "make"), ("GET", "search"), ("", "Aggregated")]
    search = rows[1]
    assert search["Request Count"] == "90" and search["Failure Count"] == "3"
    assert search["Average Response Time"] == "50.00" and search["Median Response Time"] == "40"
    assert search["95%"] == "91" and search["Requests/s"] == "1.80" and search["99%"] == ""
    assert rows[2]["95%"] == "200" and rows[2]["Average Response Time"] == "65.00"


def test_failure_rows_most_frequent_first():
    rows = failure_rows({("GET", "a", "429"): 2.0, ("GET", "b", "ConnectionRefusedError"): 5.0})
    assert [(r["Name"], r["Error"], r["Occurrences"]) for r in rows] == [
        ("b", "status ConnectionRefusedError", "5"),
        ("a", "status 429", "2"),
    ]
