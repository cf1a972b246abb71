"""No traceback reaches the user: broken run folders, bugs, Ctrl-C and OS errors through the real CLI.

Each case: the documented exit code, exactly one `loadctl: error` line on stderr, no traceback.
"""

from __future__ import annotations

import os
import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from controller.rundir import RunDir
from tests.promdata import Phase, SyntheticRun, Traffic, build_tsdb, openmetrics, start_time
from tests.support import REPO_ROOT, run_loadctl, run_record

pytestmark = pytest.mark.integration
GATES = REPO_ROOT / "gates" / "pilot.yaml"


def one_line(done: subprocess.CompletedProcess[str], code: int, *words: str) -> str:
    assert done.returncode == code, done.stdout + done.stderr
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1, done.stderr
    assert lines[0].startswith("loadctl: error"), lines[0]
    for word in words:
        assert word in lines[0], (word, lines[0])
    assert "Traceback" not in done.stdout + done.stderr
    return lines[0]


def run_folder(tmp_path: Path, run_json: bytes | None, *, tsdb: bool = True) -> Path:
    """A folder that looks like a run (it has tsdb/), with the given run.json or none."""
    run = tmp_path / "run"
    run.mkdir()
    if tsdb:
        (run / "tsdb").mkdir()
    if run_json is not None:
        (run / "run.json").write_bytes(run_json)
    return run


VALID_RECORD = run_record(profile="pilot").model_dump_json()


@pytest.mark.parametrize(
    ("run_json", "words"),
    [
        (None, ["run.json: not found: not a loadctl run directory"]),
        (b'{"run_id": "r1", ', ["run.json: corrupt: Invalid JSON"]),
        (b'{"run_id": "r1"}', ["run.json: corrupt: profile: Field required"]),
        (b"\xff\xfe{}", ["run.json: corrupt: not UTF-8 text"]),
    ],
)
def test_gates_eval_on_a_broken_run_folder(tmp_path, run_json, words):
    run = run_folder(tmp_path, run_json)
    done = run_loadctl(["gates", "eval", "--gates", str(GATES), "--run", str(run)], cwd=tmp_path)
    one_line(done, 2, str(run / "run.json"), *words)
    assert not (run / "logs").exists()  # no Prometheus was started on it


def test_gates_eval_with_a_prometheus_url_checks_run_json_too(tmp_path):
    broken = run_folder(tmp_path, b'{"oops"')
    done = run_loadctl(
        ["gates", "eval", "--gates", str(GATES), "--run", str(broken), "--prometheus", "http://127.0.0.1:1"],
        cwd=tmp_path,
    )
    one_line(done, 2, str(broken / "run.json"), "corrupt")


def test_gates_eval_baseline_and_lock_check_their_run_folders_too(tmp_path):
    broken = run_folder(tmp_path, b'{"oops"')
    good = tmp_path / "good"
    (good / "tsdb").mkdir(parents=True)
    (good / "run.json").write_text(VALID_RECORD, encoding="utf-8")
    done = run_loadctl(
        ["gates", "eval", "--gates", str(GATES), "--run", str(good), "--baseline", str(broken)], cwd=tmp_path
    )
    one_line(done, 2, str(broken / "run.json"), "corrupt")
    done = run_loadctl(
        ["gates", "lock", "--gates", str(GATES), "--run", str(broken), "--output", str(tmp_path / "l.yaml")],
        cwd=tmp_path,
    )
    one_line(done, 2, str(broken / "run.json"), "corrupt")


def test_gates_commands_on_a_run_without_tsdb(tmp_path):
    run = run_folder(tmp_path, VALID_RECORD.encode(), tsdb=False)
    for command in (["eval"], ["lock", "--output", str(tmp_path / "l.yaml")]):
        done = run_loadctl(["gates", *command, "--gates", str(GATES), "--run", str(run)], cwd=tmp_path)
        one_line(done, 2, str(run), "no tsdb/ directory")


def test_gates_commands_check_outputs_and_urls_before_starting_anything(tmp_path):
    run = run_folder(tmp_path, None)
    missing = tmp_path / "nowhere" / "out.xml"
    for args in (
        ["eval", "--run", str(run), "--format", "junit", "--output", str(missing)],
        ["lock", "--run", str(run), "--output", str(missing)],
    ):
        done = run_loadctl(["gates", *args, "--gates", str(GATES)], cwd=tmp_path)
        one_line(done, 2, "--output", "does not exist")
    window = ["--run-id", "r1", "--start", "1", "--end", "2"]
    done = run_loadctl(
        ["gates", "eval", "--gates", str(GATES), *window, "--prometheus", "localhost:9090"], cwd=tmp_path
    )
    one_line(done, 2, "--prometheus", "http(s)://")
    done = run_loadctl(
        [
            "gates",
            "eval",
            "--gates",
            str(GATES),
            "--run-id",
            "r1",
            "--start",
            "nan",
            "--end",
            "2",
            "--prometheus",
            "http://127.0.0.1:1",
        ],
        cwd=tmp_path,
    )
    one_line(done, 2, "--start")


