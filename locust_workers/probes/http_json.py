"""http_json probe: GET a JSON document every interval and export chosen fields as gauges.

For services whose figures are only on a JSON stats page. A field is a dotted path
(`stats.retryable_jobs`; digits index lists: `items.0.count`), or one series per entry of an
object: `{each: domains, label: domain, value: failure_rate}` turns
`{"domains": {"a.org": {"failure_rate": 0.1}}}` into `<name>{domain="a.org"} 0.1`. Numbers and
booleans are values, null is "no value yet" (the series is left out); anything else, or a path
that is not there, fails the sample, naming the field.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from locust_workers.probes.base import ProbeError, Reading, env_secret, secret_parts
from locust_workers.probes.config import EachField, HttpJsonProbe

MAX_BODY_BYTES = 4 * 1024 * 1024


class FieldError(ProbeError):
    pass


def lookup(document: Any, path: str) -> Any:
    """The value at a dotted path; FieldError saying which part is missing."""
    node = document
    walked: list[str] = []
    for part in path.split("."):
        walked.append(part)
        if isinstance(node, dict) and part in node:
            node = node[part]
        elif isinstance(node, list) and part.isdigit() and int(part) < len(node):
            node = node[int(part)]
        else:
            raise FieldError(f"no '{'.'.join(walked)}' in the document")
    return node


def _number(value: Any, where: str) -> float | None:
    if value is None:
        return None
    if isinstance(value, bool):
        return 1.0 if value else 0.0
    if isinstance(value, int | float):
        return float(value)
    raise FieldError(f"{where} is {type(value).__name__}, not a number")


def json_readings(
    document: Any, fields: Mapping[str, str | EachField], *, help_prefix: str = ""
) -> tuple[list[Reading], list[str]]:
    """Readings for `fields`, and warnings (series left out over max_series)."""
    readings: list[Reading] = []
    warnings: list[str] = []
    for name, spec in fields.items():
        if isinstance(spec, str):
            value = _number(lookup(document, spec), f"{name} ({spec})")
            if value is not None:
                readings.append(Reading(name, value, f"{help_prefix}{spec}"))
            continue
        entries = lookup(document, spec.each)
        if not isinstance(entries, dict):
            raise FieldError(f"{name}: '{spec.each}' is {type(entries).__name__}, not an object")
        for index, (key, entry) in enumerate(sorted(entries.items())):
            if index >= spec.max_series:
                warnings.append(f"{name}: {len(entries)} entries in '{spec.each}', kept {spec.max_series}")
                break
            raw = entry if spec.value is None else lookup(entry, spec.value)
            where = f"{name} ({spec.each}.{key}{'.' + spec.value if spec.value else ''})"
            value = _number(raw, where)
            if value is not None:
                help_text = f"{help_prefix}{spec.each}.*{'.' + spec.value if spec.value else ''}"
                readings.append(Reading(name, value, help_text, ((spec.label, str(key)),)))
    return readings, warnings


class HttpJsonSampler:
    def __init__(self, config: HttpJsonProbe, env: Mapping[str, str] | None = None) -> None:
        self.config = config
        self._env = env
        self._secrets: list[str] = []
        self._client: Any = None
        self.warnings: list[str] = []

    def secrets(self) -> list[str]:
        return list(self._secrets)

    def _request(self) -> tuple[str, dict[str, str]]:
        url = self.config.url
        if url is None:
            assert self.config.url_env is not None  # one of the two, by the model
            url = env_secret(self.config.url_env, self._env)
            self._secrets = secret_parts(url)
        headers = {"Accept": "application/json"}
        for header, variable in self.config.headers_env.items():
            headers[header] = env_secret(variable, self._env)
            self._secrets += secret_parts(headers[header])
        return url, headers

    def sample(self) -> list[Reading]:
        import httpx

        url, headers = self._request()
        if self._client is None:
            self._client = httpx.Client(timeout=self.config.sample_timeout, follow_redirects=False)
        try:
            response = self._client.get(url, headers=headers)
        except httpx.HTTPError as e:
            # from None: the cause may quote the URL unmasked; the message is masked by the runner
            raise ProbeError(f"GET failed: {type(e).__name__}: {' '.join(str(e).split())}") from None
        if response.status_code != 200:
            raise ProbeError(f"GET answered HTTP {response.status_code}")
        if len(response.content) > MAX_BODY_BYTES:
            raise ProbeError(f"response larger than {MAX_BODY_BYTES // (1024 * 1024)} MiB")
        try:
            document = response.json()
        except ValueError:
            raise ProbeError("response is not JSON") from None
        readings, self.warnings = json_readings(document, self.config.fields, help_prefix="JSON field ")
        return readings

    def close(self) -> None:
        client, self._client = self._client, None
        if client is not None:
            client.close()
