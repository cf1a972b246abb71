"""controller/cli/: option groups handed to a command as one object, and the lines printed after a run."""

from __future__ import annotations

from pathlib import Path

import click
import pytest
from click.testing import CliRunner

from controller.chart import SHIPPED_PROFILES
from controller.cli import cli
from controller.cli.options import (
    BACKEND_ONLY_FLAGS,
    K8sConnection,
    PlanFlags,
    k8s_connection,
    plan_check_flags,
    plan_flags,
)
from controller.cli.profiles import run_time
from controller.cli.render import outcome_lines
from controller.errors import EXIT_INPUT, InputError
from tests.support import run_record


def test_an_option_group_hands_the_command_one_frozen_object_and_keeps_the_other_options():
    seen = {}

    @click.command()
    @click.option("--before")
    @plan_flags
    @k8s_connection
    @click.option("--after", type=int)
    def command(before: str | None, flags: PlanFlags, k8s: K8sConnection, after: int | None) -> None:
        seen.update(before=before, flags=flags, k8s=k8s, after=after)

    args = ["--before", "b", "-u", "5", "-t", "1m", "--results-dir", "out", "-n", "ns", "--after", "3"]
    done = CliRunner().invoke(command, args)
    assert done.exit_code == 0, done.output
    assert seen["flags"] == PlanFlags(users=5, duration="1m", results_dir=Path("out"))
    assert seen["k8s"] == K8sConnection(namespace="ns", context=None, kubeconfig=None, in_cluster=False)
    assert (seen["before"], seen["after"]) == ("b", 3)
    # the options keep their place in --help: above the group, the group's own, below it
    help_text = CliRunner().invoke(command, ["--help"]).output
    order = ["--before", "--locustfile", "--results-dir", "--namespace", "--in-cluster", "--after"]
    assert [help_text.index(flag) for flag in order] == sorted(help_text.index(flag) for flag in order)


def test_validate_takes_only_the_flags_that_change_a_check():
    @click.command()
    @plan_check_flags
    def command(flags: PlanFlags) -> None:
        click.echo(repr(flags))

    assert CliRunner().invoke(command, ["--gates", "none"]).output.strip() == repr(PlanFlags(gates="none"))
    assert CliRunner().invoke(command, ["-u", "5"]).exit_code == 2


def test_every_command_is_registered():
    assert sorted(cli.commands) == [
        "compare",
        "gates",
        "grafana",
        "history",
        "ls",
        "profiles",
        "prometheus",
        "report",
        "run",
        "teardown",
        "validate",
    ]


def test_the_outcome_names_the_verdict_the_reason_and_where_the_results_are(tmp_path):
    record = run_record(
        verdict="fail",
        exit_code=1,
        requests=120,
        failures=3,
        reason="gate p95 failed",
        alerts_fired=("HighLatency",),
        locust_warnings=("CPU usage above 90%", "another"),
    )
    assert outcome_lines(record, run_dir=tmp_path, has_tsdb=True) == [
        "[red]verdict: fail[/] (exit 1), 120 requests, 3 failures",
        "reason: gate p95 failed",
        "alerts fired during the run: HighLatency",
        "locust warned: CPU usage above 90% (+1 more in report.md)",
        f"results: {tmp_path}  (report: {tmp_path / 'report.md'}, with charts: {tmp_path / 'report.html'}; "
        f"query again: loadctl prometheus {tmp_path})",
    ]


def test_a_pass_without_totals_or_tsdb_is_two_lines(tmp_path):
    lines = outcome_lines(run_record(), run_dir=tmp_path, has_tsdb=False)
    assert lines == [
        "[green]verdict: pass[/] (exit 0)",
        f"results: {tmp_path}  (report: {tmp_path / 'report.md'}, with charts: {tmp_path / 'report.html'})",
    ]


