"""`loadctl compare` and `loadctl report` on two real short runs against the demo target.

The second run is made with `--baseline` the first, so its analysis.json carries the comparison;
`compare` on the two folders must give the same rows, and `report` (the tsdb served again) the same
analysis.json as the run wrote.
"""

from __future__ import annotations

import json
import shutil

import pytest

from controller.rundir import ANALYSIS_JSON, RUN_RECORD, RUN_REPORT, RUN_REPORT_HTML, STATS_CSV
from tests.report_sections import sections, unfilled
from tests.support import DEMO_LOCUSTFILE, demo_server, run_loadctl

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def results(tmp_path_factory: pytest.TempPathFactory):
    root = tmp_path_factory.mktemp("compare")
    results = root / "results"
    with demo_server(root / "target.log") as target:
        common = ["run", "-f", str(DEMO_LOCUSTFILE), "--host", target, "-u", "2", "-r", "2", "-t", "8s"]
        common += ["--workers", "1", "--results-dir", str(results)]
        first = run_loadctl([*common, "--run-id", "first"], timeout=120)
        assert first.returncode == 0, first.stdout + first.stderr
        second = run_loadctl(
            [*common, "--run-id", "second", "--baseline", str(results / "first")], timeout=120
        )
        assert second.returncode == 0, second.stdout + second.stderr
    return results


def analysis(run_dir):
    return json.loads((run_dir / ANALYSIS_JSON).read_text())


def test_run_with_a_baseline_puts_the_comparison_in_analysis_json(results):
    comparison = analysis(results / "second")["comparison"]
    assert comparison["baseline_run_id"] == "first" and comparison["current_run_id"] == "second"
    assert comparison["comparable"] is True and comparison["differences"] == []
    rows = {(r["section"], r["figure"]): r for r in comparison["rows"]}
    first, second = (json.loads((results / name / RUN_RECORD).read_text()) for name in ("first", "second"))
    requests = rows["headline", "requests"]
    assert (requests["baseline"], requests["current"]) == (first["requests"], second["requests"])
    assert requests["change"] == pytest.approx((second["requests"] - first["requests"]) / first["requests"])
    assert {s for s, _ in rows} >= {"headline", "phase 0:ramp_up", "phase 1:steady"}
    assert any(s.startswith("endpoint GET ") for s, _ in rows)


def test_the_report_of_a_run_with_a_baseline_fills_the_comparison(results):
    report = (results / "second" / RUN_REPORT).read_text()
    assert unfilled(report, required=frozenset({"Comparison with baseline"})) == {}
    assert "| headline | requests |" in sections(report)["Comparison with baseline"]


def test_compare_prints_the_table_and_writes_the_same_rows(results, tmp_path):
    md, js = tmp_path / "compare.md", tmp_path / "compare.json"
    done = run_loadctl(
        ["compare", str(results / "first"), str(results / "second"), "--output", str(md), "--json", str(js)]
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert "second against baseline first" in done.stdout and "p95_ms" in done.stdout
    assert "| headline | requests |" in md.read_text()
    written = json.loads(js.read_text())
    assert written["rows"] == analysis(results / "second")["comparison"]["rows"]


def test_report_rebuilds_the_same_analysis_and_report(results):
    for name, extra in (("first", []), ("second", ["--baseline", str(results / "first")])):
        run_dir = results / name
        before = analysis(run_dir)
        (run_dir / ANALYSIS_JSON).unlink()
        (run_dir / RUN_REPORT).unlink()
        (run_dir / RUN_REPORT_HTML).unlink()
        done = run_loadctl(["report", str(run_dir), *extra], timeout=120)
        assert done.returncode == 0, done.stdout + done.stderr
        assert analysis(run_dir) == before
        assert "## Phases" in (run_dir / RUN_REPORT).read_text()
        assert '<svg xmlns="http://www.w3.org/2000/svg"' in (run_dir / RUN_REPORT_HTML).read_text()


def test_runs_not_like_for_like_are_refused_unless_forced(results, tmp_path):
    other = tmp_path / "other"
    other.mkdir()
    for name in (RUN_RECORD, ANALYSIS_JSON, STATS_CSV):
        shutil.copy(results / "second" / name, other / name)
    record = json.loads((other / RUN_RECORD).read_text())
    (other / RUN_RECORD).write_text(json.dumps(record | {"host": "http://127.0.0.1:9"}))
    refused = run_loadctl(["compare", str(results / "first"), str(other)])
    assert refused.returncode == 2 and len(refused.stderr.strip().splitlines()) == 1, refused.stderr
    assert "not comparable (host: http://127.0.0.1:" in refused.stderr and "--force" in refused.stderr
    forced = run_loadctl(["compare", str(results / "first"), str(other), "--force"])
    assert forced.returncode == 0 and "not comparable" in forced.stdout, forced.stderr


def test_corrupt_or_missing_input_is_one_line_and_exit_2(results, tmp_path):
    corrupt = tmp_path / "corrupt"
    corrupt.mkdir()
    (corrupt / RUN_RECORD).write_text("{")
    for args in (["compare", str(results / "first"), str(corrupt)], ["report", str(corrupt)]):
        done = run_loadctl(args)
        lines = done.stderr.strip().splitlines()
        assert done.returncode == 2 and len(lines) == 1, done.stderr
        assert (
            lines[0].startswith(f"loadctl: error: {corrupt / RUN_RECORD}: corrupt")
            and "Traceback" not in done.stdout
        )
    bad_analysis = tmp_path / "bad_analysis"
    shutil.copytree(results / "second", bad_analysis, ignore=shutil.ignore_patterns("tsdb", "logs"))
    (bad_analysis / ANALYSIS_JSON).write_text('{"phases": 3}')
    done = run_loadctl(["compare", str(results / "first"), str(bad_analysis)])
    assert done.returncode == 2 and done.stderr.strip().splitlines() == [
        f"loadctl: error: {bad_analysis / ANALYSIS_JSON}: corrupt: phases: Input should be a valid array"
    ]
    no_tsdb = run_loadctl(["report", str(bad_analysis)])
    assert no_tsdb.returncode == 2 and no_tsdb.stderr.strip().splitlines() == [
        f"loadctl: error: {bad_analysis}: no tsdb/ directory: nothing to analyse offline"
    ]


def test_an_older_run_json_is_analysed_with_defaults_and_says_so(results, tmp_path):
    older = tmp_path / "older"
    shutil.copytree(results / "first", older, ignore=shutil.ignore_patterns("logs"))
    record = json.loads((older / RUN_RECORD).read_text())
    del record["stages"], record["analysis_settings"]
    (older / RUN_RECORD).write_text(json.dumps(record))
    done = run_loadctl(["report", str(older)], timeout=120)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "no stage table (an older run)" in done.stdout and "the defaults were used" in done.stdout
    rebuilt, before = analysis(older), analysis(results / "first")
    assert [(p["phase"], p["users"]) for p in rebuilt["phases"]] == [("ramp_up", 0), ("steady", 0)]
    assert [p["requests"] for p in rebuilt["phases"]] == [p["requests"] for p in before["phases"]]
    assert rebuilt["steps"] == [] and rebuilt["timeline"] == before["timeline"]
