"""`loadctl grafana push`, and the Grafana options of `loadctl run` (annotations).

The token is only ever read from the environment variable a flag names, so it never shows in a
shell history, a process list, a log or the results folder.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import click

from controller.cli.options import GRAFANA_TOKEN_ENV_ENV, GRAFANA_URL_ENV, GrafanaFlags
from controller.cli.render import console
from controller.errors import InputError
from controller.extras import require_extra
from controller.grafana.payloads import (
    DEFAULT_FOLDER,
    check_grafana_url,
    dashboard_payload,
    dashboard_url,
    default_dashboards_dir,
    load_dashboards,
    read_token,
)
from controller.models import RunPlan

if TYPE_CHECKING:  # grafana-client is imported only when a run is annotated
    from controller.grafana.annotator import GrafanaAnnotator


def run_annotator(plan: RunPlan, grafana: GrafanaFlags) -> GrafanaAnnotator | None:
    """The run's Grafana observer, or None without --grafana-url.

    Checked before any load is sent: a bad URL or a missing token is an input error (exit 2).
    """
    if not grafana.url:
        if grafana.token_env and grafana.token_env_typed:
            raise InputError("only with --grafana-url", source="command line", field="--grafana-token-env")
        return None
    url = check_grafana_url(grafana.url, flag="--grafana-url")
    if not grafana.token_env:
        raise InputError(
            "needed with --grafana-url: the name of the variable that holds the token",
            source="command line",
            field="--grafana-token-env",
        )
    token = read_token(grafana.token_env, flag="--grafana-token-env")
    require_extra("grafana", what="--grafana-url")
    from controller.grafana.annotator import GrafanaAnnotator

    console.print(f"grafana annotations -> {url} (tags loadctl, run_id:{plan.run_id})", highlight=False)
    return GrafanaAnnotator.for_plan(
        plan, url=url, token=token, warn=lambda m: console.print(f"[yellow]warning: {m}[/]", highlight=False)
    )


def report_grafana_url(grafana: GrafanaFlags) -> str | None:
    """The Grafana base URL report.html links to (the run's dashboard over its time range)."""
    return check_grafana_url(grafana.url, flag="--grafana-url") if grafana.url else None


@click.group()
def grafana() -> None:
    """Grafana: push the dashboards (runs annotate themselves with `loadctl run --grafana-url`)."""


@grafana.command("push")
@click.option("--url", required=True, envvar=GRAFANA_URL_ENV, help="Grafana base URL.")
@click.option(
    "--token-env",
    required=True,
    envvar=GRAFANA_TOKEN_ENV_ENV,
    metavar="VAR",
    help="Environment variable holding the token (service account with Editor on the folder).",
)
@click.option("--folder", default=DEFAULT_FOLDER, show_default=True, help="Folder, created if missing.")
@click.option(
    "--dashboards",
    "dashboards_dir",
    type=click.Path(file_okay=False, path_type=Path),
    help="Directory of dashboard JSON (default: dashboards/, else charts/loadctl/dashboards/).",
)
@click.option(
    "--timeout", type=click.FloatRange(min=0, min_open=True), default=10.0, show_default=True, help="Seconds."
)
def push(url: str, token_env: str, folder: str, dashboards_dir: Path | None, timeout: float) -> None:
    """Upload every dashboard JSON of a directory: created, or overwritten by uid."""
    require_extra("grafana", what="loadctl grafana push")
    from controller.grafana.client import Grafana

    url = check_grafana_url(url, flag="--url")
    token = read_token(token_env, flag="--token-env")
    boards = load_dashboards(dashboards_dir or default_dashboards_dir())
    client = Grafana(url, token=token, timeout=timeout)
    client.health()
    folder_uid = client.folder_uid(folder)
    for board in boards:
        payload = dashboard_payload(
            board, folder_uid=folder_uid, message=f"loadctl grafana push {board.path.name}"
        )
        answer = client.upload(payload, name=str(board.path))
        console.print(f"{board.path} -> {dashboard_url(url, answer, board.uid)}", highlight=False)
