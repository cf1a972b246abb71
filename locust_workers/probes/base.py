"""What every probe shares: readings, the sampler protocol, secrets and how they are masked.

A sampler's `sample()` does the I/O and returns readings (metric name, labels, value); turning a
server's raw answer into readings is a pure function in each probe's module, tested without a
server. A failing sample raises; the runner counts it and keeps going.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Literal, Protocol
from urllib.parse import unquote

MASK = "***"
# Shorter "secrets" (an empty password, "x") would mask random characters of every message.
_MIN_SECRET_LEN = 3


class ProbeError(Exception):
    """A sample failed for a reason worth one log line (no traceback)."""


@dataclass(frozen=True)
class Reading:
    """One sample value. `labels` come on top of run_id and probe, which the runner adds."""

    name: str
    value: float
    help: str
    labels: tuple[tuple[str, str], ...] = ()
    kind: Literal["gauge", "counter"] = "gauge"  # a counter's name has no _total: the family adds it


class Sampler(Protocol):
    def sample(self) -> list[Reading]: ...

    def secrets(self) -> list[str]:
        """Strings that must never appear in a log line or an error (DSNs, URLs, tokens)."""
        ...

    def close(self) -> None: ...


def env_secret(name: str, env: Mapping[str, str] | None = None) -> str:
    """The value of a credential variable, or ProbeError naming the variable (never its value)."""
    value = (os.environ if env is None else env).get(name)
    if not value:
        raise ProbeError(f"environment variable {name} is not set")
    return value


def secret_parts(value: str) -> list[str]:
    """A DSN/URL and the pieces of it that are secret on their own (password, user:password)."""
    parts = [value]
    # user:password@ of a URL; a regex rather than urlsplit, which gives up on a malformed URL
    # (one a driver's error message may well quote)
    userinfo = re.match(r"^[A-Za-z][A-Za-z0-9+.-]*://([^/?#]*)@", value)
    password = userinfo.group(1).partition(":")[2] if userinfo else ""
    if userinfo and password:
        parts += [userinfo.group(1), unquote(userinfo.group(1)), password, unquote(password)]
    # libpq key/value form: "host=db password=s3cret user=app"
    for token in value.split():
        key, sep, secret = token.partition("=")
        if sep and key.strip().lower() == "password":
            parts.append(secret.strip("'\""))
    return parts


def mask(text: str, secrets: Iterable[str]) -> str:
    """`text` with every secret replaced by ***, longest first (a DSN before its password)."""
    for secret in sorted({s for s in secrets if len(s) >= _MIN_SECRET_LEN}, key=len, reverse=True):
        text = text.replace(secret, MASK)
    return text


def describe(error: BaseException) -> str:
    """One line for a failed sample: the message, or the exception class when it has none."""
    text = " ".join(str(error).split())
    if isinstance(error, ProbeError):
        return text
    name = type(error).__name__
    return f"{name}: {text}" if text else name
