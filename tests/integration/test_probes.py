"""Probes against real servers: PostgreSQL and Redis started here, the demo target, and a run.

PostgreSQL (Debian's server binaries: $PG_BIN_DIR, else initdb on PATH, else the newest
/usr/lib/postgresql/*/bin) is initialised into a fresh directory and runs on a free loopback port
with its unix socket beside its data; it refuses to run as root, so under root it runs as the
`postgres` user. redis-server runs on a free port with a password. One real probe process
(`python -m locust_workers.probes`, as the local backend starts it) samples them, the demo
target, its process, and servers that are not there; the tests read its /metrics. Every process
is stopped by PID.
"""

from __future__ import annotations

import contextlib
import json
import os
import pwd
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import psutil
import psycopg
import pytest
import redis
import yaml
from prometheus_client.parser import text_string_to_metric_families

from controller.k8s.release import run_values
from controller.processes import ManagedProcess, free_port
from controller.profiles import build_plan, load_profile
from controller.prom.client import query
from locust_workers.probes.config import load_config
from tests.support import (
    CHART,
    DEMO_LOCUSTFILE,
    REPO_ROOT,
    demo_server,
    helm_render,
    run_loadctl,
    served_run,
    wait_for,
)

pytestmark = pytest.mark.integration

PG_PASSWORD = "pg-Secr3t-Passw0rd"
PG_DEAD_PASSWORD = "pgdead-Secr3t-Passw0rd"
PG_BAD_PASSWORD = "pgbad-Secr3t-Passw0rd"
REDIS_PASSWORD = "redis-Secr3t-Passw0rd"
REDIS_DEAD_PASSWORD = "redisdead-Secr3t-Passw0rd"
SECRETS = (PG_PASSWORD, PG_DEAD_PASSWORD, PG_BAD_PASSWORD, REDIS_PASSWORD, REDIS_DEAD_PASSWORD)
MAX_CONNECTIONS = 30
POOL_SIZE = 10
CRAWLER_FIELDS = {
    "crawler_domain_retryable_jobs": {"each": "domains", "label": "domain", "value": "retryable_jobs"},
    "crawler_domain_parser_fallback_rate": {
        "each": "domains",
        "label": "domain",
        "value": "parser_fallback_rate",
    },
    "crawler_domain_failure_rate": {"each": "domains", "label": "domain", "value": "failure_rate"},
    "crawler_finished_jobs": "totals.finished",
}


# --- servers -----------------------------------------------------------------------------------


def pg_bin_dir() -> Path:
    explicit = os.environ.get("PG_BIN_DIR")
    if explicit:
        return Path(explicit)
    initdb = shutil.which("initdb")
    if initdb:
        return Path(initdb).resolve().parent
    found = sorted(
        Path("/usr/lib/postgresql").glob("*/bin/initdb"),
        key=lambda p: int(p.parts[-3]) if p.parts[-3].isdigit() else 0,
    )
    if not found:
        pytest.fail(
            "PostgreSQL not found: `make test` installs it (scripts/ensure-postgres.sh), or set PG_BIN_DIR"
        )
    return found[-1].parent


def redis_server_bin() -> str:
    found = os.environ.get("REDIS_SERVER_BIN") or shutil.which("redis-server")
    if not found and Path("/usr/sbin/redis-server").exists():
        found = "/usr/sbin/redis-server"
    if not found:
        pytest.fail("redis-server not found: `make test` installs it, or set REDIS_SERVER_BIN")
    return found


@contextlib.contextmanager
def server(
    argv: list[str], log: Path, *, user: str | None = None, stop_signal: int = signal.SIGTERM
) -> Iterator[int]:
    """A server process in its own session (as `user` when given); stopped by its PID."""
    kwargs: dict[str, Any] = {"user": user, "group": user, "extra_groups": []} if user else {}
    with open(log, "ab") as out:
        process = subprocess.Popen(
            argv,
            stdout=out,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
            **kwargs,
        )
    try:
        yield process.pid
    finally:
        if process.poll() is None:
            process.send_signal(stop_signal)
            try:
                process.wait(30)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


def _pg_answers(dsn: str) -> bool:
    try:
        with psycopg.connect(dsn, connect_timeout=2):
            return True
    except psycopg.OperationalError:
        return False


