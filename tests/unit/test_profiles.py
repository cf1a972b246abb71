"""Profile parsing and validation: every error names the file and the field."""

from pathlib import Path

import pytest

from controller.chart import SHIPPED_GATES, SHIPPED_PROFILES
from controller.errors import EXIT_INPUT, InputError
from controller.models import simple_stages
from controller.profiles import build_plan, load_profile, profile_files, profile_load, resolve_profile_path
from locust_workers.contract import parse_duration

ROOT = Path(__file__).resolve().parents[2]
SHIPPED = ["demo", "baseline", "stress", "spike", "staged", "sustained", "peak", "soak"]


@pytest.mark.parametrize(
    ("text", "seconds"),
    [
        (90, 90.0),
        ("90", 90.0),
        ("90s", 90.0),
        ("5m", 300.0),
        ("1h30m", 5400.0),
        ("1.5h", 5400.0),
        (0.5, 0.5),
    ],
)
def test_parse_duration_accepts(text, seconds):
    assert parse_duration(text) == seconds


@pytest.mark.parametrize("text", ["", "5x", "m5", "-3", 0, "0s", True, None, "5m junk"])
def test_parse_duration_rejects(text):
    with pytest.raises(ValueError):
        parse_duration(text)


def write(tmp_path: Path, body: str, name: str = "p.yaml") -> Path:
    (tmp_path / "load.py").write_text("from locust import User\n")
    path = tmp_path / name
    path.write_text(body)
    return path


@pytest.mark.parametrize(
    ("body", "field", "words"),
    [
        (
            "name: x\nlocustfile: load.py\nhost: http://h\n"
            "stages:\n  - {duration: 10s, users: -1, spawn_rate: 1}\n",
            "stages[0].users",
            "greater than or equal to 0",
        ),
        (
            "name: x\nstages:\n  - {duration: soon, users: 1, spawn_rate: 1}\n",
            "stages[0].duration",
            "duration",
        ),
        ("name: x\nstagse: []\n", "stagse", "unknown field"),
        ("name: x\nhost: 'http://a b'\n", "host", "is not a target like"),
        ("name: x\nworkers: 0\n", "workers", "between 1 and 1024"),
        ("name: x\nuser_weights: {A: 0}\n", "user_weights.A", "greater than or equal to 1"),
        (
            "name: x\nlatency_buckets: medium\n",
            "latency_buckets",
            "one of auto, fine, standard, coarse, native",
        ),
        (
            "name: x\nscrape_targets:\n  - {name: t, url: 'not a url'}\n",
            "scrape_targets[0].url",
            "http(s) URL",
        ),
        (
            "name: x\nstages:\n  - {duration: 1, users: 1, spawn_rate: 1, phase: Ramp Up}\n",
            "stages[0].phase",
            "pattern",
        ),
        ("name: x\nanalysis: {slices: 1}\n", "analysis.slices", "greater than or equal to 2"),
        ("name: x\nanalysis: {slices: 101}\n", "analysis.slices", "less than or equal to 100"),
        ("name: x\nanalysis: {slices: true}\n", "analysis.slices", "whole number"),
        ("name: x\nanalysis: {slice: 5}\n", "analysis.slice", "unknown field"),
        ("name: x\nanalysis: {slo: {}}\n", "analysis.slo", "latency_p95_ms and/or error_rate"),
        ("name: x\nanalysis: {slo: {error_rate: 2}}\n", "analysis.slo.error_rate", "less than or equal to 1"),
    ],
)
def test_invalid_fields_are_named(tmp_path, body, field, words):
    path = write(tmp_path, body)
    with pytest.raises(InputError) as caught:
        load_profile(path, env={})
    message = str(caught.value)
    assert message.startswith(f"{path}: {field}: "), message
    assert words in message
    assert caught.value.exit_code == EXIT_INPUT
    assert "\n" not in message


def test_stages_and_users_are_exclusive(tmp_path):
    path = write(
        tmp_path, "name: x\nusers: 5\nduration: 1m\nstages:\n  - {duration: 1, users: 1, spawn_rate: 1}\n"
    )
    with pytest.raises(InputError, match="either 'stages' or"):
        load_profile(path, env={})


