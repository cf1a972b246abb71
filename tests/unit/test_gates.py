"""Gate files, compilation to PromQL and verdicts: pure, no server."""

import math

import pytest

from controller.errors import InputError
from controller.gates.compile import WindowError, compile_gate, compile_scrape_counts, window_segments
from controller.gates.evaluate import GateResult, judge, overall
from controller.gates.load import parse_gate_file
from controller.gates.models import Gate, check_matchers, parse_change
from controller.models import PhaseWindow


def gate(**kwargs) -> Gate:
    return Gate(**({"name": "g"} | kwargs))


@pytest.mark.parametrize(
    ("kwargs", "words"),
    [
        ({"metric": "rps"}, "no threshold"),
        ({"metric": "rps", "promql": "up", "max": 1}, "exactly one of"),
        ({"max": 1}, "exactly one of"),
        ({"metric": "status_rate", "max": 1}, "needs 'status'"),
        ({"metric": "rps", "status": "429", "max": 1}, "only applies to metric status_rate"),
        ({"promql": "up", "labels": 'a="b"', "max": 1}, "only applies to 'metric' gates"),
        ({"metric": "rps", "min": 5, "max": 1}, "min is greater than max"),
        ({"metric": "rps", "max_change": "10"}, "relative change"),
        ({"metric": "rps", "max": 1, "labels": "name=harvest"}, "label matchers"),
        ({"metric": "latency_p42_ms", "max": 1}, "Input should be"),
        (
            {"metric": "requests", "max": 1, "outcome": "all"},
            "'outcome' only applies to metrics rps and latency_",
        ),
        ({"metric": "error_rate", "max": 1, "outcome": "successful"}, "'outcome' only applies"),
        ({"promql": "up", "max": 1, "outcome": "all"}, "'outcome' only applies"),
        ({"metric": "rps", "min": 1, "outcome": "failed"}, "Input should be 'successful' or 'all'"),
    ],
)
def test_invalid_gates(kwargs, words):
    with pytest.raises(ValueError, match=words):
        gate(**kwargs)


def test_status_as_number_means_the_string():
    assert gate(metric="status_rate", status=429, max=0.1).status == "429"


@pytest.mark.parametrize(
    ("text", "ok"),
    [
        ('name="a"', True),
        ('name!="a", status=~"5.."', True),
        (' name !~ "x|y" ', True),
        ("", True),
        ("name=a", False),
        ('name="a",', False),
        ('name="a" status="b"', False),
        ('1name="a"', False),
    ],
)
def test_label_matchers(text, ok):
    if ok:
        check_matchers(text)
    else:
        with pytest.raises(ValueError):
            check_matchers(text)


def test_parse_change():
    assert parse_change("+10%") == pytest.approx(0.10) and parse_change("-5%") == pytest.approx(-0.05)


PHASES = (
    PhaseWindow(stage=0, phase="ramp_up", start=100, end=110),
    PhaseWindow(stage=1, phase="steady", start=110, end=170),
    PhaseWindow(stage=2, phase="steady", start=170, end=200),
    PhaseWindow(stage=3, phase="ramp_up", start=200, end=210),
    PhaseWindow(stage=4, phase="steady", start=210, end=260),
)


def test_windows():
    assert window_segments("run", phases=PHASES, started_at=100, ended_at=260) == ((100, 260),)
    # adjacent steady stages merge; separated ones stay separate segments
    assert window_segments("steady", phases=PHASES, started_at=100, ended_at=260) == ((110, 200), (210, 260))
    assert window_segments("ramp_up", phases=PHASES, started_at=100, ended_at=260) == ((100, 110), (200, 210))
    with pytest.raises(WindowError, match="no 'spike' phase"):
        window_segments("spike", phases=PHASES, started_at=100, ended_at=260)
    with pytest.raises(WindowError, match="no start and end"):
        window_segments("run", phases=(), started_at=None, ended_at=None)


