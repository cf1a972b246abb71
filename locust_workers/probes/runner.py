"""Runs the probes, one thread each, and serves what they last saw as one custom collector.

One thread per probe, so a server that hangs delays only its own probe; every failure is caught,
counted and shown (`loadctl_probe_up 0`, `loadctl_probe_errors_total`), never raised: a probe
must not stop the run or the other probes. Log lines are rate-limited per probe (FailureLog): the
first failure, then one summary a minute while it keeps failing, then the recovery.

The collector reads the last readings at scrape time (client_python custom collector), so a
scrape never waits for a server; a probe that is down exports no values, only up 0.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field

from prometheus_client.core import Metric
from prometheus_client.registry import Collector

from locust_workers.probes.base import Reading, Sampler, describe, mask
from locust_workers.probes.config import ProbeConfig

logger = logging.getLogger("loadctl.probes")

LOG_EVERY_S = 60.0


class FailureLog:
    """Which failures of one probe deserve a log line. Pure: the caller passes the time."""

    def __init__(self, probe: str, *, every_s: float = LOG_EVERY_S) -> None:
        self.probe = probe
        self.every_s = every_s
        self.failing = False
        self._since_line = 0  # failures not yet reported in a line
        self._in_streak = 0
        self._line_at = 0.0

    def failed(self, message: str, now: float) -> str | None:
        self._in_streak += 1
        if not self.failing:
            self.failing, self._since_line, self._line_at = True, 0, now
            return f"probe {self.probe}: failing: {message}"
        self._since_line += 1
        if now - self._line_at < self.every_s:
            return None
        count, self._since_line, self._line_at = self._since_line, 0, now
        return f"probe {self.probe}: still failing ({count} more errors in {self.every_s:.0f}s): {message}"

    def succeeded(self) -> str | None:
        if not self.failing:
            return None
        errors, self.failing, self._in_streak = self._in_streak, False, 0
        return f"probe {self.probe}: recovered after {errors} failed samples"


@dataclass
class ProbeState:
    """What one probe last saw; replaced field by field under the runner's lock."""

    name: str
    type: str
    up: bool | None = None  # None until the first sample finished
    readings: list[Reading] = field(default_factory=list)
    errors: int = 0
    last_success: float | None = None
    duration_s: float | None = None


@dataclass
class _Slot:
    config: ProbeConfig
    sampler: Sampler
    state: ProbeState
    failures: FailureLog
    warned: set[str] = field(default_factory=set)


class ProbeRunner:
    def __init__(
        self,
        probes: Sequence[tuple[ProbeConfig, Sampler]],
        *,
        log: logging.Logger = logger,
        clock: Callable[[], float] = time.monotonic,
        wall_clock: Callable[[], float] = time.time,
        log_every_s: float = LOG_EVERY_S,
    ) -> None:
        self.slots = [
            _Slot(
                config,
                sampler,
                ProbeState(config.name, config.type),
                FailureLog(config.name, every_s=log_every_s),
            )
            for config, sampler in probes
        ]
        self.lock = threading.Lock()
        self._log = log
        self._clock = clock
        self._wall_clock = wall_clock
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []

    def states(self) -> list[ProbeState]:
        """A consistent copy of every probe's state, for one scrape."""
        with self.lock:
            return [
                ProbeState(
                    s.state.name,
                    s.state.type,
                    s.state.up,
                    list(s.state.readings),
                    s.state.errors,
                    s.state.last_success,
                    s.state.duration_s,
                )
                for s in self.slots
            ]

    def sample_once(self, index: int) -> None:
        """One sample of one probe: never raises."""
        slot = self.slots[index]
        started = self._clock()
        try:
            readings = slot.sampler.sample()
        except Exception as error:  # anything a driver raises is this probe's failure, nothing more
            message = mask(describe(error), slot.sampler.secrets())
            with self.lock:
                slot.state.up = False
                slot.state.readings = []
                slot.state.errors += 1
                slot.state.duration_s = self._clock() - started
            line = slot.failures.failed(message, self._clock())
            if line:
                self._log.warning(line)
            return
        with self.lock:
            slot.state.up = True
            slot.state.readings = readings
            slot.state.last_success = self._wall_clock()
            slot.state.duration_s = self._clock() - started
        line = slot.failures.succeeded()
        if line:
            self._log.info(line)
        for warning in getattr(slot.sampler, "warnings", ()):
            if warning not in slot.warned:  # once each: the same cap is hit every sample
                slot.warned.add(warning)
                self._log.warning("probe %s: %s", slot.config.name, mask(warning, slot.sampler.secrets()))

    def _loop(self, index: int) -> None:
        interval = self.slots[index].config.interval
        due = self._clock()
        while not self._stop.is_set():
            self.sample_once(index)
            due += interval
            now = self._clock()
            if due < now:
                due = now  # fell behind (a slow server): go on from now, no burst of catch-up samples
            self._stop.wait(due - now)

    def start(self) -> None:
        for index, slot in enumerate(self.slots):
            thread = threading.Thread(target=self._loop, args=(index,), name=f"probe-{slot.config.name}")
            thread.daemon = True  # a sample stuck in a driver must not keep the process alive
            thread.start()
            self._threads.append(thread)

    def stop(self, timeout_s: float = 5.0) -> None:
        self._stop.set()
        deadline = self._clock() + timeout_s
        for thread, slot in zip(self._threads, self.slots, strict=True):
            thread.join(max(0.0, deadline - self._clock()))
            if not thread.is_alive():
                slot.sampler.close()


# Families the runner itself exports for every probe: name -> (type, help)
PROBE_FAMILIES: Mapping[str, tuple[str, str]] = {
    "loadctl_probe_up": ("gauge", "1 if the probe's last sample succeeded, 0 if it failed."),
    "loadctl_probe_errors": ("counter", "Failed samples."),
    "loadctl_probe_last_success_timestamp_seconds": ("gauge", "Unix time of the last successful sample."),
    "loadctl_probe_duration_seconds": ("gauge", "How long the last sample took."),
}


class ProbeCollector(Collector):
    """Every probe's last state as metric families, each series labelled run_id and probe."""

    def __init__(self, runner: ProbeRunner, *, run_id: str) -> None:
        self.runner = runner
        self.run_id = run_id

    def collect(self) -> Iterator[Metric]:
        families: dict[str, Metric] = {}

        def add(name: str, kind: str, help_text: str, labels: dict[str, str], value: float) -> None:
            family = families.get(name)
            if family is None:
                family = families[name] = Metric(name, help_text, kind)
            family.add_sample(name + ("_total" if kind == "counter" else ""), labels, value)

        for state in self.runner.states():
            own = {"run_id": self.run_id, "probe": state.name}
            kind_labels = {**own, "type": state.type}
            if state.up is not None:
                add(
                    "loadctl_probe_up",
                    *PROBE_FAMILIES["loadctl_probe_up"],
                    kind_labels,
                    1.0 if state.up else 0.0,
                )
            add(
                "loadctl_probe_errors",
                *PROBE_FAMILIES["loadctl_probe_errors"],
                kind_labels,
                float(state.errors),
            )
            if state.last_success is not None:
                name = "loadctl_probe_last_success_timestamp_seconds"
                add(name, *PROBE_FAMILIES[name], kind_labels, state.last_success)
            if state.duration_s is not None:
                name = "loadctl_probe_duration_seconds"
                add(name, *PROBE_FAMILIES[name], kind_labels, state.duration_s)
            for reading in state.readings:
                add(reading.name, reading.kind, reading.help, {**own, **dict(reading.labels)}, reading.value)
        yield from families.values()
