"""Locust's own CSVs and HTML of a finished run, served by the master's exporter (contract.py:
LOCUST_FILES_PATH, LOCUST_FILE_NAMES) until the controller has fetched them.

Why served and not copied out of the pod: the master pod shares no volume with the controller, and
the controller reads nothing but HTTP from its pods (pods/exec is not granted); the exporter's
port is already reachable (a port-forward, or the cluster's Prometheus).

Why rendered here and not read from the --csv/--html files: Locust writes its HTML before the quit
event, but rewrites the CSVs every second and flushes them every 5 s, closing them only after the
quit event -- the files on disk at that moment may lack the last seconds. Rendering with Locust's
own writers (StatsCSV, get_html_report, the same calls --csv and --html make) at the quit event
gives exactly Locust's files with the final numbers. stats_history.csv is not among them: it is a
record over time that only Locust's file writer holds (Prometheus' TSDB keeps the same history).

Nothing here trusts the request path: a path is looked up in a dict of fixed names, never joined
to a filesystem path.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Callable, Iterable
from typing import Any

import locust.stats
from locust.html import get_html_report

from locust_workers.contract import LOCUST_FILE_NAMES, LOCUST_FILES_PATH

WsgiApp = Callable[[dict[str, Any], Callable[..., Any]], Iterable[bytes]]

_TYPES = {".csv": "text/csv; charset=utf-8", ".html": "text/html; charset=utf-8"}


def render(environment: Any) -> dict[str, bytes]:
    """LOCUST_FILE_NAMES' contents for the run in `environment`, by Locust's own writers."""
    writer = locust.stats.StatsCSV(environment, locust.stats.PERCENTILES_TO_REPORT)
    tables = {
        "stats.csv": writer.requests_csv,
        "failures.csv": writer.failures_csv,
        "exceptions.csv": writer.exceptions_csv,
    }
    files = {}
    for name, write in tables.items():
        buffer = io.StringIO(newline="")
        write(csv.writer(buffer))  # csv.writer's \r\n, as in Locust's own files
        files[name] = buffer.getvalue().encode("utf-8")
    html = get_html_report(environment, show_download_link=False)
    files["locust.html"] = html.encode("utf-8")
    assert set(files) == set(LOCUST_FILE_NAMES)  # the contract names what is served, once
    return files


class LocustFiles:
    """The files of the finished run (None until rendered) and whether the controller has them."""

    def __init__(self) -> None:
        self.files: dict[str, bytes] | None = None
        self.fetched = False

    def render(self, environment: Any) -> None:
        self.files = render(environment)

    def wrap(self, app: WsgiApp) -> WsgiApp:
        """`app` (the exporter's /metrics) with LOCUST_FILES_PATH served in front of it."""

        def serve(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
            path = environ.get("PATH_INFO", "")
            if path == LOCUST_FILES_PATH and environ.get("REQUEST_METHOD") == "POST":
                self.fetched = self.files is not None
                return _reply(start_response, "204 No Content" if self.fetched else "409 Conflict")
            if not path.startswith(LOCUST_FILES_PATH):
                return app(environ, start_response)
            name = path[len(LOCUST_FILES_PATH) :]
            if name not in LOCUST_FILE_NAMES or environ.get("REQUEST_METHOD") != "GET":
                return _reply(start_response, "404 Not Found")
            if self.files is None:
                return _reply(start_response, "503 Service Unavailable")  # the load still runs
            body = self.files[name]
            content_type = _TYPES[name[name.rindex(".") :]]
            headers = [("Content-Type", content_type), ("Content-Length", str(len(body)))]
            start_response("200 OK", headers)
            return [body]

        return serve


def _reply(start_response: Callable[..., Any], status: str) -> list[bytes]:
    start_response(status, [("Content-Type", "text/plain"), ("Content-Length", "0")])
    return [b""]
