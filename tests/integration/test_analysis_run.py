"""A real two-stage local run against the demo target: analysis.json, report.md and report.html.

The phases are measured in the run's Prometheus with the gates' PromQL; their requests must add up
to Locust's own total in run.json (the exporter's counters are exact). report.html's charts are
parsed, and opened in headless Chromium from the file: the screenshot must show them. A process
probe watches the demo target's RSS and its /metrics is scraped (its worker pool): drift and pool
stability.
"""

from __future__ import annotations

import json
import os
import shutil
import struct
import subprocess
import xml.etree.ElementTree as ET
import zlib
from pathlib import Path

import pytest
import yaml

from controller.rundir import (
    ANALYSIS_JSON,
    GATES_JSON,
    GATES_MD,
    JUNIT_XML,
    LOCUST_HTML,
    RUN_RECORD,
    RUN_REPORT,
    RUN_REPORT_HTML,
)
from tests.report_sections import unfilled
from tests.support import REPO_ROOT, demo_server, run_loadctl

pytestmark = pytest.mark.integration

RUN_ID = "analysis"
LOCUSTFILE = REPO_ROOT / "tests" / "integration" / "locustfiles" / "accuracy.py"
STAGES = [("ramp_up", 8, 4), ("steady", 12, 8)]  # phase, seconds, users
# The gates judged from the analysis' own numbers: drift over steady (= the analysis' window after
# its default warm-up, the first stage) and the breaking point (no step broke the loose SLO: 8).
GATES = (
    "version: 1\nname: analysis\nwindow: steady\ngates:\n"
    "  - {name: rss_drift, metric: drift_per_hour, gauge: loadctl_process_resident_memory_bytes, "
    "labels: 'probe=\"target\"', max: 1000}\n"
    "  - {name: holds_8, metric: breaking_point_users, min: 8}\n"
    "  - {name: holds_500, metric: breaking_point_users, min: 500, severity: warn}\n"
)


@pytest.fixture(scope="module")
def finished_run(tmp_path_factory: pytest.TempPathFactory) -> dict:
    root = tmp_path_factory.mktemp("run")
    stages = "".join(
        f"  - {{duration: {seconds}s, users: {users}, spawn_rate: 8, phase: {phase}}}\n"
        for phase, seconds, users in STAGES
    )
    with demo_server(root / "target.log") as target:
        port = target.rsplit(":", 1)[1]
        (root / "gates.yaml").write_text(GATES)
        profile = root / "staged.yaml"
        profile.write_text(
            f"name: staged\nlocustfile: {LOCUSTFILE}\nhost: {target}\nworkers: 1\n"
            f"gates: {root / 'gates.yaml'}\n"
            f"stages:\n{stages}analysis: {{slices: 4, slo: {{latency_p95_ms: 60000, error_rate: 0.99}}}}\n"
            f"probes:\n  - {{name: target, type: process, match: '--port {port}'}}\n"
            f"scrape_targets:\n  - {{name: demo, url: '{target}/metrics'}}\n"
            "summary_peaks: [demo_pool_in_use]\n"
        )
        done = run_loadctl(
            ["run", str(profile), "--run-id", RUN_ID, "--results-dir", str(root / "results")], timeout=180
        )
    run_dir = root / "results" / RUN_ID
    assert (run_dir / RUN_RECORD).exists(), f"exit {done.returncode}: {done.stdout}{done.stderr}"
    return {"done": done, "run_dir": run_dir, "record": json.loads((run_dir / RUN_RECORD).read_text())}