def delta(selector: str, start: float, end: float) -> str:
    """The exact count of one segment, as compile.py writes it."""
    last = f"last_over_time({selector}[{round((end - start) * 1000)}ms] @ {end:.3f})"
    return f"({last} - (last_over_time({selector}[300000ms] @ {start:.3f}) or {last} * 0))"


def test_compile_shorthands():
    seg = ((100.0, 160.0),)
    sel = 'run_id="r", name="x"'
    requests = delta(f"locust_requests_total{{{sel}}}", 100, 160)
    assert compile_gate(gate(metric="requests", labels='name="x"', min=1), run_id="r", segments=seg) == (
        f"sum({requests})"
    )
    # rps judges successful requests by default: requests minus failures (none counts as zero)
    every, failed = (
        delta(f'{m}{{run_id="r"}}', 100, 160)
        for m in ("locust_requests_total", "locust_request_failures_total")
    )
    assert compile_gate(gate(metric="rps", min=1), run_id="r", segments=seg) == (
        f"(sum({every}) - (sum({failed}) or sum({every}) * 0)) / 60.000"
    )
    assert compile_gate(gate(metric="rps", min=1, outcome="all"), run_id="r", segments=seg) == (
        f"sum({every}) / 60.000"
    )
    p99 = compile_gate(gate(metric="latency_p99_ms", labels='name="x"', max=1), run_id="r", segments=seg)
    # classic buckets or the native histogram (Prometheus 3): a run has one of the two
    buckets, native = (
        f"sum by (le) ({delta(f'{m}{{{sel}}}', 100, 160)})"
        for m in ("locust_response_time_seconds_bucket", "locust_response_time_seconds")
    )
    failed_buckets, failed_native = (
        f"sum by (le) ({delta(f'{m}{{{sel}}}', 100, 160)})"
        for m in ("locust_failed_response_time_seconds_bucket", "locust_failed_response_time_seconds")
    )
    assert p99 == (
        f"1000 * histogram_quantile(0.99, ({buckets} - ({failed_buckets} or {buckets} * 0))"
        f" or ({native} - ({failed_native} or {native} * 0)))"
    )
    p99_all = gate(metric="latency_p99_ms", labels='name="x"', max=1, outcome="all")
    assert compile_gate(p99_all, run_id="r", segments=seg) == (
        f"1000 * histogram_quantile(0.99, {buckets} or {native})"
    )
    status = compile_gate(gate(metric="status_rate", status="429", max=0.1), run_id="r", segments=seg)
    assert 'locust_request_failures_total{run_id="r", status="429"}' in status
    assert status.endswith(f"/ sum({every})")
    # no failure series counts as zero only when there were requests (fail closed otherwise)
    assert f" or 0 * sum({every})" in status
    assert "increase(" not in status + p99  # increase() drops a series' first sample and extrapolates


def test_a_segment_ending_with_the_run_reads_the_final_scrape():
    seg = ((100.0, 160.0),)
    final = compile_gate(gate(metric="requests", min=1), run_id="r", segments=seg, run_end=160.0)
    assert "[120000ms] @ 220.000)" in final  # up to FINAL_GRACE_S after the stop
    assert "[300000ms] @ 100.000)" in final  # the start is not moved
    inner = compile_gate(gate(metric="requests", min=1), run_id="r", segments=seg, run_end=200.0)
    assert "@ 160.000)" in inner and "@ 220.000" not in inner  # a phase boundary takes no later request


def test_compile_sums_segments_and_substitutes_promql():
    segs = ((100.0, 160.0), (200.0, 230.5))
    two = compile_gate(gate(metric="requests", min=1), run_id="r", segments=segs, run_end=230.5)
    assert two.count("[300000ms] @") == 2 and "[90500ms] @ 290.500" in two and "[60000ms] @ 160.000" in two
    # a union of segment-tagged series, not `+` of per-segment sums (which drops a series that
    # exists in only one segment)
    assert two.startswith("sum(label_replace((last_over_time(") and " or label_replace(" in two
    assert " + " not in two
    assert compile_gate(gate(metric="rps", min=1), run_id="r", segments=segs).endswith("/ 90.500")
    custom = gate(promql='max_over_time(x{run_id="$run_id"}[$__range]) + $start - $end', max=1)
    assert compile_gate(custom, run_id="r", segments=segs) == (
        'max_over_time(x{run_id="r"}[130500ms]) + 100.000 - 230.500'
    )
    assert compile_scrape_counts(run_id="r", segments=segs) == (
        'max(count_over_time(locust_requests_total{run_id="r"}[60001ms] @ 160.000))',
        'max(count_over_time(locust_requests_total{run_id="r"}[30501ms] @ 230.500))',
    )


