"""process probe (psutil): CPU and memory of local processes, for leaks on soak runs.

A process is chosen by `pid`, by `pid_file` (read at every sample, so a restarted service is
followed) or by `match`, a substring of the command line (every matching process but the probe
itself, summed: a service with worker processes counts as one). CPU percent is over the time
between two samples (100 = one core), so the first sample has none.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path

import psutil

from locust_workers.probes.base import ProbeError, Reading
from locust_workers.probes.config import ProcessProbe


@dataclass(frozen=True)
class ProcessSample:
    pid: int
    create_time: float  # with pid, identifies one process across samples (pids are reused)
    cpu_seconds: float  # user + system since it started
    rss_bytes: int
    threads: int


def matching_pids(
    processes: Iterable[tuple[int, list[str] | None]], match: str, *, exclude: set[int]
) -> list[int]:
    """Pids whose command line (arguments joined by spaces) contains `match`."""
    return sorted(
        pid for pid, cmdline in processes if pid not in exclude and cmdline and match in " ".join(cmdline)
    )


def read_pid_file(text: str, path: str) -> int:
    try:
        pid = int(text.strip().split()[0])
    except (ValueError, IndexError):
        raise ProbeError(f"{path} does not hold a pid") from None
    if pid < 1:
        raise ProbeError(f"{path} does not hold a pid")
    return pid


def cpu_percent(
    previous: Mapping[tuple[int, float], float], current: Iterable[ProcessSample], elapsed_s: float
) -> float | None:
    """CPU percent of the processes seen in both samples; None when there is nothing to compare."""
    if elapsed_s <= 0:
        return None
    deltas = [
        max(0.0, s.cpu_seconds - previous[(s.pid, s.create_time)])
        for s in current
        if (s.pid, s.create_time) in previous
    ]
    if not deltas:
        return None
    return 100.0 * sum(deltas) / elapsed_s


def process_readings(samples: list[ProcessSample], cpu: float | None) -> list[Reading]:
    readings = [
        Reading(
            "loadctl_process_resident_memory_bytes", float(sum(s.rss_bytes for s in samples)), "RSS, summed."
        ),
        Reading("loadctl_process_threads", float(sum(s.threads for s in samples)), "Threads, summed."),
        Reading(
            "loadctl_process_count", float(len(samples)), "Processes the probe found (match: all of them)."
        ),
    ]
    if cpu is not None:
        readings.append(
            Reading("loadctl_process_cpu_percent", cpu, "CPU use since the previous sample (100 = one core).")
        )
    return readings


class ProcessSampler:
    def __init__(
        self,
        config: ProcessProbe,
        env: Mapping[str, str] | None = None,
        *,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.config = config
        self._clock = clock
        self._previous: dict[tuple[int, float], float] = {}
        self._previous_at: float | None = None
        self._own = {os.getpid()}

    def secrets(self) -> list[str]:
        return []

    def _pids(self) -> list[int]:
        if self.config.pid is not None:
            return [self.config.pid]
        if self.config.pid_file is not None:
            try:
                text = Path(self.config.pid_file).read_text(encoding="utf-8")
            except OSError as e:
                raise ProbeError(f"cannot read {self.config.pid_file}: {e.strerror}") from None
            return [read_pid_file(text, self.config.pid_file)]
        assert self.config.match is not None  # one of the three, by the model
        listing = ((p.info["pid"], p.info["cmdline"]) for p in psutil.process_iter(["pid", "cmdline"]))
        pids = matching_pids(listing, self.config.match, exclude=self._own)
        if not pids:
            raise ProbeError(f"no process has '{self.config.match}' in its command line")
        return pids

    def sample(self) -> list[Reading]:
        samples: list[ProcessSample] = []
        pids = self._pids()
        for pid in pids:
            try:
                process = psutil.Process(pid)
                with process.oneshot():
                    times = process.cpu_times()
                    samples.append(
                        ProcessSample(
                            pid=pid,
                            create_time=process.create_time(),
                            cpu_seconds=times.user + times.system,
                            rss_bytes=process.memory_info().rss,
                            threads=process.num_threads(),
                        )
                    )
            except psutil.NoSuchProcess:
                continue  # exited between listing and reading
            except psutil.AccessDenied:
                raise ProbeError(f"not allowed to read process {pid}") from None
        if not samples:
            raise ProbeError(f"process {', '.join(map(str, pids))} is not running")
        now = self._clock()
        elapsed = now - self._previous_at if self._previous_at is not None else 0.0
        cpu = cpu_percent(self._previous, samples, elapsed)
        self._previous = {(s.pid, s.create_time): s.cpu_seconds for s in samples}
        self._previous_at = now
        return process_readings(samples, cpu)

    def close(self) -> None:
        pass