def test_analysis_has_one_phase_per_stage_adding_up_to_the_run(finished_run):
    run_dir, record = finished_run["run_dir"], finished_run["record"]
    assert ANALYSIS_JSON in record["files"]
    analysis = json.loads((run_dir / ANALYSIS_JSON).read_text())
    assert analysis["error"] is None
    assert [(p["phase"], p["users"]) for p in analysis["phases"]] == [(ph, u) for ph, _, u in STAGES]
    assert sum(p["requests"] for p in analysis["phases"]) == record["requests"] > 0
    for phase in analysis["phases"]:
        assert phase["rps"] > 0 and 0 < phase["p50_ms"] <= phase["p95_ms"] <= phase["p99_ms"]
        assert phase["error_rate"] == pytest.approx(sum(phase["failures_by_status"].values()))
    timeline = analysis["timeline"]
    assert len(timeline["slices"]) == 4
    assert set(timeline["trend"]) == {"error_rate", "p95_ms"}
    assert timeline["threshold"] > 0
    # one step per hold; both hold the (loose) SLO, so the bigger one is the capacity
    assert [s["users"] for s in analysis["steps"]] == [4, 8]
    assert [s["within_slo"] for s in analysis["steps"]] == [True, True]
    assert analysis["slo"]["source"] == "profile" and analysis["breaking_point"] is None
    assert analysis["capacity"]["users"] == 8
    assert analysis["capacity"]["max_rps_within_slo"] == analysis["steps"][1]["rps"] > 0


def test_report_has_the_phases_and_over_time_tables(finished_run):
    report = (finished_run["run_dir"] / RUN_REPORT).read_text()
    assert "## Phases" in report and "| `ramp_up` | 4 |" in report and "| `steady` | 8 |" in report
    assert "## Error rate and latency over time" in report and "**trend**" in report
    assert "## Breaking Point and Capacity" in report and "- Breaking point: none" in report


def test_every_section_the_reference_reports_ask_for_is_filled(finished_run):
    # the staged run with a process probe and the demo's pool: stability is measured, not skipped
    report = (finished_run["run_dir"] / RUN_REPORT).read_text()
    assert unfilled(report, required=frozenset({"Stability", "Breaking Point and Capacity"})) == {}


SVG = "{http://www.w3.org/2000/svg}"


def _svgs(html: str) -> dict[str, ET.Element]:
    """Each inline chart of report.html, parsed as XML, by its key."""
    charts = {}
    for chunk in html.split("<svg ")[1:]:
        svg = ET.fromstring("<svg " + chunk[: chunk.index("</svg>") + len("</svg>")])
        charts[svg.attrib["data-chart"]] = svg
    return charts


def test_report_html_has_every_section_and_charts_with_data(finished_run):
    run_dir, record = finished_run["run_dir"], finished_run["record"]
    assert RUN_REPORT_HTML in record["files"] and (run_dir / LOCUST_HTML).exists()  # Locust's, renamed
    html = (run_dir / RUN_REPORT_HTML).read_text()
    assert "TBD" not in html and "<script" not in html and "http" not in html.split("<body>")[0]
    for section in ("metadata", "load_profile", "phases", "over_time", "stability", "capacity", "verdict"):
        assert f'<section id="{section}">' in html
    charts = _svgs(html)
    assert set(charts) == {"users", "rps", "latency", "errors", "demo_pool_in_use"}
    for key in ("users", "rps", "latency", "demo_pool_in_use"):
        paths = [p for p in charts[key].iter(f"{SVG}path") if p.attrib.get("class") == "series"]
        assert paths and max(p.attrib["d"].count("L") for p in paths) >= 10, key  # a line of many points
    analysis = json.loads((run_dir / ANALYSIS_JSON).read_text())
    users = next(c for c in analysis["charts"] if c["key"] == "users")["series"][0]["points"]
    assert max(v for _, v in users if v is not None) == 8 and len(users) <= 300
    assert record["stages"][1]["users"] == 8 and record["command"][:2] == ["loadctl", "run"]
    assert record["locust_version"] and record["python_version"] and record["peaks"][0]["final"] is not None
    report = (run_dir / RUN_REPORT).read_text()
    assert (
        "TBD" not in report
        and "## Interpretation" in report
        and "| Gauge | Initial | Peak | Final |" in report
    )


