"""A baseline run for relative gates (max_change/min_change): a finished run's results folder.

One owner for "what makes a folder a usable baseline" and for serving it, shared by
`loadctl run --baseline` and `loadctl gates eval --baseline`: its run.json gives the windows, its
tsdb/ (served by a local Prometheus, queries only) gives the values.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path
from typing import TypeVar

from pydantic import BaseModel, ValidationError

from controller.errors import InfraError, InputError, PrometheusError
from controller.gates.models import GateFile
from controller.gates.runner import Target
from controller.inputs import field_path
from controller.models import RunRecord
from controller.rundir import RunDir

FLAG = "--baseline"
Model = TypeVar("Model", bound=BaseModel)


def run_record(run_dir: Path) -> RunRecord:
    """DIR/run.json, or one line saying why it cannot be read: missing, unreadable, corrupt."""
    record = read_model_file(RunDir(run_dir).record, RunRecord)
    if record is None:
        raise InputError("not found: not a loadctl run directory", source=str(RunDir(run_dir).record))
    return record


def read_model_file(path: Path, model: type[Model]) -> Model | None:
    """A JSON file of a results folder as `model`; None when it does not exist, one line naming the
    file when it cannot be read or is corrupt."""
    source = str(path)
    try:
        return model.model_validate_json(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return None
    except OSError as e:
        raise InputError(f"cannot read: {e.strerror}", source=source) from e
    except UnicodeDecodeError as e:
        raise InputError("corrupt: not UTF-8 text", source=source) from e
    except ValidationError as e:
        first = e.errors()[0]
        where = field_path(tuple(first["loc"]))
        raise InputError(f"corrupt: {where + ': ' if where else ''}{first['msg']}", source=source) from e


def read_baseline(run_dir: Path) -> RunRecord:
    """The baseline's run.json, and its tsdb/ there, checked before any load (exit 2 naming --baseline)."""
    folder = RunDir(run_dir)
    if not folder.record.is_file():
        raise InputError(
            f"{run_dir} has no {folder.record.name}: not a finished loadctl run's results folder",
            source="command line",
            field=FLAG,
        )
    if not folder.tsdb.is_dir():
        raise InputError(
            f"{run_dir} has no {folder.tsdb.name}/ to compare with", source="command line", field=FLAG
        )
    return run_record(run_dir)


@contextmanager
def baseline_target(run_dir: Path | None, *, gate_file: GateFile | None = None) -> Iterator[Target | None]:
    """The baseline run behind its own Prometheus while the gates are judged; None without one, or
    when `gate_file` has no relative gate (nothing to serve a Prometheus for).

    A baseline that cannot be served is a Prometheus problem of this evaluation (the gates are
    then not evaluated: verdict error), not a crash of the run that has already sent its load.
    """
    if run_dir is None or (gate_file is not None and not any(g.needs_baseline for g in gate_file.gates)):
        yield None
        return
    from controller.prom.server import serve_run_tsdb

    record = read_baseline(run_dir)
    with ExitStack() as stack:
        try:
            server = stack.enter_context(serve_run_tsdb(run_dir, label="baseline"))
        except InfraError as e:
            raise PrometheusError(f"baseline {run_dir}: {e}") from e
        client = stack.enter_context(server.client(timeout=30.0))
        yield Target(client, record)