def test_invalid_yaml_names_the_line(tmp_path):
    path = write(tmp_path, "name: x\nstages: [\n")
    with pytest.raises(InputError, match=rf"^{path}: line \d+: invalid YAML"):
        load_profile(path, env={})


def test_missing_file(tmp_path):
    with pytest.raises(InputError, match="file not found"):
        load_profile(tmp_path / "nope.yaml", env={})


def test_env_expansion_with_default_and_missing(tmp_path):
    path = write(tmp_path, "name: x\nhost: http://${HOST_X:-127.0.0.1:9}\n")
    assert load_profile(path, env={}).host == "http://127.0.0.1:9"
    assert load_profile(path, env={"HOST_X": "10.0.0.1"}).host == "http://10.0.0.1"
    path = write(tmp_path, "name: x\nhost: http://${NOPE}\n", name="q.yaml")
    with pytest.raises(InputError, match=r"q.yaml: host: environment variable NOPE is not set"):
        load_profile(path, env={})


def test_name_defaults_to_file_stem(tmp_path):
    assert load_profile(write(tmp_path, "host: http://h\n", name="smoke.yaml"), env={}).name == "smoke"


@pytest.mark.parametrize("name", SHIPPED)
def test_shipped_profiles_are_valid(name):
    path = resolve_profile_path(name, profiles_dir=ROOT / "profiles")
    plan = build_plan(load_profile(path, env={}), profile_file=path, cpu_count=2, run_id="t")
    assert plan.locustfile.is_file()
    assert plan.workers == 2
    assert all(stage.phase for stage in plan.stages)


def test_shipped_profiles_match_the_reference_shapes():
    def plan(name):
        path = ROOT / "profiles" / f"{name}.yaml"
        return build_plan(load_profile(path, env={}), profile_file=path, cpu_count=2, run_id="t")

    assert plan("demo").duration == 90
    assert plan("baseline").duration == 300 and max(s.users for s in plan("baseline").stages) == 10
    stress = plan("stress")
    assert (stress.stages[0].users, stress.stages[-1].users, stress.duration) == (10, 200, 600)
    assert [s.users for s in plan("spike").stages] == [10, 100, 10]
    staged = plan("staged")
    assert staged.duration == 13 * 60 and max(s.users for s in staged.stages) == 100
    sustained = plan("sustained")
    assert sustained.duration == 1800 and sustained.stages[-1].users == 200
    assert sorted(sustained.user_weights.values(), reverse=True) == [70, 25, 4, 1]
    peak = plan("peak")
    assert (
        max(s.users for s in peak.stages) == 1000 and peak.stages[0].spawn_rate == 50 and peak.duration == 600
    )
    soak = plan("soak")
    assert soak.duration == 7200 and soak.stages[-1].users == 50


def test_flags_override_the_profile(tmp_path):
    path = write(
        tmp_path, "name: x\nlocustfile: load.py\nhost: http://a\nusers: 5\nspawn_rate: 1\nduration: 1m\n"
    )
    plan = build_plan(
        load_profile(path, env={}),
        profile_file=path,
        host="http://b",
        users=20,
        duration="30s",
        workers=3,
        run_id="r1",
        results_dir=tmp_path / "out",
    )
    assert plan.host == "http://b" and plan.workers == 3
    assert [(s.phase, s.users, s.duration) for s in plan.stages] == [
        ("ramp_up", 20, 20.0),
        ("steady", 20, 10.0),
    ]
    assert plan.run_dir == (tmp_path / "out" / "r1").resolve()


def test_stage_table_needs_both_users_and_duration_to_be_replaced(tmp_path):
    path = write(
        tmp_path,
        "name: x\nlocustfile: load.py\nhost: http://a\nstages:\n"
        "  - {duration: 10, users: 1, spawn_rate: 1}\n",
    )
    with pytest.raises(InputError, match="-u and -t must be given together"):
        build_plan(load_profile(path, env={}), profile_file=path, users=3)


