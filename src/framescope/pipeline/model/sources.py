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

__all__ = [
    "FPS_WINDOW_S",
    "QUALITY_WINDOW_S",
    "SourceQuality",
    "SourceSnapshot",
    "SourceState",
    "SourceTransition",
    "Sourced",
    "read_sources",
]

FPS_WINDOW_S = 5.0
"""The window (seconds) a source's frame rate is measured over (and ``min_fps`` judged on)."""

QUALITY_WINDOW_S = 3600.0
"""The window (seconds) of a source's quality figures: its last hour."""


class SourceState(str, Enum):
    """What a source of a many-source run is doing.

    - ``starting``: read from, no frame yet.
    - ``running``: frames come and the pipeline takes them.
    - ``degraded``: frames come, but slower than the run's ``min_fps`` over
      the last :data:`FPS_WINDOW_S` seconds of the source's own time (what
      it spent inside ``next()``: a source held back by the pipeline is not
      degraded). Only with ``min_fps``.
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
    DEGRADED = "degraded"
    BLOCKED = "blocked"
    STALLED = "stalled"
    RECONNECTING = "reconnecting"
    ENDED = "ended"
    FAILED = "failed"

    def __str__(self) -> str:
        return self.value


FINAL_STATES = frozenset({SourceState.ENDED, SourceState.FAILED})
"""States a source never leaves."""

UP_STATES = frozenset({SourceState.RUNNING, SourceState.DEGRADED, SourceState.BLOCKED})
"""States in which frames come (``blocked``: faster than the pipeline takes them)."""


@dataclass(frozen=True, slots=True)
class SourceQuality:
    """How a source did over its last hour (:data:`QUALITY_WINDOW_S`), or since it started.

    The hour moves on a minute at a time: the figures cover whole minutes
    from the source's start, the last 59 to 60 of them; before an hour has
    passed, the time since it started. A source that ended or failed stops
    there: its figures stay those of the time it ran.

    Attributes:
        window: seconds these figures cover (up to an hour).
        shares: the share of ``window`` spent in each state, by state name
            (only states it was in); they add up to 1.
        frames: frames taken from it in the window.
        dropped: of those, frames the pipeline refused or a stop left behind.
        reconnects: times it reopened its stream in the window.
        fps: frames a second of the time frames came (``running``,
            ``degraded``, ``blocked``; None before any): the rate while up.
        nominal_fps: the rate the source says it has (a video stream's
            average rate, a synthetic source's ``fps``); None where it says none.
    """

    window: float
    shares: Mapping[str, float]
    frames: int = 0
    dropped: int = 0
    reconnects: int = 0
    fps: float | None = None
    nominal_fps: float | None = None

    @property
    def up(self) -> float:
        """The share of the window frames came (``running``, ``degraded`` or ``blocked``)."""
        return sum(self.shares.get(state.value, 0.0) for state in UP_STATES)

    @property
    def rate_ratio(self) -> float | None:
        """``fps`` against ``nominal_fps`` (None where either is unknown)."""
        if self.fps is None or not self.nominal_fps:
            return None
        return self.fps / self.nominal_fps

    def to_dict(self) -> dict[str, Any]:
        """The figures as a JSON-ready dict."""
        return {
            "window": self.window,
            "shares": dict(self.shares),
            "frames": self.frames,
            "dropped": self.dropped,
            "reconnects": self.reconnects,
            "fps": self.fps,
            "nominal_fps": self.nominal_fps,
        }


def _read_quality(fields: Fields) -> SourceQuality:
    shares = fields.child("shares", {})
    for name in shares.data:
        if name not in SourceState._value2member_map_:
            raise SnapshotFormatError(f"{shares.at(name)}: not a source state: {shown(name)}")
    window = _non_negative(fields, "window", 0.0)
    return SourceQuality(
        window=0.0 if window is None else window,
        shares={str(name): _share(shares, name) for name in shares.data},
        frames=fields.integer("frames", 0),
        dropped=fields.integer("dropped", 0),
        reconnects=fields.integer("reconnects", 0),
        fps=_non_negative(fields, "fps", None),
        nominal_fps=_non_negative(fields, "nominal_fps", None),
    )


def _share(fields: Fields, key: str) -> float:
    value: float = fields.number(key)
    if not 0 <= value <= 1:
        raise fields.fail(key, "a share from 0 to 1", value)
    return value


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
        quality: its last hour (:class:`SourceQuality`).
        history: its latest changes of state, oldest first, as ``(at_ns,
            state)`` on the pipeline's clock (its start as ``starting``
            first, while kept): what a trace draws as its track.
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
    quality: SourceQuality | None = None
    history: tuple[tuple[int, SourceState], ...] = ()
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
            "quality": None if self.quality is None else self.quality.to_dict(),
            "history": [[at_ns, state.value] for at_ns, state in self.history],
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
    quality = fields.get("quality", None)
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
        quality=None if quality is None else _read_quality(fields.child("quality")),
        history=_read_history(fields),
        latency=None if latency is None else read_latency(fields.child("latency")),
    )


def _read_history(fields: Fields) -> tuple[tuple[int, SourceState], ...]:
    """A source's ``history``: ``[at_ns, state]`` pairs (errors name the entry)."""
    history = []
    for index, entry in enumerate(fields.items("history", ())):
        where = f"{fields.at('history')}[{index}]"
        if not isinstance(entry, (list, tuple)) or len(entry) != 2:
            raise SnapshotFormatError(f"{where}: expected [at_ns, state], got {shown(entry)}")
        at_ns, state = entry
        if isinstance(at_ns, bool) or not isinstance(at_ns, int):
            raise SnapshotFormatError(f"{where}[0]: expected an integer, got {shown(at_ns)}")
        if state not in SourceState._value2member_map_:
            raise SnapshotFormatError(f"{where}[1]: not a source state: {shown(state)}")
        history.append((at_ns, SourceState(state)))
    return tuple(history)


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
