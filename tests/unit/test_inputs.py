"""Issue 10 item 6: every input mistake is an InputError (one line, file and field) before any load."""

from __future__ import annotations

import re
import time
from pathlib import Path

import pytest

from controller.errors import InputError
from controller.gates.load import parse_gate_file
from controller.inputs import MAX_DEPTH, MAX_FILE_BYTES, load_yaml_mapping
from controller.models import RUN_ID_PATTERN, Profile, Stage, phase_names, slow_stage
from controller.preflight import check_baseline_rules, check_gate_windows, check_results_dir, claim_run_dir
from controller.profiles import build_plan, default_run_id, load_profile, resolve_profile_path

ROOT = Path(__file__).resolve().parents[2]
SHIPPED = sorted(p.stem for p in (ROOT / "profiles").glob("*.yaml"))


def gate_file(*gates: str, header: str = ""):
    text = "version: 1\nname: g\n" + header + "gates:\n" + "".join(f"  - {g}\n" for g in gates)
    import yaml

    return parse_gate_file(yaml.safe_load(text), source="g.yaml")


def stages(*rows: tuple[str, float, int, float]) -> tuple[Stage, ...]:
    return tuple(Stage(phase=p, duration=d, users=u, spawn_rate=r) for p, d, u, r in rows)


def one_line_error(caught: pytest.ExceptionInfo[InputError]) -> str:
    text = str(caught.value)
    assert len(text.splitlines()) == 1, text
    return text


@pytest.mark.parametrize("value", [".nan", ".inf", "-.inf", "true", "false", "'nan'", "'inf'", "[1]"])
def test_thresholds_must_be_finite_numbers(value):
    with pytest.raises(InputError) as caught:
        gate_file(f"{{name: a, metric: rps, max: {value}}}")
    assert "g.yaml: gates[0] (a).max:" in one_line_error(caught)


def test_numeric_thresholds_still_work():
    gates = gate_file("{name: a, metric: rps, max: 3, min: 1.5}", "{name: b, metric: rps, max: '1e-3'}")
    assert gates.gates[0].max == 3.0 and gates.gates[1].max == 0.001


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ("users: 1\nduration: 5s\nworkers: yes\n", "workers"),
        ("users: true\nduration: 5s\n", "users"),
        ("users: 1\nspawn_rate: on\nduration: 5s\n", "spawn_rate"),
        ("users: 1\nspawn_rate: .nan\nduration: 5s\n", "spawn_rate"),
        ("users: 1\nduration: .inf\n", "duration"),
        ("stages:\n  - {duration: 5s, users: yes, spawn_rate: 1}\n", "stages[0].users"),
        ("users: 1\nduration: 5s\nuser_weights: {A: true}\n", "user_weights.A"),
    ],
)
def test_counts_and_rates_refuse_booleans_and_nan(tmp_path, body, field):
    path = tmp_path / "p.yaml"
    path.write_text("name: p\n" + body)
    with pytest.raises(InputError) as caught:
        load_profile(path, env={})
    assert f"p.yaml: {field}:" in one_line_error(caught)


@pytest.mark.parametrize("host", ["http://user:secret@h:8000", "https://token@h", "http://u:p@127.0.0.1:1/x"])
def test_credentials_in_a_host_are_refused_without_echoing_them(tmp_path, host):
    path = tmp_path / "p.yaml"
    path.write_text(f"name: p\nhost: {host}\nusers: 1\nduration: 5s\n")
    with pytest.raises(InputError) as caught:
        load_profile(path, env={})
    text = one_line_error(caught)
    assert "p.yaml: host: credentials" in text and "secret" not in text
    (tmp_path / "l.py").write_text("")
    with pytest.raises(InputError) as caught:
        build_plan(
            None, profile_file=None, locustfile=str(tmp_path / "l.py"), host=host, users=1, duration="5"
        )
    assert "command line: --host: credentials" in one_line_error(caught)


def test_credentials_in_a_scrape_target_are_refused():
    with pytest.raises(ValueError, match="credentials"):
        Profile(name="p", scrape_targets=[{"name": "t", "url": "http://u@h:1/metrics"}])


def test_default_run_ids_are_unique_within_a_second():
    ids = {default_run_id("demo") for _ in range(200)}
    assert len(ids) == 200
    assert all(re.fullmatch(RUN_ID_PATTERN, i) for i in ids)
    assert re.fullmatch(RUN_ID_PATTERN, default_run_id("p" * 63))


