"""Session-wide test set-up."""

# Locust monkey-patches the stdlib with gevent when it is imported. Some tests import it, others
# import urllib3 (through the kubernetes client) first; urllib3 loaded before the patch makes every
# later SSL context recurse until RecursionError. So patch first, as the locust command itself does.
import locust  # noqa: F401, I001

from collections.abc import Iterator

import pytest

from tests.prom_versions import MAJORS, PrometheusBuild, prometheus_build, using


@pytest.fixture(scope="module", params=MAJORS, ids=lambda major: f"prometheus{major}")
def prometheus_version(request: pytest.FixtureRequest) -> Iterator[PrometheusBuild]:
    """Runs the module's tests that ask for it once on Prometheus 2.x and once on 3.x, with
    $PROMETHEUS_BIN pointing at that version (so promtool comes from beside it too)."""
    with using(prometheus_build(request.param)) as build:
        yield build
