"""The locustfile's own LoadTestShape and hosts (issue 13, items 3 and 4): what loadctl reads of a
shape (phases, end), how the plan is bounded, the command line it gets, and which hosts are accepted."""

from locust import LoadTestShape  # isort: skip

from pathlib import Path

import pytest
from locust.argument_parser import get_parser

from controller.errors import InputError
from controller.locustfile_check import LocustfileFacts, ShapeFacts, parse_facts
from controller.models import check_host
from controller.preflight import check_gate_windows
from controller.profiles import build_plan
from locust_workers.contract import LocustCommand
from locust_workers.locustfile_facts import shape_facts
from locust_workers.shapes import (
    PhaseLog,
    StageTableShape,
    declared_end,
    declared_phases,
    phase_now,
    phase_starts,
    track_phases,
)
from tests.unit.test_inputs import gate_file


class Clocked(LoadTestShape):
    """A shape whose run time the test sets."""

    abstract = True
    now = 0.0

    def get_run_time(self) -> float:
        return self.now


class NamedStages(Clocked):
    # Locust's documented StagesShape: each `duration` is the stage's end, from the start
    stages = [
        {"duration": 10, "users": 2, "spawn_rate": 2, "phase": "warm"},
        {"duration": 30, "users": 5, "spawn_rate": 5, "name": "steady"},
        {"duration": 40, "users": 1, "spawn_rate": 5},
    ]

    def tick(self):
        for stage in self.stages:
            if self.now < stage["duration"]:
                return stage["users"], stage["spawn_rate"]
        return None


class SetsItsPhase(Clocked):
    phases = ("calm", "burst")
    phase = "calm"
    time_limit = 20

    def tick(self):
        if self.now >= self.time_limit:
            return None
        self.phase = "burst" if self.now >= 5 else "calm"
        return 3, 3


class Unnamed(Clocked):
    use_common_options = True

    def tick(self):
        return 1, 1


def test_named_stages_give_phases_end_and_the_phase_at_each_moment():
    shape = NamedStages()
    assert declared_phases(shape) == ("warm", "steady", "run")  # an unnamed stage is in `run`
    assert declared_end(shape) == 40.0
    assert [phase_now(shape, t) for t in (0, 9.9, 10, 29.9, 30, 39)] == [
        "warm", "warm", "steady", "steady", "run", "run",
    ]  # fmt: skip


def test_a_phase_attribute_and_time_limit():
    shape = SetsItsPhase()
    assert declared_phases(shape) == ("calm", "burst")
    assert declared_end(shape) == 20.0


def test_a_shape_without_phases_or_end():
    shape = Unnamed()
    assert declared_phases(shape) == ("run",)
    assert declared_end(shape) is None
    assert shape_facts(shape) == {
        "name": "Unnamed", "use_common_options": True, "phases": ["run"], "own_end_s": None,
    }  # fmt: skip


def test_loadctls_own_stage_rows_are_lengths_not_ends():
    from locust_workers.contract import StageRow

    class Table(StageTableShape):
        stages = (StageRow(10, 2, 1, "ramp_up"), StageRow(20, 2, 1, "steady"))

    assert declared_end(Table()) == 30.0
    assert declared_phases(Table()) == ("ramp_up", "steady")


def test_phases_are_noted_at_each_tick_as_the_exporter_reads_them():
    shape = SetsItsPhase()
    log = track_phases(shape)
    for now in (0, 1, 5, 6, 20):
        shape.now = now
        shape.tick()
    assert log.names == ["calm", "burst"]
    assert [(index, phase) for index, phase, _ in phase_starts(shape)] == [(0, "calm"), (1, "burst")]
    assert log.current_phase is None  # tick returned None: the shape is done
    assert isinstance(shape.loadctl_phases, PhaseLog)


def test_a_stage_table_shapes_starts_are_its_rows():
    from locust_workers.contract import StageRow

    class Table(StageTableShape):
        stages = (StageRow(10, 2, 1, "ramp_up"), StageRow(20, 2, 1, "steady"))

    table = Table()
    table.stage_started_at = {0: 100.0, 1: 110.0}
    assert phase_starts(table) == [(0, "ramp_up", 100.0), (1, "steady", 110.0)]


# --------------------------------------------------------------------------- the plan


def facts(shape: ShapeFacts | None = None, **hosts: str | None) -> LocustfileFacts:
    return LocustfileFacts(class_hosts=hosts or {"Reader": None}, shape=shape)


