"""One source's latency recorder: folds its frames' stamps into the split the snapshot shows.

Each frame of a many-source run reports to its source's :class:`LatencyRecorder`
twice at most: when it leaves the pipeline (:meth:`LatencyRecorder.out`: the
parts up to there and ``to_out``) and when an output puts it on the glass
(:meth:`LatencyRecorder.glass`: ``output`` and ``to_glass``). Those calls come
from the thread that reads the results and from an output's own thread, so
each appends its spans under a lock; they are folded in batches into bounded
windows (:class:`~framescope.stats.RollingStats`) and the fixed latency grid.
"""

from __future__ import annotations

import threading

from framescope.capture import CAPTURE_CLOCKS, Stamps
from framescope.pipeline.model.latency import LATENCY_PARTS, LATENCY_TOTALS, SourceLatency
from framescope.stats import RollingStats

__all__ = ["FOLD_EVERY", "LATENCY_WINDOW", "LatencyRecorder"]

LATENCY_WINDOW = 512
"""The frames a source's percentiles are taken over (the newest; bounded: a run lasts days)."""

FOLD_EVERY = 128
"""Spans of a part kept pending before they are folded (bounded; a read folds them too)."""


class LatencyRecorder:
    """The latency split of one source's frames (a :class:`~framescope.capture.StampSink`).

    Each report appends its spans (ns) to a pending list per part; they are
    folded into the statistics every :data:`FOLD_EVERY` spans of a part and
    at each :meth:`read`, so a report costs a few appends under the lock.
    """

    def __init__(self, window: int = LATENCY_WINDOW) -> None:
        self._lock = threading.Lock()
        self._stats: dict[str, RollingStats] = {}
        self._pending: dict[str, list[int]] = {}
        for name in (*LATENCY_PARTS, *LATENCY_TOTALS):
            stats = RollingStats(window, divisor=1e9)
            stats.keep_distribution()
            self._stats[name] = stats
            self._pending[name] = []
        self._clocks = dict.fromkeys(CAPTURE_CLOCKS, 0)
        self._untimed = 0

    def out(self, stamps: Stamps) -> None:
        """``stamps``' frame left the pipeline: count its parts up to there."""
        in_ns, out_ns = stamps.in_ns, stamps.out_ns
        if in_ns is None or out_ns is None:
            return
        received, decoded, capture_ns = stamps.received_ns, stamps.decoded_ns, stamps.capture_ns
        pending = self._pending
        with self._lock:
            clocks = self._clocks
            clocks[stamps.capture_clock] = clocks.get(stamps.capture_clock, 0) + 1
            if capture_ns is not None:
                pending["capture"].append(capture_ns)
            pending["decode"].append(decoded - received)
            pending["queue"].append(in_ns - decoded)
            pending["pipeline"].append(out_ns - in_ns)
            spans = pending["to_out"]
            spans.append((capture_ns or 0) + out_ns - received)
            if len(spans) >= FOLD_EVERY:
                self._fold()

    def glass(self, stamps: Stamps) -> None:
        """``stamps``' frame reached the glass: count ``output`` and ``to_glass``."""
        out_ns, glass_ns = stamps.out_ns, stamps.glass_ns
        if out_ns is None or glass_ns is None or stamps.in_ns is None:
            return
        capture_ns = stamps.capture_ns or 0
        pending = self._pending
        with self._lock:
            pending["output"].append(glass_ns - out_ns)
            spans = pending["to_glass"]
            spans.append(capture_ns + glass_ns - stamps.received_ns)
            if len(spans) >= FOLD_EVERY:
                self._fold()

    def untimed(self) -> None:
        """A result carried its source's name and no stamps."""
        with self._lock:
            self._untimed += 1

    def _fold(self) -> None:
        """Fold every pending span into the statistics (under the lock)."""
        for name, spans in self._pending.items():
            if spans:
                self._stats[name].extend(spans)
                self._pending[name] = []

    def read(self) -> SourceLatency:
        """The split so far."""
        with self._lock:
            self._fold()
            return SourceLatency(
                stats={name: stats.snapshot() for name, stats in self._stats.items()},
                clocks={name: count for name, count in self._clocks.items() if count},
                untimed=self._untimed,
            )
