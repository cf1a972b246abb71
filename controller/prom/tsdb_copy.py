"""Serving a run's TSDB while another Prometheus holds it.

Prometheus 3 locks its data directory (`lock`, flock) and refuses to start on a locked one; 2.x as
packaged by Debian does not. So a finished run served twice at once (`loadctl prometheus RUN_DIR`
for Grafana, and `loadctl gates eval` or `report` on the same run) fails on 3.x. Two servers on one
TSDB is unsafe anyway: both may compact the head at start-up. Instead, the second one serves a copy:
blocks are immutable once written, so they are hard-linked (copied across filesystems); the WAL and
head chunks, which the holder may still write, are copied.
"""

from __future__ import annotations

import fcntl
import os
import shutil
from pathlib import Path

LOCK_FILE = "lock"  # Prometheus' own name for it, inside the data directory


def tsdb_in_use(tsdb: Path) -> bool:
    """True while a Prometheus holds `tsdb` (it removes the lock file on a clean stop; a killed one
    leaves it unlocked, which Prometheus itself takes over)."""
    try:
        handle = (tsdb / LOCK_FILE).open("rb")
    except FileNotFoundError:
        return False
    with handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_SH | fcntl.LOCK_NB)
        except BlockingIOError:
            return True
        fcntl.flock(handle, fcntl.LOCK_UN)
        return False


def _link_or_copy(source: str, target: str) -> None:
    try:
        os.link(source, target)
    except OSError:  # another filesystem, or one without hard links
        shutil.copy2(source, target)


def copy_tsdb(tsdb: Path, target: Path) -> Path:
    """A servable copy of `tsdb` at `target` (which must not exist): its blocks, WAL and head chunks."""
    mutable = {"wal", "chunks_head"}
    target.mkdir(parents=True)
    for entry in tsdb.iterdir():
        if not entry.is_dir():  # the lock and queries.active belong to the holder
            continue
        if entry.name in mutable:
            shutil.copytree(entry, target / entry.name)
        elif entry.is_dir() and (entry / "meta.json").exists():  # a block
            shutil.copytree(entry, target / entry.name, copy_function=_link_or_copy)
    return target
