"""What Locust itself makes of a run's command line in a folder: `python -m locust_workers.locust_config
ARGS...` with the master's Locust arguments, run in the user's folder with the user's environment.

It does what `locust ARGS` does before it starts anything (locust/main.py): reads -f, imports the
locustfiles (so an import error, a missing data file or a failing helper module show here, before
any load), builds Locust's own parser (with the locustfile's `init_command_line_parser` arguments)
and parses ARGS with Locust's configuration files (`~/.locust.conf`, `./locust.conf`,
`./pyproject.toml [tool.locust]`, `--config FILE`) and `LOCUST_*` variables, exactly as Locust
would. It prints one line, MARKER + JSON: the user classes, the locustfiles -f named (a folder
expanded), and every setting that came from a file
or a variable (name, value, source), so the controller can record them and refuse the ones that
would break the run. It also parses `--passthrough-start N` onwards alone to tell which of Locust's
settings those extra arguments change. Errors go to stderr as Locust prints them, exit code != 0.
"""

from __future__ import annotations

import json
import os
import sys
from typing import Any

MARKER = "LOADCTL-LOCUST-CONFIG "
# argv[1] may be this, then the index in the remaining args where the extra (pass-through) args start
PASSTHROUGH_FLAG = "--loadctl-passthrough-start"
# argv[1] may be this instead: print only Locust's -f value for the remaining args (its default
# `locustfile.py`, a config file's `locustfile =`, $LOCUST_LOCUSTFILE), importing nothing
LOCUSTFILE_ONLY_FLAG = "--loadctl-locustfile-only"
_SOURCE_ENV = "environment_variables"
_SOURCE_FILE = "config_file|"


def option_name(action: Any) -> str:
    """An option's long name without dashes (`--run-time` -> `run-time`), as config files spell it."""
    longs = [s for s in action.option_strings if s.startswith("--")]
    return (longs or action.option_strings or [action.dest])[0].lstrip("-")


def settings_by_source(parser: Any, options: Any) -> dict[str, dict[str, Any]]:
    """{option name: {value, source}} of every setting a config file or variable gave (the value
    as Locust parsed it: what the run uses)."""
    found: dict[str, dict[str, Any]] = {}
    for source, settings in parser.get_source_to_settings_dict().items():
        if source == _SOURCE_ENV:
            for variable, (action, value) in settings.items():
                found[option_name(action)] = {
                    "value": _parsed(options, action, value),
                    "source": f"${variable}",
                }
        elif source.startswith(_SOURCE_FILE):
            path = os.path.abspath(source.removeprefix(_SOURCE_FILE))
            for _key, (action, value) in settings.items():
                if action is not None:
                    found[option_name(action)] = {"value": _parsed(options, action, value), "source": path}
    return found


def _parsed(options: Any, action: Any, raw: Any) -> Any:
    return getattr(options, action.dest, raw) if action is not None else raw


def changed_by(parser_factory: Any, args: list[str]) -> list[str]:
    """Locust's options whose value `args` alone changes (abbreviations and `-u5` included)."""
    parser = parser_factory(default_config_files=[])
    defaults = vars(parser.parse_known_args([], env_vars={})[0])
    parsed = vars(parser_factory(default_config_files=[]).parse_known_args(args, env_vars={})[0])
    names = {action.dest: option_name(action) for action in parser._actions}
    return sorted(names.get(dest, dest) for dest, value in parsed.items() if defaults.get(dest) != value)


def _before_user_classes(args: list[str]) -> list[str]:
    # loadctl puts the user classes last, after `--` (contract.py LocustCommand)
    return args[: args.index("--")] if "--" in args else args


def inspect(argv: list[str], passthrough_start: int) -> dict[str, Any]:
    # Imported here: `import locust` monkey-patches the process with gevent.
    from locust.argument_parser import get_locustfiles_locally, get_parser, parse_locustfile_option
    from locust.main import merge_locustfiles_content

    locustfiles = get_locustfiles_locally(parse_locustfile_option(argv))
    available, _shapes, _tasks, _shape = merge_locustfiles_content(locustfiles)
    parser = get_parser()
    options = parser.parse_args(argv)
    missing = sorted(set(options.user_classes) - set(available))
    if missing:
        raise SystemExit(
            f"Unknown User(s): {', '.join(missing)} (the locustfiles have {', '.join(available)})"
        )
    return {
        "user_classes": sorted(available),
        "locustfiles": locustfiles,
        "settings": settings_by_source(parser, options),
        "passthrough_changes": changed_by(get_parser, _before_user_classes(argv[passthrough_start:])),
    }


def main(args: list[str]) -> int:
    sys.argv[0] = "locust"  # Locust's parser names itself after it in its errors
    if args[:1] == [LOCUSTFILE_ONLY_FLAG]:
        from locust.argument_parser import parse_locustfile_option

        options: Any = parse_locustfile_option(args[1:])  # typed as a tuple, is a Namespace
        print(MARKER + json.dumps({"locustfile": options.locustfile}), flush=True)
        return 0
    start = len(args)
    if args[:1] == [PASSTHROUGH_FLAG]:
        start, args = int(args[1]), args[2:]
    print(MARKER + json.dumps(inspect(args, start), default=str), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
