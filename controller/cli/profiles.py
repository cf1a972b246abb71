"""`loadctl profiles`: the profiles `loadctl run NAME` finds from the current folder, and their files."""

from __future__ import annotations

from pathlib import Path

import click
from rich.markup import escape
from rich.table import Table

from controller.chart import SHIPPED_PROFILES
from controller.cli.render import console, say
from controller.errors import InputError
from controller.profiles import load_profile, profile_files, profile_load

LOCAL_PROFILES = Path("profiles")


def run_time(seconds: float | None) -> str:
    """90 -> 1m30s, 7200 -> 2h, 45 -> 45s ('-' when the profile leaves it to the flags)."""
    if seconds is None:
        return "-"
    hours, rest = divmod(round(seconds), 3600)
    minutes, secs = divmod(rest, 60)
    parts = [(hours, "h"), (minutes, "m"), (secs, "s")]
    return "".join(f"{value}{unit}" for value, unit in parts if value) or "0s"


@click.command(name="profiles")
def profiles() -> None:
    """List the profiles `loadctl run NAME` finds: ./profiles/NAME.yaml first, then those shipped."""
    table = Table(box=None, pad_edge=False)
    for header in ("NAME", "DURATION", "PEAK USERS", "FROM", "DESCRIPTION"):
        table.add_column(header)
    found = profile_files(profiles_dir=LOCAL_PROFILES, shipped_dir=SHIPPED_PROFILES)
    for name, path in found.items():
        # in a checkout ./profiles is a symlink to the shipped folder: the same files
        origin = "shipped" if path.resolve().parent == SHIPPED_PROFILES else "./profiles"
        try:
            profile = load_profile(path)
        except InputError as e:  # one broken ./profiles file does not hide the others
            table.add_row(name, "-", "-", origin, escape(f"invalid: {e}"))
            continue
        duration, users = profile_load(profile)
        peak = "-" if users is None else str(users)
        table.add_row(name, run_time(duration), peak, origin, escape(profile.description))
    console.print(table, highlight=False)
    say(f"shipped: {SHIPPED_PROFILES}/NAME.yaml")
    if LOCAL_PROFILES.is_dir() and LOCAL_PROFILES.resolve() != SHIPPED_PROFILES:
        say(f"./profiles: {LOCAL_PROFILES.resolve()}/NAME.yaml (wins over a shipped one of the same name)")