def test_without_a_profile_flags_suffice(tmp_path):
    write(tmp_path, "")
    plan = build_plan(
        None,
        profile_file=None,
        locustfile=str(tmp_path / "load.py"),
        host="http://h/",
        users=4,
        spawn_rate=2,
        duration="10s",
        run_id="adhoc-1",
        cpu_count=1,
    )
    assert plan.host == "http://h" and plan.profile == "adhoc" and plan.duration == 10


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"host": None}, "host"),
        ({"host": "staging.internal"}, "--host"),
        ({"locustfile": "missing.py"}, "-f"),
        ({"run_id": "Bad Id"}, "--run-id"),
        ({"duration": "forever"}, "-t"),
        ({"users": 0}, "-u"),
        ({"gates": "nope.yaml"}, "--gates"),
    ],
)
def test_bad_flags_name_the_flag(tmp_path, kwargs, field):
    write(tmp_path, "")
    args = {
        "locustfile": str(tmp_path / "load.py"),
        "host": "http://h",
        "users": 1,
        "duration": "5s",
        "run_id": "ok",
    } | kwargs
    with pytest.raises(InputError) as caught:
        build_plan(None, profile_file=None, **args)
    assert f": {field}: " in str(caught.value)


def test_simple_stages_duration_is_the_total_run_time():
    assert [(s.phase, s.duration) for s in simple_stages(users=20, spawn_rate=4, duration=30)] == [
        ("ramp_up", 5),
        ("steady", 25),
    ]
    assert [(s.phase, s.duration) for s in simple_stages(users=30, spawn_rate=1, duration=30)] == [
        ("ramp_up", 30)
    ]


def test_simple_stages_refuses_a_ramp_longer_than_the_run():
    with pytest.raises(ValueError, match="takes 100s, longer than the 30s run time"):
        simple_stages(users=100, spawn_rate=1, duration=30)


def test_resolve_profile_by_name_lists_known_ones(tmp_path):
    (tmp_path / "a.yaml").write_text("")
    (tmp_path / "shipped").mkdir()
    (tmp_path / "shipped" / "c.yaml").write_text("")
    with pytest.raises(InputError, match=r"no profile named 'b' \(known: a, c\)"):
        resolve_profile_path("b", profiles_dir=tmp_path, shipped_dir=tmp_path / "shipped")


def test_a_name_is_a_path_if_it_exists_then_under_profiles_then_shipped(tmp_path, monkeypatch):
    local, shipped = tmp_path / "profiles", tmp_path / "shipped"
    for folder, names in ((local, ["a", "b"]), (shipped, ["b", "c"])):
        folder.mkdir()
        for name in names:
            (folder / f"{name}.yaml").write_text("")
    monkeypatch.chdir(tmp_path)
    (tmp_path / "a").write_text("")  # a file named like the profile wins: it is a path

    def resolve(ref: str) -> Path:
        return resolve_profile_path(ref, profiles_dir=Path("profiles"), shipped_dir=shipped)

    assert resolve("a") == Path("a")
    assert resolve("b") == Path("profiles/b.yaml")  # ./profiles wins over the shipped one
    assert resolve("c") == shipped / "c.yaml"
    # a path is never looked up by name: it is read (and reported missing) as it is
    assert resolve("profiles/c.yaml") == Path("profiles/c.yaml")
    assert resolve("c.yaml") == Path("c.yaml")


