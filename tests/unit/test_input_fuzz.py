"""Fuzzing the loaders in-process: whatever the bytes, a profile or gate file is accepted or refused
with an InputError whose message is one line, never another exception (a traceback, exit 1).

Two kinds of input per file kind: structured mutations of the shipped files (a field replaced,
removed or added, with hostile values: NaN, booleans, deep lists, credentials, env references),
and byte-level mutations of their text (insertions, deletions, replacements, raw junk).
"""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from controller.errors import InputError
from controller.gates.load import parse_gate_file
from controller.inputs import load_yaml_mapping
from controller.models import Stage
from controller.preflight import check_baseline_rules, check_gate_windows
from controller.profiles import build_plan, load_profile

ROOT = Path(__file__).resolve().parents[2]
DEMO = ROOT / "locust_workers" / "scenarios" / "demo.py"
FUZZ = settings(
    max_examples=1000,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
DUMPER = getattr(yaml, "CSafeDumper", yaml.SafeDumper)  # writing the input is not under test
STAGES = (
    Stage(phase="ramp_up", duration=20, users=20, spawn_rate=1),
    Stage(phase="steady", duration=55, users=20, spawn_rate=1),
)


def _profile_docs() -> list[dict[str, Any]]:
    docs = []
    for path in sorted((ROOT / "profiles").glob("*.yaml")):
        data = load_yaml_mapping(path)
        data["locustfile"] = str(DEMO)  # absolute, so the mutated copy still finds it
        data.pop("gates", None)
        docs.append(data)
    return docs


PROFILES = _profile_docs()
GATE_FILES = [load_yaml_mapping(p) for p in sorted((ROOT / "gates").glob("*.yaml"))]
TEXTS = [p.read_bytes() for p in sorted((ROOT / "profiles").glob("*.yaml"))]
GATE_TEXTS = [p.read_bytes() for p in sorted((ROOT / "gates").glob("*.yaml"))]

SPECIAL = st.sampled_from(
    [
        "auto", "5m", "0s", "-1", "1e-3", "1e999", ".nan", "nan", "inf", "${X}", "${X:-y}", "${",
        "http://u:p@h", "http://h", "h", "steady", "run", "stedy", "+10%", "-5%", "10", "yes", "",
        'name="x"', "rate(x[5m]", "up", "x" * 300, "\n", "a\nb", "\u2028", "\x85",
    ]
)  # fmt: skip
LEAF = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(10**30), max_value=10**30),
    st.floats(),
    st.text(max_size=20),
    SPECIAL,
)
VALUE = st.recursive(
    LEAF,
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=12) | SPECIAL, inner, max_size=4)
    ),
    max_leaves=8,
)
BYTE_JUNK = st.sampled_from(
    [b"\x00", b"\xff", b"&a ", b"*a", b"[", b"]", b"{", b": ", b"\n  ", b"- ", b"!!python/object:os.system "]
)
FIELDS = st.sampled_from(
    [
        "name", "host", "users", "spawn_rate", "duration", "workers", "stages", "phase", "user_weights",
        "scrape_targets", "probes", "metric", "promql", "labels", "status", "max", "min", "max_change",
        "min_change", "floor", "severity", "abort", "window", "version", "gates", "abort_grace", "url",
    ]
)  # fmt: skip


def _paths(node: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    out = [prefix]
    if isinstance(node, dict):
        for key, value in node.items():
            out += _paths(value, (*prefix, key))
    elif isinstance(node, list):
        for index, value in enumerate(node):
            out += _paths(value, (*prefix, index))
    return out


@st.composite
def mutated(draw: st.DrawFn, bases: list[dict[str, Any]]) -> dict[str, Any]:
    doc = copy.deepcopy(draw(st.sampled_from(bases)))
    for _ in range(draw(st.integers(1, 3))):
        path = draw(st.sampled_from(_paths(doc)))
        op = draw(st.sampled_from(["replace", "delete", "add"]))
        parent: Any = doc
        for part in path[:-1]:
            parent = parent[part]
        if not path:
            op = "add"
        if op == "add":
            target = doc if not path else parent[path[-1]]
            if isinstance(target, dict):
                target[draw(FIELDS | st.text(max_size=8))] = draw(VALUE)
            elif isinstance(target, list):
                target.append(draw(VALUE))
        elif op == "delete":
            del parent[path[-1]]
        else:
            parent[path[-1]] = draw(VALUE)
    return doc


@st.composite
def mutated_bytes(draw: st.DrawFn, bases: list[bytes]) -> bytes:
    if draw(st.integers(0, 9)) == 0:
        return draw(st.binary(max_size=400))
    data = bytearray(draw(st.sampled_from(bases)))
    for _ in range(draw(st.integers(1, 6))):
        at = draw(st.integers(0, len(data)))
        op = draw(st.sampled_from(["insert", "delete", "replace"]))
        junk = draw(st.binary(min_size=1, max_size=8) | BYTE_JUNK)
        if op == "insert":
            data[at:at] = junk
        elif op == "delete":
            del data[at : at + len(junk)]
        else:
            data[at : at + len(junk)] = junk
    return bytes(data)


def _assert_one_line(error: InputError) -> None:
    text = str(error)
    assert text and len(text.splitlines()) == 1 and len(text) <= InputError.MAX_CHARS, repr(text)


def _load_profile_and_plan(path: Path) -> None:
    try:
        profile = load_profile(path, env={"TARGET_HOST": "http://127.0.0.1:1"})
        build_plan(profile, profile_file=path, run_id="fuzz", cpu_count=1)
    except InputError as e:
        _assert_one_line(e)


def _load_gates(path: Path) -> None:
    try:
        data = load_yaml_mapping(path)
        gate_file = parse_gate_file(data, source=str(path))
        check_gate_windows(gate_file, STAGES, source=str(path))
        check_baseline_rules(gate_file, baseline=None, source=str(path))
    except InputError as e:
        _assert_one_line(e)


@pytest.fixture(scope="module")
def workdir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("fuzz")


@FUZZ
@given(doc=mutated(PROFILES))
def test_profile_mutations(workdir, doc):
    path = workdir / "p.yaml"
    path.write_text(yaml.dump(doc, Dumper=DUMPER, allow_unicode=True), encoding="utf-8")
    _load_profile_and_plan(path)


@FUZZ
@given(raw=mutated_bytes(TEXTS))
def test_profile_bytes(workdir, raw):
    path = workdir / "p.yaml"
    path.write_bytes(raw)
    _load_profile_and_plan(path)


@FUZZ
@given(doc=mutated(GATE_FILES))
def test_gate_file_mutations(workdir, doc):
    path = workdir / "g.yaml"
    path.write_text(yaml.dump(doc, Dumper=DUMPER, allow_unicode=True), encoding="utf-8")
    _load_gates(path)


@FUZZ
@given(raw=mutated_bytes(GATE_TEXTS))
def test_gate_file_bytes(workdir, raw):
    path = workdir / "g.yaml"
    path.write_bytes(raw)
    _load_gates(path)
