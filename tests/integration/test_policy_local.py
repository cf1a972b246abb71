"""The test author's own target allowlists through the real CLI on a local run: a host outside
$LOADCTL_ALLOWED_HOSTS or the user config file's allowed_hosts is exit 2, one line naming the
source, before anything starts: the demo target sees no request and no results folder is made."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from tests.support import DEMO_LOCUSTFILE, demo_server, run_loadctl, served_requests

pytestmark = pytest.mark.integration


@pytest.fixture
def target(tmp_path: Path):
    with demo_server(tmp_path / "target.log") as url:
        yield url


def environment(tmp_path: Path, *, allowed: str | None = None, config: str | None = None) -> dict[str, str]:
    """The environment of a loadctl whose own config folder is under tmp_path."""
    env = {k: v for k, v in os.environ.items() if k != "LOADCTL_ALLOWED_HOSTS"}
    env["XDG_CONFIG_HOME"] = str(tmp_path / "config")
    if allowed is not None:
        env["LOADCTL_ALLOWED_HOSTS"] = allowed
    if config is not None:
        (tmp_path / "config" / "loadctl").mkdir(parents=True)
        (tmp_path / "config" / "loadctl" / "config.yaml").write_text(config)
    return env


def run_args(tmp_path: Path, target: str) -> list[str]:
    return ["run", "-f", str(DEMO_LOCUSTFILE), "--host", target, "-u", "2", "-r", "2", "-t", "5s",
            "--results-dir", str(tmp_path / "results")]  # fmt: skip


def assert_refused(done, tmp_path: Path, target: str, expected: str) -> None:
    assert done.returncode == 2, done.stdout + done.stderr
    assert done.stderr.strip().splitlines() == [expected], done.stderr
    assert "Traceback" not in done.stdout + done.stderr
    assert not (tmp_path / "results").exists()
    assert served_requests(target) == 0


def test_a_host_outside_the_variable_is_refused_before_any_request(tmp_path, target):
    env = environment(tmp_path, allowed="*.staging.example.com, 10.0.0.0/8")
    done = run_loadctl(run_args(tmp_path, target), env=env, timeout=120)
    assert_refused(
        done,
        tmp_path,
        target,
        f"loadctl: error: LOADCTL_ALLOWED_HOSTS: target {target} is not in the allowed hosts "
        "(*.staging.example.com, 10.0.0.0/8); no load was sent",
    )


def test_a_host_outside_the_config_file_is_refused_even_when_the_variable_allows_it(tmp_path, target):
    env = environment(tmp_path, allowed="127.0.0.0/8", config="allowed_hosts: ['*.staging.example.com']\n")
    done = run_loadctl(run_args(tmp_path, target), env=env, timeout=120)
    config = tmp_path / "config" / "loadctl" / "config.yaml"
    assert_refused(
        done,
        tmp_path,
        target,
        f"loadctl: error: {config}: allowed_hosts: target {target} is not in the allowed hosts "
        "(*.staging.example.com); no load was sent",
    )


def test_a_malformed_config_file_is_exit_2_naming_file_and_field(tmp_path, target):
    env = environment(tmp_path, config="allowed_hosts: ['https://api.staging.example.com']\n")
    done = run_loadctl(run_args(tmp_path, target), env=env, timeout=120)
    config = tmp_path / "config" / "loadctl" / "config.yaml"
    assert_refused(
        done,
        tmp_path,
        target,
        f"loadctl: error: {config}: allowed_hosts[0]: 'https://api.staging.example.com': an entry is a "
        "host, not a URL: drop the scheme (api.example.com, api.example.com:8443)",
    )


def test_validate_checks_the_allowlists_as_run_does(tmp_path, target):
    profile = tmp_path / "p.yaml"
    profile.write_text(f"name: p\nlocustfile: {DEMO_LOCUSTFILE}\nhost: {target}\nusers: 1\nduration: 5s\n")
    allowed = run_loadctl(["validate", str(profile)], env=environment(tmp_path, allowed="127.0.0.0/8"))
    assert allowed.returncode == 0 and "ok" in allowed.stdout, allowed.stdout + allowed.stderr
    refused = run_loadctl(["validate", str(profile)], env=environment(tmp_path, allowed="127.0.0.2"))
    assert refused.returncode == 2 and "LOADCTL_ALLOWED_HOSTS: target" in refused.stderr, refused.stderr
    assert served_requests(target) == 0
