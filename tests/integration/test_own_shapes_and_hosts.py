"""Issue 13, items 3 and 4: a locustfile's own LoadTestShape and its classes' own hosts, run through
plain `locust --headless` and through `loadctl run` in the same folder (tests/locust_compat.py),
against targets on 127.0.0.1 that count what they received (tests/loopback_servers.py)."""

from __future__ import annotations

import json
from pathlib import Path

from controller.rundir import RUN_RECORD
from tests.locust_compat import loadctl_locust, plain_locust, share_differences
from tests.loopback_servers import http_hits, loopback_server, tcp_hits

# Warm 6 s, steady 8 s: both longer than a gate window needs (3 scrapes at 1 s)
PHASED = """
from locust import HttpUser, LoadTestShape, constant, task

class Reader(HttpUser):
    host = "http://127.0.0.1:{port}"
    wait_time = constant(0.5)

    @task
    def read(self):
        self.client.get("/read")

class Phased(LoadTestShape):
    stages = [
        # warm is 9 s: a gate needs 3 scrapes of its window, and a loaded machine loses one or two
        {{"duration": 9, "users": 2, "spawn_rate": 2, "phase": "warm"}},
        {{"duration": 17, "users": 4, "spawn_rate": 4, "phase": "steady"}},
    ]

    def tick(self):
        run_time = self.get_run_time()
        for stage in self.stages:
            if run_time < stage["duration"]:
                return stage["users"], stage["spawn_rate"]
        return None
"""

# Locust's documented use_common_options shape (docs: custom-load-shape.html#use-common-options)
COMMON = """
from locust import HttpUser, LoadTestShape, constant, task

class Reader(HttpUser):
    host = "http://127.0.0.1:{port}"
    wait_time = constant(1)

    @task
    def read(self):
        self.client.get("/common")

class Common(LoadTestShape):
    use_common_options = True

    def tick(self):
        options = self.runner.environment.parsed_options
        if self.get_run_time() < options.run_time:
            return options.num_users, options.spawn_rate
        return None
"""

UNNAMED = """
from locust import HttpUser, LoadTestShape, constant, task

class Reader(HttpUser):
    host = "http://127.0.0.1:{port}"
    wait_time = constant(0.5)

    @task
    def read(self):
        self.client.get("/plain")

class Flat(LoadTestShape):
    time_limit = 8

    def tick(self):
        return (2, 2) if self.get_run_time() < self.time_limit else None
"""

TWO_HOSTS = """
from locust import HttpUser, constant, task

class Orders(HttpUser):
    host = "http://127.0.0.1:{port_a}"
    wait_time = constant(0.5)

    @task
    def orders(self):
        self.client.get("/orders")

class Stock(HttpUser):
    host = "http://127.0.0.1:{port_b}"
    wait_time = constant(0.5)

    @task
    def stock(self):
        self.client.get("/stock")
"""

# A custom client as Locust documents it (testing-other-systems.html): time the call, fire
# `request`; the host is whatever the client understands, here tcp://127.0.0.1:PORT.
TCP_CLIENT = """
from locust import User, constant, task

import socket
import time
from urllib.parse import urlsplit


class EchoUser(User):
    host = "tcp://127.0.0.1:{port}"
    wait_time = constant(0.2)

    def on_start(self):
        address = urlsplit(self.host) if "://" in self.host else urlsplit("tcp://" + self.host)
        self.sock = socket.create_connection((address.hostname, address.port), timeout=5)
        self.reader = self.sock.makefile("rb")

    def on_stop(self):
        self.sock.close()

    @task
    def echo(self):
        started = time.perf_counter()
        exception = None
        try:
            self.sock.sendall(b"ping\\n")
            if self.reader.readline() != b"ping\\n":
                raise ValueError("wrong echo")
        except Exception as e:
            exception = e
        self.environment.events.request.fire(
            request_type="tcp",
            name="echo",
            response_time=(time.perf_counter() - started) * 1000,
            response_length=5,
            exception=exception,
            context={{}},
        )
"""

GATES = """
version: 1
name: shape
window: steady
gates:
  - {name: steady_rps, metric: rps, min: 1}
  - {name: warm_errors, metric: error_rate, max: 0.01, window: warm}
"""


def write(folder: Path, name: str, text: str) -> Path:
    path = folder / name
    path.write_text(text)
    return path


