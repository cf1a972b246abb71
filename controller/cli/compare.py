"""`loadctl compare RUN_A RUN_B`: two finished runs side by side, from their results folders alone
(run.json, analysis.json, stats.csv; no Prometheus)."""

from __future__ import annotations

from pathlib import Path

import click

from controller.cli.options import RUN_DIR, check_output, write_output
from controller.cli.render import console, warn
from controller.comparison import compare_folders
from controller.errors import InputError


@click.command()
@click.argument("baseline_dir", metavar="RUN_A", type=RUN_DIR)
@click.argument("current_dir", metavar="RUN_B", type=RUN_DIR)
@click.option(
    "--output", type=click.Path(dir_okay=False, path_type=Path), help="Write the table as Markdown here."
)
@click.option(
    "--json", "json_path", type=click.Path(dir_okay=False, path_type=Path), help="Write it as JSON here."
)
@click.option("--force", is_flag=True, help="Compare runs that are not like for like (with a warning).")
def compare(
    baseline_dir: Path, current_dir: Path, output: Path | None, json_path: Path | None, force: bool
) -> None:
    """Compare RUN_B with the baseline RUN_A: every headline, phase and endpoint figure, its change,
    and a flag where the change is beyond the runs' own noise.

    Runs of another locustfile, host or stage table are refused (exit 2) unless --force.
    """
    from controller.reports.compare import comparison_json, comparison_markdown, comparison_table

    check_output(output, "--output")
    check_output(json_path, "--json")
    comparison = compare_folders(baseline_dir, current_dir)
    if not comparison.comparable:
        why = "; ".join(comparison.differences)
        if not force:
            raise InputError(
                f"the runs are not comparable ({why}); --force compares them anyway", source="compare"
            )
        warn(f"the runs are not comparable: {why}")
    console.print(comparison_table(comparison))
    if output is not None:
        write_output(output, comparison_markdown(comparison))
    if json_path is not None:
        write_output(json_path, comparison_json(comparison))
