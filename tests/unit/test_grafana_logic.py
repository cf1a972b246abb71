"""The pure parts of the Grafana integration: dashboard payloads, checks, annotation bodies and tags,
error messages; and the annotator's never-fail behaviour with a fake Grafana object. No Grafana and
no stub server here (see tests/integration/test_grafana_cli.py for the HTTP stub); one test points
the real client at a closed loopback port."""

from __future__ import annotations

import json
import threading
from pathlib import Path
from typing import Any

import pytest
import requests
from grafana_client.client import GrafanaClientError, GrafanaServerError, GrafanaUnauthorizedError

from controller.errors import GrafanaError, InputError
from controller.grafana.annotations import Annotation, RunAnnotations, run_tags
from controller.grafana.annotator import WARNING, GrafanaAnnotator
from controller.grafana.client import Grafana, describe_error
from controller.grafana.payloads import (
    check_grafana_url,
    dashboard_payload,
    dashboard_url,
    default_dashboards_dir,
    folder_uid_for,
    load_dashboard,
    load_dashboards,
    read_token,
)
from controller.models import PhaseWindow, RunRecord, Stage
from controller.progress import Snapshot

URL = "http://grafana.example:3000"


def write(path: Path, data: Any) -> Path:
    path.write_text(data if isinstance(data, str) else json.dumps(data))
    return path


# -- dashboards -----------------------------------------------------------------------------------


def test_payload_overwrites_by_uid_into_the_folder(tmp_path):
    board = load_dashboard(
        write(tmp_path / "a.json", {"uid": "run", "title": "Run", "id": 42, "panels": [1]})
    )
    payload = dashboard_payload(board, folder_uid="f1", message="pushed")
    assert payload == {
        "dashboard": {"uid": "run", "title": "Run", "id": None, "panels": [1]},
        "folderUid": "f1",
        "overwrite": True,
        "message": "pushed",
    }
    assert board.model["id"] == 42  # the file's model is left alone


def test_a_wrapped_export_is_unwrapped(tmp_path):
    board = load_dashboard(write(tmp_path / "a.json", {"dashboard": {"uid": "x", "title": "X"}, "meta": {}}))
    assert (board.uid, board.title) == ("x", "X")


@pytest.mark.parametrize(
    ("content", "words"),
    [
        ("{not json", ["a.json", "not valid JSON", "line 1"]),
        ("[1, 2]", ["a.json", "JSON object"]),
        ({"title": "no uid"}, ["a.json: uid:"]),
        ({"uid": "has space", "title": "t"}, ["a.json: uid:"]),
        ({"uid": "u" * 41, "title": "t"}, ["a.json: uid:"]),
        ({"uid": "ok"}, ["a.json: title:"]),
    ],
)
def test_bad_dashboard_files_name_the_file(tmp_path, content, words):
    with pytest.raises(InputError) as caught:
        load_dashboard(write(tmp_path / "a.json", content))
    for word in words:
        assert word in str(caught.value)


def test_dashboards_of_a_directory_sorted_and_uids_unique(tmp_path):
    write(tmp_path / "b.json", {"uid": "b", "title": "B"})
    write(tmp_path / "a.json", {"uid": "a", "title": "A"})
    write(tmp_path / "notes.txt", "ignored")
    assert [b.uid for b in load_dashboards(tmp_path)] == ["a", "b"]
    write(tmp_path / "c.json", {"uid": "a", "title": "A again"})
    with pytest.raises(InputError, match=r"c\.json: uid: uid 'a' is also used by .*a\.json"):
        load_dashboards(tmp_path)


def test_no_dashboards_is_an_input_error_naming_the_flag(tmp_path):
    with pytest.raises(InputError, match="--dashboards: no dashboard JSON files"):
        load_dashboards(tmp_path)
    with pytest.raises(InputError, match=r"--dashboards: .* is not a directory"):
        load_dashboards(tmp_path / "missing")


def test_default_directory_prefers_generated_dashboards(tmp_path):
    generated, chart = tmp_path / "dashboards", tmp_path / "chart"
    chart.mkdir()
    write(chart / "run.json", {"uid": "r", "title": "R"})
    assert default_dashboards_dir((generated, chart)) == chart
    generated.mkdir()
    assert default_dashboards_dir((generated, chart)) == chart  # empty: still the fallback
    write(generated / "overview.json", {"uid": "o", "title": "O"})
    assert default_dashboards_dir((generated, chart)) == generated


