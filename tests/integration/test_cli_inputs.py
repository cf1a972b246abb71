"""Issue 10 item 6 through the real CLI: each input mistake is exit 2 with one stderr line naming the
file and the field, no traceback, no results folder, and not one request at the target."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from tests.support import DEMO_LOCUSTFILE, run_loadctl

pytestmark = pytest.mark.integration


class _Counting(BaseHTTPRequestHandler):
    hits: list[str]

    def _answer(self) -> None:
        self.hits.append(f"{self.command} {self.path}")
        self.send_response(200)
        self.send_header("Content-Length", "2")
        self.end_headers()
        self.wfile.write(b"ok")

    do_GET = do_POST = do_PUT = do_DELETE = _answer

    def log_message(self, *_args: object) -> None:
        pass


@pytest.fixture
def target() -> Iterator[tuple[str, list[str]]]:
    """A loopback HTTP server that records every request it gets: the tests expect none."""
    hits: list[str] = []
    handler = type("Handler", (_Counting,), {"hits": hits})
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}", hits
    finally:
        server.shutdown()
        server.server_close()


def check(done, results: Path, hits: list[str], *words: str) -> str:
    assert done.returncode == 2, done.stdout + done.stderr
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1, done.stderr
    assert lines[0].startswith("loadctl: error: "), lines[0]
    for word in words:
        assert word in lines[0], (word, lines[0])
    assert "Traceback" not in done.stdout + done.stderr
    assert not results.exists()
    assert hits == []
    return lines[0]


def write_profile(tmp_path: Path, host: str, body: str) -> Path:
    path = tmp_path / "p.yaml"
    path.write_text(f"name: p\nlocustfile: {DEMO_LOCUSTFILE}\nhost: {host}\n{body}")
    return path


def run_profile(tmp_path: Path, profile: Path, *flags: str):
    return run_loadctl(["run", str(profile), "--results-dir", str(tmp_path / "results"), *flags])


def run_gates(tmp_path: Path, host: str, gates: str, *flags: str):
    (tmp_path / "g.yaml").write_text("version: 1\nname: g\n" + gates)
    argv = ["run", "-f", str(DEMO_LOCUSTFILE), "--host", host, "-u", "1", "-t", "5s"]
    return run_loadctl(
        [*argv, "--gates", str(tmp_path / "g.yaml"), "--results-dir", str(tmp_path / "results"), *flags]
    )


@pytest.mark.parametrize(
    ("gates", "words"),
    [
        ("gates:\n  - {name: a, metric: rps, max: .nan}\n", ["g.yaml: gates[0] (a).max:", "finite"]),
        ("gates:\n  - {name: a, metric: rps, max: true}\n", ["g.yaml: gates[0] (a).max:", "boolean"]),
        (
            "gates:\n  - {name: a, metric: rps, min: 1, window: stedy}\n",
            ["g.yaml: gates[0] (a).window: 'stedy' is not a phase", "ramp_up", "steady"],
        ),
        (
            "gates:\n  - {name: a, metric: rps, max_change: '+10%'}\n",
            ["g.yaml: gates[0] (a).max_change: a relative gate needs a baseline run", "--baseline"],
        ),
        (f"gates:\n  - {{name: a, promql: '{'x+' * 50_000}x', max: 1}}\n", ["g.yaml: gates[0] (a).promql:"]),
    ],
)
def test_bad_gate_files(tmp_path, target, gates, words):
    host, hits = target
    check(run_gates(tmp_path, host, gates), tmp_path / "results", hits, *words)


def test_gate_file_with_invalid_utf8(tmp_path, target):
    host, hits = target
    (tmp_path / "g.yaml").write_bytes(b"version: 1\nname: g\ngates:\n  - {name: \xe9, metric: rps, min: 1}\n")
    argv = ["run", "-f", str(DEMO_LOCUSTFILE), "--host", host, "-u", "1", "-t", "5s", "--gates"]
    done = run_loadctl([*argv, str(tmp_path / "g.yaml"), "--results-dir", str(tmp_path / "results")])
    check(done, tmp_path / "results", hits, "g.yaml: line 4: not valid UTF-8")


def test_a_baseline_without_run_json(tmp_path, target):
    host, hits = target
    (tmp_path / "old").mkdir()
    done = run_gates(
        tmp_path,
        host,
        "gates:\n  - {name: a, metric: rps, max_change: '+10%'}\n",
        "--baseline",
        str(tmp_path / "old"),
    )
    check(done, tmp_path / "results", hits, "command line: --baseline:", "has no run.json")


@pytest.mark.parametrize(
    ("body", "words"),
    [
        (
            "users: 1\nduration: 5s\nworkers: yes\n",
            ["p.yaml: workers: expected a whole number, not a boolean"],
        ),
        ("users: 20\nduration: 8s\n", ["p.yaml: duration: ramping up to 20 users at 1/s takes 20s"]),
        (
            "stages:\n  - {duration: 10s, users: 5, spawn_rate: 1}\n"
            "  - {duration: 5s, users: 20, spawn_rate: 1}\n",
            [
                "p.yaml: stages[1]: reaching 20 users at spawn_rate 1/s takes 15s",
                "longer than the stage's 5s",
            ],
        ),
        (
            "users: 1\nduration: 5s\nnested: " + "[" * 500 + "]" * 500 + "\n",
            ["p.yaml: too complex: nested deeper"],
        ),
    ],
)
def test_bad_profiles(tmp_path, target, body, words):
    host, hits = target
    check(run_profile(tmp_path, write_profile(tmp_path, host, body)), tmp_path / "results", hits, *words)


def test_a_profile_with_a_nul_byte(tmp_path, target):
    host, hits = target
    profile = write_profile(tmp_path, host, "users: 1\nduration: 5s\n")
    profile.write_bytes(profile.read_bytes() + b"description: a\x00b\n")
    check(run_profile(tmp_path, profile), tmp_path / "results", hits, "p.yaml: line 6: contains a NUL byte")


def test_credentials_in_the_host_are_refused(tmp_path, target):
    host, hits = target
    with_password = host.replace("http://", "http://admin:hunter2@")
    profile = write_profile(tmp_path, with_password, "users: 1\nduration: 5s\n")
    line = check(run_profile(tmp_path, profile), tmp_path / "results", hits, "p.yaml: host: credentials")
    assert "hunter2" not in line
    done = run_profile(
        tmp_path, write_profile(tmp_path, host, "users: 1\nduration: 5s\n"), "--host", with_password
    )
    line = check(done, tmp_path / "results", hits, "command line: --host: credentials")
    assert "hunter2" not in line


@pytest.mark.parametrize(
    ("flags", "words"),
    [
        (
            ["-u", "20", "-t", "8s"],
            ["command line: -t: ramping up to 20 users at 1/s takes 20s", "8s run time"],
        ),
        (["-u", "20", "-r", "2", "-t", "8s"], ["command line: -t/-r:", "takes 10s"]),
    ],
)
def test_t_is_the_total_run_time(tmp_path, target, flags, words):
    host, hits = target
    argv = [
        "run",
        "-f",
        str(DEMO_LOCUSTFILE),
        "--host",
        host,
        *flags,
        "--results-dir",
        str(tmp_path / "results"),
    ]
    check(run_loadctl(argv), tmp_path / "results", hits, *words)


def test_an_existing_run_folder_is_refused(tmp_path, target):
    host, hits = target
    (tmp_path / "results" / "taken").mkdir(parents=True)
    argv = ["run", "-f", str(DEMO_LOCUSTFILE), "--host", host, "-u", "1", "-t", "5s", "--run-id", "taken"]
    done = run_loadctl([*argv, "--results-dir", str(tmp_path / "results")])
    assert done.returncode == 2 and done.stderr.strip().splitlines() == [
        f"loadctl: error: command line: --run-id: {tmp_path / 'results' / 'taken'} already exists; "
        "choose another --run-id"
    ]
    assert list((tmp_path / "results" / "taken").iterdir()) == [] and hits == []


@pytest.mark.parametrize("where", ["a-file/results", "/proc/self/results"])
def test_an_unwritable_results_dir_is_refused(tmp_path, target, where):
    host, hits = target
    (tmp_path / "a-file").write_text("")
    argv = ["run", "-f", str(DEMO_LOCUSTFILE), "--host", host, "-u", "1", "-t", "5s", "--results-dir"]
    done = run_loadctl([*argv, str(tmp_path / where)])
    check(done, tmp_path / "results", hits, "command line: --results-dir:")


def test_validate_runs_the_same_checks_as_run(tmp_path, target):
    host, hits = target
    (tmp_path / "g.yaml").write_text(
        "version: 1\nname: g\ngates:\n  - {name: q, promql: 'rate(x[5m]', max: 1}\n"
    )
    profile = write_profile(tmp_path, host, "users: 1\nduration: 5s\ngates: g.yaml\n")
    done = run_loadctl(["validate", str(profile)])
    check(done, tmp_path / "results", hits, "g.yaml: gates[0] (q): invalid PromQL")
    (tmp_path / "g.yaml").write_text(
        "version: 1\nname: g\ngates:\n  - {name: a, metric: rps, min_change: '-5%'}\n"
    )
    check(
        run_loadctl(["validate", str(profile)]), tmp_path / "results", hits, "(a).min_change: a relative gate"
    )
    (tmp_path / "g.yaml").write_text("version: 1\nname: g\ngates:\n  - {name: a, metric: rps, min: 1}\n")
    done = run_loadctl(["validate", str(profile)])
    assert done.returncode == 0 and "p.yaml: ok (2 stages, 5s" in done.stdout, done.stdout + done.stderr


def _billion_laughs() -> bytes:
    lines = [b'a: &a ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]']
    for i in range(1, 9):
        name, previous = chr(97 + i), chr(96 + i)
        lines.append(f"{name}: &{name} [{', '.join([f'*{previous}'] * 9)}]".encode())
    return b"\n".join(lines) + b"\n"


HOSTILE = {
    "deep": b"a: " + b"[" * 5000 + b"]" * 5000 + b"\n",
    "laughs": _billion_laughs(),
    "nul": b"name: p\x00\n",
    "utf8": b"name: \xc3\x28\n",
    "huge": b"description: " + b"x" * 2_000_000 + b"\n",
}


def test_hostile_files_are_refused_with_one_line(tmp_path):
    """Each is refused as bad input, in one line. The timeout is a hang guard, not a speed goal:
    expanding the laughs (9^9 list items) or recursing 5,000 levels deep would take far longer
    or die with a traceback."""
    for name, content in HOSTILE.items():
        path = tmp_path / f"{name}.yaml"
        path.write_bytes(content)
        done = run_loadctl(["validate", str(path)], timeout=60)
        assert done.returncode == 2, (name, done.stderr)
        lines = done.stderr.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith(f"loadctl: error: {path}: "), (name, done.stderr)
