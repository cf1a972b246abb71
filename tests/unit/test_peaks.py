"""The system-under-test peaks: labels shown, and their place in report.md."""

from __future__ import annotations

from controller.models import Peak
from controller.prom.peaks import peak_label
from controller.reports.run_report import system_under_test


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
        Peak(metric="demo_pool_in_use", labels="", value=4.0),
        Peak(metric="crawler_domain_failure_rate", labels='{domain="a"}', value=0.25),
        Peak(metric="loadctl_process_resident_memory_bytes", labels="", value=103_456_789.0),
    )
    text = "\n".join(system_under_test(peaks))
    assert "| `demo_pool_in_use` | 4 |" in text
    assert '| `crawler_domain_failure_rate{domain="a"}` | 0.25 |' in text
    assert "| `loadctl_process_resident_memory_bytes` | 103,456,789 |" in text
    assert "No system-under-test gauges" in "\n".join(system_under_test(()))