PHASED = ShapeFacts(name="Phased", use_common_options=False, phases=("warm", "steady"), own_end_s=40.0)
OPEN_ENDED = ShapeFacts(name="Common", use_common_options=True, phases=("run",), own_end_s=None)


def plan(tmp_path: Path, found: LocustfileFacts, **flags):
    (tmp_path / "load.py").write_text("from locust import User\n")
    args = {"locustfile": str(tmp_path / "load.py"), "host": "http://127.0.0.1:8000", "run_id": "r"}
    return build_plan(None, profile_file=None, inspect=lambda _path: found, **(args | flags))


def test_a_shape_that_says_its_end_needs_no_load_flags(tmp_path):
    p = plan(tmp_path, facts(PHASED))
    assert p.stages == () and p.shape is not None and p.shape.name == "Phased"
    assert p.duration == 40.0  # the overrun guard's base and run.json's planned duration
    assert p.phases == {"warm", "steady", "run"}


def test_t_reaches_the_shape_and_ends_the_run_first(tmp_path):
    p = plan(tmp_path, facts(PHASED), users=3, spawn_rate=3.0, duration="8s")
    assert p.shape is not None
    assert (p.shape.users, p.shape.spawn_rate, p.shape.run_time_s) == (3, 3.0, 8.0)
    assert p.duration == 8.0  # Locust stops a shape at -t too
    assert plan(tmp_path, facts(PHASED), duration="1m", run_id="r2").duration == 40.0


def test_a_shape_that_cannot_say_its_end_needs_t(tmp_path):
    with pytest.raises(InputError, match=r"command line: -t: the locustfile's shape Common does not say"):
        plan(tmp_path, facts(OPEN_ENDED), users=3)
    assert plan(tmp_path, facts(OPEN_ENDED), duration="30s").duration == 30.0


def test_a_profile_stage_table_and_an_own_shape_are_refused(tmp_path):
    from controller.models import Profile, Stage

    profile = Profile(name="p", stages=(Stage(duration=5, users=1, spawn_rate=1),))
    (tmp_path / "load.py").write_text("")
    with pytest.raises(InputError, match=r"p.yaml: stages: the locustfile has its own LoadTestShape"):
        build_plan(
            profile,
            profile_file=tmp_path / "p.yaml",
            locustfile=str(tmp_path / "load.py"),
            host="http://h",
            inspect=lambda _path: facts(PHASED),
        )


def test_gate_windows_are_checked_against_the_shapes_phases(tmp_path):
    p = plan(tmp_path, facts(PHASED))
    check_gate_windows(gate_file("{name: a, metric: rps, min: 1, window: warm}"), p.phases, source="g")
    with pytest.raises(InputError, match=r"'ramp_up' is not a phase of this run \(phases: run, steady, warm"):
        check_gate_windows(
            gate_file("{name: a, metric: rps, min: 1, window: ramp_up}"), p.phases, source="g", shape=p.shape
        )


def test_without_a_shape_the_stage_table_runs(tmp_path):
    p = plan(tmp_path, facts(None), users=2, duration="10s")
    assert p.shape is None and [s.phase for s in p.stages] == ["ramp_up", "steady"]


# --------------------------------------------------------------------------- hosts


@pytest.mark.parametrize(
    ("host", "kept"),
    [
        ("http://127.0.0.1:8000/", "http://127.0.0.1:8000"),
        ("https://staging.example.com/api", "https://staging.example.com/api"),
        ("grpc://127.0.0.1:50051", "grpc://127.0.0.1:50051"),
        ("127.0.0.1:50051", "127.0.0.1:50051"),  # as gRPC's channels take it; Locust passes it through
        ("xmlrpc+http://127.0.0.1:9000/RPC2", "xmlrpc+http://127.0.0.1:9000/RPC2"),
    ],
)
def test_hosts_locust_passes_through_are_accepted(host, kept):
    assert check_host(host) == kept


@pytest.mark.parametrize(
    ("host", "words"),
    [
        ("http://a b", "not a target"),
        ("", "not a target"),
        ("http://u:pw@h", "credentials"),
        ("/path", "not a"),
        ("nohost", "not a target"),  # a bare word: a typo more likely than a target
    ],
)
def test_hosts_refused(host, words):
    with pytest.raises(ValueError, match=words):
        check_host(host)


def test_no_host_flag_when_every_class_has_its_own(tmp_path):
    found = facts(A="http://127.0.0.1:8001", B="grpc://127.0.0.1:8002")
    p = plan(tmp_path, found, host=None, users=1, duration="5s")
    assert p.host is None
    assert p.hosts == ("grpc://127.0.0.1:8002", "http://127.0.0.1:8001")
    # --host overrides every class's own, as in Locust: it is then the one host reached
    assert plan(tmp_path, found, users=1, duration="5s", run_id="r2").hosts == ("http://127.0.0.1:8000",)