def test_the_recorded_command_hides_the_values_of_credential_named_options():
    from controller.cli.run import recorded_command

    args = ["demo", "--grafana-token-env", "GRAFANA_TOKEN", "--db-password=hunter2", "-u", "5", "--secret"]
    assert recorded_command(args) == (
        "loadctl", "demo", "--grafana-token-env", "***", "--db-password=***", "-u", "5", "--secret",
    )  # fmt: skip
    # a value that merely looks like an option name is kept; only the option's own value is hidden
    assert recorded_command(["--grafana-token-env", "--token"]) == ("loadctl", "--grafana-token-env", "***")


def test_the_k8s_only_flags_are_the_k8s_option_groups():
    assert sorted(BACKEND_ONLY_FLAGS["k8s"]) == [
        "context",
        "image",
        "in_cluster",
        "keep_on_fail",
        "kubeconfig",
        "max_workers",
        "namespace",
        "prometheus_url",
        "ready_timeout",
        "users_per_worker",
        "values_files",
        "wait_for_lock",
    ]


# no profile and no locustfile: past the backend check, `run` stops at the plan, before any load
NO_LOAD = ["run", "-u", "1", "-t", "1s", "--host", "http://127.0.0.1:1"]


def run_error(args: list[str], env: dict[str, str] | None = None) -> str:
    done = CliRunner().invoke(cli, [*NO_LOAD, *args], env=env, standalone_mode=False)
    assert isinstance(done.exception, InputError), done.output
    assert done.exception.exit_code == EXIT_INPUT
    return str(done.exception)


@pytest.mark.parametrize(
    ("flags", "named"),
    [
        (["--timeout", "1m"], "--timeout"),
        (["--prometheus", "http://127.0.0.1:9090"], "--prometheus"),
        (["--image", "loadctl:1"], "--image"),
        (["-n", "ns"], "--namespace"),
        (["--context", "kind"], "--context"),
        (["--keep-on-fail"], "--keep-on-fail"),
        (["--backend", "local", "--in-cluster"], "--in-cluster"),
    ],
)
def test_a_k8s_flag_with_the_local_backend_is_an_input_error_naming_both_backends(flags, named):
    expected = f"command line: {named}: only with --backend k8s, not with --backend local"
    assert run_error(flags) == expected


def test_k8s_flags_set_by_the_environment_or_their_default_do_not_stop_a_local_run():
    env = {"LOADCTL_PROMETHEUS_URL": "http://127.0.0.1:9090", "LOADCTL_IMAGE": "loadctl:1"}
    assert "locustfile" in run_error([], env=env)  # the next check: this plan has no locustfile


def test_the_k8s_backend_takes_its_own_flags():
    assert "locustfile" in run_error(["--backend", "k8s", "--timeout", "1m", "-n", "ns"])


@pytest.mark.parametrize(
    ("seconds", "shown"), [(None, "-"), (0, "0s"), (45, "45s"), (90, "1m30s"), (600, "10m"), (7260, "2h1m")]
)
def test_run_time_is_short(seconds, shown):
    assert run_time(seconds) == shown


def test_profiles_lists_the_shipped_ones_and_a_local_one_in_their_place(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "profiles").mkdir()
    (tmp_path / "profiles" / "peak.yaml").write_text("description: our peak\nusers: 7\nduration: 45s\n")
    (tmp_path / "profiles" / "broken.yaml").write_text("host: http://${NOT_SET_ANYWHERE}\n")
    done = CliRunner().invoke(cli, ["profiles"], env={"COLUMNS": "200", "NOT_SET_ANYWHERE": None})
    assert done.exit_code == 0, done.output
    rows = {line.split()[0]: line.split() for line in done.output.splitlines()[1:] if line.strip()}
    assert rows["demo"][:4] == ["demo", "1m30s", "20", "shipped"]
    assert rows["soak"][:4] == ["soak", "2h", "50", "shipped"]
    assert rows["peak"] == ["peak", "45s", "7", "./profiles", "our", "peak"]
    assert rows["broken"][:5] == ["broken", "-", "-", "./profiles", "invalid:"]
    assert f"shipped: {SHIPPED_PROFILES}/NAME.yaml" in done.output
    assert f"./profiles: {tmp_path / 'profiles'}/NAME.yaml" in done.output