def test_dashboard_url_keeps_grafanas_sub_path():
    assert dashboard_url(URL, {"url": "/d/run/loadctl-run"}, "run") == f"{URL}/d/run/loadctl-run"
    # served under /grafana: Grafana's answer already holds the sub-path
    assert dashboard_url(f"{URL}/grafana", {"url": "/grafana/d/run/x"}, "run") == f"{URL}/grafana/d/run/x"
    assert dashboard_url(URL, {}, "run") == f"{URL}/d/run"


def test_folder_uids_are_grafana_safe():
    assert folder_uid_for("Load tests / staging") == "load-tests-staging"
    assert folder_uid_for("!!!") == "loadctl"
    assert len(folder_uid_for("x" * 80)) == 40


# -- settings -------------------------------------------------------------------------------------


def test_grafana_url_checks():
    assert check_grafana_url(f"{URL}/", flag="--url") == URL
    assert check_grafana_url("https://g.example/grafana", flag="--url") == "https://g.example/grafana"
    for bad, word in [
        ("grafana:3000", "not an http(s) URL"),
        ("ftp://g", "not an http(s) URL"),
        ("http://admin:secret@g:3000", "credentials"),
        ("http://g:3000/?auth_token=x", "without query"),
        ("http://g:99999", "bad port"),
    ]:
        with pytest.raises(InputError) as caught:
            check_grafana_url(bad, flag="--grafana-url")
        assert str(caught.value).startswith("command line: --grafana-url: ") and word in str(caught.value)
        assert "secret" not in str(caught.value)


def test_token_comes_from_the_named_variable():
    assert read_token("GT", flag="--token-env", env={"GT": " tok \n"}) == "tok"
    for env in ({}, {"GT": ""}, {"GT": "  "}):
        with pytest.raises(InputError, match="--token-env: environment variable GT is not set or empty"):
            read_token("GT", flag="--token-env", env=env)


@pytest.mark.parametrize(
    "value", ["glsa_abcdefABCDEF0123456789_0a1b2c3d", "eyJrIjoiT0tTcG1pUlY2RnVKZTFVaDFsNFZXdE", "a=b"]
)
def test_a_token_given_as_the_variable_name_is_never_echoed(value):
    with pytest.raises(InputError) as caught:
        read_token(value, flag="--token-env", env={value: "x"})
    assert value not in str(caught.value) and "NAME of an environment variable" in str(caught.value)


# -- annotations ----------------------------------------------------------------------------------


def snap(*, phase: str | None = None, started: float | None = None, users: int | None = 5) -> Snapshot:
    return Snapshot(
        phase=phase, users=users, workers=1, rps=1.0, p95_ms=10.0, requests=1, failures=0, started_at=started
    )


def record(**fields: Any) -> RunRecord:
    base: dict[str, Any] = {
        "run_id": "r1",
        "profile": "demo",
        "profile_file": None,
        "locustfile": "l.py",
        "host": "http://t",
        "backend": "local",
        "workers": 1,
        "planned_duration_s": 90,
        "started_at": 1000.0,
        "ended_at": 1090.5,
        "phases": (),
        "verdict": "pass",
        "exit_code": 0,
        "loadctl_version": "0",
        "requests": 1200,
        "failures": 3,
    }
    return RunRecord(**(base | fields))


# a staircase: ramp_up 0-10 s, steady 10-30 s, ramp_up 30-40 s, steady 40-60 s, ramp_down 60-90 s
STAGES = tuple(
    Stage(phase=phase, duration=duration, users=users, spawn_rate=1)
    for phase, duration, users in [
        ("ramp_up", 10, 10),
        ("steady", 20, 10),
        ("ramp_up", 10, 25),
        ("steady", 20, 25),
        ("ramp_down", 30, 0),
    ]
)


def events(stages: tuple[Stage, ...] = STAGES) -> RunAnnotations:
    return RunAnnotations(run_id="r1", profile="demo", stages=stages)


def kinds(annotations: list[Annotation]) -> list[tuple[int, str]]:
    return [(a.time_ms, a.tags[-1]) for a in annotations]


def test_tags_of_every_annotation():
    assert run_tags("r1", "demo") == ("loadctl", "run_id:r1", "profile:demo")


