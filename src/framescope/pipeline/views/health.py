"""Is the pipeline healthy? The one verdict behind ``/healthz`` and the heartbeat file.

:func:`judge_health` reads pipeline snapshots and nothing else; every
endpoint and file that says "healthy" renders what it returns. A pipeline is
unhealthy when one of these holds:

- a source of a many-source run is ``stalled`` (no frame for ``stall_after``
  seconds while the pipeline would take one) or ``failed`` (with its reason),
  or ``degraded`` (slower than the ``min_fps`` the run was given: asking
  for a floor is asking to be told);
- a source is ``reconnecting`` and its last frame is more than
  ``reconnect_limit`` seconds old (30 by default: three of ``VideoSource``'s
  longest back-offs). A camera that reopens its stream now and then is
  fine; one that cannot get back is not. The bound is on the last frame,
  not on the time in the state, so a source that goes from ``stalled`` to
  ``reconnecting`` and back does not look fresh at each change;
- the source of a one-source run raised (``source_error``);
- a stage is stalled: the diagnosis's "stalled" verdict
  (:func:`~framescope.pipeline.views.diagnosis.stalled`), items inside and
  none completed for ``stall_after`` seconds;
- a box of a fleet view does not answer (``unreachable``): its last answer
  says nothing about now.

A ``blocked`` source is healthy: it has frames and the stages are slow
(back-pressure), which a restart of the camera would not cure. An ``ended``
source is healthy too: a file or a finite stream that finished did what it
should; a supervisor that needs the process to keep running watches for the
process's exit, or for a heartbeat that stops. ``starting`` is healthy until
the source's own ``stall_after`` makes it ``stalled``.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from framescope.pipeline.model.snapshot import PipelineSnapshot
from framescope.pipeline.model.sources import SourceSnapshot, SourceState
from framescope.pipeline.views.diagnosis import stalled

__all__ = ["RECONNECT_LIMIT_S", "Health", "Problem", "judge_health"]

_PASSWORD = re.compile(r"(?P<head>[A-Za-z][A-Za-z0-9+.-]*://[^\s:/@]*:)[^\s@/]+@")
_SECRET = re.compile(
    r"(?P<head>[?&](?:token|access_token|secret|password|key|api_key)=)[^&\s'\"]+", re.I
)

RECONNECT_LIMIT_S = 30.0
"""Seconds without a frame a ``reconnecting`` source may have before it is unhealthy (default)."""


@dataclass(frozen=True, slots=True)
class Problem:
    """One reason a pipeline is unhealthy.

    Attributes:
        pipeline: the pipeline's name.
        kind: ``"source"`` (a source of the run), ``"stage"`` (a stalled
            stage) or ``"box"`` (a fleet view's box that does not answer).
        name: the source's name, the stalled stage's key (the pipeline's
            name where the snapshot cannot tell which stage holds the items)
            or the box's name.
        state: ``"stalled"``, ``"failed"``, ``"degraded"``, ``"reconnecting"`` or
            ``"unreachable"``.
        reason: what happened, in words (passwords and tokens of URLs in it
            shown as ``***``: the answer may go where the camera's secrets must not).
        since: seconds in that state (None where unknown).
        last_frame_age: seconds since the source's last frame (None: none
            yet, or a stage).
    """

    pipeline: str
    kind: str
    name: str
    state: str
    reason: str
    since: float | None = None
    last_frame_age: float | None = None

    def to_dict(self) -> dict[str, Any]:
        """The problem as a JSON-ready dict."""
        return {
            "pipeline": self.pipeline,
            "kind": self.kind,
            "name": self.name,
            "state": self.state,
            "reason": self.reason,
            "since": self.since,
            "last_frame_age": self.last_frame_age,
        }


@dataclass(frozen=True, slots=True)
class Health:
    """The health verdict of one or more pipelines at one instant.

    Attributes:
        problems: every reason it is unhealthy (empty: healthy).
        sources: each source's state by name (for the answer's reader).
    """

    problems: tuple[Problem, ...] = ()
    sources: dict[str, str] | None = None

    @property
    def healthy(self) -> bool:
        """Whether nothing is wrong."""
        return not self.problems

    @property
    def status(self) -> str:
        """``"ok"`` or ``"unhealthy"``."""
        return "ok" if self.healthy else "unhealthy"

    @property
    def http_status(self) -> int:
        """What ``/healthz`` answers: 200 when healthy, 503 when not."""
        return 200 if self.healthy else 503

    def to_dict(self) -> dict[str, Any]:
        """``{"status", "problems", "sources"}`` as JSON-ready data."""
        return {
            "status": self.status,
            "problems": [problem.to_dict() for problem in self.problems],
            "sources": dict(self.sources or {}),
        }

    def to_json(self) -> bytes:
        """The body of a ``/healthz`` answer."""
        return json.dumps(self.to_dict()).encode()

    def line(self) -> str:
        """One line: ``ok``, or ``unhealthy: source cam2 stalled (no frame for 6.0 s); ...``."""
        if self.healthy:
            return "ok"
        said = "; ".join(f"{p.kind} {p.name} {p.state} ({p.reason})" for p in self.problems)
        return f"unhealthy: {said}"


def judge_health(
    snapshots: PipelineSnapshot | Iterable[PipelineSnapshot],
    *,
    stall_after: float = 5.0,
    reconnect_limit: float = RECONNECT_LIMIT_S,
    unreachable: Mapping[str, str] | None = None,
) -> Health:
    """The health of ``snapshots`` (one or several pipelines): see the module's rules.

    ``stall_after``: seconds without a completed item, items inside, that
    make a stage stalled (the diagnosis's default, 5). ``reconnect_limit``:
    seconds without a frame a ``reconnecting`` source may have. ``unreachable``: a fleet
    view's boxes that do not answer, by name, with why.
    """
    if isinstance(snapshots, PipelineSnapshot):
        snapshots = (snapshots,)
    problems: list[Problem] = []
    states: dict[str, str] = {}
    for snapshot in snapshots:
        if not isinstance(snapshot, PipelineSnapshot):
            raise TypeError(f"snapshots must be PipelineSnapshots, got {type(snapshot).__name__}")
        for source in snapshot.sources.values():
            states[source.name] = source.state.value
            problem = _source_problem(snapshot.pipeline, source, reconnect_limit)
            if problem is not None:
                problems.append(problem)
        problems.extend(_pipeline_problems(snapshot, stall_after))
    for box, why in (unreachable or {}).items():
        problems.append(Problem("fleet", "box", box, "unreachable", why))
    return Health(tuple(problems), states)


def _source_problem(pipeline: str, source: SourceSnapshot, limit: float) -> Problem | None:
    state = source.state
    if state is SourceState.STALLED:
        age = source.last_frame_age
        reason = source.reason or ("no frame yet" if age is None else f"no frame for {age:.1f} s")
    elif state is SourceState.FAILED:
        reason = source.reason or "it failed"
    elif state is SourceState.DEGRADED:
        reason = source.reason or "slower than min_fps"
    elif state is SourceState.RECONNECTING and _silent_for(source) > limit:
        reason = f"no frame for {_silent_for(source):.1f} s, more than {limit:g} s"
    else:
        return None
    return Problem(
        pipeline,
        "source",
        source.name,
        state.value,
        _hidden(reason),
        source.since,
        source.last_frame_age,
    )


def _hidden(reason: str) -> str:
    """``reason`` with the passwords and tokens of URLs in it as ``***`` (a camera's URL)."""
    return _SECRET.sub(r"\g<head>***", _PASSWORD.sub(r"\g<head>***@", reason))


def _silent_for(source: SourceSnapshot) -> float:
    """Seconds since the source's last frame (since it entered its state, before any frame)."""
    return source.since if source.last_frame_age is None else source.last_frame_age


def _pipeline_problems(snapshot: PipelineSnapshot, stall_after: float) -> list[Problem]:
    problems = []
    if snapshot.source_error is not None:
        problems.append(
            Problem(
                snapshot.pipeline,
                "source",
                snapshot.pipeline,
                "failed",
                _hidden(snapshot.source_error),
            )
        )
    stall = stalled(snapshot, stall_after)
    if stall is not None:
        headline, reasons, stage = stall
        reason = "; ".join([headline, *reasons[1:]])
        problems.append(
            Problem(snapshot.pipeline, "stage", stage or snapshot.pipeline, "stalled", reason)
        )
    return problems
