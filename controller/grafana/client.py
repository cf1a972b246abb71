"""The thin wrapper over grafana-client: the few calls loadctl makes, each failure one GrafanaError.

Messages name the Grafana URL (checked to carry no credentials) and what failed, never the token:
grafana-client sends it only in the Authorization header, which no exception repeats.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from http import HTTPStatus
from importlib.metadata import version
from typing import Any
from urllib.parse import urlsplit

import requests
from grafana_client import GrafanaApi
from grafana_client.client import GrafanaException

from controller.errors import GrafanaError, tail
from controller.grafana.annotations import Annotation
from controller.grafana.payloads import folder_uid_for, is_general_folder

_ERRNO = re.compile(r"\[Errno -?\d+\] ([^'\"()]+)")


def _status_text(status: int) -> str:
    try:
        return f"{status} {HTTPStatus(status).phrase}"
    except ValueError:
        return str(status)


def describe_error(error: BaseException, *, url: str, timeout: float) -> str:
    """One line for a failed call: what Grafana said, or why it could not be asked."""
    if isinstance(error, GrafanaException):
        status = int(error.status_code)
        said = error.response
        detail = said.get("message") if isinstance(said, dict) else said
        hint = {401: "the token was rejected", 403: "the token may not do this"}.get(status)
        text = f"Grafana {url} answered {_status_text(status)}"
        text += f": {hint}" if hint else ""
        if detail and str(detail).strip():
            text += f" ({tail(str(detail), 200)})"
        return text
    if isinstance(error, requests.Timeout):
        return f"Grafana {url} did not answer within {timeout:g}s"
    if isinstance(error, requests.ConnectionError):
        found = _ERRNO.search(str(error))
        return f"Grafana {url} is unreachable: {found.group(1).strip() if found else tail(str(error), 200)}"
    if isinstance(error, ValueError):  # an answer that is not JSON: not a Grafana API behind that URL
        return f"{url} did not answer like Grafana's HTTP API (no JSON)"
    return f"Grafana {url}: {tail(f'{type(error).__name__}: {error}', 200)}"


class Grafana:
    """One Grafana, authenticated with a token (service account or API key)."""

    def __init__(self, url: str, *, token: str, timeout: float) -> None:
        parts = urlsplit(url)
        prefix = parts.path.strip("/")
        self.url = url
        self.timeout = timeout
        # netloc keeps an IPv6 host's brackets and the port; the URL was checked to carry no credentials
        self._api = GrafanaApi(
            auth=token,
            host=parts.netloc,
            port=None,
            url_path_prefix=f"{prefix}/" if prefix else "",
            protocol=parts.scheme,
            timeout=timeout,
            user_agent=f"loadctl/{version('loadctl')}",
        )

    def _call(self, what: str, call: Any, *args: Any) -> Any:
        try:
            return call(*args)
        except (GrafanaException, requests.RequestException, ValueError) as e:
            raise GrafanaError(f"{what}: {describe_error(e, url=self.url, timeout=self.timeout)}") from e

    def health(self) -> dict[str, object]:
        """GET /api/health: is a Grafana answering at all (needs no token)."""
        answer = self._call("health check", self._api.health.check)
        if not isinstance(answer, dict):
            raise GrafanaError(f"health check: {self.url} did not answer like Grafana")
        return answer

    def folder_uid(self, title: str) -> str:
        """The uid of the top-level folder titled `title`, created if missing ("" for General)."""
        if is_general_folder(title):
            return ""
        folders = self._call("list folders", self._api.folder.get_all_folders)
        for folder in folders if isinstance(folders, list) else []:
            if isinstance(folder, dict) and folder.get("title") == title and folder.get("uid"):
                return str(folder["uid"])
        created = self._call(
            f"create folder '{title}'", self._api.folder.create_folder, title, folder_uid_for(title)
        )
        if not isinstance(created, dict) or not created.get("uid"):
            raise GrafanaError(f"create folder '{title}': Grafana {self.url} answered without a uid")
        return str(created["uid"])

    def upload(self, payload: Mapping[str, object], *, name: str) -> dict[str, object]:
        """POST /api/dashboards/db; Grafana's answer holds the dashboard's url."""
        answer = self._call(f"upload {name}", self._api.dashboard.update_dashboard, payload)
        return answer if isinstance(answer, dict) else {}

    def annotate(self, annotation: Annotation) -> None:
        """POST /api/annotations: an organisation-wide annotation (no dashboard), found by its tags."""
        body = annotation.body()
        self._call(
            "annotation",
            lambda: self._api.annotations.add_annotation(
                time_from=body["time"], time_to=body.get("timeEnd"), tags=body["tags"], text=body["text"]
            ),
        )
