"""A Locust user's folder run through plain `locust --headless` and through `loadctl run`, in the
same folder against the same demo target (issue 13, items 1-2): Locust's config files, relative
data files, imports from the folder, the locustfile's own arguments, -f a folder or a list,
Locust's option names. Both sides must send the same requests (tests/locust_compat.py: names and
shares from Locust's own stats.csv); a locustfile Locust cannot load stops loadctl before any load.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from controller.rundir import STATS_CSV
from tests.locust_compat import Outcome, loadctl_locust, plain_locust, share_differences
from tests.support import demo_server, run_loadctl, served_requests

pytestmark = pytest.mark.integration

LOAD = ("-u", "2", "-r", "2", "-t", "4s")

TAGGED = """\
from locust import HttpUser, constant, tag, task


class Shopper(HttpUser):
    wait_time = constant(0.1)

    @tag("tag1")
    @task
    def tagged(self):
        self.client.get("/v1/recipes?q=soup", name="tagged")

    @tag("tag2")
    @task
    def excluded(self):
        self.client.get("/v1/recipes?q=cake", name="excluded")


class Browser(HttpUser):
    wait_time = constant(0.1)

    @tag("tag1")
    @task
    def browse(self):
        self.client.get("/v1/recipes?q=tea", name="browse")
"""


@pytest.fixture(scope="module")
def target(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    with demo_server(tmp_path_factory.mktemp("target") / "target.log") as url:
        yield url


def write(folder: Path, files: dict[str, str]) -> Path:
    for name, text in files.items():
        (folder / name).parent.mkdir(parents=True, exist_ok=True)
        (folder / name).write_text(text)
    return folder


def both(
    folder: Path,
    target: str,
    args: list[str],
    *,
    plain_args: list[str] | None = None,
    loadctl_args: list[str] | None = None,
    env: dict[str, str] | None = None,
    workers: int = 1,
) -> tuple[Outcome, Outcome]:
    """The same arguments through plain Locust and loadctl (each may add its own), in `folder`."""
    common = [*args, "--host", target, *LOAD]
    plain = plain_locust([*common, *(plain_args or [])], cwd=folder, env=env)
    mine = loadctl_locust(
        [*common, "--workers", str(workers), *(loadctl_args or [])],
        cwd=folder,
        results_dir=folder / "results",
        run_id="dropin",
        env=env,
    )
    assert plain.exit_code == 0, plain.output[-2000:]
    assert mine.exit_code == 0, mine.output[-2000:]
    assert plain.total > 0 and mine.total > 0
    assert share_differences(plain, mine, tolerance=0.15) == []
    return plain, mine


def run_record(folder: Path) -> dict:
    return json.loads((folder / "results" / "dropin" / "run.json").read_text())


def names(outcome: Outcome) -> set[str]:
    return {name for _method, name in outcome.requests}


def test_locusts_config_files_and_variables_apply_and_loadctls_flags_win(tmp_path: Path, target: str):
    folder = write(
        tmp_path,
        {
            "shop.py": TAGGED,
            # no -f on either side: the file's; --host wins over the file's host (the command line
            # wins, in Locust as in loadctl)
            "locust.conf": "locustfile = shop.py\ntags = tag1\nhost = http://127.0.0.1:9\n",
            "pyproject.toml": '[tool.locust]\nexclude-tags = ["tag3"]\n',
            "extra.conf": "stop-timeout = 1\n",
        },
    )
    env = {**os.environ, "LOCUST_LOGLEVEL": "info"}
    plain, mine = both(folder, target, ["--config", "extra.conf"], env=env)
    assert names(plain) == names(mine) == {"tagged", "browse"}  # the tag2 task sent nothing on either side
    config = run_record(folder)["locust_config"]
    files = [str(folder / name) for name in ("extra.conf", "locust.conf", "pyproject.toml")]
    assert config["files"] == files
    assert config["options"] == {
        "tags": ["tag1"],
        "exclude-tags": ["tag3"],
        "stop-timeout": 1,
        "loglevel": "INFO",
    }
    assert config["sources"] == {
        "tags": files[1],
        "exclude-tags": files[2],
        "stop-timeout": files[0],
        "loglevel": "$LOCUST_LOGLEVEL",
    }
    assert config["workdir"] == str(folder)
    assert config["args"] == ["--config", "extra.conf"]
    assert config["locustfiles"] == [str(folder / "shop.py")]


def test_data_files_and_imports_resolve_from_the_users_folder(tmp_path: Path, target: str):
    folder = write(
        tmp_path,
        {
            "data/terms.csv": "soup\ncake\n",
            # a package of the working folder, reading a data file relative to it at import
            "common/__init__.py": "",
            "common/terms.py": "import csv\n\nwith open('data/terms.csv') as f:\n"
            "    TERMS = [row[0] for row in csv.reader(f)]\n",
            # a helper module beside the locustfile
            "scenarios/naming.py": "def request_name(term):\n    return f'search-{term}'\n",
            "scenarios/shop.py": "from locust import HttpUser, constant, task\n"
            "from common.terms import TERMS\nfrom naming import request_name\n\n\n"
            "class Reader(HttpUser):\n    wait_time = constant(0.1)\n\n    @task\n    def search(self):\n"
            "        for term in TERMS:\n"
            "            self.client.get(f'/v1/recipes?q={term}', name=request_name(term))\n",
        },
    )
    plain, mine = both(folder, target, ["-f", "scenarios/shop.py"])
    assert names(plain) == names(mine) == {"search-soup", "search-cake"}


def test_the_locustfiles_own_argument_after_double_dash_reaches_master_and_workers(
    tmp_path: Path, target: str
):
    folder = write(
        tmp_path,
        {
            "custom.py": "from locust import HttpUser, constant, events, task\n\n\n"
            "@events.init_command_line_parser.add_listener\ndef _(parser):\n"
            "    parser.add_argument('--request-name', default='default-name')\n\n\n"
            "class Named(HttpUser):\n    wait_time = constant(0.1)\n\n    @task\n    def get(self):\n"
            "        self.client.get('/v1/recipes?q=x', name=self.environment.parsed_options.request_name)\n",
        },
    )
    plain, mine = both(
        folder,
        target,
        ["-f", "custom.py"],
        plain_args=["--request-name", "custom1"],
        loadctl_args=["--", "--request-name", "custom1"],
        workers=2,  # the requests are the workers': they parsed the argument too
    )
    assert names(plain) == names(mine) == {"custom1"}
    assert run_record(folder)["locust_config"]["args"] == ["--request-name", "custom1"]


@pytest.mark.parametrize("locustfile", ["shop", "shop/browse.py,shop/buy.py"], ids=["folder", "list"])
def test_f_takes_a_folder_or_a_comma_separated_list(tmp_path: Path, target: str, locustfile: str):
    user = "from locust import HttpUser, constant, task\n\n\nclass {cls}(HttpUser):\n"
    user += "    wait_time = constant(0.1)\n\n    @task\n    def go(self):\n"
    user += "        self.client.get('/v1/recipes?q={name}', name='{name}')\n"
    folder = write(
        tmp_path,
        {
            "shop/browse.py": user.format(cls="Browser", name="browse"),
            "shop/buy.py": user.format(cls="Buyer", name="buy"),
        },
    )
    plain, mine = both(folder, target, ["-f", locustfile])
    assert names(plain) == names(mine) == {"browse", "buy"}
    ran = run_record(folder)["locust_config"]["locustfiles"]
    assert sorted(ran) == [str(folder / "shop" / "browse.py"), str(folder / "shop" / "buy.py")]


def test_locusts_names_tags_user_classes_csv_and_html(tmp_path: Path, target: str):
    folder = write(tmp_path, {"locustfile.py": TAGGED})
    # Locust's habits: user classes after -f, -T, --run-time, -H, --headless; copies where asked
    plain, mine = both(
        folder,
        target,
        ["-f", "locustfile.py", "Shopper", "-T", "tag2"],
        loadctl_args=["--headless", "--csv", "out/mine", "--html", "out/mine.html"],
    )
    assert names(plain) == names(mine) == {"excluded"}  # Shopper's tag2 task only, no Browser
    run_dir = folder / "results" / "dropin"
    assert (folder / "out" / "mine_stats.csv").read_text() == (run_dir / STATS_CSV).read_text()
    assert "<html" in (folder / "out" / "mine.html").read_text().lower()
    assert run_record(folder)["locust_config"]["user_classes"] == ["Shopper"]


@pytest.mark.parametrize(
    ("files", "expected"),
    [
        (
            {"locustfile.py": "import no_such_module\n"},
            "locustfile.py: Locust cannot load it: ModuleNotFoundError",
        ),
        (
            {"locustfile.py": "open('data/missing.csv')\n" + TAGGED},
            "locustfile.py: Locust cannot load it: FileNotFoundError",
        ),
        ({"locustfile.py": TAGGED, "locust.conf": "processes = 4\n"}, "locust.conf: processes: "),
    ],
    ids=["import-error", "data-file", "conf-processes"],
)
def test_what_locust_cannot_run_is_exit_2_before_any_load(
    tmp_path: Path, target: str, files: dict[str, str], expected: str
):
    folder = write(tmp_path, files)
    before = served_requests(target)
    done = run_loadctl(
        ["run", "-f", "locustfile.py", "--host", target, *LOAD, "--results-dir", "results"],
        cwd=folder,
        timeout=60,
    )
    assert done.returncode == 2, done.stdout + done.stderr
    lines = (done.stdout + done.stderr).strip().splitlines()
    assert len(lines) == 1 and expected in lines[0], lines
    assert not (folder / "results").exists()
    assert served_requests(target) == before
