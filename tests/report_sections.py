"""What the reference load-test reports ask, and where report.md answers it.

The team's hand-written reports (../shared/reference/: 000 the pilot report, 002 the sustained-load
template, 004 the peak-load template) are templates full of "TBD". Each of their sections that a
run can answer maps to one report.md section, which must then be there and filled: no "TBD", no
table without rows, not empty. The headings are copied here (the reference folder is not part of
the repository) with the file each comes from.
"""

from __future__ import annotations

import re

# reference heading -> the report.md section that answers it
ANSWERED_BY: dict[str, str] = {
    # 000 (pilot report)
    "Run Metadata": "Run Metadata",
    "Headline Results": "Headline Results",
    "Endpoint Detail": "Endpoint Detail",
    "Failure Analysis": "Failure Analysis",
    "Gate Results": "Gate Results",
    "Decision": "Verdict",
    "Interpretation": "Interpretation",  # for a person: the heading and its prompt
    # 002 (sustained load)
    "Test Configuration": "Run Metadata",
    "User Distribution": "Load Profile",
    "Execution Command": "Run Metadata",  # "Command line, as run"
    "Performance Metrics": "Headline Results",
    "System Metrics": "System Under Test",
    "Top 10 Endpoints by Request Count": "Endpoint Detail",
    "Memory Leak Detection": "Stability",
    "Connection Pool Stability": "Stability",
    "Error Rate Over Time": "Error rate and latency over time",
    "Current Capacity": "Breaking Point and Capacity",
    # 004 (peak load)
    "System Behavior Under Load": "Phases",
    "Resource Utilization": "System Under Test",
    "Rate Limiting Analysis": "Rate Limiting",
    "Failure Scenarios": "Failure Analysis",
    "Breaking Point Analysis": "Breaking Point and Capacity",
    "Graceful Degradation": "Breaking Point and Capacity",  # the steps of load, each judged
    "Recovery": "Recovery",  # 004's "Recovery Time ... after load removal"
    "Comparison with Sustained Load": "Comparison with baseline",
    "Test Environment": "Environment",
}

# Reference sections no run can fill: a person's judgement, or instructions for running by hand.
FOR_A_PERSON = (
    "Scope", "Test Objective", "Issues Identified", "Recommendations", "Bottlenecks Identified",
    "Tuning Actions Before Pilot Ramp", "Notes", "Next Steps", "Lessons Learned",
    "Test Execution Instructions", "Monitoring Queries", "Monitoring During Test",
)  # fmt: skip


def sections(markdown: str) -> dict[str, str]:
    """report.md's `## ` sections: heading -> body."""
    parts = re.split(r"^## (.+)$", markdown, flags=re.MULTILINE)
    return {heading.strip(): body for heading, body in zip(parts[1::2], parts[2::2], strict=True)}


def unfilled(markdown: str, *, required: frozenset[str] = frozenset()) -> dict[str, str]:
    """Each answering section that is missing, empty, says TBD or has a table without rows; with
    `required`, sections whose body must also not be a "not measured" line."""
    found, problems = sections(markdown), {}
    for heading in sorted(set(ANSWERED_BY.values())):
        body = found.get(heading)
        if body is None:
            problems[heading] = "missing"
        elif not body.strip():
            problems[heading] = "empty"
        elif "TBD" in body or "⏳" in body:
            problems[heading] = "TBD"
        elif _empty_table(body):
            problems[heading] = "a table without rows"
        elif heading in required and re.search(r"not measured|No baseline", body):
            problems[heading] = "not measured"
    return problems


def _empty_table(body: str) -> bool:
    lines = [line.strip() for line in body.splitlines()]
    for i, line in enumerate(lines):
        if re.fullmatch(r"\|(\s*:?-+:?\s*\|)+", line):  # a separator row: the table's rows follow
            following = lines[i + 1] if i + 1 < len(lines) else ""
            if not following.startswith("|"):
                return True
    return False
