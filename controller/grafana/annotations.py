"""What a run tells Grafana viewers, and when: annotation bodies from the run's own events (pure).

Every annotation carries the tags `loadctl`, `run_id:<id>` and `profile:<name>` (a dashboard's
annotation query filters on them) plus `event:<start|phase|abort|end>`.

- start: when the exporter reports the test started (the first stage's phase with it);
- phase: a change of phase seen in the live progress snapshot. Its time is not the moment it was
  seen but where the stage table puts it (test start + the earlier stages' durations: the shape
  switches stages by run time), and phases that came and went between two snapshots are announced
  too. The runner's own states between stages ("stopping", "stopped") are not phases;
- abort: a live gate stopped the load;
- end: a region from the start to the end of the run, with the verdict. Whatever was not seen live
  (the start, the last phases of a short run) is announced then, from run.json's phase windows.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from itertools import accumulate
from typing import NotRequired, TypedDict

from controller.models import RunRecord, Stage
from controller.progress import Snapshot

REASON_LIMIT = 200


class AnnotationBody(TypedDict):
    """POST /api/annotations, as far as loadctl fills it in."""

    time: int
    tags: list[str]
    text: str
    timeEnd: NotRequired[int]  # a region's end; Grafana's name for it


@dataclass(frozen=True)
class Annotation:
    time_ms: int
    text: str
    tags: tuple[str, ...]
    time_end_ms: int | None = None

    def body(self) -> AnnotationBody:
        """The body of POST /api/annotations (an organisation-wide annotation: no dashboard id)."""
        body: AnnotationBody = {"time": self.time_ms, "tags": list(self.tags), "text": self.text}
        if self.time_end_ms is not None:
            body["timeEnd"] = self.time_end_ms
        return body


def run_tags(run_id: str, profile: str) -> tuple[str, ...]:
    return ("loadctl", f"run_id:{run_id}", f"profile:{profile}")


def _ms(seconds: float) -> int:
    return round(seconds * 1000)


def _cut(text: str, limit: int = REASON_LIMIT) -> str:
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 3] + "..."


class RunAnnotations:
    """Turns one run's events into annotations; remembers how far it has announced the stage table."""

    def __init__(self, *, run_id: str, profile: str, stages: Sequence[Stage]) -> None:
        if not stages:
            raise ValueError("a run has at least one stage")
        self.run_id = run_id
        self.tags = run_tags(run_id, profile)
        self.profile = profile
        self.stages = tuple(stages)
        self.offsets = tuple(accumulate((s.duration for s in self.stages[:-1]), initial=0.0))
        self.started_at: float | None = None
        self.announced: int | None = None  # the last stage announced; None until the start

    def _start(self, started_at: float) -> Annotation:
        self.started_at, self.announced = started_at, 0
        phase = self.stages[0].phase
        planned = sum(s.duration for s in self.stages)
        text = f"loadctl run {self.run_id} started: profile {self.profile}, {planned:.0f}s planned"
        return Annotation(
            _ms(started_at),
            f"{text}, phase {phase}",
            (*self.tags, "event:start", f"phase:{phase}"),
        )

    def _announce_until(self, last: int, starts: Mapping[int, float]) -> list[Annotation]:
        """Each phase change of stages announced+1..last, at its stage's start."""
        assert self.announced is not None and self.started_at is not None
        out = []
        for index in range(self.announced + 1, last + 1):
            stage, previous = self.stages[index], self.stages[index - 1]
            if stage.phase != previous.phase:
                at = starts.get(index, self.started_at + self.offsets[index])
                out.append(
                    Annotation(
                        _ms(at),
                        f"loadctl run {self.run_id}: phase {stage.phase}: {stage.users} users",
                        (*self.tags, "event:phase", f"phase:{stage.phase}"),
                    )
                )
        self.announced = max(self.announced, last)
        return out

    def on_progress(self, snapshot: Snapshot) -> list[Annotation]:
        out: list[Annotation] = []
        if self.announced is None:
            if snapshot.started_at is None:
                return out
            out.append(self._start(snapshot.started_at))
        assert self.announced is not None
        if snapshot.phase is not None and snapshot.phase != self.stages[self.announced].phase:
            following = range(self.announced + 1, len(self.stages))
            seen = next((i for i in following if self.stages[i].phase == snapshot.phase), None)
            if seen is not None:
                out += self._announce_until(seen, {})
        return out

    def on_abort(self, reason: str, *, now: float) -> list[Annotation]:
        return [
            Annotation(_ms(now), f"loadctl run {self.run_id}: {_cut(reason)}", (*self.tags, "event:abort"))
        ]

    def on_finished(self, record: RunRecord, *, now: float) -> list[Annotation]:
        """The end, as a region over the whole run; before it, what was never seen live."""
        out: list[Annotation] = []
        if self.announced is None and record.started_at is not None:
            out.append(self._start(record.started_at))
        ran = [w for w in record.phases if 0 <= w.stage < len(self.stages)]
        if self.announced is not None and ran:
            out += self._announce_until(max(w.stage for w in ran), {w.stage: w.start for w in ran})
        text = f"loadctl run {self.run_id} ended: verdict {record.verdict} (exit {record.exit_code})"
        if record.requests is not None:
            text += f", {record.requests} requests, {record.failures or 0} failures"
        if record.aborted_by:
            text += f"; aborted by gate {record.aborted_by}"
        if record.reason:
            text += f"; {_cut(record.reason)}"
        end = record.ended_at if record.ended_at is not None else now
        start = record.started_at if record.started_at is not None and record.started_at <= end else None
        out.append(
            Annotation(
                _ms(end if start is None else start),
                text,
                (*self.tags, "event:end", f"verdict:{record.verdict}"),
                time_end_ms=None if start is None else _ms(end),
            )
        )
        return out
