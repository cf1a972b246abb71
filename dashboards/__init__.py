"""Grafana dashboards of loadctl runs, as code (grafana-foundation-sdk).

    python -m dashboards.generate     # writes dashboards/*.json and charts/loadctl/dashboards/*.json

  common.py             variables, Prometheus targets, panel helpers, gate thresholds
  load_overview.py      "loadctl / Load overview": phase, users, RPS, failures, latency, workers
  system_under_test.py  "loadctl / System under test": pool, crawler domains, Redis, processes, probes
  runs_over_time.py     "loadctl / Runs over time": one point per pushed run (loadctl run --pushgateway)
  generate.py           builds all three, writes the JSON (sorted keys, so a diff shows what changed)

The JSON files are committed; tests/integration/test_dashboards.py fails when they differ from what the
generator produces, so edit the Python, never the JSON. A dev tool: nothing at run time imports it.
"""
