"""Custom metrics end to end: ChatUser's time to first token and tokens, observed on real workers.

A `loadctl run` with 2 workers streams chat answers from the demo target; afterwards the run's
kept TSDB is served by a real Prometheus and compared with Locust's own stats.csv: the TTFT
histogram counted exactly the chat_stream requests Locust counted, the token counter exactly their
tokens, and no TTFT was below the target's configured least thinking time. A plain local Locust
run (no workers) is checked the same way through the exporter's final scrape.
"""

from __future__ import annotations

import contextlib
import csv
import json
import os
import sys
import time
from pathlib import Path

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from controller.processes import ManagedProcess, free_port
from controller.prom.client import query
from examples.demo_target.chat import ChatConfig
from locust_workers.contract import locustfile_arg
from locust_workers.metrics import DEFAULT_SECONDS_BUCKETS
from tests.support import DEMO_LOCUSTFILE, demo_server, run_loadctl, served_run

pytestmark = pytest.mark.integration

RUN_ID = "custom-metrics"
CHAT = ChatConfig()  # the demo target's defaults: the servers below are started without DEMO_CHAT_*
LATENCY_SCALE = 1.0
LEAST_TTFT = CHAT.first_token_ms / 1000 * LATENCY_SCALE
# The largest TTFT bucket bound at or below the least thinking time: nothing may be counted there.
BELOW_LEAST = max(b for b in DEFAULT_SECONDS_BUCKETS if b <= LEAST_TTFT)


def chat_row(stats_csv: Path) -> dict[str, str]:
    with open(stats_csv, newline="") as handle:
        return next(r for r in csv.DictReader(handle) if r["Name"] == "chat_stream")


@pytest.fixture(scope="module")
def finished_run(tmp_path_factory: pytest.TempPathFactory) -> dict:
    root = tmp_path_factory.mktemp("custom")
    with demo_server(root / "target.log", "--latency-scale", str(LATENCY_SCALE)) as target:
        profile = root / "chat.yaml"
        # ChatUser's own weight is 0; the other classes keep 1, so at 100:1 all 6 users are chat users
        profile.write_text(
            f"name: chat\nlocustfile: {DEMO_LOCUSTFILE}\nhost: {target}\nworkers: 2\n"
            f"user_weights: {{ChatUser: 100}}\nusers: 6\nspawn_rate: 6\nduration: 20s\n"
            f"scrape_targets:\n  - name: target\n    url: {target}/metrics\n"
        )
        done = run_loadctl(
            ["run", str(profile), "--run-id", RUN_ID, "--results-dir", str(root / "results")], timeout=180
        )
    run_dir = root / "results" / RUN_ID
    assert (run_dir / "run.json").exists(), f"exit {done.returncode}: {done.stdout}{done.stderr}"
    assert done.returncode == 0, done.stdout + done.stderr
    return {"run_dir": run_dir, "record": json.loads((run_dir / "run.json").read_text())}


@pytest.fixture(scope="module")
def final(finished_run):
    """The value of each series at the end of the run, from the run's own TSDB."""
    at = finished_run["record"]["ended_at"] + 3
    with served_run(finished_run["run_dir"]) as prom:

        def values(selector: str) -> dict[tuple, float]:
            samples = query(client=prom, promql=f"last_over_time({selector}[10m])", at=at)
            return {
                tuple(sorted((k, v) for k, v in s.labels.items() if k != "__name__")): s.value
                for s in samples
            }

        yield values


def test_ttft_is_counted_once_per_chat_request_locust_counted(finished_run, final):
    assert finished_run["record"]["workers"] == 2
    row = chat_row(finished_run["run_dir"] / "stats.csv")
    requests = int(row["Request Count"])
    assert requests > 10 and int(row["Failure Count"]) == 0
    matcher = f'{{run_id="{RUN_ID}",name="chat_stream"}}'
    counts = final(f"locust_custom_sse_ttft_seconds_count{matcher}")
    assert list(counts.values()) == [requests], counts
    assert final(f"locust_custom_sse_tokens_per_second_count{matcher}") == counts
    assert list(final(f"locust_custom_sse_tokens_total{matcher}").values()) == [requests * CHAT.tokens]
    # the exporter's labels are run_id and name (job and instance come from the scrape)
    assert {k for key in counts for k, _ in key} - {"job", "instance"} == {"run_id", "name"}


def test_no_ttft_below_the_targets_thinking_time(final):
    matcher = f'run_id="{RUN_ID}",name="chat_stream"'
    below = final(f'locust_custom_sse_ttft_seconds_bucket{{{matcher},le="{BELOW_LEAST}"}}')
    assert list(below.values()) == [0]  # BELOW_LEAST is 0.4 = the least thinking time: an exact check
    count = next(iter(final(f"locust_custom_sse_ttft_seconds_count{{{matcher}}}").values()))
    total = next(iter(final(f"locust_custom_sse_ttft_seconds_sum{{{matcher}}}").values()))
    assert total / count >= LEAST_TTFT
    # and the tokens per second histogram used ChatUser's own buckets
    bounds = {dict(k)["le"] for k in final(f"locust_custom_sse_tokens_per_second_bucket{{{matcher}}}")}
    assert {"1.0", "40.0", "1000.0", "+Inf"} <= bounds and "0.001" not in bounds


def scrape_custom(text: str) -> dict[str, float]:
    return {
        s.name: s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
        if s.labels.get("name") == "chat_stream"
        and s.name.startswith("locust_custom_")
        and s.name.endswith(("_count", "_total"))
    }


def test_a_local_run_without_workers_exports_them_too(tmp_path: Path):
    exporter_port = free_port()
    env = dict(
        os.environ,
        PYTHONUNBUFFERED="1",
        LOADCTL_RUN_ID="local",
        LOADCTL_USER_WEIGHTS=json.dumps({"ChatUser": 100}),  # the 3 users: all chat users
        LOADCTL_EXPORTER_HOST="127.0.0.1",
        LOADCTL_EXPORTER_PORT=str(exporter_port),
        LOADCTL_FINAL_SCRAPE_TIMEOUT="30",
    )
    url = f"http://127.0.0.1:{exporter_port}/metrics"
    with demo_server(tmp_path / "target.log", "--latency-scale", str(LATENCY_SCALE)) as target:
        argv = [sys.executable, "-m", "locust", "-f", locustfile_arg(DEMO_LOCUSTFILE), "--host", target]
        argv += ["--headless", "-u", "3", "-r", "3", "-t", "8s", "--csv", str(tmp_path / "local")]
        locust = ManagedProcess("locust", argv, log_path=tmp_path / "locust.log", env=env, cwd=tmp_path)
        last = ""
        try:
            # Scrape like Prometheus until the process is gone; the exporter holds on after the load
            # until it has served one scrape, so the last one holds the final totals.
            while locust.poll() is None:
                with contextlib.suppress(httpx.HTTPError):
                    last = httpx.get(url, timeout=2).text
                time.sleep(0.2)
        finally:
            locust.stop(timeout=10)
    assert locust.poll() == 0, locust.log_tail()
    requests = int(chat_row(tmp_path / "local_stats.csv")["Request Count"])
    assert requests > 3
    assert scrape_custom(last) == {
        "locust_custom_sse_ttft_seconds_count": requests,
        "locust_custom_sse_tokens_per_second_count": requests,
        "locust_custom_sse_tokens_total": requests * CHAT.tokens,
    }
