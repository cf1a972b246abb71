"""Prometheus configuration for a local run, built as data (pure) and dumped as YAML."""

from __future__ import annotations

from typing import Any

import yaml

from controller.chart import rules_file
from controller.models import ScrapeTarget
from controller.prom.rules import render_rules

EXPORTER_JOB = "loadctl-exporter"
PROBES_JOB = "loadctl-probes"
SCRAPE_INTERVAL_S = 1
# the rules rendered for the run's scrape interval, written next to prometheus.yml (Prometheus reads
# a relative rule_files path from the config file's folder)
RULES_FILE_NAME = "loadctl.rules.yaml"


def scrape_config(
    *,
    run_id: str,
    exporter_address: str,
    targets: tuple[ScrapeTarget, ...] = (),
    interval_s: int = SCRAPE_INTERVAL_S,
    probes_address: str | None = None,
    native_histograms: bool = False,
) -> dict[str, Any]:
    """Scrape the exporter, the probes (if any) and each extra target every `interval_s`; all get run_id.
    `native_histograms`: the exporter serves them (latency_layout native); only 3.x knows the key."""
    interval = f"{interval_s}s"
    exporter: dict[str, Any] = {"job_name": EXPORTER_JOB, "static_configs": [{"targets": [exporter_address]}]}
    if native_histograms:
        exporter["scrape_native_histograms"] = True  # makes Prometheus 3 ask for protobuf first
    jobs: list[dict[str, Any]] = [exporter]
    if probes_address is not None:
        jobs.append({"job_name": PROBES_JOB, "static_configs": [{"targets": [probes_address]}]})
    for target in targets:
        jobs.append(
            {
                "job_name": target.name,
                "scheme": target.scheme,
                "metrics_path": target.metrics_path,
                "static_configs": [{"targets": [target.address]}],
            }
        )
    for job in jobs:
        job["scrape_interval"] = interval
        job["scrape_timeout"] = interval
        # run_id on the target's own series too, so one query can join them with the exporter's
        job["static_configs"][0]["labels"] = {"run_id": run_id}
        job["honor_labels"] = True
    return {
        "global": {"scrape_interval": interval, "evaluation_interval": interval},
        "rule_files": [RULES_FILE_NAME],
        "scrape_configs": jobs,
    }


def rules_text(interval_s: int = SCRAPE_INTERVAL_S) -> str:
    """The content of RULES_FILE_NAME: the chart's rules file with windows for `interval_s` scrapes."""
    return render_rules(rules_file().read_text(), scrape_interval_s=interval_s)


def empty_config() -> dict[str, Any]:
    """Config for serving a finished run's TSDB: nothing to scrape, only queries."""
    return {"global": {"scrape_interval": "1m"}, "scrape_configs": []}


def dump(config: dict[str, Any]) -> str:
    return yaml.safe_dump(config, sort_keys=False)
