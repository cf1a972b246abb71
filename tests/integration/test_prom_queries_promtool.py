"""The run-series PromQL builders (controller/prom/queries.py) parsed by the real promtool."""

import re
import subprocess

import pytest
import yaml

from controller.prom.binaries import find_promtool
from controller.prom.queries import (
    final_quantile_query,
    final_totals_query,
    last_seen_query,
    range_s,
    run_selector,
    run_start_query,
    run_stop_query,
    stage_starts_query,
)

pytestmark = pytest.mark.integration


def test_every_query_parses(tmp_path):
    """promtool parses each builder's PromQL (as recording rules: no server needed)."""
    selector = run_selector("r", 'state=~"a|b"')
    built = [
        run_start_query("r", planned_s=90),
        run_stop_query("r", planned_s=90),
        stage_starts_query("r", planned_s=90),
        last_seen_query("r", planned_s=90, at=1700000000.0),
        final_totals_query("locust_requests_total", run_id="r", planned_s=90, by="method, name"),
        final_quantile_query(0.5, run_id="r", planned_s=90, by="method, name, le"),
        f"max_over_time(locust_workers{selector}[{range_s(0, 90)}] @ 90.000)",
    ]
    rules = [{"record": f"loadctl_query_{i}", "expr": expr} for i, expr in enumerate(built)]
    path = tmp_path / "rules.yml"
    path.write_text(yaml.safe_dump({"groups": [{"name": "queries", "rules": rules}]}), encoding="utf-8")
    done = subprocess.run(
        [find_promtool(), "check", "rules", str(path)], capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert re.search(rf"SUCCESS: {len(built)} rules found", done.stdout)