def test_a_class_without_a_host_needs_host(tmp_path):
    with pytest.raises(InputError, match=r"no target host: .* \(user classes without their own host: B\)"):
        plan(tmp_path, facts(A="http://127.0.0.1:8001", B=None), host=None, users=1, duration="5s")


def test_a_class_host_is_checked_in_the_locustfile(tmp_path):
    with pytest.raises(InputError, match=r"load.py: A.host: 'http://a b' is not a target"):
        plan(tmp_path, facts(A="http://a b"), host=None, users=1, duration="5s")


def command(**changes) -> LocustCommand:
    fields = {
        "locustfile": "load.py,plugin.py",
        "host": None,
        "workers": 1,
        "master_host": "127.0.0.1",
        "bind_host": "127.0.0.1",
        "master_port": 5557,
        "csv_prefix": "/tmp/r/locust",
        "html_path": "/tmp/r/locust.html",
    }
    return LocustCommand(**(fields | changes))


def test_host_is_passed_only_when_given_and_shape_options_reach_locust():
    master, worker = command().master_args(), command().worker_args()
    assert "--host" not in master and "--host" not in worker  # each class keeps its own host
    given = command(users=3, spawn_rate=3.0, run_time_s=8.0).master_args()
    assert given[-6:] == ["-u", "3", "-r", "3", "-t", "8s"]
    parsed, unknown = get_parser().parse_known_args(given)
    assert unknown == [] and (parsed.num_users, parsed.spawn_rate, parsed.run_time) == (3, 3.0, 8)


def test_the_facts_line_round_trips():
    text = '{"classes": {"A": "grpc://127.0.0.1:1", "B": null}, "shape": ' + (
        '{"name": "S", "use_common_options": true, "phases": ["warm"], "own_end_s": 12}}'
    )
    found = parse_facts(text)
    assert found.class_hosts == {"A": "grpc://127.0.0.1:1", "B": None}
    assert found.shape == ShapeFacts(name="S", use_common_options=True, phases=("warm",), own_end_s=12.0)


def test_the_report_names_the_shape_and_the_hosts():
    from controller.models import UserShape
    from controller.reports.render import render_markdown
    from controller.reports.run_report import report_view
    from tests.unit.test_run_report import RECORD

    shape = UserShape(name="Phased", phases=("warm", "steady"), own_end_s=14)
    record = RECORD.model_copy(
        update={"host": None, "hosts": ("grpc://127.0.0.1:1", "http://127.0.0.1:2"), "shape": shape}
    )
    text = render_markdown(report_view(record, stats=[], failures=[], gates=None, analysis=None))
    assert "The locustfile's own LoadTestShape Phased ran the load (phases warm, steady; planned 5m" in text
    assert "- Target: `grpc://127.0.0.1:1, http://127.0.0.1:2`" in text


def test_the_k8s_backend_refuses_an_own_shape_and_class_hosts_for_now(tmp_path):
    from controller.cli.run import refuse_on_k8s

    with pytest.raises(InputError, match=r"--backend: the locustfile's own shape Phased runs with the local"):
        refuse_on_k8s(plan(tmp_path, facts(PHASED)))
    own_hosts = plan(tmp_path, facts(A="http://127.0.0.1:1"), host=None, users=1, duration="5s", run_id="r2")
    with pytest.raises(InputError, match=r"--backend: the k8s backend needs --host"):
        refuse_on_k8s(own_hosts)
    refuse_on_k8s(plan(tmp_path, facts(None), users=1, duration="5s", run_id="r3"))  # a stage table: fine


def test_the_exporter_labels_an_own_shapes_phases():
    from locust.env import Environment

    from tests.unit.test_exporter import Idle, scrape

    shape = SetsItsPhase()
    environment = Environment(user_classes=[Idle], shape_class=shape)
    environment.create_local_runner()
    try:
        track_phases(shape)
        for now in (0, 5):
            shape.now = now
            shape.tick()
        samples = scrape(environment)
    finally:
        environment.runner.quit()
    assert samples["locust_run_info"][0].labels["phase"] == "burst"
    starts = samples["locust_stage_start_timestamp_seconds"]
    assert [(s.labels["stage"], s.labels["phase"]) for s in starts] == [("0", "calm"), ("1", "burst")]
