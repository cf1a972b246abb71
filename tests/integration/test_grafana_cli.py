"""`loadctl grafana push` and run annotations through the real CLI, against a Grafana API STUB.

No Grafana server can run on this machine, so these tests talk to a small local HTTP stub of the
Grafana HTTP API (`GrafanaStub`: http.server in a thread on 127.0.0.1) that implements only the
endpoints grafana-client calls for loadctl: GET /api/health, GET and POST /api/folders,
POST /api/dashboards/db and POST /api/annotations, with Bearer-token checks. It records every
request, so the tests check what a real Grafana would have been sent; they do not prove that a
real Grafana accepts it (the bodies follow Grafana's documented HTTP API).

The runs are real: local backend, Locust, Prometheus and the demo target.
"""

from __future__ import annotations

import json
import re
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from controller.grafana.payloads import default_dashboards_dir
from controller.processes import free_port
from tests.support import DEMO_LOCUSTFILE, demo_server, run_loadctl

pytestmark = pytest.mark.integration

TOKEN = "glsa_stubTokenForTests0123456789_abcdef01"


@dataclass
class Seen:
    method: str
    path: str
    authorization: str | None
    body: Any


@dataclass
class GrafanaStub:
    """The Grafana API endpoints loadctl uses, in memory. `fail_with` makes every answer that status."""

    token: str = TOKEN
    fail_with: int | None = None
    requests: list[Seen] = field(default_factory=list)
    folders: dict[str, dict[str, Any]] = field(default_factory=dict)
    dashboards: dict[str, dict[str, Any]] = field(default_factory=dict)
    annotations: list[dict[str, Any]] = field(default_factory=list)
    url: str = ""

    def seen(self, method: str, path: str) -> list[Seen]:
        return [r for r in self.requests if r.method == method and r.path.split("?")[0] == path]

    def answer(self, method: str, path: str, auth: str | None, body: Any) -> tuple[int, Any]:
        if self.fail_with is not None:
            return self.fail_with, {"message": "stub failure"}
        path = path.split("?")[0]
        if (method, path) == ("GET", "/api/health"):
            return 200, {"commit": "stub", "database": "ok", "version": "11.3.0"}
        if auth != f"Bearer {self.token}":
            return 401, {"message": "invalid API key"}
        if (method, path) == ("GET", "/api/folders"):
            return 200, [{"id": f["id"], "uid": f["uid"], "title": f["title"]} for f in self.folders.values()]
        if (method, path) == ("POST", "/api/folders"):
            uid = body.get("uid") or f"f{len(self.folders) + 1}"
            if uid in self.folders:
                return 409, {"message": "a folder with the same uid already exists"}
            folder = {
                "id": len(self.folders) + 1,
                "uid": uid,
                "title": body["title"],
                "url": f"/dashboards/f/{uid}/",
            }
            self.folders[uid] = folder
            return 200, folder
        if (method, path) == ("POST", "/api/dashboards/db"):
            board = body["dashboard"]
            uid = board["uid"]
            if uid in self.dashboards and not body.get("overwrite"):
                return 412, {
                    "message": "The dashboard has been changed by someone else",
                    "status": "version-mismatch",
                }
            if body.get("folderUid") and body["folderUid"] not in self.folders:
                return 400, {"message": "folder not found"}
            version = self.dashboards.get(uid, {}).get("version", 0) + 1
            slug = re.sub(r"[^a-z0-9]+", "-", board["title"].lower()).strip("-")
            self.dashboards[uid] = {"model": board, "folderUid": body.get("folderUid"), "version": version}
            return 200, {
                "id": 1,
                "uid": uid,
                "url": f"/d/{uid}/{slug}",
                "status": "success",
                "version": version,
            }
        if (method, path) == ("POST", "/api/annotations"):
            self.annotations.append(body)
            return 200, {"message": "Annotation added", "id": len(self.annotations)}
        return 404, {"message": "not found"}


