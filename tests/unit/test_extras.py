"""A missing extra is exit 2 with the pip command, before any load, never a traceback.

Each case runs the real CLI in a subprocess whose sys.meta_path refuses the extra's modules, as a
venv without the extra would (the dev venv has every extra installed).
"""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from controller.errors import InputError
from controller.extras import EXTRAS, require_extra, require_probe_extras

ROOT = Path(__file__).resolve().parents[2]

# Runs `argv` as `loadctl` (or a module's main) with `blocked` top-level modules unimportable.
LAUNCHER = textwrap.dedent(
    """
    import importlib.abc, runpy, sys
    blocked = set(sys.argv[1].split(","))
    class Block(importlib.abc.MetaPathFinder):
        def find_spec(self, name, path=None, target=None):
            if name.split(".")[0] in blocked:
                raise ModuleNotFoundError(f"No module named {name!r}", name=name)
            return None
    sys.meta_path.insert(0, Block())
    target, sys.argv = sys.argv[2], sys.argv[2:]
    if target == "loadctl":
        from controller.cli import main
        main()
    else:
        runpy.run_module(target, run_name="__main__")
    """
)


def run_without(blocked: tuple[str, ...], argv: list[str], cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", LAUNCHER, ",".join(blocked), *argv],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=60,
        env={"PYTHONPATH": str(ROOT), "PATH": "/usr/bin:/bin", "HOME": str(cwd)},
    )


def assert_usage_error(result: subprocess.CompletedProcess[str], extra: str) -> str:
    err = result.stderr.strip()
    assert result.returncode == 2, err
    assert "Traceback" not in err
    lines = [line for line in err.splitlines() if f"pip install 'loadctl[{extra}]'" in line]
    assert len(lines) == 1, err
    return lines[0]


def locustfile(tmp_path: Path) -> Path:
    path = tmp_path / "locustfile.py"
    path.write_text(
        "from locust import HttpUser, task\n\n\nclass U(HttpUser):\n"
        "    @task\n    def t(self):\n        self.client.get('/')\n"
    )
    return path


def test_k8s_backend_without_the_k8s_extra_is_exit_2_naming_it(tmp_path):
    argv = ["loadctl", "run", "-f", str(locustfile(tmp_path)), "--host", "http://127.0.0.1:9"]
    result = run_without(EXTRAS["k8s"], [*argv, "--backend", "k8s", "-u", "1", "-t", "5s"], tmp_path)
    assert "Kubernetes backend" in assert_usage_error(result, "k8s")
    assert not (tmp_path / "results").exists()  # refused before a run folder exists


@pytest.mark.parametrize("kind", ["postgres", "redis"])
def test_a_database_probe_without_the_probes_extra_is_exit_2_naming_file_and_field(tmp_path, kind):
    locustfile(tmp_path)
    profile = tmp_path / "p.yaml"
    profile.write_text(
        "locustfile: locustfile.py\nhost: http://127.0.0.1:9\nusers: 1\nduration: 5s\n"
        f"probes:\n  - {{name: http, type: http_json, url: 'http://127.0.0.1:9/', fields: {{a: a}}}}\n"
        f"  - {{name: db, type: {kind}, {'dsn_env' if kind == 'postgres' else 'url_env'}: X}}\n"
    )
    result = run_without(EXTRAS["probes"], ["loadctl", "run", str(profile)], tmp_path)
    line = assert_usage_error(result, "probes")
    assert f"{profile}: probes[1].type" in line


def test_grafana_push_without_the_grafana_extra_is_exit_2_naming_it(tmp_path):
    argv = ["loadctl", "grafana", "push", "--url", "http://127.0.0.1:9", "--token-env", "T"]
    result = run_without(EXTRAS["grafana"], argv, tmp_path)
    assert "grafana push" in assert_usage_error(result, "grafana")


def test_the_demo_without_the_demo_extra_is_exit_2_naming_it(tmp_path):
    result = run_without(EXTRAS["demo"], ["examples.run_demo", "--port", "0"], ROOT)
    assert_usage_error(result, "demo")


def test_a_local_profile_without_any_extra_still_loads(tmp_path):
    # the lean install's promise: every extra blocked, a local profile is parsed without complaint
    everything = tuple(m for modules in EXTRAS.values() for m in modules)
    result = run_without(everything, ["loadctl", "profiles"], ROOT)
    assert result.returncode == 0, result.stderr


def test_require_extra_names_only_the_missing_modules():
    require_extra("k8s", what="x")  # the dev venv has every extra
    with pytest.raises(
        InputError, match=r"needs no_such_mod_x, not installed: pip install 'loadctl\[demo\]'"
    ):
        require_extra("demo", what="the demo", modules=["uvicorn", "no_such_mod_x"])


def test_only_database_probes_need_the_probes_extra():
    require_probe_extras(["http_json", "process"], source="p.yaml")
    require_probe_extras(["postgres", "redis"], source="p.yaml")  # installed here


def test_the_extras_table_matches_pyproject():
    import tomllib

    declared = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["optional-dependencies"]
    assert set(EXTRAS) <= set(declared)
