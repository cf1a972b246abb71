"""Grafana integration: `loadctl grafana push` and run annotations.

Pure core, thin I/O, as everywhere else in the controller:

    payloads.py     dashboard files -> the bodies of POST /api/dashboards/db; URL and token checks
    annotations.py  a run's events (progress snapshots, abort, record) -> annotation bodies
    client.py       the thin wrapper over grafana-client; every failure becomes GrafanaError (exit 3)
    annotator.py    posts a run's annotations from a background thread: never fails or slows a run
"""
