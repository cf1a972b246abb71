"""Where charts/loadctl is: this checkout's, or $LOADCTL_CHART.

The image sets LOADCTL_CHART: `pip install .` puts the package in site-packages, away from the
chart, which the k8s backend installs and whose rules file the local Prometheus loads.
"""

from __future__ import annotations

import os
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]


def chart_path() -> Path:
    return Path(os.environ.get("LOADCTL_CHART", REPO_ROOT / "charts" / "loadctl"))


def rules_file() -> Path:
    """The one rules file: the local Prometheus loads it, the chart's PrometheusRule renders it."""
    return chart_path() / "rules" / "loadctl.rules.yaml"
