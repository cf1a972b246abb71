"""The contract between the controller and the Locust processes: the stage codec, the command
lines, the environment both sides read and write. (tests/chart checks the chart renders the same.)"""

from __future__ import annotations

import ast
import json
import sys
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from locust.argument_parser import get_parser

from controller.models import Stage
from locust_workers import contract
from locust_workers.contract import (
    DEFAULT_FINAL_SCRAPE_TIMEOUT_S,
    DEFAULT_LATENCY_BUCKETS,
    DEFAULT_MAX_NAMES,
    DEFAULT_WORKER_REPORT_INTERVAL_S,
    EXPECT_WORKERS_MAX_WAIT_S,
    EXPORTER_PORT,
    PLUGIN_PATH,
    LocustCommand,
    StageRow,
    decode_stages,
    encode_stages,
    locustfile_arg,
    probes_args,
    run_env,
    settings_from_env,
)

stage_rows = st.builds(
    StageRow,
    duration=st.floats(min_value=1e-3, max_value=7 * 24 * 3600.0),
    users=st.integers(min_value=0, max_value=1_000_000),
    spawn_rate=st.floats(min_value=1e-3, max_value=100_000.0),
    phase=st.text(min_size=1, max_size=32),
)


@settings(max_examples=300, deadline=None, database=None)
@given(st.lists(stage_rows, min_size=1, max_size=20))
def test_the_stage_table_survives_the_trip_through_the_environment(rows):
    assert decode_stages(encode_stages(rows)) == tuple(rows)


def test_the_stage_table_is_encoded_as_helm_renders_it():
    rows = [StageRow(10.0, 5, 0.5, "ramp_up"), StageRow(90, 5, 2.0)]
    assert encode_stages(rows) == (
        '[{"duration":10,"phase":"ramp_up","spawn_rate":0.5,"users":5},'
        '{"duration":90,"phase":"steady","spawn_rate":2,"users":5}]'
    )


def test_the_controllers_stages_encode_like_rows():
    stages = [Stage(duration="1m", users=3, spawn_rate=1.5, phase="steady")]
    assert decode_stages(encode_stages(stages)) == (StageRow(60.0, 3, 1.5, "steady"),)


@pytest.mark.parametrize(
    ("text", "words"),
    [
        ("", "not JSON"),
        ("{}", "non-empty"),
        ("[1]", "LOADCTL_STAGES[0] is not a valid stage"),
        ('[{"duration": 1, "users": 1, "spawn_rate": 1}, {"duration": 1}]', "LOADCTL_STAGES[1]"),
        ('[{"duration": NaN, "users": 1, "spawn_rate": 1}]', "finite"),
        ('[{"duration": 1, "users": -1, "spawn_rate": 1}]', "users >= 0"),
    ],
)
def test_a_bad_stage_table_says_which_row(text, words):
    with pytest.raises(ValueError, match=words.replace("[", r"\[").replace("]", r"\]")):
        decode_stages(text)


def command(**overrides) -> LocustCommand:
    fields = {
        "locustfile": "load.py,plugin.py",
        "host": "http://127.0.0.1:8000",
        "workers": 3,
        "master_host": "master.svc",
        "bind_host": "0.0.0.0",
        "master_port": 5557,
        "csv_prefix": "/tmp/run/locust",
        "html_path": "/tmp/run/report.html",
    }
    return LocustCommand(**{**fields, **overrides})


def test_the_master_command_line():
    assert command().master_args() == [
        "-f", "load.py,plugin.py", "--master", "--headless", "--only-summary",
        "--exit-code-on-error", "0",
        "--expect-workers", "3", "--expect-workers-max-wait", str(EXPECT_WORKERS_MAX_WAIT_S),
        "--master-bind-host", "0.0.0.0", "--master-bind-port", "5557",
        "--host", "http://127.0.0.1:8000",
        "--csv", "/tmp/run/locust", "--csv-full-history", "--html", "/tmp/run/report.html",
    ]  # fmt: skip
    with_web = command(web_port=8089).master_args()
    assert with_web[with_web.index("--web-port") + 1] == "8089"


def test_the_worker_command_line():
    assert command().worker_args() == [
        "-f", "load.py,plugin.py", "--worker", "--master-host", "master.svc", "--master-port", "5557",
        "--host", "http://127.0.0.1:8000",
    ]  # fmt: skip


def test_locust_parses_the_command_lines():
    # a misspelt flag would end every run at its start
    for args in (command(web_port=8089).master_args(), command().worker_args()):
        _, unknown = get_parser().parse_known_args(args)
        assert unknown == []