def _png_colours(png: bytes) -> tuple[int, int, int, set[tuple[int, ...]]]:
    """(width, height, bytes per pixel, distinct colours) of an 8-bit, non-interlaced PNG: enough
    of a decoder for Chromium's screenshots, with the standard library only."""
    assert png[:8] == b"\x89PNG\r\n\x1a\n"
    pos, idat, header = 8, b"", b""
    while pos < len(png):
        (length,), kind = struct.unpack(">I", png[pos : pos + 4]), png[pos + 4 : pos + 8]
        body = png[pos + 8 : pos + 8 + length]
        header = body if kind == b"IHDR" else header
        idat += body if kind == b"IDAT" else b""
        pos += 12 + length
    width, height, depth, colour_type = struct.unpack(">IIBB", header[:10])
    assert depth == 8 and colour_type in (2, 6)
    bpp = 3 if colour_type == 2 else 4
    raw, stride = zlib.decompress(idat), width * bpp
    previous, colours = bytearray(stride), set()
    for y in range(height):
        kind, row = raw[y * (stride + 1)], bytearray(raw[y * (stride + 1) + 1 : (y + 1) * (stride + 1)])
        for i in range(stride):
            left = row[i - bpp] if i >= bpp else 0
            up, corner = previous[i], previous[i - bpp] if i >= bpp else 0
            if kind == 1:
                row[i] = (row[i] + left) & 0xFF
            elif kind == 2:
                row[i] = (row[i] + up) & 0xFF
            elif kind == 3:
                row[i] = (row[i] + (left + up) // 2) & 0xFF
            elif kind == 4:
                p = left + up - corner
                pa, pb, pc = abs(p - left), abs(p - up), abs(p - corner)
                row[i] = (row[i] + (left if pa <= pb and pa <= pc else up if pb <= pc else corner)) & 0xFF
        colours.update(bytes(row[x : x + 3]) for x in range(0, stride, bpp))
        previous = row
    return width, height, bpp, {tuple(c) for c in colours}


def test_report_html_opens_in_headless_chromium_and_shows_the_charts(finished_run, tmp_path: Path):
    chromium = os.environ.get("CHROMIUM_BIN") or shutil.which("chromium")
    assert chromium, "chromium not found: scripts/ensure-tool.sh chromium chromium CHROMIUM_BIN"
    page = (finished_run["run_dir"] / RUN_REPORT_HTML).resolve().as_uri()
    shot = tmp_path / "report.png"
    done = subprocess.run(
        [chromium, "--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars", "--no-first-run",
         f"--user-data-dir={tmp_path / 'profile'}", f"--screenshot={shot}", page,
         # the page from the top down to the charts, at half scale (fewer pixels to decode here)
         "--window-size=1000,3200", "--force-device-scale-factor=0.5"],
        capture_output=True, text=True, timeout=60, stdin=subprocess.DEVNULL,
    )  # fmt: skip
    assert shot.exists(), done.stderr[-2000:]
    width, height, _, colours = _png_colours(shot.read_bytes())
    assert (width, height) == (500, 1600)
    # a blank or text-only page has a handful of greys; the charts add their series colours
    assert len(colours) > 40, len(colours)
    near = lambda rgb, c: all(abs(a - b) <= 24 for a, b in zip(rgb, c, strict=True))  # noqa: E731
    assert any(near((0x1F, 0x77, 0xB4), c) for c in colours)  # the first series' blue


def test_drift_watches_the_demo_targets_rss_after_the_warmup(finished_run):
    analysis = json.loads((finished_run["run_dir"] / ANALYSIS_JSON).read_text())
    record = finished_run["record"]
    drift = analysis["drift"]
    ramp_up = next(p for p in analysis["phases"] if p["phase"] == "ramp_up")
    assert drift["warmup_end"] == ramp_up["end"]  # the default warm-up: the first stage as it ran
    assert "r^2" in drift["rule"]
    (rss,) = [g for g in drift["gauges"] if g["metric"] == "loadctl_process_resident_memory_bytes"]
    assert rss["labels"] == {"probe": "target"}
    assert rss["samples"] >= 8  # 12 s of steady stage at a 1-s step
    assert 10e6 < rss["first"] <= rss["peak"] and rss["last"] <= rss["peak"]  # a Python process' RSS
    assert rss["verdict"] in ("stable", "growing")  # 12 s: never a leak and rss["r_squared"] is not None
    # no PostgreSQL or Redis probe: those defaults have no series, so no entry
    assert {g["metric"] for g in drift["gauges"]} == {"loadctl_process_resident_memory_bytes"}
    # the demo's worker pool (idle under this locustfile): 0 at its first sample, 0 after the load.
    # A local run's Prometheus first scrapes a few seconds after it starts, so usually after the load.
    pools = {p["labels"]["pool"]: p for p in analysis["pools"] if p["metric"] == "demo_pool_in_use"}
    assert "studio_generate" in pools
    for pool in pools.values():
        assert pool["before_at"] < record["started_at"] + 8
        assert record["ended_at"] + 5 <= pool["after_at"] < record["ended_at"] + 7  # settled, 1-s scrapes
        assert (pool["before"], pool["after"], pool["verdict"], pool["exhausted"]) == (0, 0, "stable", False)


def test_the_drift_and_breaking_point_gates_judge_the_analysis_numbers(finished_run):
    run_dir = finished_run["run_dir"]
    analysis = json.loads((run_dir / ANALYSIS_JSON).read_text())
    gates = {g["name"]: g for g in json.loads((run_dir / GATES_JSON).read_text())["gates"]}
    (rss,) = [
        g for g in analysis["drift"]["gauges"] if g["metric"] == "loadctl_process_resident_memory_bytes"
    ]
    assert gates["rss_drift"]["value"] == rss["growth_ratio_per_hour"]  # the same fit, the same float
    assert gates["rss_drift"]["window"]["start"] == analysis["drift"]["warmup_end"]
    assert gates["rss_drift"]["verdict"] == "pass"
    # no step broke the SLO: the most users held within it, 8, so min 500 cannot pass
    assert (gates["holds_8"]["value"], gates["holds_8"]["verdict"]) == (8, "pass")
    assert (gates["holds_500"]["verdict"], gates["holds_500"]["reason"]) == ("warn", "8 < min 500")
    assert gates["holds_8"]["window"]["name"] == "run"
    assert finished_run["record"]["verdict"] == "warn"
    assert (
        "holds_500" in (run_dir / GATES_MD).read_text() and "holds_500" in (run_dir / JUNIT_XML).read_text()
    )
    # `loadctl gates eval --run` judges it again from the kept analysis.json
    done = run_loadctl(
        [
            "gates",
            "eval",
            "--gates",
            str(run_dir.parent.parent / "gates.yaml"),
            "--run",
            str(run_dir),
            "--format",
            "json",
        ],
        timeout=120,
    )
    again = {g["name"]: g for g in json.loads(done.stdout)["gates"]}
    assert done.returncode == 0, done.stderr
    assert again["holds_8"]["value"] == 8 and again["holds_500"]["verdict"] == "warn"
    assert again["rss_drift"]["value"] == gates["rss_drift"]["value"]
    # and `gates lock` locks it from the analysis too: min 8 observed 8 stays, min 500 never loosens
    locked = run_dir.parent.parent / "gates.locked.yaml"
    root = run_dir.parent.parent
    lock = [
        "gates",
        "lock",
        "--gates",
        str(root / "gates.yaml"),
        "--run",
        str(run_dir),
        "--output",
        str(locked),
    ]
    done = run_loadctl([*lock, "--report", str(root / "lock.md")], timeout=120)
    assert done.returncode == 0, done.stdout + done.stderr
    thresholds = {g["name"]: g for g in yaml.safe_load(locked.read_text())["gates"]}
    assert (thresholds["holds_8"]["min"], thresholds["holds_500"]["min"]) == (8, 500)
    assert thresholds["rss_drift"]["max"] == pytest.approx(gates["rss_drift"]["value"] * 1.2, rel=1e-3)


def test_report_rebuilds_the_same_drift_and_pools_offline(finished_run):
    # last: it rewrites analysis.json. The pools' `after` is the first sample 5 s after the stop,
    # so the read-back and a rebuild from the kept tsdb (probes scraped on until teardown) agree.
    run_dir = finished_run["run_dir"]
    before = json.loads((run_dir / ANALYSIS_JSON).read_text())
    done = run_loadctl(["report", str(run_dir)], timeout=120)
    assert done.returncode == 0, done.stdout + done.stderr
    rebuilt = json.loads((run_dir / ANALYSIS_JSON).read_text())
    assert rebuilt["pools"] == before["pools"] and rebuilt["pools"]
    assert rebuilt["drift"] == before["drift"]
