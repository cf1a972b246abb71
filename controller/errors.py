"""One error hierarchy for the controller, and the exit code each error maps to.

    LoadctlError                 base; .exit_code, one-line str() for the terminal
    ├── InputError               exit 2: bad profile, flag, locustfile; raised before any load is sent
    ├── InfraError               exit 3: a process, Prometheus or tool we depend on failed
    │   ├── GeneratorLost        a worker or the master broke during the load (verdict inconclusive)
    │   ├── GrafanaError         Grafana answered an error or did not answer (a run only warns)
    │   └── PrometheusError      the Prometheus HTTP API failed or answered an error
    │       ├── PrometheusUnreachable   no answer at all (retry-worthy)
    │       └── PrometheusLost   the run's Prometheus stopped answering during the load
    ├── RunSkipped               exit 0: a scheduled run's guardrail said "not now"
    └── Interrupted              exit 130: Ctrl-C or SIGTERM

A failed gate is a result value (a verdict), never an exception.
"""

from __future__ import annotations

EXIT_PASS = 0
EXIT_GATE_FAILED = 1
EXIT_INPUT = 2
EXIT_INFRA = 3
EXIT_INTERRUPTED = 130


class LoadctlError(Exception):
    exit_code = EXIT_INFRA


class InputError(LoadctlError):
    """Invalid input, found before any load is sent.

    The message names the file and the field, e.g. `profiles/x.yaml: stages[1].users: ...`.
    """

    exit_code = EXIT_INPUT
    MAX_CHARS = 600

    def __init__(self, message: str, *, source: str | None = None, field: str | None = None) -> None:
        parts = [p for p in (source, field) if p]
        # One line, of bounded length, whatever the input it quotes (newlines, a 100 kB value).
        text = " ".join(": ".join([*parts, message]).split())
        if len(text) > self.MAX_CHARS:
            text = text[: self.MAX_CHARS - 3] + "..."
        super().__init__(text)
        self.source = source
        self.field = field


class InfraError(LoadctlError):
    exit_code = EXIT_INFRA


class GeneratorLost(InfraError):
    """Part of the load generator broke during the load (a worker exited or went missing): the
    load is stopped, the gates are still evaluated, and the verdict is inconclusive."""


class GrafanaError(InfraError):
    """Grafana answered an error (401, 403, 5xx...) or did not answer at all: exit 3 for
    `loadctl grafana push`; during a run, annotations only warn (grafana/annotator.py)."""


class PrometheusError(InfraError):
    pass


class PrometheusUnreachable(PrometheusError):
    """No connection, or 502/503/504: worth retrying, unlike an error Prometheus answered with."""


class PrometheusLost(PrometheusError):
    """The run's Prometheus stopped answering while the load ran: the load is stopped, since
    nothing could judge it (no live gates, no final numbers)."""


class RunSkipped(LoadctlError):
    """A guardrail kept a scheduled run from sending load (another run holds the namespace, or
    alerts are firing): not a failure, so exit 0, with the reason in the log and run.json."""

    exit_code = EXIT_PASS


class Interrupted(LoadctlError):
    exit_code = EXIT_INTERRUPTED

    def __init__(self, signal_name: str = "SIGINT") -> None:
        super().__init__(f"interrupted by {signal_name}")
        self.signal_name = signal_name


def tail(text: str, limit: int = 400) -> str:
    """Last `limit` characters of a tool's output, on one line, for error messages."""
    text = " ".join(text.split())
    return text if len(text) <= limit else "..." + text[-limit:]