def test_start_once_then_each_phase_change_at_its_stage_start():
    ev = events()
    assert ev.on_progress(snap(phase="ramp_up")) == []  # not started yet
    (start,) = ev.on_progress(snap(phase="ramp_up", started=1000.25))
    assert start.body() == {
        "time": 1000250,
        "tags": ["loadctl", "run_id:r1", "profile:demo", "event:start", "phase:ramp_up"],
        "text": "loadctl run r1 started: profile demo, 90s planned, phase ramp_up",
    }
    assert ev.on_progress(snap(phase="ramp_up", started=1000.25)) == []
    # seen whenever the snapshot shows it; dated where the stage table puts it
    (change,) = ev.on_progress(snap(phase="steady", started=1000.25))
    assert change.body() == {
        "time": 1010250,
        "tags": ["loadctl", "run_id:r1", "profile:demo", "event:phase", "phase:steady"],
        "text": "loadctl run r1: phase steady: 10 users",
    }
    assert ev.on_progress(snap(phase="steady", started=1000.25)) == []


def test_phases_between_two_snapshots_are_announced_too():
    ev = events()
    ev.on_progress(snap(phase="steady", started=1000.0))  # first seen already past ramp_up
    assert ev.announced == 1
    assert kinds(ev.on_progress(snap(phase="ramp_down", started=1000.0))) == [
        (1030000, "phase:ramp_up"),
        (1040000, "phase:steady"),
        (1060000, "phase:ramp_down"),
    ]


def test_runner_states_are_not_phases_and_a_stage_with_the_same_phase_is_no_change():
    ev = events(
        tuple(Stage(phase=p, duration=10, users=5, spawn_rate=1) for p in ("steady", "steady", "ramp_down"))
    )
    ev.on_progress(snap(phase="steady", started=1000.0))
    for state in ("stopping", "stopped", "run", None):
        assert ev.on_progress(snap(phase=state, started=1000.0)) == []
    assert kinds(ev.on_progress(snap(phase="ramp_down", started=1000.0))) == [(1020000, "phase:ramp_down")]


def test_abort_annotation():
    (abort,) = events().on_abort("aborted by gate throughput: rps 2.1 < 5", now=1020.0)
    assert abort.body() == {
        "time": 1020000,
        "tags": ["loadctl", "run_id:r1", "profile:demo", "event:abort"],
        "text": "loadctl run r1: aborted by gate throughput: rps 2.1 < 5",
    }


def test_end_is_a_region_over_the_run_with_the_verdict():
    ev = events()
    ev.on_progress(snap(phase="ramp_up", started=1000.0))
    (end,) = ev.on_finished(record(verdict="fail", exit_code=1, aborted_by="throughput"), now=2000.0)
    assert end.body() == {
        "time": 1000000,
        "timeEnd": 1090500,
        "tags": ["loadctl", "run_id:r1", "profile:demo", "event:end", "verdict:fail"],
        "text": "loadctl run r1 ended: verdict fail (exit 1), 1200 requests, 3 failures; "
        "aborted by gate throughput",
    }


def test_end_announces_what_was_not_seen_live_from_the_phase_windows():
    ev = events()
    ev.on_progress(snap(phase="steady", started=1000.0))
    windows = tuple(
        PhaseWindow(stage=i, phase=s.phase, start=start, end=start + 1)
        for i, (s, start) in enumerate(zip(STAGES, (1000.0, 1010.4, 1030.5, 1040.3), strict=False))
    )
    notes = ev.on_finished(record(phases=windows, verdict="interrupted", exit_code=130), now=2000.0)
    assert kinds(notes) == [
        (1030500, "phase:ramp_up"),
        (1040300, "phase:steady"),
        (1000000, "verdict:interrupted"),
    ]


def test_end_announces_a_start_never_seen_live():
    phases = (PhaseWindow(stage=0, phase="ramp_up", start=1000.0, end=1090.5),)
    start, end = events().on_finished(record(phases=phases), now=2000.0)
    assert start.tags[-2:] == ("event:start", "phase:ramp_up") and start.time_ms == 1000000
    assert end.time_end_ms == 1090500


def test_end_of_a_run_that_never_started_is_a_point_with_a_short_reason():
    (end,) = events().on_finished(
        record(started_at=None, ended_at=None, verdict="error", exit_code=3, requests=None, reason="x" * 500),
        now=2000.0,
    )
    body = end.body()
    assert body["time"] == 2000000 and "timeEnd" not in body
    assert body["text"].startswith("loadctl run r1 ended: verdict error (exit 3); xxx")
    assert len(body["text"]) < 300 and body["text"].endswith("...")


# -- error messages -------------------------------------------------------------------------------