@pytest.fixture(scope="module")
def postgres(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A DSN (with a password, which trust auth ignores: it is there to be kept secret)."""
    bin_dir = pg_bin_dir()
    user = "postgres" if os.geteuid() == 0 else None
    if user:  # the postgres user cannot enter pytest's 0700 temp dirs
        base = Path(tempfile.mkdtemp(prefix="loadctl-pg-"))
        account = pwd.getpwnam(user)
        os.chown(base, account.pw_uid, account.pw_gid)
    else:
        base = tmp_path_factory.mktemp("pg")
    logs = tmp_path_factory.mktemp("pg-logs")
    try:
        initdb = [
            str(bin_dir / "initdb"),
            "-D",
            str(base / "data"),
            "-U",
            "postgres",
            "--auth=trust",
            "--no-sync",
        ]
        done = subprocess.run(
            initdb,
            capture_output=True,
            text=True,
            user=user,
            group=user,
            extra_groups=[] if user else None,
            check=False,
        )
        assert done.returncode == 0, done.stdout + done.stderr
        port = free_port()
        argv = [
            str(bin_dir / "postgres"), "-D", str(base / "data"), "-p", str(port), "-k", str(base),
            "-c", "listen_addresses=127.0.0.1", "-c", f"max_connections={MAX_CONNECTIONS}", "-c", "fsync=off",
        ]  # fmt: skip
        with server(argv, logs / "postgres.log", user=user, stop_signal=signal.SIGINT):
            dsn = f"postgresql://postgres:{PG_PASSWORD}@127.0.0.1:{port}/postgres"
            assert wait_for(lambda: _pg_answers(dsn), timeout=60), (logs / "postgres.log").read_text()
            yield dsn
    finally:
        if user:
            shutil.rmtree(base, ignore_errors=True)


@pytest.fixture(scope="module")
def redis_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    work = tmp_path_factory.mktemp("redis")
    port = free_port()
    argv = [
        redis_server_bin(), "--port", str(port), "--bind", "127.0.0.1", "--requirepass", REDIS_PASSWORD,
        "--save", "", "--appendonly", "no", "--dir", str(work),
    ]  # fmt: skip
    with server(argv, work / "redis.log"):
        url = f"redis://:{REDIS_PASSWORD}@127.0.0.1:{port}/0"

        def answers() -> bool:
            try:
                with redis.Redis.from_url(url, socket_timeout=2) as client:
                    return bool(client.ping())
            except redis.RedisError:
                return False

        assert wait_for(answers, timeout=30), (work / "redis.log").read_text()
        yield url


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    with demo_server(tmp_path_factory.mktemp("demo") / "target.log", "--latency-scale", "0") as url:
        yield url


def demo_match(url: str) -> str:
    """A command-line substring that only this demo target has."""
    return f"examples.demo_target --host 127.0.0.1 --port {httpx.URL(url).port}"


# --- the probe process -------------------------------------------------------------------------


@dataclass
class Probes:
    url: str
    log: Path
    process: ManagedProcess

    def samples(self) -> list[tuple[str, dict[str, str], float]]:
        text = httpx.get(self.url, timeout=5).text
        return [(s.name, s.labels, s.value) for f in text_string_to_metric_families(text) for s in f.samples]

    def value(self, name: str, **labels: str) -> float | None:
        found = [v for n, ls, v in self.samples() if n == name and labels.items() <= ls.items()]
        assert len(found) <= 1, (name, labels, found)
        return found[0] if found else None

    def eventually(self, name: str, expected: float, **labels: str) -> None:
        if not wait_for(lambda: self.value(name, **labels) == expected, timeout=30):
            raise AssertionError(f"{name}{labels} is {self.value(name, **labels)}, expected {expected}")


@pytest.fixture(scope="module")
def probes(tmp_path_factory, postgres, redis_url, demo) -> Iterator[Probes]:
    work = tmp_path_factory.mktemp("probes")
    pid_file = work / "demo.pid"
    (target_pid,) = [
        p.info["pid"]
        for p in psutil.process_iter(["pid", "cmdline"])
        if demo_match(demo) in " ".join(p.info["cmdline"] or ())
    ]
    pid_file.write_text(f"{target_pid}\n")
    every = {"interval": 0.5}
    config = {
        "probes": [
            {"name": "db", "type": "postgres", "dsn_env": "T_PG_DSN", "pool_size": POOL_SIZE, **every},
            {"name": "db_dead", "type": "postgres", "dsn_env": "T_PG_DEAD_DSN", **every},
            {"name": "db_bad_dsn", "type": "postgres", "dsn_env": "T_PG_BAD_DSN", **every},
            {"name": "db_no_env", "type": "postgres", "dsn_env": "T_PG_UNSET_DSN", **every},
            {"name": "cache", "type": "redis", "url_env": "T_REDIS_URL", **every},
            {"name": "cache_dead", "type": "redis", "url_env": "T_REDIS_DEAD_URL", **every},
            {
                "name": "crawler",
                "type": "http_json",
                "url": f"{demo}/v1/crawler/stats",
                "fields": CRAWLER_FIELDS,
                **every,
            },
            {"name": "target", "type": "process", "match": demo_match(demo), **every},
            {"name": "target_pid_file", "type": "process", "pid_file": str(pid_file), **every},
        ]
    }
    (work / "probes.json").write_text(json.dumps(config))
    env = {k: v for k, v in os.environ.items() if k != "T_PG_UNSET_DSN"}
    env |= {
        "T_PG_DSN": postgres,
        "T_PG_DEAD_DSN": f"postgresql://app:{PG_DEAD_PASSWORD}@127.0.0.1:{free_port()}/shop",
        # malformed: libpq quotes a URI it cannot parse back in its error message
        "T_PG_BAD_DSN": f"postgresql://app:{PG_BAD_PASSWORD}@[127.0.0.1:5432/shop",
        "T_REDIS_URL": redis_url,
        "T_REDIS_DEAD_URL": f"redis://:{REDIS_DEAD_PASSWORD}@127.0.0.1:{free_port()}/0",
    }
    port = free_port()
    argv = [sys.executable, "-m", "locust_workers.probes", "--config", str(work / "probes.json")]
    argv += ["--port", str(port), "--host", "127.0.0.1", "--run-id", "probe-test"]
    process = ManagedProcess("probes", argv, log_path=work / "probes.log", env=env, cwd=REPO_ROOT)
    try:
        handle = Probes(f"http://127.0.0.1:{port}/metrics", work / "probes.log", process)
        ready = wait_for(
            lambda: _serving(handle) and handle.value("loadctl_probe_up", probe="db") == 1, timeout=30
        )
        assert ready, process.log_tail()
        yield handle
    finally:
        assert process.stop(timeout=10) == 0, process.log_tail()  # SIGTERM: a clean exit
        assert process.poll() == 0


def _serving(probes: Probes) -> bool:
    try:
        probes.samples()
        return True
    except httpx.HTTPError:
        return False


# --- postgres ----------------------------------------------------------------------------------


def test_postgres_connections_by_state_pool_use_and_waiting_locks(probes: Probes, postgres: str) -> None:
    assert probes.value("loadctl_postgres_max_connections", probe="db") == MAX_CONNECTIONS
    with contextlib.ExitStack() as stack:
        idle = [stack.enter_context(psycopg.connect(postgres)) for _ in range(3)]
        for conn in idle:
            conn.execute("SELECT 1")
            conn.commit()
        in_transaction = stack.enter_context(psycopg.connect(postgres))
        in_transaction.execute("SELECT 1")  # psycopg opened a transaction and leaves it open
        probes.eventually("loadctl_postgres_connections", 3, probe="db", state="idle")
        probes.eventually("loadctl_postgres_connections", 1, probe="db", state="idle_in_transaction")
        probes.eventually("loadctl_postgres_connections", 0, probe="db", state="active")
        probes.eventually("loadctl_postgres_pool_utilization_ratio", 4 / POOL_SIZE, probe="db")
        assert probes.value("loadctl_postgres_locks_waiting", probe="db") == 0

        # a lock held by one session and wanted by another: the second waits
        holder = stack.enter_context(psycopg.connect(postgres, autocommit=True))
        holder.execute("CREATE TABLE IF NOT EXISTS probe_lock (id int)")
        holder.execute("BEGIN")
        holder.execute("LOCK TABLE probe_lock IN ACCESS EXCLUSIVE MODE")
        waiter = stack.enter_context(psycopg.connect(postgres, autocommit=True))
        blocked = threading.Thread(target=lambda: waiter.execute("SELECT count(*) FROM probe_lock"))
        blocked.start()
        try:
            probes.eventually("loadctl_postgres_locks_waiting", 1, probe="db")
            probes.eventually("loadctl_postgres_connections", 1, probe="db", state="active")
        finally:
            holder.execute("COMMIT")
            blocked.join(30)
        assert not blocked.is_alive()
        probes.eventually("loadctl_postgres_locks_waiting", 0, probe="db")
        probes.eventually("loadctl_postgres_pool_utilization_ratio", 6 / POOL_SIZE, probe="db")
    probes.eventually("loadctl_postgres_pool_utilization_ratio", 0, probe="db")
    assert probes.value("loadctl_probe_errors_total", probe="db") == 0


# --- redis -------------------------------------------------------------------------------------


def test_redis_hit_ratio_memory_clients_and_evictions(probes: Probes, redis_url: str) -> None:
    with redis.Redis.from_url(redis_url) as client:
        hits_before = probes.value("loadctl_redis_keyspace_hits_total", probe="cache")
        assert (
            hits_before is not None
            and probes.value("loadctl_redis_keyspace_hit_ratio", probe="cache") is None
        )
        client.set("recipe:1", "pasta")
        for _ in range(3):
            assert client.get("recipe:1") == b"pasta"
        assert client.get("recipe:missing") is None
        probes.eventually("loadctl_redis_keyspace_hit_ratio", 0.75, probe="cache")
        assert probes.value("loadctl_redis_keyspace_hits_total", probe="cache") == hits_before + 3
        probes.eventually("loadctl_redis_connected_clients", 1, probe="cache")  # ours; the probe's left out
        assert probes.value("loadctl_redis_evicted_keys_total", probe="cache") == 0

        used = probes.value("loadctl_redis_used_memory_bytes", probe="cache")
        assert used is not None and used > 0
        client.config_set("maxmemory-policy", "allkeys-lru")
        client.config_set("maxmemory", str(int(client.info("memory")["used_memory"]) + 256 * 1024))
        try:
            for index in range(100):
                client.set(f"blob:{index}", b"x" * 10_000)
            assert wait_for(
                lambda: (probes.value("loadctl_redis_evicted_keys_total", probe="cache") or 0) > 0, timeout=30
            )
        finally:
            client.config_set("maxmemory", "0")
        assert probes.value("loadctl_redis_used_memory_bytes", probe="cache") > used


# --- http_json and process against the demo target ----------------------------------------------


def test_http_json_exports_the_demo_targets_crawler_figures(probes: Probes, demo: str) -> None:
    domain = "probe.example.org"
    with httpx.Client(base_url=demo, timeout=10) as client:
        for index in range(8):
            response = client.post("/v1/recipes/harvest/auto", json={"url": f"https://{domain}/r/{index}"})
            assert response.status_code in (200, 429)

        def settled() -> dict[str, Any] | None:
            figures = client.get("/v1/crawler/stats").json()["domains"].get(domain)
            return figures if figures and figures["retryable_jobs"] == 0 else None

        assert wait_for(lambda: settled() is not None, timeout=30)
        figures = settled()
        assert figures is not None and figures["finished"] > 0
        for gauge, key in (
            ("crawler_domain_retryable_jobs", "retryable_jobs"),
            ("crawler_domain_parser_fallback_rate", "parser_fallback_rate"),
            ("crawler_domain_failure_rate", "failure_rate"),
        ):
            probes.eventually(gauge, figures[key], probe="crawler", domain=domain, run_id="probe-test")
        total = client.get("/v1/crawler/stats").json()["totals"]["finished"]
        probes.eventually("crawler_finished_jobs", total, probe="crawler")


def test_process_probe_reports_the_demo_targets_cpu_and_memory(probes: Probes, demo: str) -> None:
    for name in ("target", "target_pid_file"):
        assert probes.value("loadctl_process_count", probe=name) == 1
        assert probes.value("loadctl_process_resident_memory_bytes", probe=name) > 10 * 1024 * 1024
        assert probes.value("loadctl_process_threads", probe=name) >= 1

    with httpx.Client(base_url=demo, timeout=10) as client:

        def busy_target_seen() -> bool:
            for _ in range(50):
                client.get("/v1/recipes", params={"q": "pasta", "limit": 50})
            return (probes.value("loadctl_process_cpu_percent", probe="target") or 0) > 0

        assert wait_for(busy_target_seen, timeout=60)


# --- failures --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("probe", "words"),
    [
        ("db_dead", "cannot connect: connection failed"),
        ("db_bad_dsn", "***"),
        ("db_no_env", "environment variable T_PG_UNSET_DSN is not set"),
        ("cache_dead", "Connection refused"),
    ],
)
def test_a_probe_that_cannot_sample_shows_itself_and_the_others_go_on(
    probes: Probes, probe: str, words: str
) -> None:
    assert wait_for(lambda: (probes.value("loadctl_probe_errors_total", probe=probe) or 0) >= 8, timeout=30)
    assert probes.value("loadctl_probe_up", probe=probe) == 0
    kind = "redis" if probe.startswith("cache") else "postgres"
    assert probes.value("loadctl_probe_up", probe=probe, type=kind, run_id="probe-test") == 0
    assert not any(
        ls.get("probe") == probe for n, ls, _ in probes.samples() if not n.startswith("loadctl_probe_")
    )
    for healthy in ("db", "cache", "crawler", "target"):
        assert probes.value("loadctl_probe_up", probe=healthy) == 1
        assert probes.value("loadctl_probe_errors_total", probe=healthy) == 0
    # a line when it started failing, then at most a summary a minute: not one per failed sample
    lines = [line for line in probes.log.read_text().splitlines() if f"probe {probe}:" in line]
    errors = probes.value("loadctl_probe_errors_total", probe=probe) or 0
    assert f"probe {probe}: failing: " in lines[0] and words in lines[0], lines[0]
    assert all("still failing (" in line for line in lines[1:]), lines
    assert len(lines) <= errors / 8, (len(lines), errors)


def test_no_secret_reaches_the_log_or_the_metrics(probes: Probes) -> None:
    assert wait_for(
        lambda: (probes.value("loadctl_probe_errors_total", probe="db_bad_dsn") or 0) >= 2, timeout=30
    )
    text = probes.log.read_text() + httpx.get(probes.url).text
    assert 'in URI: "***"' in text  # libpq quoted the malformed DSN back; the line shows it masked
    for secret in SECRETS:
        assert secret not in text


# --- the chart's sidecar -----------------------------------------------------------------------


def test_the_chart_runs_the_profiles_probes_as_a_sidecar_of_the_master(tmp_path: Path) -> None:
    """The rendered sidecar, and its command run here as a local process (as test_rendered_pods.py
    does for master and workers: no container engine on this machine), on loopback only."""
    target = f"http://127.0.0.1:{free_port()}"  # nothing listens: the crawler probe reports down
    profile = tmp_path / "probed.yaml"
    profile.write_text(
        f"name: probed\nlocustfile: {DEMO_LOCUSTFILE}\nhost: {target}\nusers: 2\nduration: 30s\n"
        "probes:\n  - {name: db, type: postgres, dsn_env: STAGING_PG_DSN, pool_size: 20}\n"
        f"  - {{name: crawler, type: http_json, url: '{target}/v1/crawler/stats',"
        " fields: {crawler_domain_failure_rate: {each: domains, label: domain, value: failure_rate}}}\n"
    )
    plan = build_plan(load_profile(profile, env={}), profile_file=profile, run_id="probed-1", cpu_count=1)
    values = run_values(plan, files={"demo.py": "x"}, image=None)
    values |= {
        "secretEnv": [{"name": "STAGING_PG_DSN", "secretName": "staging-db", "key": "dsn"}],
        "serviceMonitor": {"enabled": True},
        "networkPolicy": {"enabled": True},
    }
    (tmp_path / "values.yaml").write_text(yaml.safe_dump(values))
    objects = helm_render(tmp_path / "values.yaml")
    # the PodMonitor instead of the ServiceMonitor (one scrape path: the schema refuses both)
    values |= {"serviceMonitor": {"enabled": False}, "podMonitor": {"enabled": True}}
    (tmp_path / "pod-monitor.yaml").write_text(yaml.safe_dump(values))
    pod_monitored = helm_render(tmp_path / "pod-monitor.yaml")

    def one(kind: str, component: str) -> dict[str, Any]:
        (found,) = [
            o for o in objects
            if o["kind"] == kind and o["metadata"]["labels"].get("app.kubernetes.io/component") == component
        ]  # fmt: skip
        return found

    config = one("ConfigMap", "run")
    assert json.loads(config["data"]["probes.json"]) == json.loads(
        json.dumps({"probes": [p.model_dump(mode="json") for p in plan.probes]})
    )
    pod = one("Job", "master")["spec"]["template"]["spec"]
    (sidecar,) = pod["initContainers"]
    master = pod["containers"][0]
    assert sidecar["name"] == "probes" and sidecar["restartPolicy"] == "Always"  # ends with the master
    assert sidecar["image"] == master["image"]
    assert [*sidecar["command"], *sidecar["args"]] == [
        "python", "-m", "locust_workers.probes", "--config", "/etc/loadctl/run/probes.json",
        "--port", "9647", "--host", "0.0.0.0", "--run-id", "probed-1",
    ]  # fmt: skip
    assert sidecar["ports"] == [{"name": "probes", "containerPort": 9647, "protocol": "TCP"}]
    env = {e["name"]: e for e in sidecar["env"]}
    assert env["STAGING_PG_DSN"]["valueFrom"] == {"secretKeyRef": {"name": "staging-db", "key": "dsn"}}
    assert sidecar["securityContext"] == master["securityContext"]
    assert sidecar["volumeMounts"] == master["volumeMounts"]
    service_ports = {p["name"]: p for p in one("Service", "master")["spec"]["ports"]}
    assert service_ports["probes"]["port"] == 9647 and service_ports["probes"]["targetPort"] == 9647
    (monitor,) = [o for o in objects if o["kind"] == "ServiceMonitor"]
    assert [e["port"] for e in monitor["spec"]["endpoints"]] == ["metrics", "probes"]
    (pod_monitor,) = [o for o in pod_monitored if o["kind"] == "PodMonitor"]
    assert [e["port"] for e in pod_monitor["spec"]["podMetricsEndpoints"]] == ["metrics", "probes"]
    for endpoint in (*monitor["spec"]["endpoints"], *pod_monitor["spec"]["podMetricsEndpoints"]):
        assert endpoint["honorLabels"] is True and endpoint["relabelings"]
    policy = one("NetworkPolicy", "master")
    prometheus_ports = [
        rule["ports"] for rule in policy["spec"]["ingress"] if "namespaceSelector" in rule["from"][0]
    ]
    assert {p["port"] for ports in prometheus_ports for p in ports} == {9646, 9647}

    # the sidecar's command, with the ConfigMap's probes.json, on a free loopback port
    (tmp_path / "probes.json").write_text(config["data"]["probes.json"])
    argv = [sys.executable if arg == "python" else arg for arg in [*sidecar["command"], *sidecar["args"]]]
    port = free_port()
    replace = {
        "/etc/loadctl/run/probes.json": str(tmp_path / "probes.json"),
        "9647": str(port),
        "0.0.0.0": "127.0.0.1",
    }
    argv = [replace.get(arg, arg) for arg in argv]
    env = {k: v for k, v in os.environ.items() if k != "STAGING_PG_DSN"}
    sidecar_process = ManagedProcess(
        "probes sidecar", argv, log_path=tmp_path / "sidecar.log", env=env, cwd=tmp_path
    )
    try:
        local = Probes(f"http://127.0.0.1:{port}/metrics", tmp_path / "sidecar.log", sidecar_process)

        def both_report_down() -> bool:
            return _serving(local) and all(
                local.value("loadctl_probe_up", probe=n) == 0 for n in ("db", "crawler")
            )

        assert wait_for(both_report_down, timeout=30), sidecar_process.log_tail()
        assert local.value("loadctl_probe_up", probe="db", run_id="probed-1", type="postgres") == 0
    finally:
        assert sidecar_process.stop(timeout=10) == 0, sidecar_process.log_tail()
    assert "environment variable STAGING_PG_DSN is not set" in (tmp_path / "sidecar.log").read_text()

    without = run_values(plan.model_copy(update={"probes": ()}), files={"demo.py": "x"}, image=None)
    (tmp_path / "none.yaml").write_text(yaml.safe_dump(without))
    plain = helm_render(tmp_path / "none.yaml")
    (job,) = [o for o in plain if o["kind"] == "Job" and "master" in o["metadata"]["name"]]
    assert "initContainers" not in job["spec"]["template"]["spec"]
    (config,) = [o for o in plain if o["kind"] == "ConfigMap"]
    assert "probes.json" not in config["data"]


def test_the_charts_probes_scenario_renders_a_config_the_probe_process_accepts(tmp_path: Path) -> None:
    objects = helm_render(CHART / "ci" / "probes-values.yaml")
    (config,) = [o for o in objects if o["kind"] == "ConfigMap"]
    (tmp_path / "probes.json").write_text(config["data"]["probes.json"])
    kinds = [(p.name, p.type) for p in load_config(tmp_path / "probes.json").probes]
    assert kinds == [("db", "postgres"), ("cache", "redis"), ("crawler", "http_json")]


# --- one whole run -----------------------------------------------------------------------------


def test_a_run_with_a_dead_probe_completes_and_keeps_the_probes_series(tmp_path: Path, demo: str) -> None:
    password = "run-Secr3t-Passw0rd"
    profile = tmp_path / "probed.yaml"
    profile.write_text(
        f"name: probed\nlocustfile: {DEMO_LOCUSTFILE}\nhost: {demo}\nworkers: 1\n"
        "user_weights: {SearchUser: 1, StudioUser: 1, HarvestUser: 1, HealthCheckUser: 1}\n"
        "users: 4\nspawn_rate: 4\nduration: 8s\n"
        "probes:\n"
        "  - {name: db, type: postgres, dsn_env: RUN_PG_DSN, interval: 1s}\n"
        f"  - name: crawler\n    type: http_json\n    url: {demo}/v1/crawler/stats\n    interval: 1s\n"
        f"    fields: {json.dumps(CRAWLER_FIELDS)}\n"
        "summary_peaks: [crawler_domain_failure_rate, demo_metric_nobody_exports]\n"
    )
    env = {**os.environ, "RUN_PG_DSN": f"postgresql://app:{password}@127.0.0.1:{free_port()}/shop"}
    done = run_loadctl(
        ["run", str(profile), "--run-id", "probed", "--results-dir", str(tmp_path / "results")],
        env=env,
        timeout=180,
    )
    run_dir = tmp_path / "results" / "probed"
    record = json.loads((run_dir / "run.json").read_text())
    assert done.returncode == 0, done.stdout + done.stderr
    assert record["verdict"] == "pass" and record["exit_code"] == 0
    assert "probes.log" in os.listdir(run_dir / "logs")
    assert json.loads((run_dir / "probes.json").read_text())["probes"][0]["dsn_env"] == "RUN_PG_DSN"
    jobs = [
        job["job_name"] for job in yaml.safe_load((run_dir / "prometheus.yml").read_text())["scrape_configs"]
    ]
    assert "loadctl-probes" in jobs

    with served_run(run_dir) as prom:
        at = record["ended_at"] + 3

        def latest(promql: str) -> list:
            return query(client=prom, promql=f"last_over_time({promql}[10m])", at=at)

        (db_up,) = latest('loadctl_probe_up{run_id="probed",probe="db",job="loadctl-probes"}')
        assert db_up.value == 0 and db_up.labels["type"] == "postgres"
        (crawler_up,) = latest('loadctl_probe_up{run_id="probed",probe="crawler"}')
        assert crawler_up.value == 1
        (errors,) = latest('loadctl_probe_errors_total{run_id="probed",probe="db"}')
        assert errors.value >= 2
        for gauge in (
            "crawler_domain_retryable_jobs",
            "crawler_domain_parser_fallback_rate",
            "crawler_domain_failure_rate",
        ):
            series = latest(f'{gauge}{{run_id="probed",probe="crawler"}}')
            assert series and all(s.labels["domain"] for s in series), gauge
        assert latest('crawler_finished_jobs{run_id="probed"}')[0].value >= 0
        # the summary's peaks are the maxima of the run's own series
        window = f"[{round(record['ended_at'] - record['started_at'])}s]"
        maxima = query(
            client=prom,
            promql=f'max_over_time(crawler_domain_failure_rate{{run_id="probed"}}{window})',
            at=record["ended_at"],
        )
        expected = {f'{{domain="{s.labels["domain"]}"}}': s.value for s in maxima}
    assert expected and {p["labels"]: p["value"] for p in record["peaks"]} == expected
    assert {p["metric"] for p in record["peaks"]} == {"crawler_domain_failure_rate"}
    assert "System under test: peaks over the run" in done.stdout
    assert "## System Under Test" in (run_dir / "report.md").read_text()

    # the DSN's password is nowhere in the results, the logs or what loadctl printed
    assert password not in done.stdout + done.stderr
    for path in run_dir.rglob("*"):
        if path.is_file():
            assert password.encode() not in path.read_bytes(), path
    assert "probe db: failing: cannot connect" in (run_dir / "logs" / "probes.log").read_text()