def test_the_shipped_profiles_resolve_from_any_folder(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # no ./profiles here
    path = resolve_profile_path("demo")
    assert path == SHIPPED_PROFILES / "demo.yaml"
    plan = build_plan(load_profile(path, env={}), profile_file=path, cpu_count=1, run_id="t")
    # the profile's relative locustfile and gates resolve beside the package, not the current folder
    assert plan.locustfile == ROOT / "locust_workers" / "scenarios" / "demo.py"
    assert plan.gates == SHIPPED_GATES / "pilot.yaml"


def test_profile_files_lists_the_shipped_ones_with_local_ones_replacing_them(tmp_path):
    (tmp_path / "demo.yaml").write_text("")
    found = profile_files(profiles_dir=tmp_path)
    assert sorted(found) == sorted([*SHIPPED, "chat"])
    assert found["demo"] == tmp_path / "demo.yaml"
    assert found["peak"] == SHIPPED_PROFILES / "peak.yaml"


def test_profile_load_is_the_run_time_and_the_peak_users(tmp_path):
    staged = load_profile(SHIPPED_PROFILES / "demo.yaml", env={})
    assert profile_load(staged) == (90, 20)
    simple = load_profile(write(tmp_path, "name: x\nusers: 7\nduration: 2m\n"), env={})
    assert profile_load(simple) == (120, 7)
    assert profile_load(load_profile(write(tmp_path, "name: x\n"), env={})) == (None, None)


def test_the_analysis_slices_reach_the_plan_default_ten(tmp_path):
    body = "name: x\nlocustfile: load.py\nhost: http://h\nusers: 1\nduration: 1m\n"
    (tmp_path / "load.py").write_text("")
    plain = write(tmp_path, body)
    assert build_plan(load_profile(plain, env={}), profile_file=plain, run_id="t").analysis.slices == 10
    sliced = tmp_path / "sliced.yaml"
    sliced.write_text(body + "analysis: {slices: 3}\n")
    assert build_plan(load_profile(sliced, env={}), profile_file=sliced, run_id="t").analysis.slices == 3


def test_the_latency_buckets_reach_the_plan_and_the_locust_processes(tmp_path):
    from controller.backends.local import locust_env

    body = "name: x\nlocustfile: load.py\nhost: http://h\nusers: 1\nduration: 1m\n"
    (tmp_path / "load.py").write_text("")
    plain = write(tmp_path, body)
    assert build_plan(load_profile(plain, env={}), profile_file=plain, run_id="t").latency_buckets == "auto"
    fine = tmp_path / "fine.yaml"
    fine.write_text(body + "latency_buckets: fine\n")
    plan = build_plan(load_profile(fine, env={}), profile_file=fine, run_id="t")
    assert locust_env(plan, exporter_port=1, base={})["LOADCTL_LATENCY_BUCKETS"] == "fine"


@pytest.mark.parametrize("name", ["staged", "stress"])
def test_profiles_that_look_for_a_breaking_point_judge_steps_against_an_slo(name):
    # Without an SLO the analysis falls back to "throughput stops growing", which says nothing about
    # latency; the breaking-point profiles state theirs, the pilot gates' run-wide limits.
    path = ROOT / "profiles" / f"{name}.yaml"
    slo = build_plan(load_profile(path, env={}), profile_file=path, cpu_count=2, run_id="t").analysis.slo
    assert slo is not None and (slo.latency_p95_ms, slo.error_rate) == (1500, 0.02)


@pytest.mark.parametrize(("name", "slices"), [("soak", 12), ("sustained", 3)])
def test_long_profiles_watch_the_targets_memory_and_cut_the_run_into_ten_minute_slices(name, slices):
    # drift's default gauges include every process probe's RSS: without a probe, no leak check
    path = ROOT / "profiles" / f"{name}.yaml"
    plan = build_plan(load_profile(path, env={}), profile_file=path, cpu_count=2, run_id="t")
    assert [(p.type, p.match) for p in plan.probes] == [("process", "examples.demo_target")]
    assert plan.analysis.slices == slices and plan.duration / slices == 600


@pytest.mark.parametrize(
    ("requested", "major", "layout"),
    [("auto", 3, "native"), ("auto", 2, "standard"), ("auto", None, "standard"), ("fine", 3, "fine"),
     ("native", 3, "native"), ("coarse", 2, "coarse")],
)  # fmt: skip
def test_auto_latency_is_native_only_on_prometheus_3(requested, major, layout):
    from controller.latency import latency_layout

    assert latency_layout(requested, major) == layout


@pytest.mark.parametrize("major", [2, None])
def test_native_latency_without_prometheus_3_is_refused_naming_the_field(major):
    from controller.errors import InputError
    from controller.latency import cluster_latency_layout, latency_layout

    with pytest.raises(InputError, match=r"^latency_buckets: native histograms need Prometheus 3"):
        latency_layout("native", major)
    # on a cluster the user's word stands: their Prometheus is not ours to ask
    assert (cluster_latency_layout("native"), cluster_latency_layout("auto")) == ("native", "standard")
