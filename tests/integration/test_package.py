"""`pip install .` outside the checkout: the shipped demo runs from a folder that is not the repository.

The wheel is built from a copy of the working tree (offline: this venv's setuptools, no build
isolation) and installed with pip into a fresh venv. What that must prove is that loadctl's own
files (code, profiles, gate files, the demo scenario, the chart's rules) come from the installed
wheel, never from the checkout. Its dependencies are another matter: they cannot be downloaded here,
so the fresh venv sees them through a view of this venv's site-packages that leaves out loadctl
itself (its dist-info and the editable install's finder, which would map `controller` back to a
checkout). pip resolves the wheel's requirements against that view (--no-index, no --no-deps), so a
missing dependency would fail the install. `--system-site-packages` would not do: it would expose
the editable loadctl too.

The demo target is the system under test and is not shipped (see README): it runs from the checkout.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import sysconfig
from pathlib import Path

import pytest
import yaml

from tests.support import REPO_ROOT, demo_server

pytestmark = [pytest.mark.integration, pytest.mark.slow]

PYTHON = f"python{sys.version_info.major}.{sys.version_info.minor}"
# what the copy of the working tree leaves out: never part of a build, and some of it large
JUNK = (".git", ".venv", ".tools", "results", "build", "*.egg-info", "__pycache__", ".*_cache", ".hypothesis")


def build_wheel(tmp_path: Path) -> Path:
    """A wheel of the working tree as it is, built from a copy (a build writes build/ beside its sources)."""
    source = tmp_path / "source"
    shutil.copytree(REPO_ROOT, source, symlinks=True, ignore=shutil.ignore_patterns(*JUNK))
    wheels = tmp_path / "wheels"
    pip = [sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "--no-build-isolation", "--no-index"]
    subprocess.run([*pip, "-w", str(wheels), str(source)], check=True, capture_output=True, timeout=120)
    (wheel,) = wheels.glob("loadctl-*.whl")
    return wheel


def dependency_view(tmp_path: Path) -> Path:
    """This venv's site-packages without loadctl: a folder of links to everything else in it."""
    site_packages = Path(sysconfig.get_paths()["purelib"])
    view = tmp_path / "dependencies"
    view.mkdir()
    for entry in site_packages.iterdir():
        if entry.name.startswith(("loadctl-", "__editable__")):
            continue
        (view / entry.name).symlink_to(entry)
    return view


def fresh_venv(tmp_path: Path, wheel: Path) -> Path:
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True, timeout=60)
    site_packages = venv / "lib" / PYTHON / "site-packages"
    # addsitedir, not a bare path line: the dependencies' own .pth files must run as they do at home
    view = dependency_view(tmp_path)
    (site_packages / "loadctl-dependencies.pth").write_text(f"import site; site.addsitedir({str(view)!r})\n")
    python = venv / "bin" / "python"
    install = [str(python), "-m", "pip", "install", "-q", "--no-index", "--no-cache-dir", str(wheel)]
    subprocess.run(install, check=True, capture_output=True, timeout=120, env=clean_env())
    return venv


def clean_env(**extra: str) -> dict[str, str]:
    """No PYTHONPATH (it would put a checkout first) and no stray DEMO_* settings."""
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH" and not k.startswith("DEMO_")}
    return {**env, **extra}


def run(venv: Path, args: list[str], *, cwd: Path, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(venv / "bin" / "loadctl"), *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=150,
        env=clean_env(**env),
        stdin=subprocess.DEVNULL,
    )


def test_the_installed_package_runs_the_shipped_demo_from_any_folder(tmp_path):
    venv = fresh_venv(tmp_path, build_wheel(tmp_path))
    installed = venv / "lib" / PYTHON / "site-packages"
    anywhere = tmp_path / "anywhere"  # outside the checkout, no profiles/ or gates/ of its own
    anywhere.mkdir()
    code = "import controller, locust_workers; print(controller.__file__); print(locust_workers.__file__)"
    where = subprocess.run(
        [str(venv / "bin" / "python"), "-c", code],
        cwd=anywhere,
        capture_output=True,
        text=True,
        env=clean_env(),
    )
    assert [Path(line).parent.parent for line in where.stdout.split()] == [installed, installed], where

    listed = run(venv, ["profiles"], cwd=anywhere)
    assert listed.returncode == 0, listed.stderr
    demo = next(line.split() for line in listed.stdout.splitlines() if line.startswith("demo "))
    assert demo[:4] == ["demo", "1m30s", "20", "shipped"]
    assert f"shipped: {installed / 'controller' / 'shipped' / 'profiles'}/NAME.yaml" in listed.stdout

    checked = run(venv, ["validate", "demo"], cwd=anywhere)  # the gate file resolves and compiles
    assert checked.returncode == 0, checked.stderr

    with demo_server(tmp_path / "demo.log") as target:
        port = target.rsplit(":", 1)[1]
        done = run(
            venv,
            ["run", "demo", "-u", "11", "-r", "11", "-t", "10s", "--workers", "1", "--run-id", "anywhere"],
            cwd=anywhere,
            DEMO_PORT=port,
        )
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr
    run_dir = anywhere / "results" / "anywhere"
    record = json.loads((run_dir / "run.json").read_text())
    shipped = installed / "controller" / "shipped"
    assert record["profile_file"] == str(shipped / "profiles" / "demo.yaml")
    assert record["locustfile"] == str(installed / "locust_workers" / "scenarios" / "demo.py")
    assert record["gates_file"] == str(shipped / "gates" / "pilot.yaml")
    assert record["host"] == target and record["requests"] > 0
    # the local Prometheus loaded the recording rules and alerts shipped with the package, rendered
    # for its 1 s scrapes next to its config
    (rules,) = yaml.safe_load((run_dir / "prometheus.yml").read_text())["rule_files"]
    assert (shipped / "chart" / "rules" / "loadctl.rules.yaml").is_file()
    assert "[30s]" in (run_dir / rules).read_text()
