"""What the controller's pre-flight needs to know of a locustfile, read by importing it as Locust
does: its user classes with their own `host`, and its own LoadTestShape (name, phases, end).

Run as `python -m locust_workers.locustfile_facts LOCUSTFILE`: prints one line, FACTS_PREFIX and
JSON, after whatever the locustfile itself prints. The controller runs it in a subprocess
(controller/locustfile_check.py) because importing a locustfile runs its code and gevent's
monkey-patching, which must not happen inside the controller.
"""

from __future__ import annotations

import locust  # noqa: F401  # isort: skip  (gevent's monkey-patching first, as in any locustfile)

import json
import sys
from typing import Any

from locust.util.load_locustfile import load_locustfile

from locust_workers.contract import FACTS_PREFIX
from locust_workers.shapes import declared_end, declared_phases


def shape_facts(shape: object) -> dict[str, Any]:
    """The shape as loadctl plans it: name, declared phases and end (shapes.py's conventions)."""
    return {
        "name": type(shape).__name__,
        "use_common_options": bool(getattr(shape, "use_common_options", False)),
        "phases": list(declared_phases(shape)),
        "own_end_s": declared_end(shape),
    }


def locustfile_facts(path: str) -> dict[str, Any]:
    user_classes, shapes = load_locustfile(path)
    hosts = {name: getattr(cls, "host", None) for name, cls in user_classes.items()}
    return {
        "classes": {name: host if isinstance(host, str) and host else None for name, host in hosts.items()},
        # Locust runs the first shape it finds (main.py), as loadctl does
        "shape": shape_facts(shapes[0]) if shapes else None,
    }


if __name__ == "__main__":
    facts = locustfile_facts(sys.argv[1])
    sys.stdout.write("\n" + FACTS_PREFIX + json.dumps(facts) + "\n")