@pytest.mark.parametrize("name", SHIPPED)
def test_shipped_profiles_reach_their_users_in_every_stage(name):
    profile = load_profile(resolve_profile_path(name, profiles_dir=ROOT / "profiles"), env={})
    if profile.stages is not None:
        assert slow_stage(profile.stages) is None


def test_a_stage_that_cannot_reach_its_users_is_named():
    table = stages(("ramp_up", 10, 5, 1), ("steady", 30, 5, 1), ("up", 5, 20, 1), ("ramp_down", 5, 0, 4))
    assert slow_stage(table) == (2, 15.0)
    assert slow_stage(stages(("ramp_down", 5, 0, 1))) is None


def test_a_slow_stage_in_a_profile_is_an_input_error(tmp_path):
    (tmp_path / "l.py").write_text("")
    path = tmp_path / "p.yaml"
    path.write_text(
        "name: p\nlocustfile: l.py\nhost: http://h\nstages:\n"
        "  - {duration: 10s, users: 5, spawn_rate: 1}\n  - {duration: 5s, users: 20, spawn_rate: 1}\n"
    )
    with pytest.raises(InputError) as caught:
        build_plan(load_profile(path, env={}), profile_file=path)
    assert "p.yaml: stages[1]: reaching 20 users at spawn_rate 1/s takes 15s" in one_line_error(caught)


@pytest.mark.parametrize(
    ("flags", "field"),
    [({"users": 20, "duration": "8s"}, "-t"), ({"users": 20, "spawn_rate": 2, "duration": "8s"}, "-t/-r")],
)
def test_t_is_the_total_run_time(tmp_path, flags, field):
    (tmp_path / "l.py").write_text("")
    with pytest.raises(InputError) as caught:
        build_plan(None, profile_file=None, locustfile=str(tmp_path / "l.py"), host="http://h", **flags)
    text = one_line_error(caught)
    assert f"command line: {field}: ramping up to 20 users" in text and "longer than the 8s run time" in text
    plan = build_plan(
        None, profile_file=None, locustfile=str(tmp_path / "l.py"), host="http://h", users=20, spawn_rate=4,
        duration="30s",
    )  # fmt: skip
    assert plan.duration == 30 and [s.phase for s in plan.stages] == ["ramp_up", "steady"]


def test_phase_names_come_from_the_stage_table():
    assert phase_names(stages(("ramp_up", 10, 5, 1), ("hold", 5, 5, 1))) == {"ramp_up", "hold", "run"}


def test_gate_windows_are_checked_against_the_phases():
    table = stages(("ramp_up", 10, 5, 1), ("steady", 5, 5, 1))
    check_gate_windows(gate_file("{name: a, metric: rps, min: 1, window: run}"), table, source="g.yaml")
    with pytest.raises(InputError) as caught:
        check_gate_windows(gate_file("{name: a, metric: rps, min: 1, window: stedy}"), table, source="g.yaml")
    assert "g.yaml: gates[0] (a).window: 'stedy' is not a phase" in one_line_error(caught)
    with pytest.raises(InputError, match=r"gates\[0\] \(a\).window: 'hold' \(the file's default window\)"):
        check_gate_windows(
            gate_file("{name: a, metric: rps, min: 1}", header="window: hold\n"), table, source="g"
        )


def test_relative_gates_need_a_baseline(tmp_path):
    gates = gate_file("{name: a, metric: rps, min: 1}", "{name: b, metric: rps, min_change: '-5%'}")
    with pytest.raises(InputError) as caught:
        check_baseline_rules(gates, baseline=None, source="g.yaml")
    assert "g.yaml: gates[1] (b).min_change: a relative gate needs a baseline run: give --baseline" in (
        one_line_error(caught)
    )
    check_baseline_rules(gates, baseline=tmp_path, source="g.yaml")


def test_a_relative_gate_cannot_abort_live():
    with pytest.raises(InputError, match="cannot abort live"):
        gate_file("{name: a, metric: rps, max_change: '+5%', abort: true}")


def plan_in(tmp_path: Path, results: Path, run_id: str = "r1"):
    (tmp_path / "l.py").write_text("")
    return build_plan(
        None, profile_file=None, locustfile=str(tmp_path / "l.py"), host="http://h", users=1, duration="5",
        run_id=run_id, results_dir=results,
    )  # fmt: skip