@pytest.fixture
def grafana() -> Iterator[GrafanaStub]:
    stub = GrafanaStub()

    class Handler(BaseHTTPRequestHandler):
        def _handle(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            raw = self.rfile.read(length) if length else b""
            body = json.loads(raw) if raw else None
            auth = self.headers.get("Authorization")
            stub.requests.append(Seen(self.command, self.path, auth, body))
            status, answer = stub.answer(self.command, self.path, auth, body)
            data = json.dumps(answer).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        do_GET = do_POST = do_PUT = do_PATCH = _handle

        def log_message(self, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    stub.url = f"http://127.0.0.1:{server.server_address[1]}"
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield stub
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


def token_env(**extra: str) -> dict[str, str]:
    import os

    return {**os.environ, "GRAFANA_TOKEN": TOKEN, **extra}


def two_boards(tmp_path: Path) -> Path:
    """A load board and a system-under-test board, as the generator writes them (minimal models)."""
    boards = tmp_path / "boards"
    boards.mkdir()
    for name, uid, title in [
        ("load.json", "loadctl-load", "loadctl load overview"),
        ("sut.json", "loadctl-sut", "loadctl system under test"),
    ]:
        model = {
            "uid": uid,
            "title": title,
            "id": 77,
            "refresh": "5s",
            "panels": [{"id": 1, "type": "timeseries"}],
        }
        (boards / name).write_text(json.dumps(model))
    return boards


def push(stub: GrafanaStub, *args: str, env: dict[str, str] | None = None):
    return run_loadctl(
        ["grafana", "push", "--url", stub.url, "--token-env", "GRAFANA_TOKEN", *args],
        env=env or token_env(),
        timeout=60,
    )


# -- push -----------------------------------------------------------------------------------------


def test_push_creates_the_folder_and_uploads_every_dashboard_by_uid(tmp_path, grafana):
    boards = two_boards(tmp_path)
    done = push(grafana, "--dashboards", str(boards), "--folder", "Load tests")
    assert done.returncode == 0, done.stdout + done.stderr

    created = grafana.seen("POST", "/api/folders")
    assert [r.body["title"] for r in created] == ["Load tests"]
    folder_uid = created[0].body["uid"]
    uploads = grafana.seen("POST", "/api/dashboards/db")
    assert sorted(r.body["dashboard"]["uid"] for r in uploads) == ["loadctl-load", "loadctl-sut"]
    for upload in uploads:
        assert upload.body["overwrite"] is True
        assert upload.body["folderUid"] == folder_uid
        assert upload.body["dashboard"]["id"] is None  # overwritten by uid, never by a database id
    sut = next(r for r in uploads if r.body["dashboard"]["uid"] == "loadctl-sut")
    assert sut.body["dashboard"]["title"] == "loadctl system under test"
    assert sut.body["dashboard"]["panels"] == [{"id": 1, "type": "timeseries"}]
    # every authenticated call carries the token as a Bearer token
    assert all(r.authorization == f"Bearer {TOKEN}" for r in grafana.requests if r.path != "/api/health")

    lines = done.stdout.strip().splitlines()
    assert len(lines) == 2, done.stdout
    assert any(line.endswith(f"{grafana.url}/d/loadctl-load/loadctl-load-overview") for line in lines), lines
    assert any(line.endswith(f"{grafana.url}/d/loadctl-sut/loadctl-system-under-test") for line in lines), (
        lines
    )
    assert TOKEN not in done.stdout + done.stderr

    # again: the folder is found, not created twice, and both dashboards are overwritten
    again = push(grafana, "--dashboards", str(boards), "--folder", "Load tests")
    assert again.returncode == 0, again.stdout + again.stderr
    assert len(grafana.seen("POST", "/api/folders")) == 1
    assert {uid: d["version"] for uid, d in grafana.dashboards.items()} == {
        "loadctl-load": 2,
        "loadctl-sut": 2,
    }


def test_push_without_dashboards_flag_uploads_the_default_directory(grafana):
    expected = sorted(json.loads(p.read_text())["uid"] for p in default_dashboards_dir().glob("*.json"))
    done = push(grafana)  # cwd is the repository: dashboards/, else the chart's copy
    assert done.returncode == 0, done.stdout + done.stderr
    assert sorted(grafana.dashboards) == expected
    assert [f["title"] for f in grafana.folders.values()] == ["loadctl"]


def one_error_line(done, code: int, *words: str) -> str:
    assert done.returncode == code, done.stdout + done.stderr
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("loadctl: error"), done.stderr
    for word in words:
        assert word in lines[0], (word, lines[0])
    assert "Traceback" not in done.stdout + done.stderr
    assert TOKEN not in done.stdout + done.stderr
    return lines[0]


def test_push_with_a_missing_token_variable_is_an_input_error(tmp_path, grafana):
    env = {k: v for k, v in token_env().items() if k != "GRAFANA_TOKEN"}
    done = push(grafana, "--dashboards", str(two_boards(tmp_path)), env=env)
    one_error_line(done, 2, "--token-env", "GRAFANA_TOKEN")
    assert grafana.requests == []  # nothing was sent


def test_push_given_the_token_itself_does_not_echo_it(tmp_path, grafana):
    done = run_loadctl(
        [
            "grafana",
            "push",
            "--url",
            grafana.url,
            "--token-env",
            TOKEN,
            "--dashboards",
            str(two_boards(tmp_path)),
        ],
        env=token_env(),
    )
    one_error_line(done, 2, "--token-env", "NAME of an environment variable")


def test_push_of_a_broken_dashboard_names_the_file(tmp_path, grafana):
    boards = two_boards(tmp_path)
    (boards / "zz-broken.json").write_text('{"title": "no uid"}')
    done = push(grafana, "--dashboards", str(boards))
    one_error_line(done, 2, "zz-broken.json", "uid")
    assert grafana.requests == []


@pytest.mark.parametrize(
    ("fail_with", "token", "words"),
    [
        (None, "wrong-token", ["401 Unauthorized", "token was rejected"]),
        (403, TOKEN, ["403 Forbidden"]),
        (500, TOKEN, ["500 Internal Server Error", "stub failure"]),
    ],
)
def test_push_grafana_errors_exit_3_in_one_line(tmp_path, grafana, fail_with, token, words):
    grafana.fail_with = fail_with
    done = push(grafana, "--dashboards", str(two_boards(tmp_path)), env=token_env(GRAFANA_TOKEN=token))
    line = one_error_line(done, 3, grafana.url, *words)
    assert token not in line


def test_push_to_a_closed_port_exits_3_in_one_line(tmp_path):
    url = f"http://127.0.0.1:{free_port()}"
    done = run_loadctl(
        [
            "grafana",
            "push",
            "--url",
            url,
            "--token-env",
            "GRAFANA_TOKEN",
            "--dashboards",
            str(two_boards(tmp_path)),
        ],
        env=token_env(),
        timeout=60,
    )
    one_error_line(done, 3, url, "unreachable")


# -- run annotations ------------------------------------------------------------------------------

GATES = """version: 1
name: abort
window: run
abort_grace: 10s
gates:
  - {name: impossible_throughput, metric: rps, min: 100000, abort: true}
"""


def test_a_run_annotates_start_phase_change_abort_and_end(tmp_path, grafana):
    gates = tmp_path / "gates.yaml"
    gates.write_text(GATES)
    results = tmp_path / "r"
    with demo_server(tmp_path / "target.log") as target:
        profile = tmp_path / "annotated.yaml"
        # ramp_up ends long before the abort gate may act (10 s grace): the phase change comes first
        profile.write_text(
            f"name: annotated\nlocustfile: {DEMO_LOCUSTFILE}\nhost: {target}\nworkers: 1\n"
            "stages:\n"
            "  - {phase: ramp_up, duration: 4s, users: 2, spawn_rate: 2}\n"
            "  - {phase: steady, duration: 60s, users: 2, spawn_rate: 2}\n"
        )
        done = run_loadctl(
            [
                "run",
                str(profile),
                "--gates",
                str(gates),
                "--run-id",
                "annotated",
                "--results-dir",
                str(results),
                "--grafana-url",
                grafana.url,
                "--grafana-token-env",
                "GRAFANA_TOKEN",
            ],
            env=token_env(),
            timeout=170,
        )
    assert done.returncode == 1, done.stdout + done.stderr  # the live gate aborted it
    record = json.loads((results / "annotated" / "run.json").read_text())
    assert record["aborted_by"] == "impossible_throughput"

    posted = grafana.seen("POST", "/api/annotations")
    assert posted and all(r.authorization == f"Bearer {TOKEN}" for r in posted)
    notes = [r.body for r in posted]
    for note in notes:
        assert {"loadctl", "run_id:annotated", "profile:annotated"} <= set(note["tags"]), note
    events = [next(t for t in n["tags"] if t.startswith("event:")) for n in notes]
    assert events == ["event:start", "event:phase", "event:abort", "event:end"], notes
    start, phase, abort, end = notes

    assert abs(start["time"] - record["started_at"] * 1000) <= 1
    assert "phase:ramp_up" in start["tags"]
    assert "phase:steady" in phase["tags"] and "phase steady: 2 users" in phase["text"]
    assert phase["time"] == start["time"] + 4000  # where the stage table puts it: after 4 s of ramp_up
    assert "aborted by gate impossible_throughput" in abort["text"]
    # the end: a region over the whole run, with the verdict
    assert end["time"] == start["time"]
    assert abs(end["timeEnd"] - record["ended_at"] * 1000) <= 1
    assert "verdict fail (exit 1)" in end["text"] and "verdict:fail" in end["tags"]

    assert "warning" not in done.stdout
    everything = (
        done.stdout
        + done.stderr
        + "".join(
            p.read_text(errors="replace")
            for p in (results / "annotated").rglob("*")
            if p.is_file() and p.suffix != ""
        )
    )
    assert TOKEN not in everything
    assert "GRAFANA_TOKEN" not in json.dumps(record)


def test_a_run_goes_on_when_grafana_fails_and_warns_once(tmp_path, grafana):
    grafana.fail_with = 500
    with demo_server(tmp_path / "target.log") as target:
        done = run_loadctl(
            [
                "run",
                "-f",
                str(DEMO_LOCUSTFILE),
                "--host",
                target,
                "-u",
                "2",
                "-r",
                "2",
                "-t",
                "6s",
                "--workers",
                "1",
                "--run-id",
                "unannotated",
                "--results-dir",
                str(tmp_path / "r"),
            ],
            env=token_env(LOADCTL_GRAFANA_URL=grafana.url, LOADCTL_GRAFANA_TOKEN_ENV="GRAFANA_TOKEN"),
            timeout=170,
        )
    assert done.returncode == 0, done.stdout + done.stderr
    record = json.loads((tmp_path / "r" / "unannotated" / "run.json").read_text())
    assert record["verdict"] == "pass" and record["requests"] > 0
    assert len(grafana.seen("POST", "/api/annotations")) >= 2  # it kept trying: start and end at least
    warnings = [line for line in done.stdout.splitlines() if "warning" in line]
    assert len(warnings) == 1, done.stdout
    assert "Grafana annotations failed" in warnings[0] and "500" in warnings[0]
    assert TOKEN not in done.stdout + done.stderr
