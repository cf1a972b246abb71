"""Probe settings: the profile's `probes:` list and the probe process's JSON file.

Every bad setting is one line naming the file and the field, before any load is sent; the config
file the controller writes round-trips through the same models and never holds a credential.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from controller.errors import EXIT_INPUT, InputError
from controller.k8s.release import run_values
from controller.profiles import build_plan, load_profile
from controller.prom.config import PROBES_JOB, scrape_config
from locust_workers.contract import parse_duration
from locust_workers.probes.config import (
    ConfigError,
    EachField,
    HttpJsonProbe,
    PostgresProbe,
    ProbesFile,
    ProcessProbe,
    dump_config,
    load_config,
)

HEAD = "name: x\nlocustfile: load.py\nhost: http://127.0.0.1:9\nusers: 1\nduration: 5s\n"


def profile(tmp_path: Path, probes: str) -> Path:
    (tmp_path / "load.py").write_text("from locust import User\n")
    path = tmp_path / "p.yaml"
    path.write_text(HEAD + "probes:\n" + probes)
    return path


def test_a_profile_with_every_kind_of_probe(tmp_path):
    path = profile(
        tmp_path,
        "  - {name: db, type: postgres, dsn_env: STAGING_PG_DSN, pool_size: 20}\n"
        "  - {name: cache, type: redis, url_env: REDIS_URL, interval: 10s, timeout: 2s}\n"
        "  - name: crawler\n    type: http_json\n    url: http://127.0.0.1:9/v1/crawler/stats\n"
        "    fields:\n      crawler_domain_retryable_jobs: stats.retryable_jobs\n"
        "      crawler_domain_failure_rate: {each: domains, label: domain, value: failure_rate}\n"
        "  - {name: target, type: process, match: examples.demo_target, interval: 1m}\n",
    )
    plan = build_plan(load_profile(path, env={}), profile_file=path, run_id="r", cpu_count=1)
    db, cache, crawler, target = plan.probes
    assert isinstance(db, PostgresProbe) and db.dsn_env == "STAGING_PG_DSN" and db.pool_size == 20
    assert db.interval == 5.0 and db.sample_timeout == 5.0  # the defaults
    assert (cache.interval, cache.sample_timeout) == (10.0, 2.0)
    assert isinstance(crawler, HttpJsonProbe)
    assert crawler.fields == {
        "crawler_domain_retryable_jobs": "stats.retryable_jobs",
        "crawler_domain_failure_rate": EachField(each="domains", label="domain", value="failure_rate"),
    }
    assert isinstance(target, ProcessProbe) and target.match == "examples.demo_target"
    assert target.interval == 60.0


def test_the_config_file_round_trips_and_holds_only_variable_names(tmp_path):
    probes = ProbesFile.model_validate(
        {
            "probes": [
                {"name": "db", "type": "postgres", "dsn_env": "PG_DSN", "interval": "2s"},
                {"name": "one", "type": "process", "pid": 1, "interval": 0.5},
                {"name": "j", "type": "http_json", "url_env": "STATS_URL", "fields": {"g": "a.b"}},
            ]
        }
    ).probes
    path = tmp_path / "probes.json"
    path.write_text(dump_config(probes))
    assert load_config(path).probes == probes
    assert json.loads(path.read_text())["probes"][0] == {
        "name": "db",
        "interval": 2.0,
        "timeout": None,
        "type": "postgres",
        "dsn_env": "PG_DSN",
        "pool_size": None,
    }


@pytest.mark.parametrize(
    ("probes", "field", "words"),
    [
        ("  - {name: db, type: postgres}\n", "probes[0].postgres.dsn_env", "Field required"),
        (
            "  - {name: db, type: postgres, dsn_env: D, dsn: 'postgresql://u:p@h/db'}\n",
            "probes[0].postgres.dsn",
            "unknown field",
        ),
        ("  - {name: db, type: mysql, dsn_env: X}\n", "probes[0]", "does not match any of the expected tags"),
        ("  - {name: db, dsn_env: X}\n", "probes[0]", "Unable to extract tag"),
        ("  - {name: db, type: postgres, dsn_env: 'not a name'}\n", "probes[0].postgres.dsn_env", "pattern"),
        ("  - {name: Db, type: redis, url_env: R}\n", "probes[0].redis.name", "pattern"),
        ("  - {name: c, type: redis, url_env: R, interval: soon}\n", "probes[0].redis.interval", "duration"),
        (
            "  - {name: c, type: redis, url_env: R, interval: 1s, timeout: 2s}\n",
            "probes[0].redis",
            "timeout must not be longer than interval",
        ),
        (
            "  - {name: a, type: redis, url_env: R}\n  - {name: a, type: process, pid: 1}\n",
            "probes",
            "'a' is used twice",
        ),
        (
            "  - {name: p, type: process}\n",
            "probes[0].process",
            "exactly one of 'pid', 'pid_file' or 'match'",
        ),
        ("  - {name: p, type: process, pid: 1, match: x}\n", "probes[0].process", "exactly one"),
        ("  - {name: p, type: process, pid_file: run/x.pid}\n", "probes[0].process.pid_file", "absolute"),
        (
            "  - {name: j, type: http_json, fields: {g: a}}\n",
            "probes[0].http_json",
            "either 'url' or 'url_env'",
        ),
        (
            "  - {name: j, type: http_json, url: 'http://u:pw@h/x', fields: {g: a}}\n",
            "probes[0].http_json.url",
            "credentials do not belong in the profile",
        ),
        (
            "  - {name: j, type: http_json, url: 'ftp://h/x', fields: {g: a}}\n",
            "probes[0].http_json.url",
            "http",
        ),
        (
            "  - {name: j, type: http_json, url: 'http://h/', fields: {}}\n",
            "probes[0].http_json.fields",
            "least 1",
        ),
        (
            "  - {name: j, type: http_json, url: 'http://h/', fields: {'bad-name': a}}\n",
            "probes[0].http_json.fields.bad-name.[key]",
            "pattern",
        ),
        (
            "  - {name: j, type: http_json, url: 'http://h/', fields: {loadctl_probe_up: a}}\n",
            "probes[0].http_json.fields",
            "loadctl_",
        ),
        (
            "  - {name: j, type: http_json, url: 'http://h/', fields: {g: {each: d, label: run_id}}}\n",
            "probes[0].http_json.fields.g.each.label",
            "set by the probe itself",
        ),
    ],
)
def test_bad_probe_settings_are_one_line_naming_the_field(tmp_path, probes, field, words):
    path = profile(tmp_path, probes)
    with pytest.raises(InputError) as caught:
        load_profile(path, env={})
    message = str(caught.value)
    assert caught.value.exit_code == EXIT_INPUT
    assert "\n" not in message
    assert words in message, message
    assert message.startswith(f"{path}: {field}: "), message


def test_a_credential_in_the_profile_is_refused_without_being_echoed(tmp_path):
    path = profile(tmp_path, "  - {name: j, type: http_json, url: 'http://u:hunter22@h/x', fields: {g: a}}\n")
    with pytest.raises(InputError) as caught:
        load_profile(path, env={})
    assert "hunter22" not in str(caught.value)


@pytest.mark.parametrize(
    ("content", "words"),
    [
        ("{", "invalid JSON"),
        ('{"probes": []}', "probes: Tuple should have at least 1 item"),
        ('{"probes": [{"name": "a", "type": "redis"}]}', "probes[0].redis.url_env: Field required"),
    ],
)
def test_a_bad_config_file_is_one_line_naming_the_file(tmp_path, content, words):
    path = tmp_path / "probes.json"
    path.write_text(content)
    with pytest.raises(ConfigError) as caught:
        load_config(path)
    assert str(caught.value).startswith(f"{path}: ")
    assert words in str(caught.value)
    with pytest.raises(ConfigError, match="cannot read"):
        load_config(tmp_path / "missing.json")


@pytest.mark.parametrize(
    ("text", "seconds"), [(5, 5.0), ("5", 5.0), ("500ms", None), ("2s", 2.0), ("1m30s", 90.0)]
)
def test_probe_durations(text, seconds):
    if seconds is None:
        with pytest.raises(ValueError):
            parse_duration(text)
    else:
        assert parse_duration(text) == seconds


def test_the_local_prometheus_scrapes_the_probe_process_with_run_id():
    config = scrape_config(run_id="r-1", exporter_address="127.0.0.1:1", probes_address="127.0.0.1:2")
    (job,) = [j for j in config["scrape_configs"] if j["job_name"] == PROBES_JOB]
    assert job["static_configs"] == [{"targets": ["127.0.0.1:2"], "labels": {"run_id": "r-1"}}]
    assert job["honor_labels"] is True and job["scrape_interval"] == "1s"
    without = scrape_config(run_id="r-1", exporter_address="127.0.0.1:1")
    assert PROBES_JOB not in [j["job_name"] for j in without["scrape_configs"]]


def test_a_k8s_release_carries_the_probes_as_chart_values(tmp_path):
    path = profile(tmp_path, "  - {name: db, type: postgres, dsn_env: STAGING_PG_DSN}\n")
    plan = build_plan(load_profile(path, env={}), profile_file=path, run_id="r", cpu_count=1)
    values = run_values(plan, files={"load.py": ""}, image=None)
    assert values["run"]["probes"] == [
        {
            "name": "db",
            "interval": 5.0,
            "timeout": None,
            "type": "postgres",
            "dsn_env": "STAGING_PG_DSN",
            "pool_size": None,
        }
    ]
    no_probes = plan.model_copy(update={"probes": ()})
    assert "probes" not in run_values(no_probes, files={"load.py": ""}, image=None)["run"]
