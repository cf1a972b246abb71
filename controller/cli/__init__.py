"""The `loadctl` command line. Thin: parse flags, build models and options, call runs.

Each command lives with the options it alone uses: run.py (run, validate), prometheus.py, compare.py,
report.py, gates.py, grafana.py, k8s.py (ls, teardown), profiles.py, history.py; the options several commands
share are spelled once in options.py, and everything is printed through render.py's one console. `main` is the
console script: every way out of it is an exit code and at most one line on stderr.
"""

from __future__ import annotations

import sys

import click

from controller.cli import compare, gates, grafana, history, k8s, profiles, prometheus, report, run
from controller.crash import report_crash
from controller.errors import EXIT_INPUT, EXIT_INTERRUPTED, LoadctlError


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="loadctl")
def cli() -> None:
    """Distributed load tests with Locust, live metrics in Prometheus, gated verdicts."""


cli.add_command(run.run)
cli.add_command(run.validate)
cli.add_command(prometheus.prometheus)
cli.add_command(gates.gates)
cli.add_command(grafana.grafana)
cli.add_command(k8s.ls)
cli.add_command(k8s.teardown)
cli.add_command(compare.compare)
cli.add_command(report.report)
cli.add_command(profiles.profiles)
cli.add_command(history.history)


def _error(message: str) -> None:
    print(f"loadctl: error{message}", file=sys.stderr)


def main() -> None:
    """Every way out is an exit code and at most one line on stderr; a traceback goes to a file."""
    try:
        cli.main(standalone_mode=False)
    except (click.exceptions.Abort, KeyboardInterrupt) as e:
        # click turns Ctrl-C (and EOF at a prompt) into Abort; a run handles its own Ctrl-C
        interrupted = isinstance(e, KeyboardInterrupt) or isinstance(e.__cause__, KeyboardInterrupt)
        _error(": interrupted" if interrupted else ": aborted")
        sys.exit(EXIT_INTERRUPTED)
    except click.UsageError as e:
        where = f" ({e.ctx.command_path})" if e.ctx else ""
        _error(f"{where}: {e.format_message()}")
        sys.exit(EXIT_INPUT)
    except click.ClickException as e:
        _error(f": {e.format_message()}")
        sys.exit(e.exit_code)
    except LoadctlError as e:
        _error(f": {e}")
        sys.exit(e.exit_code)
    except Exception as e:  # a bug, or an OSError (full disk, permissions) nobody turned into one line
        sys.exit(report_crash(e))
