"""charts/loadctl/README.md is generated from values.yaml's comments (scripts/chart_readme.py), and
values.schema.json refuses two monitors scraping the same exporter."""

from __future__ import annotations

import textwrap
from pathlib import Path
from typing import Any

import yaml

from scripts.chart_readme import README, VALUES, render, rows
from tests.support import CHART, helm


def leaf_keys(values: dict[str, Any], prefix: str = "") -> set[str]:
    """Every key whose value is not a non-empty mapping, dotted."""
    found: set[str] = set()
    for key, value in values.items():
        path = prefix + key
        if isinstance(value, dict) and value:
            found |= leaf_keys(value, path + ".")
        else:
            found.add(path)
    return found


def test_the_committed_readme_is_the_generated_one():
    assert README.read_text(encoding="utf-8") == render(VALUES.read_text(encoding="utf-8")), (
        "charts/loadctl/README.md is out of date with values.yaml: run `make chart-readme`"
    )


def test_every_leaf_value_has_a_described_row():
    text = VALUES.read_text(encoding="utf-8")
    table = {row.key: row for row in rows(text)}
    for leaf in leaf_keys(yaml.safe_load(text)):
        # a leaf is its own row, or inside the whole default of a documented mapping's row
        owner = next((key for key in table if leaf == key or leaf.startswith(key + ".")), None)
        assert owner is not None, f"{leaf} has no row in the chart README"
        assert table[owner].description, f"{owner} has no `## --` description in values.yaml"


def test_rows_follow_helm_docs_conventions():
    text = textwrap.dedent(
        """\
        ## A section: no row of its own
        section:
          ## -- A count, described on `loadctl run
          ## --in-cluster` lines.
          count: 3
          ## -- A mapping shown whole: a | b <release>
          limits:
            cpu: 1
          flag: true
        ## -- A list
        items: [a]
        """
    )
    found = [(r.key, r.type, r.default, r.description) for r in rows(text)]
    assert found == [
        ("section.count", "int", "`3`", "A count, described on `loadctl run --in-cluster` lines."),
        ("section.limits", "object", '`{"cpu": 1}`', "A mapping shown whole: a \\| b &lt;release&gt;"),
        ("section.flag", "bool", "`true`", ""),
        ("items", "list", '`["a"]`', "A list"),
    ]


def _template(tmp_path: Path, values: dict[str, Any], *extra: str) -> Any:
    path = tmp_path / "monitors.yaml"
    path.write_text(yaml.safe_dump(values))
    ci = CHART / "ci" / "default-values.yaml"
    return helm("template", "lt", str(CHART), "-f", str(ci), "-f", str(path), *extra)


def test_service_monitor_and_pod_monitor_together_are_refused(tmp_path):
    both = {"serviceMonitor": {"enabled": True}, "podMonitor": {"enabled": True}}
    refused = _template(tmp_path, both)
    assert refused.returncode != 0
    assert "podMonitor.enabled" in refused.stderr  # the schema names the field
    # a render that skips the schema still stops, with the reason in a sentence
    skipped = _template(tmp_path, both, "--skip-schema-validation")
    assert skipped.returncode != 0
    assert "serviceMonitor.enabled and podMonitor.enabled are both true" in skipped.stderr
    assert "double every counter" in skipped.stderr


def test_either_monitor_alone_renders(tmp_path):
    for kind, key in (("ServiceMonitor", "serviceMonitor"), ("PodMonitor", "podMonitor")):
        done = _template(tmp_path, {key: {"enabled": True}})
        assert done.returncode == 0, done.stderr
        kinds = [doc["kind"] for doc in yaml.safe_load_all(done.stdout) if doc]
        assert kinds.count(kind) == 1 and not {"ServiceMonitor", "PodMonitor"} - {kind} & set(kinds)
