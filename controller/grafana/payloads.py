"""Dashboards and settings for Grafana, checked before anything is sent (pure, apart from reading files).

A dashboard is created or overwritten by its uid: its numeric `id` (which belongs to one Grafana
database) is dropped and `overwrite: true` is set, so the same file pushes cleanly to any Grafana.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urljoin, urlsplit

from controller.chart import REPO_ROOT, chart_path
from controller.errors import InputError

# Where `loadctl grafana push` looks without --dashboards: the generated boards, else the chart's
# copy (the checkout's or the image's, see controller/chart.py; whatever the working directory).
DASHBOARD_DIRS = (REPO_ROOT / "dashboards", chart_path() / "dashboards")
DEFAULT_FOLDER = "loadctl"
# Grafana's own limit on uids (dashboards and folders)
_UID = re.compile(r"^[A-Za-z0-9_-]{1,40}$")
_ENV_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


@dataclass(frozen=True)
class DashboardFile:
    path: Path
    uid: str
    title: str
    model: Mapping[str, Any]


def default_dashboards_dir(candidates: tuple[Path, ...] = DASHBOARD_DIRS) -> Path:
    """The first candidate directory that holds dashboard JSON (else the first, to name in the error)."""
    for directory in candidates:
        if directory.is_dir() and any(directory.glob("*.json")):
            return directory
    return candidates[0]


def load_dashboard(path: Path) -> DashboardFile:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as e:
        raise InputError(f"not valid JSON: {e.msg} (line {e.lineno})", source=str(path)) from e
    except (OSError, UnicodeDecodeError) as e:
        raise InputError(f"cannot read: {e}", source=str(path)) from e
    # Grafana's export and API format wrap the model: {"dashboard": {...}, "meta": {...}}
    if isinstance(data, dict) and isinstance(data.get("dashboard"), dict):
        data = data["dashboard"]
    if not isinstance(data, dict):
        raise InputError("a dashboard must be a JSON object", source=str(path))
    uid, title = data.get("uid"), data.get("title")
    if not isinstance(uid, str) or not _UID.match(uid):
        raise InputError(
            "needs a uid of 1-40 letters, digits, '-' or '_' (dashboards are overwritten by uid)",
            source=str(path),
            field="uid",
        )
    if not isinstance(title, str) or not title.strip():
        raise InputError("needs a title", source=str(path), field="title")
    return DashboardFile(path=path, uid=uid, title=title, model=data)


def load_dashboards(directory: Path, *, flag: str = "--dashboards") -> list[DashboardFile]:
    """Every *.json of `directory`, sorted by file name; uids must be unique."""
    if not directory.is_dir():
        raise InputError(f"{directory} is not a directory", source="command line", field=flag)
    files = sorted(directory.glob("*.json"))
    if not files:
        raise InputError(f"no dashboard JSON files in {directory}", source="command line", field=flag)
    dashboards: list[DashboardFile] = []
    seen: dict[str, Path] = {}
    for path in files:
        board = load_dashboard(path)
        if board.uid in seen:
            raise InputError(
                f"uid '{board.uid}' is also used by {seen[board.uid]}", source=str(path), field="uid"
            )
        seen[board.uid] = path
        dashboards.append(board)
    return dashboards


def dashboard_payload(board: DashboardFile, *, folder_uid: str, message: str) -> dict[str, object]:
    """The body of POST /api/dashboards/db: create, or overwrite the dashboard with the same uid."""
    model = {key: value for key, value in board.model.items() if key != "id"}
    return {
        "dashboard": {**model, "id": None},
        "folderUid": folder_uid,
        "overwrite": True,
        "message": message,
    }


def dashboard_url(grafana_url: str, answer: Mapping[str, Any], uid: str) -> str:
    """The dashboard's address from Grafana's answer; its `url` already holds any sub-path."""
    path = answer.get("url")
    if isinstance(path, str) and path.startswith("/"):
        return urljoin(grafana_url, path)
    return f"{grafana_url.rstrip('/')}/d/{uid}"


def is_general_folder(name: str) -> bool:
    """Grafana's root ("General") is not a folder that can be looked up or created."""
    return name.strip().lower() in ("", "general")


def folder_uid_for(name: str) -> str:
    """The uid a new folder gets: its name as a slug, within Grafana's 40 characters."""
    slug = re.sub(r"[^a-z0-9_-]+", "-", name.lower()).strip("-")[:40].strip("-")
    return slug or DEFAULT_FOLDER


def check_grafana_url(url: str, *, flag: str) -> str:
    """A base URL without credentials or query (they would end up in messages); no trailing slash."""
    parts = urlsplit(url.strip())
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise InputError(
            f"'{url}' is not an http(s) URL like http://grafana:3000", source="command line", field=flag
        )
    if parts.username or parts.password:
        raise InputError(
            "credentials do not belong in the URL; give the token's variable with the token-env flag",
            source="command line",
            field=flag,
        )
    if parts.query or parts.fragment:
        raise InputError("give the base URL, without query or fragment", source="command line", field=flag)
    try:
        parts.port  # noqa: B018 - a bad port only shows when read
    except ValueError as e:
        raise InputError(f"bad port: {e}", source="command line", field=flag) from e
    return url.strip().rstrip("/")


def read_token(var: str, *, flag: str, env: Mapping[str, str] | None = None) -> str:
    """The token from the environment variable named `var`. The message never echoes a value that
    looks like the token itself (given to the flag by mistake)."""
    env = os.environ if env is None else env
    if not _ENV_NAME.match(var) or var.startswith(("glsa_", "glc_", "eyJ")):
        raise InputError(
            "takes the NAME of an environment variable that holds the token, not the token",
            source="command line",
            field=flag,
        )
    token = env.get(var, "").strip()
    if not token:
        raise InputError(f"environment variable {var} is not set or empty", source="command line", field=flag)
    return token