def judged(g: Gate, value, baseline=None, reason=None) -> GateResult:
    return judge(
        g, value=value, baseline=baseline, reason=reason, promql="q", window="steady", start=1, end=2
    )


def test_verdicts():
    assert judged(gate(metric="rps", min=5), 6).verdict == "pass"
    fail = judged(gate(metric="rps", min=5), 4)
    assert fail.verdict == "fail" and "4 < min 5" in fail.reason
    assert judged(gate(metric="rps", max=5, severity="warn"), 6).verdict == "warn"
    both = judged(gate(metric="rps", min=1, max=5), 0.5)
    assert both.verdict == "fail" and "< min 1" in both.reason


@pytest.mark.parametrize("value", [None, math.nan, math.inf])
def test_missing_values_fail_closed_whatever_the_severity(value):
    result = judged(
        gate(metric="rps", min=5, severity="warn"), value, reason="no data" if value is None else None
    )
    assert result.verdict == "fail" and result.value is None and result.reason


def test_relative_gates():
    g = gate(metric="latency_p95_ms", max_change="+10%")
    assert judged(g, 109, baseline=100).verdict == "pass"
    worse = judged(g, 111, baseline=100)
    assert worse.verdict == "fail" and "allows 110" in worse.reason and worse.baseline == 100
    assert judged(gate(metric="rps", min_change="-5%"), 94, baseline=100).verdict == "fail"
    assert judged(gate(metric="rps", min_change="-5%"), 96, baseline=100).verdict == "pass"
    missing = judged(g, 100, baseline=None)
    assert missing.verdict == "fail" and "no baseline value" in missing.reason


def test_overall():
    def result(verdict):
        return GateResult(name="x", verdict=verdict, value=1, promql="", window="run", start=0, end=1)

    assert overall([result("pass"), result("warn")]) == "warn"
    assert overall([result("pass"), result("warn"), result("fail")]) == "fail"
    assert overall([result("pass")]) == "pass"


def test_gate_file_errors_name_the_gate():
    data = {
        "version": 1,
        "name": "t",
        "gates": [{"name": "ok", "metric": "rps", "min": 1}, {"name": "bad", "metric": "rps", "max": "lots"}],
    }
    with pytest.raises(InputError, match=r"^g.yaml: gates\[1\] \(bad\)\.max: "):
        parse_gate_file(data, source="g.yaml")
    with pytest.raises(InputError, match=r"gates\[0\] \(x\)\.colour: unknown field"):
        parse_gate_file(
            {"version": 1, "name": "t", "gates": [{"name": "x", "metric": "rps", "min": 1, "colour": 1}]},
            source="g.yaml",
        )
    with pytest.raises(InputError, match="version"):
        parse_gate_file(
            {"version": 2, "name": "t", "gates": [{"name": "x", "metric": "rps", "min": 1}]}, source="g.yaml"
        )
    with pytest.raises(
        InputError, match=r"gates\[0\] \(x\): .*'outcome' only applies to metrics rps and latency_"
    ):
        parse_gate_file(
            {
                "version": 1,
                "name": "t",
                "gates": [{"name": "x", "metric": "failures", "max": 0, "outcome": "all"}],
            },
            source="g.yaml",
        )
    with pytest.raises(InputError, match="unique"):
        parse_gate_file(
            {"version": 1, "name": "t", "gates": [{"name": "x", "metric": "rps", "min": 1}] * 2},
            source="g.yaml",
        )
