"""Worker sizing through the real CLI: --workers auto, the k8s-only sizing flags, and the warning
before the run when a worker gets more users than one was measured to carry."""

from __future__ import annotations

import pytest

from controller.sizing import MEASURED_USERS_PER_WORKER
from tests.integration.test_cli_errors import ADHOC_RUN, assert_input_error
from tests.support import DEMO_LOCUSTFILE, run_loadctl

pytestmark = pytest.mark.integration


@pytest.mark.parametrize(
    ("flags", "words"),
    [
        (["--workers", "many"], ["--workers", "'many' is not a whole number or 'auto'"]),
        (["--workers", "1025"], ["--workers", "1025 is not between 1 and 1024"]),
        (["--max-workers", "3"], ["--max-workers", "only with --backend k8s"]),
        (["--users-per-worker", "100"], ["--users-per-worker", "only with --backend k8s"]),
        (["--backend", "k8s", "--users-per-worker", "0"], ["--users-per-worker"]),
    ],
)
def test_bad_sizing_flags_are_refused_before_anything_starts(tmp_path, flags, words):
    done = run_loadctl([*ADHOC_RUN, *flags, "--results-dir", str(tmp_path / "results")])
    assert_input_error(done, tmp_path, *words)


def test_validate_warns_when_a_worker_gets_more_users_than_measured(tmp_path):
    peak = 3 * MEASURED_USERS_PER_WORKER
    crowded = tmp_path / "crowded.yaml"
    crowded.write_text(
        f"locustfile: {DEMO_LOCUSTFILE}\nhost: http://127.0.0.1:1\nworkers: 2\n"
        f"stages:\n  - {{duration: 60s, users: {peak}, spawn_rate: {peak}}}\n"
    )
    done = run_loadctl(["validate", str(crowded)])
    assert done.returncode == 0, done.stdout + done.stderr
    per_worker = -(-peak // 2)
    assert (
        f"warning: profile crowded: {peak} users on 2 workers = {per_worker} per worker, above the "
        f"measured {MEASURED_USERS_PER_WORKER} a worker carries below 80 % CPU (README: Worker sizing)"
    ) in " ".join(done.stdout.split())
    # within the capacity: no warning
    crowded.write_text(crowded.read_text().replace("workers: 2", "workers: 3"))
    done = run_loadctl(["validate", str(crowded)])
    assert done.returncode == 0 and "warning" not in done.stdout, done.stdout
