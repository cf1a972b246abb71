"""The user's own loadctl settings file: $XDG_CONFIG_HOME/loadctl/config.yaml, else
~/.config/loadctl/config.yaml (the XDG base directory rule: a relative $XDG_CONFIG_HOME is ignored).

Today it holds one setting, the test author's own target allowlist (controller/policy.py):

    allowed_hosts: ["*.staging.example.com", "127.0.0.0/8"]

A missing file is no settings; a malformed one (bad YAML, an unknown field, allowed_hosts not a
list of strings) is an InputError naming the file and the field, like a profile's.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field

from controller.inputs import load_yaml_mapping, parse_model

CONFIG_HOME_ENV = "XDG_CONFIG_HOME"
CONFIG_FILE = Path("loadctl") / "config.yaml"


class UserConfig(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    # Entries as controller/policy.py parses them (and names `allowed_hosts[i]` when one is bad).
    allowed_hosts: tuple[str, ...] = Field(default=(), max_length=1000)


def config_path(environ: Mapping[str, str]) -> Path:
    """Where the user's config file is (it may not exist)."""
    home = environ.get(CONFIG_HOME_ENV, "")
    base = Path(home) if home and Path(home).is_absolute() else Path.home() / ".config"
    return base / CONFIG_FILE


def read_user_config(environ: Mapping[str, str] = os.environ) -> tuple[Path, UserConfig]:
    """The config file's path and settings (defaults when there is no file)."""
    path = config_path(environ)
    if not path.exists():
        return path, UserConfig()
    return path, parse_model(UserConfig, load_yaml_mapping(path), source=str(path))