def test_the_run_folder_is_claimed_once(tmp_path):
    plan = plan_in(tmp_path, tmp_path / "deep" / "results")
    check_results_dir(plan)
    assert not (tmp_path / "deep").exists()  # checking creates nothing
    assert claim_run_dir(plan).is_dir()
    with pytest.raises(InputError) as caught:
        claim_run_dir(plan)
    assert "command line: --run-id:" in one_line_error(caught) and "already exists" in str(caught.value)
    with pytest.raises(InputError, match="--run-id"):
        check_results_dir(plan)


def test_an_unusable_results_dir_is_named(tmp_path):
    (tmp_path / "file").write_text("")
    with pytest.raises(InputError) as caught:
        check_results_dir(plan_in(tmp_path, tmp_path / "file" / "results"))
    assert "command line: --results-dir:" in one_line_error(caught)


@pytest.mark.parametrize(
    ("content", "words"),
    [
        (b"a: " + b"[" * 600 + b"]" * 600, "nested deeper than"),
        (b"a:\n  " + b"- " * 600 + b"x\n", "nested deeper than"),
        (
            b"a: &a [x, x, x, x, x, x, x, x, x]\n"
            + b"".join(
                f"{chr(98 + i)}: &{chr(98 + i)} [{', '.join([f'*{chr(97 + i)}'] * 9)}]\n".encode()
                for i in range(8)
            ),
            "more than",
        ),
        (b"a: &a [*a]\n", "recursive alias"),
        (b"a: [" + b"1," * 60_000 + b"1]", "more than 5000 values"),  # stopped while parsing
        (b"a:\n" + b"- x\n" * 30_000, "more than 5000 values"),
        (b"name: x\x00\n", "NUL byte"),
        (b"name: \xff\xfe\n", "not valid UTF-8"),
        (b"a: " + b"x" * (MAX_FILE_BYTES + 1), "larger than"),
        (b"a: 2024-13-45\n", "invalid YAML value"),
        (b"a: \x01\n", "invalid YAML"),
        (b"- 1\n", "expected a mapping"),
        (b"a: [\n", "invalid YAML"),
    ],
)
def test_hostile_yaml_is_one_line_and_fast(tmp_path, content, words):
    path = tmp_path / "x.yaml"
    path.write_bytes(content)
    began = time.monotonic()
    with pytest.raises(InputError) as caught:
        load_yaml_mapping(path)
    # a hang guard, not a speed goal (~0.25 s for the largest): an unbounded parser would spend
    # minutes on these or die with a RecursionError
    assert time.monotonic() - began < 10
    text = one_line_error(caught)
    assert text.startswith(f"{path}: ") and words in text, text


def test_nesting_up_to_the_limit_is_fine(tmp_path):
    path = tmp_path / "x.yaml"
    path.write_text("a: " + "[" * (MAX_DEPTH - 1) + "]" * (MAX_DEPTH - 1))
    assert "a" in load_yaml_mapping(path)


def test_long_promql_and_labels_are_bounded():
    with pytest.raises(InputError) as caught:
        gate_file(f"{{name: a, promql: '{'x' * 100_000}', max: 1}}")
    text = one_line_error(caught)
    assert "gates[0] (a).promql: String should have at most" in text and len(text) < 700


@pytest.mark.parametrize(
    ("flags", "field"),
    [
        ({"users": 2_000_000, "spawn_rate": 100_000, "duration": "1h"}, "-u"),
        ({"users": 10, "spawn_rate": 1e9, "duration": "10s"}, "-r"),
        ({"users": 10, "duration": "99999999999h"}, "-t"),
    ],
)
def test_out_of_range_flags_name_the_flag(tmp_path, flags, field):
    (tmp_path / "l.py").write_text("")
    with pytest.raises(InputError) as caught:
        build_plan(None, profile_file=None, locustfile=str(tmp_path / "l.py"), host="http://h", **flags)
    assert f"command line: {field}: " in one_line_error(caught)
    assert "pydantic" not in str(caught.value)


def test_a_stage_table_longer_than_a_week_is_refused(tmp_path):
    (tmp_path / "l.py").write_text("")
    path = tmp_path / "p.yaml"
    rows = "".join("  - {duration: 100h, users: 1, spawn_rate: 1}\n" for _ in range(2))
    path.write_text(f"name: p\nlocustfile: l.py\nhost: http://h\nstages:\n{rows}")
    with pytest.raises(InputError, match=r"p.yaml: stages: the stages add up to more than 168h"):
        build_plan(load_profile(path, env={}), profile_file=path)
