"""Gate files' PromQL checked by the real promtool (`promtool check rules`), before any load."""

import pytest

from controller.errors import InputError
from controller.gates.load import load_gate_file
from tests.support import REPO_ROOT

pytestmark = pytest.mark.integration


def test_promtool_rejects_unparseable_promql(tmp_path):
    path = tmp_path / "g.yaml"
    path.write_text(
        "version: 1\nname: t\ngates:\n  - {name: ok, metric: rps, min: 1}\n"
        "  - {name: broken, promql: 'sum(rate(x[5m]', max: 1}\n"
    )
    with pytest.raises(InputError, match=r"g.yaml: gates\[1\] \(broken\): invalid PromQL: "):
        load_gate_file(path)


def test_shipped_gate_files_are_valid():
    for path in sorted((REPO_ROOT / "gates").glob("*.yaml")):
        assert load_gate_file(path).gates
