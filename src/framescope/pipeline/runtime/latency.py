"""One source's latency recorder: folds its frames' stamps into the split the snapshot shows.

Each frame of a many-source run reports to its source's :class:`LatencyRecorder`
twice at most: when it leaves the pipeline (:meth:`LatencyRecorder.out`: the
parts up to there and ``to_out``) and when an output puts it on the glass
(:meth:`LatencyRecorder.glass`: ``output`` and ``to_glass``). Those calls come
from the thread that reads the results and from an output's own thread, so
the statistics are kept under a lock; each is a handful of appends to bounded
windows (:class:`~framescope.stats.RollingStats`) and the fixed latency grid.
"""

from __future__ import annotations

import threading

from framescope.capture import CAPTURE_CLOCKS, RECEIVED, Stamps
from framescope.pipeline.model.latency import LATENCY_PARTS, LATENCY_TOTALS, SourceLatency
from framescope.stats import RollingStats

__all__ = ["LATENCY_WINDOW", "LatencyRecorder"]

LATENCY_WINDOW = 512
"""The frames a source's percentiles are taken over (the newest; bounded: a run lasts days)."""


class LatencyRecorder:
    """The latency split of one source's frames (a :class:`~framescope.capture.StampSink`)."""

    def __init__(self, window: int = LATENCY_WINDOW) -> None:
        self._lock = threading.Lock()
        self._stats: dict[str, RollingStats] = {}
        for name in (*LATENCY_PARTS, *LATENCY_TOTALS):
            stats = RollingStats(window, divisor=1e9)
            stats.keep_distribution()
            self._stats[name] = stats
        self._clocks = dict.fromkeys(CAPTURE_CLOCKS, 0)
        self._untimed = 0

    def out(self, stamps: Stamps) -> None:
        """``stamps``' frame left the pipeline: count its parts up to there."""
        in_ns, out_ns = stamps.in_ns, stamps.out_ns
        if in_ns is None or out_ns is None:
            return
        received, decoded = stamps.received_ns, stamps.decoded_ns
        truth = stamps.capture_clock != RECEIVED
        capture_ns = round((stamps.received_wall - stamps.capture_time) * 1e9) if truth else 0
        stats = self._stats
        with self._lock:
            clocks = self._clocks
            clocks[stamps.capture_clock] = clocks.get(stamps.capture_clock, 0) + 1
            if truth:
                stats["capture"].add(capture_ns)
            stats["decode"].add(decoded - received)
            stats["queue"].add(in_ns - decoded)
            stats["pipeline"].add(out_ns - in_ns)
            stats["to_out"].add(capture_ns + out_ns - received)

    def glass(self, stamps: Stamps) -> None:
        """``stamps``' frame reached the glass: count ``output`` and ``to_glass``."""
        out_ns, glass_ns = stamps.out_ns, stamps.glass_ns
        if out_ns is None or glass_ns is None or stamps.in_ns is None:
            return
        truth = stamps.capture_clock != RECEIVED
        capture_ns = round((stamps.received_wall - stamps.capture_time) * 1e9) if truth else 0
        with self._lock:
            self._stats["output"].add(glass_ns - out_ns)
            self._stats["to_glass"].add(capture_ns + glass_ns - stamps.received_ns)

    def untimed(self) -> None:
        """A result carried its source's name and no stamps."""
        with self._lock:
            self._untimed += 1

    def read(self) -> SourceLatency:
        """The split so far."""
        with self._lock:
            return SourceLatency(
                stats={name: stats.snapshot() for name, stats in self._stats.items()},
                clocks={name: count for name, count in self._clocks.items() if count},
                untimed=self._untimed,
            )