# main() of the real CLI in its own process, with a command that only this test registers: the
# genuine exit path of a bug, without planting one in the product.
BROKEN_COMMANDS = """
import errno, sys
from pathlib import Path
import click
from controller.cli import cli, main
from controller.crash import remember_run_dir

@cli.command("bug")
@click.option("--run", type=Path)
def bug(run):
    remember_run_dir(run)
    {}["missing key"]

@cli.command("full-disk")
def full_disk():
    raise OSError(errno.ENOSPC, "No space left on device", "/results/r1/junit.xml")

@cli.command("ctrl-c")
def ctrl_c():
    raise KeyboardInterrupt

main()
"""


def run_broken(tmp_path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "TMPDIR": str(tmp_path / "tmp"), "PYTHONPATH": str(REPO_ROOT)}
    (tmp_path / "tmp").mkdir(exist_ok=True)
    return subprocess.run(
        [sys.executable, "-c", BROKEN_COMMANDS, *args],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
        env=env,
        stdin=subprocess.DEVNULL,
    )


def logged(line: str) -> Path:
    assert line.endswith(")") and "(traceback in " in line, line
    return Path(line.rsplit("(traceback in ", 1)[1][:-1])


def test_a_bug_is_exit_3_one_line_and_a_traceback_in_tmp(tmp_path):
    line = one_line(run_broken(tmp_path, "bug"), 3, "loadctl: error: unexpected KeyError: 'missing key'")
    log = logged(line)
    assert log.parent == tmp_path / "tmp" and log.name.startswith("loadctl-")
    text = log.read_text(encoding="utf-8")
    assert "Traceback (most recent call last)" in text and "KeyError: 'missing key'" in text
    assert "in bug" in text  # the frame that broke


def test_a_bug_during_a_run_leaves_its_traceback_in_the_run_folder(tmp_path):
    run = tmp_path / "results" / "r1"
    line = one_line(run_broken(tmp_path, "bug", "--run", str(run)), 3, "unexpected KeyError")
    log = logged(line)
    assert log.parent == run / "logs"
    assert "KeyError" in log.read_text(encoding="utf-8")
    assert list((tmp_path / "tmp").iterdir()) == []


def test_an_os_error_is_exit_3_one_line_naming_the_path(tmp_path):
    done = run_broken(tmp_path, "full-disk")
    one_line(done, 3, "/results/r1/junit.xml: No space left on device (ENOSPC)")


def test_ctrl_c_outside_a_run_is_exit_130_one_line(tmp_path):
    done = run_broken(tmp_path, "ctrl-c")
    assert one_line(done, 130) == "loadctl: error: interrupted"


def test_gates_eval_junit_on_a_real_run_folder(tmp_path):
    """The happy path still works after the checks, and junit.xml names tests by the gate file."""
    run = SyntheticRun(
        run_id="junit-run",
        start=start_time(),
        phases=(Phase("steady", 60, {"search": Traffic(10, (1, 3, 3, 2, 1, 0), {"500": 1})}),),
    )
    run_dir = tmp_path / "results" / "junit-run"
    build_tsdb(openmetrics([run]), run_dir / "tsdb")
    RunDir(run_dir).write_record(run.record())
    gates = tmp_path / "g.yaml"
    gates.write_text(
        "version: 1\nname: smoke\ngates:\n"
        "  - {name: throughput, metric: rps, min: 5}\n"
        "  - {name: errors, metric: error_rate, max: 0.05}\n",
        encoding="utf-8",
    )
    junit = tmp_path / "junit.xml"
    done = run_loadctl(
        [
            "gates",
            "eval",
            "--gates",
            str(gates),
            "--run",
            str(run_dir),
            "--format",
            "junit",
            "--output",
            str(junit),
        ],
        cwd=tmp_path,
    )
    assert done.returncode == 1, done.stdout + done.stderr  # 10% errors > 5%
    suite = ET.parse(junit).getroot().find("testsuite")
    assert suite is not None and suite.get("name") == "loadctl gates: smoke"
    cases = {c.get("name"): c for c in suite.iter("testcase")}
    assert list(cases) == ["throughput", "errors"]
    assert {c.get("classname") for c in cases.values()} == {"smoke"}
    assert cases["errors"].find("failure") is not None and cases["throughput"].find("failure") is None
