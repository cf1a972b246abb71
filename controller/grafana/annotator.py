"""Posts a run's Grafana annotations without ever failing or slowing down the run.

The run calls the observer from its follow loop; the observer only queues annotations, and one
background thread posts them with a short timeout. The first failure is reported once as a
warning and later ones are dropped silently (the run goes on; so do the attempts, in case Grafana
comes back). At the end of the run the queue gets at most `drain_s` seconds to empty.
"""

from __future__ import annotations

import contextlib
import queue
import threading
import time
from collections.abc import Callable

from controller.errors import GrafanaError
from controller.grafana.annotations import Annotation, RunAnnotations
from controller.grafana.client import Grafana
from controller.models import RunPlan, RunRecord, Stage
from controller.progress import Snapshot

ANNOTATION_TIMEOUT_S = 2.0
WARNING = "Grafana annotations failed, the run goes on without them: "


class GrafanaAnnotator:
    """A runs.RunObserver: the run's events -> RunAnnotations -> a queue -> Grafana."""

    def __init__(
        self,
        *,
        grafana: Grafana,
        events: RunAnnotations,
        warn: Callable[[str], None],
        drain_s: float = ANNOTATION_TIMEOUT_S + 1.0,
    ) -> None:
        self._grafana = grafana
        self._events = events
        self._warn = warn
        self._drain_s = drain_s
        self._warned = False
        self._lock = threading.Lock()
        self._queue: queue.Queue[Annotation | None] = queue.Queue()
        self._thread = threading.Thread(target=self._post_all, name="grafana-annotations", daemon=True)
        self._thread.start()

    @classmethod
    def for_plan(
        cls, plan: RunPlan, *, url: str, token: str, warn: Callable[[str], None]
    ) -> GrafanaAnnotator:
        # the locustfile's own shape: one stand-in stage over the planned time, in its first phase
        stages = plan.stages or (
            Stage(
                duration=plan.duration,
                users=0,
                spawn_rate=1,
                phase=plan.shape.phases[0] if plan.shape else "run",
            ),
        )
        events = RunAnnotations(run_id=plan.run_id, profile=plan.profile, stages=stages)
        return cls(grafana=Grafana(url, token=token, timeout=ANNOTATION_TIMEOUT_S), events=events, warn=warn)

    def _failed(self, message: str) -> None:
        with self._lock:
            if self._warned:
                return
            self._warned = True
        with contextlib.suppress(Exception):  # a broken console must not break the run either
            self._warn(WARNING + message)

    def _post_all(self) -> None:
        while (annotation := self._queue.get()) is not None:
            try:
                self._grafana.annotate(annotation)
            except GrafanaError as e:
                self._failed(str(e))
            except Exception as e:  # a bug here must cost the annotations, never the run
                self._failed(f"{type(e).__name__}: {e}")

    def _queue_from(self, make: Callable[[], list[Annotation]]) -> None:
        try:
            for annotation in make():
                self._queue.put(annotation)
        except Exception as e:
            self._failed(f"{type(e).__name__}: {e}")

    # -- runs.RunObserver ---------------------------------------------------------------------------

    def progress(self, snapshot: Snapshot) -> None:
        self._queue_from(lambda: self._events.on_progress(snapshot))

    def aborted(self, reason: str) -> None:
        self._queue_from(lambda: self._events.on_abort(reason, now=time.time()))

    def finished(self, record: RunRecord) -> None:
        self._queue_from(lambda: self._events.on_finished(record, now=time.time()))
        self._queue.put(None)
        self._thread.join(timeout=self._drain_s)
