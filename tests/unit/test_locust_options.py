"""Locust's own options in loadctl (issue 13): what goes to Locust, in which order, and what loadctl
refuses because it owns it. Locust's parser itself is exercised by tests/integration/test_locust_dropin.py."""

from __future__ import annotations

from pathlib import Path

import click
import pytest
from click.testing import CliRunner
from pydantic import ValidationError

from controller.cli.options import LocustArgsCommand, locust_args, take_locust_options
from controller.cli.run import copy_locust_outputs, split_positionals
from controller.errors import InputError
from controller.locustfile_check import LocustSetting, check_config_settings, check_owned
from controller.models import (
    LocustConfig,
    Profile,
    RunPlan,
    Stage,
    hide_secret_settings,
    hide_secret_values,
    locust_option_args,
)
from controller.preflight import _named_option_error, check_pods_see_it
from locust_workers.contract import LocustCommand


def test_list_options_take_values_up_to_the_next_option_as_in_locust():
    args = ["-f", "x.py", "UserA", "-T", "a", "b", "--csv", "p", "-L", "DEBUG", "--config", "my.conf"]
    rest, taken = take_locust_options([*args, "--exclude-tags=c", "-E"])
    assert rest == ["-f", "x.py", "UserA", "--csv", "p"]
    assert taken == ["-T", "a", "b", "-L", "DEBUG", "--config", "my.conf", "--exclude-tags=c", "-E"]


def test_the_command_keeps_what_follows_double_dash_and_locusts_options_for_locust():
    seen = {}

    @click.command(cls=LocustArgsCommand)
    @click.argument("positionals", nargs=-1)
    @click.option("-u", type=int)
    def command(positionals: tuple[str, ...], u: int | None) -> None:
        seen.update(positionals=positionals, u=u, locust=locust_args())

    result = CliRunner().invoke(
        command, ["UserA", "--tags", "t1", "t2", "-u", "3", "--", "--my-arg", "5", "UserB"]
    )
    assert result.exit_code == 0, result.output
    assert seen == {
        "positionals": ("UserA",),
        "u": 3,
        "locust": ("--tags", "t1", "t2", "--my-arg", "5", "UserB"),
    }


def test_a_profiles_locust_options_become_arguments():
    options = {"tags": ["a", "b"], "reset-stats": True, "equal-weights": False, "stop-timeout": 10}
    assert locust_option_args(options) == ("--tags", "a", "b", "--reset-stats", "--stop-timeout", "10")


def test_locust_option_names_are_names_not_flags():
    with pytest.raises(ValidationError):
        Profile(name="p", locust_options={"--tags": "a"})
    with pytest.raises(ValidationError):
        Profile(name="p", locust_options={"tags": {"nested": 1}})


def test_the_command_line_comes_after_the_profile_so_it_wins(tmp_path: Path):
    plan = plan_with(
        tmp_path,
        locust_options={"tags": ["a"]},
        locust_args=("--tags", "b"),
        more_locustfiles=(tmp_path / "g.py",),
    )
    assert plan.user_locust_args == ("--tags", "a", "--tags", "b")
    assert plan.locustfile_arg == f"{tmp_path / 'f.py'},{tmp_path / 'g.py'}"


def plan_with(tmp_path: Path, **changes: object) -> RunPlan:
    fields: dict[str, object] = {
        "run_id": "r",
        "profile": "p",
        "locustfile": tmp_path / "f.py",
        "host": "http://127.0.0.1:1",
        "stages": (Stage(duration=1, users=1, spawn_rate=1),),
        "workers": 1,
        "results_dir": tmp_path,
    }
    return RunPlan(**(fields | changes))  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("locust_error", "expected"),
    [
        (
            "unrecognized arguments: --nope 1",
            "p.yaml: locust_options.nope: not an option of Locust or of the locustfile",
        ),
        (
            "argument -s/--stop-timeout: Invalid time span",
            "p.yaml: locust_options.stop-timeout: Locust: argument -s/--stop-timeout: Invalid time span",
        ),
        ("unrecognized arguments: --other", "command line: Locust: unrecognized arguments: --other"),
    ],
)
def test_locusts_parser_errors_name_the_profile_field_or_the_command_line(
    tmp_path: Path, locust_error: str, expected: str
):
    plan = plan_with(tmp_path, locust_options={"nope": 1, "stop-timeout": "abc"})
    error = InputError(f"Locust cannot load it: locust: error: {locust_error}", source="/w/f.py")
    assert str(_named_option_error(error, plan, source="p.yaml")) == expected
    import_error = InputError("Locust cannot load it: ModuleNotFoundError: x", source="/w/f.py")
    assert _named_option_error(import_error, plan, source="p.yaml") is import_error


