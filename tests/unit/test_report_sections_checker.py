"""The reference-sections check itself must catch what it promises to (a check that cannot fail
would let a TBD report through)."""

from __future__ import annotations

from tests.report_sections import ANSWERED_BY, unfilled


def _report(overrides: dict[str, str]) -> str:
    bodies = {heading: "- filled: 1\n" for heading in set(ANSWERED_BY.values())}
    bodies.update(overrides)
    return "# Report\n\n" + "".join(f"## {h}\n\n{b}\n" for h, b in bodies.items() if b is not None)


def test_a_filled_report_passes():
    assert unfilled(_report({})) == {}


def test_missing_empty_tbd_and_rowless_tables_are_caught():
    report = _report({"Phases": "| a | b |\n|---|---:|\n\nText after.\n", "Recovery": "TBD seconds\n"})
    report = report.replace("## Stability\n\n- filled: 1\n", "## Stability\n\n")
    report = report.replace("## Environment\n\n- filled: 1\n", "")
    assert unfilled(report) == {
        "Phases": "a table without rows",
        "Recovery": "TBD",
        "Stability": "empty",
        "Environment": "missing",
    }


def test_a_required_section_may_not_be_left_unmeasured():
    report = _report({"Stability": "Drift not measured (no gauge had samples).\n"})
    assert unfilled(report) == {}
    assert unfilled(report, required=frozenset({"Stability"})) == {"Stability": "not measured"}