def reached(hits: int, counted: int, *, in_flight: int) -> bool:
    """The target saw what loadctl's Locust counted, plus at most the requests in flight when the
    users were stopped (one per user: sent, then the user killed before Locust recorded it).

    Only loadctl's side is compared with the target: plain Locust 2.47's stats.csv is its last
    periodic write, which can lag its own final summary (40 vs 46 requests in a 5-s run), while
    loadctl's master keeps writing it until the final scrape."""
    return counted <= hits <= counted + in_flight


def record(results: Path, run_id: str) -> dict:
    return json.loads((results / run_id / RUN_RECORD).read_text())


def test_an_own_shape_with_named_phases_is_judged_by_phase(tmp_path):
    with loopback_server("http", tmp_path / "target.log") as port:
        write(tmp_path, "shape.py", PHASED.format(port=port))
        write(tmp_path, "gates.yaml", GATES)
        plain = plain_locust(["-f", "shape.py"], cwd=tmp_path)
        before = http_hits(port)
        args = ["-f", "shape.py", "--gates", "gates.yaml", "--workers", "1"]
        ours = loadctl_locust(args, cwd=tmp_path, results_dir=tmp_path / "results", run_id="phased")
        hits = http_hits(port)
    assert ours.exit_code == 0, ours.output
    assert (
        "using the locustfile's own LoadTestShape Phased: loadctl's stage table is not loaded" in ours.output
    )
    assert share_differences(plain, ours) == []
    assert set(hits) == {"/read"} and reached(hits["/read"] - before["/read"], ours.total, in_flight=4)
    run = record(tmp_path / "results", "phased")
    assert [p["phase"] for p in run["phases"]] == ["warm", "steady"]
    warm, steady = run["phases"]
    assert 8 <= warm["end"] - warm["start"] <= 10.5 and 7 <= steady["end"] - steady["start"] <= 9.5
    assert run["planned_duration_s"] == 17 and run["shape"]["phases"] == ["warm", "steady"]
    assert run["host"] is None and run["hosts"] == [f"http://127.0.0.1:{port}"]
    gates = json.loads((tmp_path / "results" / "phased" / "gates.json").read_text())
    windows = {g["name"]: (g["window"]["name"], g["verdict"]) for g in gates["gates"]}
    assert windows == {"steady_rps": ("steady", "pass"), "warm_errors": ("warm", "pass")}


def test_a_gate_window_the_shape_does_not_declare_is_refused_before_any_load(tmp_path):
    with loopback_server("http", tmp_path / "target.log") as port:
        write(tmp_path, "shape.py", PHASED.format(port=port))
        write(tmp_path, "gates.yaml", GATES.replace("window: warm", "window: ramp_up"))
        ours = loadctl_locust(
            ["-f", "shape.py", "--gates", "gates.yaml"], cwd=tmp_path, results_dir=tmp_path / "r", run_id="x"
        )
        hits = http_hits(port)
    assert ours.exit_code == 2, ours.output
    assert "'ramp_up' is not a phase of this run (phases: run, steady, warm" in ours.output
    assert hits == {} and not (tmp_path / "r" / "x").exists()


def test_a_common_options_shape_gets_u_r_t_as_in_plain_locust(tmp_path):
    with loopback_server("http", tmp_path / "target.log") as port:
        write(tmp_path, "common.py", COMMON.format(port=port))
        flags = ["-u", "3", "-r", "3", "-t", "8s"]
        plain = plain_locust(["-f", "common.py", *flags], cwd=tmp_path)
        before = http_hits(port)
        ours = loadctl_locust(
            ["-f", "common.py", *flags, "--workers", "1"],
            cwd=tmp_path,
            results_dir=tmp_path / "r",
            run_id="c",
        )
        unbounded = loadctl_locust(
            ["-f", "common.py", "-u", "3"], cwd=tmp_path, results_dir=tmp_path / "r", run_id="u"
        )
        hits = http_hits(port)
    assert plain.exit_code == 0 and ours.exit_code == 0, ours.output
    # 3 users, one request a second each, for 8 s: 24 (+ the first of each at once), on both sides
    assert 20 <= plain.total <= 30 and 20 <= ours.total <= 30, (plain.total, ours.total)
    assert share_differences(plain, ours) == []
    run = record(tmp_path / "r", "c")
    assert run["planned_duration_s"] == 8 and [p["phase"] for p in run["phases"]] == ["run"]
    assert unbounded.exit_code == 2 and "does not say when it ends" in unbounded.output
    assert set(hits) == {"/common"} and reached(hits["/common"] - before["/common"], ours.total, in_flight=3)


