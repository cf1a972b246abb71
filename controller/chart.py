"""Where the files loadctl ships are: profiles, gate files and charts/loadctl (or $LOADCTL_CHART).

They live under controller/shipped/ so that `pip install .` puts them in the package, beside
locust_workers/ exactly as in a checkout: a shipped profile's `../../../locust_workers/...` and
`../gates/...` resolve the same from site-packages and from the repository. In a checkout,
profiles/ and gates/ at the top are symlinks to them (the paths users type keep working), and
controller/shipped/chart is a symlink to charts/loadctl (the chart stays where helm and its tests
look for it; the wheel gets a copy). The image sets LOADCTL_CHART to its own copy of the chart.
"""

from __future__ import annotations

import os
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]
SHIPPED_DIR = Path(__file__).resolve().parent / "shipped"
SHIPPED_PROFILES = SHIPPED_DIR / "profiles"
SHIPPED_GATES = SHIPPED_DIR / "gates"


def chart_path() -> Path:
    # resolved: in a checkout, the symlink's target, charts/loadctl itself
    return Path(os.environ.get("LOADCTL_CHART", (SHIPPED_DIR / "chart").resolve()))


def rules_file() -> Path:
    """The one rules file: the local Prometheus loads it, the chart's PrometheusRule renders it."""
    return chart_path() / "rules" / "loadctl.rules.yaml"