def test_error_messages_say_what_grafana_answered():
    def said(error: BaseException) -> str:
        return describe_error(error, url=URL, timeout=2)

    assert said(GrafanaUnauthorizedError({"message": "invalid API key"})) == (
        f"Grafana {URL} answered 401 Unauthorized: the token was rejected (invalid API key)"
    )
    assert said(GrafanaClientError(403, {"message": "Permissions needed"}, "Client Error 403")) == (
        f"Grafana {URL} answered 403 Forbidden: the token may not do this (Permissions needed)"
    )
    assert said(GrafanaServerError(502, "<html>bad gateway</html>", "Server Error 502")) == (
        f"Grafana {URL} answered 502 Bad Gateway (<html>bad gateway</html>)"
    )
    assert said(requests.ReadTimeout("read timed out")) == f"Grafana {URL} did not answer within 2s"
    refused = requests.ConnectionError(
        "HTTPConnectionPool(host='g', port=3000): Max retries exceeded with url: /api/health (Caused by "
        "NewConnectionError(\"HTTPConnection(host='g', port=3000): Failed to establish a new connection: "
        '[Errno 111] Connection refused"))'
    )
    assert said(refused) == f"Grafana {URL} is unreachable: Connection refused"
    assert said(ValueError("Expecting value")) == f"{URL} did not answer like Grafana's HTTP API (no JSON)"


def test_client_builds_the_api_url_with_a_sub_path():
    assert Grafana(f"{URL}/grafana", token="t", timeout=1)._api.client.url == f"{URL}/grafana/api"
    assert Grafana(URL, token="t", timeout=1)._api.client.url == f"{URL}/api"


# -- the annotator never fails the run ------------------------------------------------------------


class FakeGrafana:
    def __init__(self, error: Exception | None = None) -> None:
        self.error = error
        self.posted: list[Annotation] = []

    def annotate(self, annotation: Annotation) -> None:
        self.posted.append(annotation)
        if self.error is not None:
            raise self.error


def annotator(grafana: Any, warnings: list[str]) -> GrafanaAnnotator:
    return GrafanaAnnotator(grafana=grafana, events=events(), warn=warnings.append, drain_s=10)


def test_annotator_posts_start_phase_abort_and_end_in_order():
    grafana, warnings = FakeGrafana(), []
    observer = annotator(grafana, warnings)
    observer.progress(snap(phase="ramp_up", started=1000.0))
    observer.progress(snap(phase="steady", started=1000.0))
    observer.aborted("aborted by gate g: too slow")
    observer.finished(record())
    assert [a.tags[3] for a in grafana.posted] == ["event:start", "event:phase", "event:abort", "event:end"]
    assert warnings == []


def test_annotator_warns_once_and_keeps_going():
    grafana, warnings = FakeGrafana(GrafanaError("annotation: Grafana x answered 500")), []
    observer = annotator(grafana, warnings)
    observer.progress(snap(phase="ramp_up", started=1000.0))
    observer.progress(snap(phase="steady", started=1000.0))
    observer.finished(record())
    assert len(grafana.posted) == 3  # every annotation was tried
    assert warnings == [WARNING + "annotation: Grafana x answered 500"]


def test_annotator_survives_unexpected_errors_and_a_broken_warning():
    def broken_warn(message: str) -> None:
        raise RuntimeError("console gone")

    grafana = FakeGrafana(KeyError("bug"))
    observer = GrafanaAnnotator(grafana=grafana, events=events(), warn=broken_warn, drain_s=10)
    observer.progress(snap(phase="ramp_up", started=1000.0))
    observer.finished(record())
    assert len(grafana.posted) == 2


def test_annotator_against_a_closed_port_warns_once():
    import socket

    with socket.socket() as sock:  # bound, never listening: connections to it are refused
        sock.bind(("127.0.0.1", 0))
        url = f"http://127.0.0.1:{sock.getsockname()[1]}"
        warnings: list[str] = []
        observer = GrafanaAnnotator(
            grafana=Grafana(url, token="t", timeout=2), events=events(), warn=warnings.append, drain_s=30
        )
        observer.progress(snap(phase="ramp_up", started=1000.0))
        observer.finished(record())
    assert len(warnings) == 1 and "unreachable" in warnings[0] and url in warnings[0]


def test_finished_waits_only_a_bounded_time_for_a_hung_grafana():
    release = threading.Event()

    class Hung:
        def annotate(self, annotation: Annotation) -> None:
            release.wait(30)

    observer = GrafanaAnnotator(grafana=Hung(), events=events(), warn=lambda m: None, drain_s=0.2)
    observer.progress(snap(phase="ramp_up", started=1000.0))
    observer.finished(record())  # returns although the post never completes
    assert observer._thread.is_alive()
    release.set()
