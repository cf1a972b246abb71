"""The rules file (charts/loadctl/rules/loadctl.rules.yaml) rendered for one scrape interval (pure).

The file is a template with two tokens, replaced the same way by the chart's PrometheusRule
(templates/prometheusrule.yaml) and by the local Prometheus of a run (controller/prom/server.py):
  - WINDOW_TOKEN: the range of every rate() and histogram quantile, and the `for:` of the alerts
    on raw gauges. rate() needs two samples in its window; at 4 scrapes per window it still has
    three when one scrape fails. A window of exactly one scrape interval (the old fixed 30s under
    kube-prometheus-stack's 30 s default) holds at most one sample, so the recorded series were empty
    and the alerts built on them never fired. MIN_WINDOW_S keeps short intervals (the local 1 s)
    from recording a single second's noise.
  - RUNBOOKS_TOKEN: where the README with the alerts' runbooks lives (their runbook_url).
"""

from __future__ import annotations

WINDOW_TOKEN = "__WINDOW__"
RUNBOOKS_TOKEN = "__RUNBOOKS__"
SCRAPES_PER_WINDOW = 4
MIN_WINDOW_S = 30
# relative: the README next to the rules wherever the project is read; the chart can set a full URL
DEFAULT_RUNBOOKS = "README.md"


def rule_window_s(scrape_interval_s: int) -> int:
    """Seconds of the rules' window for targets scraped every `scrape_interval_s`."""
    if scrape_interval_s < 1:
        raise ValueError(f"scrape interval must be at least 1s, not {scrape_interval_s}s")
    return max(SCRAPES_PER_WINDOW * scrape_interval_s, MIN_WINDOW_S)


def prom_duration(seconds: int) -> str:
    """Prometheus duration text: whole minutes as "2m", else seconds ("30s")."""
    return f"{seconds // 60}m" if seconds % 60 == 0 else f"{seconds}s"


def render_rules(template: str, *, scrape_interval_s: int, runbooks: str = DEFAULT_RUNBOOKS) -> str:
    """The rules file `template` with its tokens replaced for `scrape_interval_s`."""
    window = prom_duration(rule_window_s(scrape_interval_s))
    return template.replace(WINDOW_TOKEN, window).replace(RUNBOOKS_TOKEN, runbooks)
