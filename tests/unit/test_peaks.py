"""The system-under-test peaks: labels shown, and their place in report.md."""

from __future__ import annotations

from controller.models import Peak
from controller.prom.peaks import peak_label
from controller.reports.render import render_markdown
from controller.reports.run_report import system_under_test
from controller.reports.view import ReportView


def _md(peaks: tuple[Peak, ...]) -> str:
    return render_markdown(ReportView("t", "r", "pass", (system_under_test(peaks),)))


def test_peak_labels_keep_what_tells_series_apart_and_drop_where_they_came_from():
    labels = {
        "__name__": "x",
        "run_id": "r",
        "job": "loadctl-probes",
        "probe": "crawler",
        "domain": "a.example",
    }
    assert peak_label(labels) == '{domain="a.example"}'
    assert peak_label({"run_id": "r", "instance": "127.0.0.1:1"}) == ""


def test_report_lists_each_peak_or_says_there_were_none():
    peaks = (
        Peak(metric="demo_pool_in_use", labels="", value=4.0, initial=0.0, final=1.0),
        Peak(metric="crawler_domain_failure_rate", labels='{domain="a"}', value=0.25),
        Peak(metric="loadctl_process_resident_memory_bytes", labels="", value=103_456_789.0),
    )
    text = _md(peaks)
    assert "| Gauge | Initial | Peak | Final |" in text
    assert "| `demo_pool_in_use` | 0 | 4 | 1 |" in text
    assert '| `crawler_domain_failure_rate{domain="a"}` | n/a | 0.25 | n/a |' in text
    assert "| `loadctl_process_resident_memory_bytes` | n/a | 103,456,789 | n/a |" in text
    assert "No system-under-test gauges" in _md(())