def command(**changes: object) -> LocustCommand:
    fields: dict[str, object] = {
        "locustfile": "f.py",
        "host": "http://h",
        "workers": 2,
        "master_host": "m",
        "bind_host": "b",
        "master_port": 5557,
        "csv_prefix": "/r/locust",
        "html_path": "/r/h.html",
    }
    return LocustCommand(**(fields | changes))  # type: ignore[arg-type]


def test_user_arguments_end_both_command_lines_and_user_classes_follow_a_double_dash():
    mine = command(extra_args=("--tags", "a", "b"), user_classes=("UserA", "UserB"))
    tail = ["--tags", "a", "b", "--", "UserA", "UserB"]
    assert mine.master_args()[-6:] == tail
    assert mine.worker_args()[-6:] == tail
    assert mine.master_args()[:-6] == command().master_args()
    assert "--" not in command().master_args() + command().worker_args()


@pytest.mark.parametrize("name", ["processes", "master", "worker", "users", "run-time", "headful"])
def test_a_config_file_setting_that_breaks_the_run_is_refused_naming_file_and_option(name: str):
    with pytest.raises(InputError) as caught:
        check_config_settings(
            {"tags": LocustSetting(["a"], "/w/locust.conf"), name: LocustSetting(4, "/w/locust.conf")}
        )
    assert str(caught.value).startswith(f"/w/locust.conf: {name}: ")
    assert str(caught.value).endswith("remove it from the file")


def test_a_variable_is_named_and_told_to_be_unset():
    with pytest.raises(InputError, match=r"^\$LOCUST_RUN_TIME: run-time: .*unset it$"):
        check_config_settings({"run-time": LocustSetting(60, "$LOCUST_RUN_TIME")})


def test_settings_loadctl_leaves_to_locust_pass():
    check_config_settings(
        {name: LocustSetting(1, "/w/locust.conf") for name in ("tags", "stop-timeout", "loglevel", "my-arg")}
    )


def test_owned_options_are_refused_in_a_profile_and_on_the_command_line():
    with pytest.raises(InputError, match=r"^p.yaml: locust_options.web-port: .*headless"):
        check_owned(["stop-timeout", "web-port"], source="p.yaml", in_profile=True)
    with pytest.raises(InputError, match=r"^command line: --users: .*-u/-r/-t"):
        check_owned(["users"], source="command line")
    check_owned(["tags", "exclude-tags", "stop-timeout", "my-arg"], source="command line")


def test_pods_never_see_this_machines_config_files():
    config = LocustConfig(options={"tags": ["a"]}, sources={"tags": "/w/locust.conf"})
    check_pods_see_it(config, backend="local")
    check_pods_see_it(LocustConfig(), backend="k8s")
    with pytest.raises(InputError, match=r"^/w/locust.conf: tags: the k8s backend's pods"):
        check_pods_see_it(config, backend="k8s")


def test_positionals_after_f_are_user_classes_unless_the_first_is_a_profile(tmp_path: Path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "profiles").mkdir()
    (tmp_path / "profiles" / "demo.yaml").write_text("name: demo\n")
    assert split_positionals((), locustfile_given=True) == (None, ())
    assert split_positionals(("UserA", "UserB"), locustfile_given=True) == (None, ("UserA", "UserB"))
    assert split_positionals(("demo", "UserA"), locustfile_given=True) == ("demo", ("UserA",))
    assert split_positionals(("./p.yaml", "UserA"), locustfile_given=True) == ("./p.yaml", ("UserA",))
    # without -f the first is the profile (a typo gets "no profile named ...", not a class error)
    assert split_positionals(("demoo", "UserA"), locustfile_given=False) == ("demoo", ("UserA",))


def test_locusts_outputs_are_copied_under_locusts_names(tmp_path: Path):
    run_dir = tmp_path / "run"
    run_dir.mkdir()
    for name in ("stats.csv", "failures.csv", "locust_report.html"):
        (run_dir / name).write_text(name)
    copied = copy_locust_outputs(run_dir, csv_prefix=tmp_path / "out" / "mine", html=tmp_path / "r.html")
    assert copied == [
        tmp_path / "r.html",
        tmp_path / "out" / "mine_stats.csv",
        tmp_path / "out" / "mine_failures.csv",
    ]
    assert (tmp_path / "out" / "mine_stats.csv").read_text() == "stats.csv"
    assert (tmp_path / "r.html").read_text() == "locust_report.html"


def test_credential_named_locust_options_are_hidden_in_what_run_json_records():
    args = ("--api-token", "s3cret", "--tags", "a", "--db-password=pw", "--my-arg", "5")
    assert hide_secret_values(args) == (
        "--api-token",
        "***",
        "--tags",
        "a",
        "--db-password=***",
        "--my-arg",
        "5",
    )
    settings = {"api-token": "s3cret", "tags": ["a"], "client-secret": "x"}
    assert hide_secret_settings(settings) == {"api-token": "***", "tags": ["a"], "client-secret": "***"}
