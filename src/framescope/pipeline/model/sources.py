"""The sources of a many-source run, as data: their health states, transitions and readings.

``Pipeline.run({"cam1": ..., "cam2": ...})`` reads each source on its own
thread; what each one is doing is one of the :class:`SourceState` values,
and each change of state is a :class:`SourceTransition` (counted, logged,
handed to ``on_source_state``). ``PipelineSnapshot.sources`` holds a
:class:`SourceSnapshot` per source, which every renderer reads. Items of
such a run carry their source's name: a :class:`~framescope.video.Frame`
in its ``source`` field, any other item wrapped in :class:`Sourced`.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import Enum
from typing import Any

from framescope._snapshotformat import Fields, SnapshotFormatError, shown
from framescope.capture import Stamps
from framescope.pipeline.model.latency import SourceLatency, read_latency

__all__ = ["SourceSnapshot", "SourceState", "SourceTransition", "Sourced", "read_sources"]


class SourceState(str, Enum):
    """What a source of a many-source run is doing.

    - ``starting``: read from, no frame yet.
    - ``running``: frames come and the pipeline takes them.
    - ``blocked``: it has a frame and the pipeline will not take it yet
      (back-pressure: the stages are the bottleneck, not the source).
    - ``stalled``: no frame from it for ``stall_after`` seconds while the
      pipeline would take one (the source is the problem).
    - ``reconnecting``: the source says it is reopening its stream.
    - ``ended``: it has no more frames.
    - ``failed``: it raised; the reason is kept.
    """

    STARTING = "starting"
    RUNNING = "running"
    BLOCKED = "blocked"
    STALLED = "stalled"
    RECONNECTING = "reconnecting"
    ENDED = "ended"
    FAILED = "failed"

    def __str__(self) -> str:
        return self.value


FINAL_STATES = frozenset({SourceState.ENDED, SourceState.FAILED})
"""States a source never leaves."""


@dataclass(frozen=True, slots=True)
class Sourced:
    """An item of a many-source run that is not a video ``Frame``, with its source's name.

    A stage of such a run receives it and reads ``item.source`` and
    ``item.item``; to keep the name on a result of another kind, return
    ``item.carry(result)`` (the name and the item's stamps, so its time
    through the pipeline is counted for its source) or
    ``Sourced(item.source, result)`` (the name only: counted as untimed).
    """

    source: str
    item: Any
    stamps: Stamps | None = field(default=None, compare=False, repr=False)

    def carry(self, result: Any) -> Sourced:
        """``result`` with this item's source name and stamps."""
        return Sourced(self.source, result, self.stamps)


@dataclass(frozen=True, slots=True)
class SourceTransition:
    """One change of a source's state, as the ``on_source_state`` callback receives it.

    Attributes:
        source: the source's name.
        old: the state it left.
        new: the state it entered.
        at_ns: when, on the pipeline's clock (monotonic ns).
        reason: why, where there is more to say (a failure's error, how
            long no frame came); None otherwise.
    """

    source: str
    old: SourceState
    new: SourceState
    at_ns: int
    reason: str | None = None


@dataclass(frozen=True, slots=True)
class SourceSnapshot:
    """One source of a many-source run at the snapshot's instant.

    Attributes:
        name: the source's name (the key it was given under).
        state: what it is doing (:class:`SourceState`).
        since: seconds it has been in that state.
        reason: why it failed or stalled (None otherwise).
        frames: items taken from it.
        dropped: of those, items the pipeline refused (its overflow policy).
        failed: of those, items a stage failed on that reached the reader
            (``raise`` policy; other policies count failures pipeline-wide).
        results: results read that carry its name.
        fps: frames a second over the last ``FPS_WINDOW_S`` seconds (None
            before its second frame).
        reconnects: times the source reopened its stream (0 where the source
            does not say).
        last_frame_age: seconds since its last frame (None: none yet).
        transitions: how many times it entered each state, by state name.
        callback_errors: times the ``on_source_state`` callback raised on one
            of its transitions (logged; the source went on).
        latency: its items' age split from capture to glass
            (:class:`~framescope.pipeline.model.latency.SourceLatency`); None
            where nothing was timed (a snapshot read from older JSON).
    """

    name: str
    state: SourceState
    since: float
    reason: str | None = None
    frames: int = 0
    dropped: int = 0
    failed: int = 0
    results: int = 0
    fps: float | None = None
    reconnects: int = 0
    last_frame_age: float | None = None
    transitions: Mapping[str, int] = field(default_factory=dict)
    callback_errors: int = 0
    latency: SourceLatency | None = None

    def to_dict(self) -> dict[str, Any]:
        """The source's reading as a JSON-ready dict (:func:`read_sources` reads it back)."""
        return {
            "name": self.name,
            "state": self.state.value,
            "since": self.since,
            "reason": self.reason,
            "frames": self.frames,
            "dropped": self.dropped,
            "failed": self.failed,
            "results": self.results,
            "fps": self.fps,
            "reconnects": self.reconnects,
            "last_frame_age": self.last_frame_age,
            "transitions": dict(self.transitions),
            "callback_errors": self.callback_errors,
            "latency": None if self.latency is None else self.latency.to_dict(),
        }


def _read_source(fields: Fields) -> SourceSnapshot:
    state = fields.text("state")
    try:
        parsed = SourceState(state)
    except ValueError:
        allowed = ", ".join(s.value for s in SourceState)
        raise fields.fail("state", f"one of {allowed}", state) from None
    transitions = fields.child("transitions", {})
    for name in transitions.data:
        if name not in SourceState._value2member_map_:
            raise SnapshotFormatError(f"{transitions.at(name)}: not a source state: {shown(name)}")
    since = _non_negative(fields, "since", 0.0)
    latency = fields.get("latency", None)
    return SourceSnapshot(
        name=fields.text("name"),
        state=parsed,
        since=0.0 if since is None else since,
        reason=fields.text("reason", None, or_none=True),
        frames=fields.integer("frames", 0),
        dropped=fields.integer("dropped", 0),
        failed=fields.integer("failed", 0),
        results=fields.integer("results", 0),
        fps=_non_negative(fields, "fps", None),
        reconnects=fields.integer("reconnects", 0),
        last_frame_age=_non_negative(fields, "last_frame_age", None),
        transitions={str(name): transitions.integer(name) for name in transitions.data},
        callback_errors=fields.integer("callback_errors", 0),
        latency=None if latency is None else read_latency(fields.child("latency")),
    )


def _non_negative(fields: Fields, key: str, default: float | None) -> float | None:
    value: float | None = fields.number(key, default, or_none=True)
    if value is not None and value < 0:
        raise fields.fail(key, "a number >= 0 or null", value)
    return value


def read_sources(fields: Fields, key: str = "sources") -> dict[str, SourceSnapshot]:
    """The ``sources`` list of a snapshot's dict, by name (a name twice is an error)."""
    sources: dict[str, SourceSnapshot] = {}
    for index, data in enumerate(fields.items(key, ())):
        source = _read_source(Fields(data, f"{fields.at(key)}[{index}]"))
        if source.name in sources:
            raise SnapshotFormatError(
                f"{fields.at(key)}[{index}].name: {source.name!r} appears twice"
            )
        sources[source.name] = source
    return sources