def test_a_shape_naming_no_phase_has_one_phase_run(tmp_path):
    with loopback_server("http", tmp_path / "target.log") as port:
        write(tmp_path, "flat.py", UNNAMED.format(port=port))
        write(
            tmp_path,
            "gates.yaml",
            "version: 1\nname: g\nwindow: run\ngates:\n  - {name: rps, metric: rps, min: 1}\n",
        )
        ours = loadctl_locust(
            ["-f", "flat.py", "--gates", "gates.yaml", "--workers", "1"],
            cwd=tmp_path,
            results_dir=tmp_path / "r",
            run_id="flat",
        )
    assert ours.exit_code == 0, ours.output
    run = record(tmp_path / "r", "flat")
    assert [p["phase"] for p in run["phases"]] == ["run"] and run["planned_duration_s"] == 8


def test_each_class_keeps_its_own_host(tmp_path):
    with (
        loopback_server("http", tmp_path / "a.log") as port_a,
        loopback_server("http", tmp_path / "b.log") as port_b,
    ):
        write(tmp_path, "two.py", TWO_HOSTS.format(port_a=port_a, port_b=port_b))
        plain = plain_locust(["-f", "two.py", "-u", "4", "-r", "4", "-t", "6s"], cwd=tmp_path)
        before_a, before_b = http_hits(port_a), http_hits(port_b)
        ours = loadctl_locust(
            ["-f", "two.py", "-u", "4", "-r", "4", "-t", "6s", "--workers", "1"],
            cwd=tmp_path,
            results_dir=tmp_path / "r",
            run_id="two",
        )
        a, b = http_hits(port_a), http_hits(port_b)
    assert ours.exit_code == 0, ours.output
    assert share_differences(plain, ours) == []
    # each port got its own class's traffic, and only it, from both sides (2 users of each class)
    assert set(before_a) == set(a) == {"/orders"} and set(before_b) == set(b) == {"/stock"}
    assert reached(a["/orders"] - before_a["/orders"], ours.requests[("GET", "/orders")], in_flight=2)
    assert reached(b["/stock"] - before_b["/stock"], ours.requests[("GET", "/stock")], in_flight=2)
    assert record(tmp_path / "r", "two")["hosts"] == sorted(
        [f"http://127.0.0.1:{port_a}", f"http://127.0.0.1:{port_b}"]
    )


def test_a_custom_tcp_client_with_a_non_http_host(tmp_path):
    with loopback_server("tcp", tmp_path / "tcp.log") as port:
        write(tmp_path, "echo.py", TCP_CLIENT.format(port=port))
        plain = plain_locust(["-f", "echo.py", "-u", "2", "-r", "2", "-t", "5s"], cwd=tmp_path)
        lines = [tcp_hits(port)]
        ours = loadctl_locust(
            ["-f", "echo.py", "-u", "2", "-r", "2", "-t", "5s", "--workers", "1"],
            cwd=tmp_path,
            results_dir=tmp_path / "r",
            run_id="tcp",
        )
        lines.append(tcp_hits(port))
        # --host as Locust passes it through: a bare host:port, overriding the class's own
        bare = loadctl_locust(
            ["-f", "echo.py", "-u", "1", "-t", "4s", "--workers", "1", "--host", f"127.0.0.1:{port}"],
            cwd=tmp_path,
            results_dir=tmp_path / "r",
            run_id="bare",
        )
        lines.append(tcp_hits(port))
    assert ours.exit_code == 0 and bare.exit_code == 0, ours.output + bare.output
    assert lines[0] > 0  # plain Locust's echoes reached the server too
    assert plain.failures == ours.failures == bare.failures == {("tcp", "echo"): 0}
    assert share_differences(plain, ours) == []
    assert reached(lines[1] - lines[0], ours.total, in_flight=2)  # each echo Locust counted arrived
    assert reached(lines[2] - lines[1], bare.total, in_flight=1)
    assert record(tmp_path / "r", "tcp")["hosts"] == [f"tcp://127.0.0.1:{port}"]
    assert record(tmp_path / "r", "bare")["hosts"] == [f"127.0.0.1:{port}"]
