"""Bad input through the real CLI: exit 2, one line naming the file and field, nothing started."""

from __future__ import annotations

import os

import pytest

from tests.support import DEMO_LOCUSTFILE, run_loadctl

pytestmark = pytest.mark.integration
# a small ad-hoc run against a closed loopback port: nothing may ever reach it
ADHOC_RUN = ["run", "-f", str(DEMO_LOCUSTFILE), "--host", "http://127.0.0.1:1", "-u", "1", "-t", "5s"]


def profile(tmp_path, body: str):
    path = tmp_path / "p.yaml"
    path.write_text(body)
    return path


def assert_input_error(done, tmp_path, *words: str) -> None:
    assert done.returncode == 2, done.stdout + done.stderr
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1, done.stderr
    assert lines[0].startswith("loadctl: error"), lines[0]
    for word in words:
        assert word in lines[0], (word, lines[0])
    assert "Traceback" not in done.stdout + done.stderr
    assert not (tmp_path / "results").exists()  # nothing was started, no load was sent


@pytest.mark.parametrize(
    ("body", "words"),
    [
        (
            f"name: bad\nlocustfile: {DEMO_LOCUSTFILE}\nhost: http://127.0.0.1:1\nstages:\n"
            "  - {duration: 10s, users: -5, spawn_rate: 1}\n",
            ["p.yaml: stages[0].users:"],
        ),
        ("name: bad\nhost: http://127.0.0.1:1\nusers: 1\nduration: 5s\n", ["p.yaml: locustfile:"]),
        (
            f"name: bad\nlocustfile: {DEMO_LOCUSTFILE}\nhost: http://127.0.0.1:1\nusers: 1\nduration: 5s\n"
            "user_weights: {GhostUser: 3}\n",
            ["p.yaml: user_weights:", "GhostUser"],
        ),
        (
            f"name: bad\nlocustfile: {DEMO_LOCUSTFILE}\nhost: http://127.0.0.1:1\n"
            "users: 1\nduration: 5s\ncolour: red\n",
            ["p.yaml: colour: unknown field"],
        ),
    ],
)
def test_bad_profile(tmp_path, body, words):
    done = run_loadctl(["run", str(profile(tmp_path, body)), "--results-dir", str(tmp_path / "results")])
    assert_input_error(done, tmp_path, *words)


def test_broken_locustfile_is_rejected_before_any_load(tmp_path):
    broken = tmp_path / "broken.py"
    broken.write_text("from locust import HttpUser\nclass U(HttpUser):\n    def oops(:\n")
    done = run_loadctl(
        [
            "run",
            "-f",
            str(broken),
            "--host",
            "http://127.0.0.1:1",
            "-u",
            "1",
            "-t",
            "5s",
            "--results-dir",
            str(tmp_path / "results"),
        ]
    )
    assert_input_error(done, tmp_path, "broken.py", "Locust cannot load it")


@pytest.mark.parametrize(
    ("args", "words"),
    [
        (["-u", "1", "-t", "5s"], ["--host"]),
        (["--host", "nohost", "-u", "1", "-t", "5s"], ["--host", "nohost"]),
        (["--host", "http://127.0.0.1:1", "-u", "1", "-t", "soon"], ["-t", "soon"]),
        (["--host", "http://127.0.0.1:1", "-u", "1", "-t", "5s", "--workers", "0"], ["--workers"]),
        (["--host", "http://127.0.0.1:1", "-u", "1", "-t", "5s", "--bogus"], ["--bogus"]),
    ],
)
def test_bad_flags(tmp_path, args, words):
    done = run_loadctl(["run", "-f", str(DEMO_LOCUSTFILE), *args, "--results-dir", str(tmp_path / "results")])
    assert_input_error(done, tmp_path, *words)


def test_unknown_profile_name(tmp_path):
    done = run_loadctl(["run", "no-such-profile", "--results-dir", str(tmp_path / "results")])
    assert_input_error(done, tmp_path, "no profile named 'no-such-profile'", "demo")


def test_missing_prometheus_is_an_infrastructure_error(tmp_path):
    env = dict(os.environ, PROMETHEUS_BIN=str(tmp_path / "no-prometheus"))
    done = run_loadctl(
        [
            *ADHOC_RUN,
            "--run-id",
            "noprom",
            "--results-dir",
            str(tmp_path / "results"),
        ],
        env=env,
    )
    assert done.returncode == 3, done.stdout + done.stderr
    assert done.stderr.strip().splitlines() == [
        f"loadctl: error: PROMETHEUS_BIN={tmp_path / 'no-prometheus'} is not an executable file"
    ]
    assert not (tmp_path / "results").exists()  # found out before anything was started


def test_validate_command(tmp_path):
    done = run_loadctl(["validate", "demo"])
    assert done.returncode == 0 and "profiles/demo.yaml: ok (3 stages, 90s" in done.stdout


