"""requirements/lock.txt, which CI, `make setup` and the image install with --require-hashes, names
every dependency pyproject.toml declares (core, each extra, dev) at a version its range allows."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

import pytest
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

ROOT = Path(__file__).resolve().parents[2]
PIN = re.compile(r"^([A-Za-z0-9][A-Za-z0-9._-]*)(?:\[[^\]]*\])?==([^\s;\\]+)")


IMAGE_EXTRAS = ("k8s", "probes", "grafana")  # the Dockerfile's requirements/image.txt: what pods run


def declared(extras: tuple[str, ...] | None = None) -> list[Requirement]:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    optional = project["optional-dependencies"]
    chosen = optional if extras is None else {name: optional[name] for name in extras}
    lines = [*project["dependencies"], *(r for extra in chosen.values() for r in extra)]
    # loadctl[all] and the like: an extra made of other extras, not a package
    return [r for r in map(Requirement, lines) if canonicalize_name(r.name) != "loadctl"]


def pins(text: str) -> dict[str, list[str]]:
    found: dict[str, list[str]] = {}
    for line in text.splitlines():
        if m := PIN.match(line):
            found.setdefault(canonicalize_name(m[1]), []).append(m[2])
    return found


def unlocked(requirements: list[Requirement], locked: dict[str, list[str]]) -> list[str]:
    problems = []
    for req in requirements:
        versions = locked.get(canonicalize_name(req.name), [])
        if not versions:
            problems.append(f"{req.name}: not in the lock")
        problems += [f"{req.name}=={v}: outside {req.specifier}" for v in versions if v not in req.specifier]
    return problems


def test_the_lock_pins_every_declared_dependency_within_its_range():
    locked = pins((ROOT / "requirements/lock.txt").read_text())
    assert unlocked(declared(), locked) == []


def test_the_image_lock_pins_what_pods_run_at_the_versions_of_the_lock():
    image = pins((ROOT / "requirements/image.txt").read_text())
    assert unlocked(declared(IMAGE_EXTRAS), image) == []
    locked = pins((ROOT / "requirements/lock.txt").read_text())
    assert {name: v for name, v in image.items() if locked.get(name) != v} == {}
    assert "mypy" not in image and "uvicorn" not in image  # dev and demo stay out


@pytest.mark.parametrize("lock", ["lock.txt", "image.txt"])
def test_every_pin_of_a_lock_carries_a_hash(lock):
    # --require-hashes refuses a lock with one unhashed line; this names the line instead
    text = (ROOT / "requirements" / lock).read_text()
    blocks = re.split(r"\n(?=[A-Za-z0-9])", text)
    assert [b.splitlines()[0] for b in blocks if PIN.match(b) and "--hash=sha256:" not in b] == []


def test_a_missing_or_out_of_range_pin_is_reported():
    reqs = [Requirement("kubernetes>=30,<38"), Requirement("redis>=5")]
    assert unlocked(reqs, {"kubernetes": ["38.0.0"]}) == [
        "kubernetes==38.0.0: outside <38,>=30",
        "redis: not in the lock",
    ]


def test_every_runtime_dependency_has_an_upper_bound():
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    runtime = [*project["dependencies"]]
    runtime += [r for name, extra in project["optional-dependencies"].items() if name != "dev" for r in extra]
    reqs = [Requirement(r) for r in runtime]
    unbounded = [
        str(r)
        for r in reqs
        if canonicalize_name(r.name) != "loadctl"
        and not any(s.operator in ("<", "<=", "==") for s in r.specifier)
    ]
    assert unbounded == []
