"""controller.pushgateway.url: the chart's CronJobs hand the scheduled `loadctl run` the Pushgateway
and the schedule's name, under the environment names the CLI reads (controller/cli/options.py)."""

from __future__ import annotations

from typing import Any

from controller.cli.options import PUSHGATEWAY_URL_ENV, SCHEDULE_ENV
from tests.support import CHART, helm, helm_render

SCHEDULES = CHART / "ci" / "schedules-values.yaml"
URL = "http://prometheus-pushgateway.monitoring:9091"


def controller_envs(objects: list[dict[str, Any]]) -> dict[str, dict[str, str]]:
    """Schedule name -> the controller container's environment, per CronJob."""
    out = {}
    for cronjob in (o for o in objects if o["kind"] == "CronJob"):
        pod = cronjob["spec"]["jobTemplate"]["spec"]["template"]["spec"]
        (container,) = [c for c in pod["containers"] if c["name"] == "controller"]
        env = {e["name"]: e.get("value") for e in container.get("env", [])}
        out[cronjob["metadata"]["labels"]["loadctl.io/schedule"]] = env
    return out


def test_every_schedule_gets_the_pushgateway_and_its_own_name():
    envs = controller_envs(helm_render(SCHEDULES, sets=(f"controller.pushgateway.url={URL}",)))
    assert len(envs) >= 2
    for schedule, env in envs.items():
        assert env[PUSHGATEWAY_URL_ENV] == URL
        assert env[SCHEDULE_ENV] == schedule


def test_no_pushgateway_by_default():
    envs = controller_envs(helm_render(SCHEDULES))
    assert envs and all(PUSHGATEWAY_URL_ENV not in env for env in envs.values())
    assert all(env[SCHEDULE_ENV] == schedule for schedule, env in envs.items())


def test_the_schema_refuses_a_url_that_is_not_http():
    done = helm(
        "template", "lt", str(CHART), "-f", str(SCHEDULES), "--set", "controller.pushgateway.url=ftp://x"
    )
    assert done.returncode != 0
    assert "controller.pushgateway.url" in done.stderr