def test_the_plugin_is_loaded_next_to_the_locustfile():
    assert locustfile_arg("/x/load.py") == f"/x/load.py,{PLUGIN_PATH}"
    assert PLUGIN_PATH.is_file()
    assert locustfile_arg("/etc/run/l.py", plugin="/opt/p.py") == "/etc/run/l.py,/opt/p.py"


def test_what_the_controller_writes_is_what_the_plugin_reads():
    env = run_env(
        run_id="r-1",
        profile="peak",
        stages=[StageRow(10, 2, 1)],
        user_weights={"B": 1, "A": 3},
        exporter_host="127.0.0.1",
        exporter_port=9999,
        final_scrape_timeout_s=15.0,
        locust_files_timeout_s=60.0,
        latency_buckets="fine",
    )
    assert env["PYTHONUNBUFFERED"] == "1"
    assert env["LOADCTL_USER_WEIGHTS"] == '{"A":3,"B":1}'  # toJson's order and spacing
    assert env["LOADCTL_FINAL_SCRAPE_TIMEOUT"] == "15"
    assert decode_stages(env["LOADCTL_STAGES"]) == (StageRow(10, 2, 1),)
    read = settings_from_env(env)
    assert (read.run_id, read.profile, read.exporter_host, read.exporter_port) == (
        "r-1",
        "peak",
        "127.0.0.1",
        9999,
    )
    assert read.user_weights == {"A": 3, "B": 1}
    assert read.final_scrape_timeout_s == 15.0
    assert env["LOADCTL_LOCUST_FILES_TIMEOUT"] == "60" and read.locust_files_timeout_s == 60.0
    assert env["LOADCTL_LATENCY_BUCKETS"] == read.latency_buckets == "fine"


def test_defaults_when_nothing_is_set():
    read = settings_from_env({})
    assert (read.run_id, read.profile, read.exporter_host, read.exporter_port) == (
        "adhoc",
        "none",
        "0.0.0.0",
        EXPORTER_PORT,
    )
    assert read.user_weights == {}
    assert read.final_scrape_timeout_s == DEFAULT_FINAL_SCRAPE_TIMEOUT_S
    assert read.locust_files_timeout_s == 0.0  # a local master serves no files and never waits for a fetch
    assert read.worker_report_interval_s == DEFAULT_WORKER_REPORT_INTERVAL_S
    assert read.max_names == DEFAULT_MAX_NAMES
    assert read.latency_buckets == DEFAULT_LATENCY_BUCKETS == "standard"
    assert settings_from_env({"LOADCTL_LATENCY_BUCKETS": ""}).latency_buckets == DEFAULT_LATENCY_BUCKETS
    assert json.loads(run_env(run_id="r", profile="p", stages=[StageRow(1, 1, 1)], user_weights={},
                              exporter_host="h")["LOADCTL_EXPORTER_PORT"]) == EXPORTER_PORT  # fmt: skip


def test_user_knobs_are_read():
    read = settings_from_env(
        {"LOADCTL_WORKER_REPORT_INTERVAL": "3", "LOADCTL_MAX_NAMES": "300", "LOADCTL_USER_WEIGHTS": ""}
    )
    assert (read.worker_report_interval_s, read.max_names, read.user_weights) == (3.0, 300, {})


def test_an_unknown_bucket_resolution_is_named():
    with pytest.raises(
        ValueError, match="LOADCTL_LATENCY_BUCKETS='medium' is not one of fine, standard, coarse"
    ):
        settings_from_env({"LOADCTL_LATENCY_BUCKETS": "medium"})


def test_the_probe_process_command_line():
    assert probes_args(config="/etc/p.json", port=9647, bind_host="0.0.0.0", run_id="r") == [
        "-m", "locust_workers.probes", "--config", "/etc/p.json", "--port", "9647", "--host", "0.0.0.0",
        "--run-id", "r",
    ]  # fmt: skip


def test_the_contract_imports_the_standard_library_only():
    # pods import it for every Locust process, the controller for every command: no locust, no
    # pydantic, and never controller (pods do not have it)
    tree = ast.parse(Path(contract.__file__).read_text(encoding="utf-8"))
    imported = {alias.name for node in ast.walk(tree) if isinstance(node, ast.Import) for alias in node.names}
    imported |= {node.module for node in ast.walk(tree) if isinstance(node, ast.ImportFrom) and node.module}
    assert {name.split(".")[0] for name in imported} <= {*sys.stdlib_module_names, "__future__"}