@pytest.mark.parametrize(
    ("gates", "words"),
    [
        (
            "version: 1\nname: g\ngates:\n  - {name: p42, metric: latency_p42_ms, max: 1}\n",
            ["g.yaml: gates[0] (p42).metric: unknown metric 'latency_p42_ms'"],
        ),
        (
            "version: 1\nname: g\ngates:\n  - {name: both, metric: rps, promql: up, min: 1}\n",
            ["g.yaml: gates[0] (both): give exactly one of 'metric' and 'promql'"],
        ),
        (
            "version: 1\nname: g\ngates:\n  - {name: nothing, metric: rps}\n",
            ["gates[0] (nothing): no threshold"],
        ),
        (
            "version: 1\nname: g\ngates:\n  - {name: m, metric: rps, labels: 'name=x', min: 1}\n",
            ["gates[0] (m).labels:", "label matchers"],
        ),
        (
            "version: 1\nname: g\ngates:\n  - {name: ok, metric: rps, min: 1}\n"
            "  - {name: q, promql: 'rate(x[5m]', max: 1}\n",
            ["g.yaml: gates[1] (q): invalid PromQL:"],
        ),
        (
            "version: 1\nname: g\ngates:\n"
            "  - {name: bp, metric: breaking_point_users, min: 500, abort: true}\n",
            ["g.yaml: gates[0] (bp): breaking_point_users cannot abort live"],
        ),
        (
            "version: 1\nname: g\ngates:\n  - {name: leak, metric: drift_per_hour, max: 0.05}\n",
            ["g.yaml: gates[0] (leak): metric drift_per_hour needs 'gauge'"],
        ),
        (
            "version: 1\nname: g\ngates:\n"
            "  - {name: leak, metric: drift_per_hour, gauge: 'rss mb', max: 0.05}\n",
            ["g.yaml: gates[0] (leak).gauge: "],
        ),
    ],
)
def test_bad_gate_file_is_rejected_before_any_load(tmp_path, gates, words):
    (tmp_path / "g.yaml").write_text(gates)
    done = run_loadctl(
        [
            *ADHOC_RUN,
            "--gates",
            str(tmp_path / "g.yaml"),
            "--results-dir",
            str(tmp_path / "results"),
        ]
    )
    assert_input_error(done, tmp_path, *words)


def test_gates_eval_with_a_bad_gate_file(tmp_path):
    (tmp_path / "g.yaml").write_text("version: 1\nname: g\ngates: []\n")
    done = run_loadctl(
        [
            "gates",
            "eval",
            "--gates",
            str(tmp_path / "g.yaml"),
            "--prometheus",
            "http://127.0.0.1:1",
            "--run-id",
            "x",
            "--start",
            "1",
            "--end",
            "2",
        ]
    )
    assert_input_error(done, tmp_path, "g.yaml: gates:")


@pytest.mark.parametrize(
    ("flags", "named"),
    [
        (["--keep-on-fail"], "--keep-on-fail"),
        (["--values", "pyproject.toml"], "--values"),
        (["-n", "loadtest"], "--namespace"),
        (["--in-cluster"], "--in-cluster"),
        (["--timeout", "1m"], "--timeout"),
        (["--wait-for-lock", "1m"], "--wait-for-lock"),
        (["--prometheus", "http://127.0.0.1:9090"], "--prometheus"),
        (["--backend", "local", "--image", "loadctl:1"], "--image"),
    ],
)
def test_k8s_flags_without_the_k8s_backend_are_refused(tmp_path, flags, named):
    done = run_loadctl([*ADHOC_RUN, "--results-dir", str(tmp_path / "results"), *flags])
    assert_input_error(done, tmp_path, named, "only with --backend k8s, not with --backend local")


def test_a_bad_wait_for_lock_is_an_input_error_before_connecting(tmp_path):
    env = {**os.environ, "KUBECONFIG": str(tmp_path / "nope.yaml")}
    args = [*ADHOC_RUN, "--results-dir", str(tmp_path / "results"), "--backend", "k8s"]
    done = run_loadctl([*args, "--wait-for-lock", "soon"], env=env)
    assert_input_error(done, tmp_path, "command line: --wait-for-lock:")


def test_a_k8s_run_with_a_missing_kubeconfig_is_an_input_error(tmp_path):
    missing = tmp_path / "nope.yaml"
    env = {**os.environ, "KUBECONFIG": str(missing)}
    done = run_loadctl([*ADHOC_RUN, "--results-dir", str(tmp_path / "results"), "--backend", "k8s"], env=env)
    assert_input_error(done, tmp_path, "kubeconfig", "No configuration found")


def test_a_broken_report_template_is_rejected_before_any_load(tmp_path):
    templates = tmp_path / "templates"
    templates.mkdir()
    (templates / "report.md.j2").write_text("# {{ report.title }}\n{% if x %}\nunclosed\n")
    args = [*ADHOC_RUN, "--results-dir", str(tmp_path / "results")]
    done = run_loadctl([*args, "--report-template", str(templates)])
    assert_input_error(done, tmp_path, f"{templates / 'report.md.j2'}:", "template syntax error at line")
    done = run_loadctl([*args, "--report-template", str(tmp_path / "missing")])
    assert_input_error(done, tmp_path, "report_template (--report-template):", "is not a directory")
    body = f"name: p\nlocustfile: {DEMO_LOCUSTFILE}\nhost: http://127.0.0.1:1\nusers: 1\nduration: 5s\n"
    path = profile(tmp_path, body + "report_template: missing\n")
    done = run_loadctl(["validate", str(path), "--results-dir", str(tmp_path / "results")])
    assert_input_error(
        done, tmp_path, "p.yaml: report_template (--report-template):", "missing is not a directory"
    )
