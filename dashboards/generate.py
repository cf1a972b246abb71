"""Write the dashboards' JSON from the Python that builds them.

    python -m dashboards.generate                 # dashboards/*.json and charts/loadctl/dashboards/*.json
    python -m dashboards.generate --check         # exit 1 and name the files that are not current

Gate threshold lines are not baked in: the panels query the thresholds each run publishes
(loadctl_gate_threshold), so the JSON is the same whatever gate file judges a run.

Both directories hold exactly the generated boards: any other *.json in them is removed (the
chart ships every charts/loadctl/dashboards/*.json as a ConfigMap).
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path

from grafana_foundation_sdk.cog.encoder import JSONEncoder
from grafana_foundation_sdk.models.dashboard import Dashboard

from dashboards import load_overview, runs_over_time, system_under_test
from dashboards.common import finish, relative

REPO_ROOT = Path(__file__).resolve().parents[1]
OUTPUT_DIRS = (REPO_ROOT / "dashboards", REPO_ROOT / "charts" / "loadctl" / "dashboards")


def render(board: Dashboard) -> str:
    return JSONEncoder(sort_keys=True, indent=2).encode(finish(board)) + "\n"


def generate() -> dict[str, str]:
    """File name -> JSON text of every dashboard."""
    return {
        f"{load_overview.UID}.json": render(load_overview.build().build()),
        f"{system_under_test.UID}.json": render(system_under_test.build().build()),
        f"{runs_over_time.UID}.json": render(runs_over_time.build().build()),
    }


def out_of_date(files: dict[str, str], directories: Sequence[Path] = OUTPUT_DIRS) -> list[Path]:
    """Files that differ from `files`, are missing, or are not generated at all."""
    wrong = []
    for directory in directories:
        for name, text in files.items():
            path = directory / name
            if not path.is_file() or path.read_text(encoding="utf-8") != text:
                wrong.append(path)
        wrong += sorted(p for p in directory.glob("*.json") if p.name not in files)
    return wrong


def write(files: dict[str, str], directories: Sequence[Path] = OUTPUT_DIRS) -> list[Path]:
    """Bring `directories` to exactly `files`; the paths written or removed."""
    changed = out_of_date(files, directories)
    for path in changed:
        if path.name in files:
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(files[path.name], encoding="utf-8")
        else:
            path.unlink()
    return changed


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m dashboards.generate", description=__doc__.split("\n")[0])
    parser.add_argument("--check", action="store_true", help="only check that the JSON files are current")
    args = parser.parse_args(argv)
    files = generate()
    if args.check:
        stale = out_of_date(files)
        for path in stale:
            print(f"not current: {relative(path, REPO_ROOT)}", file=sys.stderr)
        if stale:
            print("run: python -m dashboards.generate", file=sys.stderr)
        return 1 if stale else 0
    for path in write(files):
        print(f"{'wrote' if path.exists() else 'removed'} {relative(path, REPO_ROOT)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
