"""`pip install .` without extras: a local run works, and --backend k8s says which extra to add.

As in test_package.py, the wheel is built offline and installed into a fresh venv whose
dependencies come from a view of this venv's site-packages, but the view holds only the closure of
the core dependencies pyproject.toml declares (no extra): kubernetes, pyhelm3, psycopg, redis,
grafana-client, starlette and uvicorn are really absent, as after a plain `pip install loadctl`.
"""

from __future__ import annotations

import importlib.metadata
import subprocess
import sys
import sysconfig
import tomllib
from pathlib import Path

import pytest
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

from tests.integration.test_package import PYTHON, build_wheel, clean_env
from tests.support import REPO_ROOT, demo_server

pytestmark = [pytest.mark.integration, pytest.mark.slow]

EXTRA_MODULES = ("kubernetes", "pyhelm3", "psycopg", "redis", "grafana_client", "starlette", "uvicorn")


def core_closure() -> dict[str, importlib.metadata.Distribution]:
    """The installed distributions the core dependencies need, transitively, without loadctl's extras
    (a dependency's own extras, such as python-socketio[client] for Locust, are followed)."""
    # pip too: the fresh venv has none of its own (--without-pip) and installs the wheel with it
    todo = ["pip", *tomllib.loads((REPO_ROOT / "pyproject.toml").read_text())["project"]["dependencies"]]
    found: dict[str, importlib.metadata.Distribution] = {}
    followed: set[tuple[str, str]] = set()
    while todo:
        req = Requirement(todo.pop())
        name = canonicalize_name(req.name)
        found.setdefault(name, importlib.metadata.distribution(req.name))
        for extra in {"", *req.extras} - {e for n, e in followed if n == name}:
            followed.add((name, extra))
            for dep in map(Requirement, found[name].requires or []):
                if dep.marker is None or dep.marker.evaluate({"extra": extra}):
                    todo.append(str(dep))
    return found


def lean_view(tmp_path: Path) -> Path:
    site_packages = Path(sysconfig.get_paths()["purelib"])
    view = tmp_path / "core-dependencies"
    view.mkdir()
    for dist in core_closure().values():
        tops = {Path(str(f)).parts[0] for f in dist.files or [] if not str(f).startswith("..")}
        for top in tops - {"__pycache__"}:
            if (site_packages / top).exists() and not (view / top).exists():
                (view / top).symlink_to(site_packages / top)
    return view


def lean_venv(tmp_path: Path) -> Path:
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True, timeout=60)
    pth = venv / "lib" / PYTHON / "site-packages" / "loadctl-dependencies.pth"
    pth.write_text(f"import site; site.addsitedir({str(lean_view(tmp_path))!r})\n")
    install = [str(venv / "bin" / "python"), "-m", "pip", "install", "-q", "--no-index", "--no-cache-dir"]
    wheel = build_wheel(tmp_path)
    done = subprocess.run(
        [*install, str(wheel)], capture_output=True, text=True, timeout=120, env=clean_env()
    )
    assert done.returncode == 0, done.stderr  # a core dependency missing from the closure fails here
    return venv


def loadctl(venv: Path, args: list[str], cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(venv / "bin" / "loadctl"), *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=150,
        env=clean_env(),
        stdin=subprocess.DEVNULL,
    )


def test_the_lean_install_runs_locally_and_names_the_extra_for_k8s(tmp_path):
    venv = lean_venv(tmp_path)
    probe = "import importlib.util as u, sys; print([m for m in sys.argv[1:] if u.find_spec(m)])"
    absent = subprocess.run(
        [str(venv / "bin" / "python"), "-c", probe, *EXTRA_MODULES],
        capture_output=True,
        text=True,
        env=clean_env(),
    )
    assert absent.stdout.strip() == "[]", absent.stderr
    work = tmp_path / "work"
    work.mkdir()
    locustfile = work / "locustfile.py"
    locustfile.write_text(
        "from locust import HttpUser, task\n\n\nclass U(HttpUser):\n"
        "    @task\n    def t(self):\n        self.client.get('/v1/recipes')\n"
    )
    common = ["run", "-f", str(locustfile), "-u", "2", "-t", "5s", "--workers", "1"]
    with demo_server(tmp_path / "demo.log") as target:
        done = loadctl(venv, [*common, "--host", target, "--gates", "none", "--run-id", "lean"], work)
        refused = loadctl(venv, [*common, "--host", target, "--backend", "k8s"], work)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr
    assert (work / "results" / "lean" / "report.md").is_file()
    assert refused.returncode == 2
    assert refused.stderr.strip().endswith("pip install 'loadctl[k8s]'"), refused.stderr
    assert "Traceback" not in refused.stderr
