"""The optional parts of loadctl and the extra that installs each: the one owner of that fact.

`pip install loadctl` runs local tests; the cluster, database probes, Grafana and the demo
target need an extra each. A missing one is an InputError (exit 2, one line naming the pip
command), raised before any load is sent, never an ImportError traceback.
"""

from __future__ import annotations

import importlib.util
from collections.abc import Iterable

from controller.errors import InputError

# extra -> the modules it installs (import names), as pyproject.toml's [project.optional-dependencies]
EXTRAS: dict[str, tuple[str, ...]] = {
    "k8s": ("kubernetes", "pyhelm3"),
    "probes": ("psycopg", "redis"),
    "grafana": ("grafana_client",),
    "demo": ("starlette", "uvicorn"),
}
# probe type -> the module its sampler imports (locust_workers/probes), all from the `probes` extra
PROBE_MODULES = {"postgres": "psycopg", "redis": "redis"}


def missing_modules(modules: Iterable[str]) -> list[str]:
    return [m for m in modules if not _importable(m)]


def _importable(module: str) -> bool:
    # find_spec, not import: the check must not load libpq or the Kubernetes client. A finder may
    # also answer "not found" by raising (ModuleNotFoundError) rather than returning None.
    try:
        return importlib.util.find_spec(module) is not None
    except ImportError:
        return False


def require_extra(
    extra: str,
    *,
    what: str,
    modules: Iterable[str] | None = None,
    source: str | None = None,
    field: str | None = None,
) -> None:
    """Raise InputError unless `extra`'s modules (or the given subset) are importable."""
    missing = missing_modules(EXTRAS[extra] if modules is None else modules)
    if missing:
        raise InputError(
            f"{what} needs {', '.join(missing)}, not installed: pip install 'loadctl[{extra}]'",
            source=source,
            field=field,
        )


def require_probe_extras(probe_types: Iterable[str], *, source: str) -> None:
    """A profile's postgres and redis probes need the `probes` extra: checked when it is loaded."""
    for i, kind in enumerate(probe_types):
        if kind in PROBE_MODULES:
            require_extra(
                "probes",
                what=f"a {kind} probe",
                modules=[PROBE_MODULES[kind]],
                source=source,
                field=f"probes[{i}].type",
            )
