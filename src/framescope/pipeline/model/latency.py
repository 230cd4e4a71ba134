"""A source's capture-to-glass latency split, as data: the one home of its parts' names.

Each frame of a many-source run carries stamps (:mod:`framescope.capture`);
its source folds them into one :class:`SourceLatency`
(``snapshot().sources[name].latency``). The split of a frame's age:

====================  ====================================================================
part                  from -> to
====================  ====================================================================
``capture``           captured -> received (the camera, its encoder, the network); a
                      difference of two wall clocks, the camera's and this machine's;
                      only for frames whose capture clock times it (not ``received``,
                      nor ``file``: a recording's date is not a frame's age)
``decode``            received -> decoded (the decoder and the conversion to an array)
``queue``             decoded -> into the pipeline (the source's thread, its queue)
``pipeline``          into the pipeline -> out of it (the result read from ``run()``),
                      or handed to an output inside it (a ``SpyGlass`` stage, a live
                      preview) if sooner;
                      timed for every item of the run, video frame or not
``output``            out -> on the glass (sent by ``SpyGlass``, written by
                      ``VideoWriter``, shown by the live preview: the first of them)
====================  ====================================================================

and two totals, ``to_out`` (captured -> out) and ``to_glass`` (captured -> on
the glass). A frame whose capture clock is ``received`` starts both at its
receipt: ``clocks`` says how many frames each clock stamped.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from framescope._snapshotformat import Fields, SnapshotFormatError, shown
from framescope.statsnapshot import StatsSnapshot, read_stats

__all__ = ["LATENCY_PARTS", "LATENCY_TOTALS", "LatencyFigures", "SourceLatency", "read_latency"]

#: The parts of a frame's age, in order, and what each spans.
LATENCY_PARTS: dict[str, str] = {
    "capture": "captured -> received (camera, encoder, network)",
    "decode": "received -> decoded",
    "queue": "decoded -> into the pipeline (the source's queue)",
    "pipeline": "into the pipeline -> out of it",
    "output": "out of the pipeline -> on the glass (sent, written, shown)",
}

#: The totals: a frame's age when it left the pipeline, and when it reached the glass.
LATENCY_TOTALS: dict[str, str] = {
    "to_out": "captured -> out of the pipeline",
    "to_glass": "captured -> on the glass",
}


@dataclass(frozen=True, slots=True)
class LatencyFigures:
    """One part's figures, in seconds.

    ``p50``/``p90``/``p99`` are over the recent window of frames (the
    source's newest ``window``); ``maximum`` and ``count`` over every frame.
    """

    count: int
    p50: float
    p90: float
    p99: float
    maximum: float


@dataclass(frozen=True, slots=True)
class SourceLatency:
    """One source's latency split: a statistics snapshot per part and total, in seconds.

    Attributes:
        stats: by part or total name (:data:`LATENCY_PARTS`, :data:`LATENCY_TOTALS`),
            the statistics of that span over the source's frames (seconds;
            recent window, all-time count/max, and the cumulative distribution
            the exporters read).
        clocks: frames stamped by each capture clock (``rtcp``, ``received`` ...).
        untimed: results carrying the source's name that had no stamps (a
            stage returned a new item; ``Sourced.carry`` keeps them).
    """

    stats: Mapping[str, StatsSnapshot] = field(default_factory=dict)
    clocks: Mapping[str, int] = field(default_factory=dict)
    untimed: int = 0

    def figures(self, name: str) -> LatencyFigures | None:
        """The figures of part or total ``name`` (None: nothing measured for it)."""
        if name not in LATENCY_PARTS and name not in LATENCY_TOTALS:
            allowed = ", ".join([*LATENCY_PARTS, *LATENCY_TOTALS])
            raise ValueError(f"name must be one of {allowed}, got {name!r}")
        stats = self.stats.get(name)
        if stats is None or not stats.count:
            return None
        return LatencyFigures(
            count=stats.count,
            p50=stats.median(),
            p90=stats.percentile(90),
            p99=stats.percentile(99),
            maximum=stats.maximum,
        )

    @property
    def frames(self) -> int:
        """Items timed through the pipeline (the count of the ``pipeline`` part)."""
        stats = self.stats.get("pipeline")
        return 0 if stats is None else stats.count

    def merge(self, other: SourceLatency) -> SourceLatency:
        """Both readings together (one source read in two places)."""
        stats = dict(self.stats)
        for name, theirs in other.stats.items():
            stats[name] = stats[name].merge(theirs) if name in stats else theirs
        clocks = dict(self.clocks)
        for name, count in other.clocks.items():
            clocks[name] = clocks.get(name, 0) + count
        return SourceLatency(stats, clocks, self.untimed + other.untimed)

    def to_dict(self) -> dict[str, Any]:
        """The split as a JSON-ready dict (:func:`read_latency` reads it back)."""
        return {
            "stats": {name: stats.to_dict() for name, stats in self.stats.items()},
            "clocks": dict(self.clocks),
            "untimed": self.untimed,
        }


def read_latency(fields: Fields) -> SourceLatency:
    """A :class:`SourceLatency` from checked fields (errors name the field's path)."""
    stats = fields.child("stats", {})
    known = {*LATENCY_PARTS, *LATENCY_TOTALS}
    for name in stats.data:
        if name not in known:
            raise SnapshotFormatError(f"{stats.at(name)}: not a latency part: {shown(name)}")
    clocks = fields.child("clocks", {})
    return SourceLatency(
        stats={str(name): read_stats(stats.child(name)) for name in stats.data},
        clocks={str(name): clocks.integer(name) for name in clocks.data},
        untimed=fields.integer("untimed", 0),
    )
