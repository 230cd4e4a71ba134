"""What an exporter reports: snapshot sources, read once per collection.

An exporter never reaches into a live pipeline or timer: it holds *sources*,
objects with ``snapshot()`` (a ``Pipeline``, or anything that produces a
:class:`~framescope.pipeline.PipelineSnapshot`; a timer or tachometer), and
renders what one :meth:`MetricSources.read` returns. Histogram buckets belong
to the exporter: timers count on a fixed grid (``StatsSnapshot.distribution``)
that each exporter sums into its own buckets, so exporters with different
buckets can report the same pipeline.
"""

from __future__ import annotations

import re
import threading
from collections.abc import Sequence
from dataclasses import dataclass

from framescope.histogram import DEFAULT_LATENCY_BUCKETS, HistogramSnapshot, check_bounds
from framescope.pipeline.model.snapshot import PipelineSnapshot, SnapshotSource, StageSnapshot
from framescope.stats import StatsSnapshot
from framescope.timepiece.tachometers import BaseTachometer
from framescope.timepiece.timers import BaseTimer

__all__ = ["CPU_STATES", "MetricSources", "Reading", "TimerReading", "cpu_seconds", "histogram_of"]

_LABEL_VALUE = re.compile(r"^[A-Za-z0-9_.:\-]{1,128}$")


@dataclass(frozen=True, slots=True)
class TimerReading:
    """One registered timer: its name, kind and statistics (``distribution`` included)."""

    name: str
    kind: str
    stats: StatsSnapshot


@dataclass(frozen=True, slots=True)
class Reading:
    """Everything an exporter reports, read at one moment."""

    pipelines: tuple[PipelineSnapshot, ...]
    timers: tuple[TimerReading, ...]


CPU_STATES = ("on_cpu", "runqueue", "blocked")
"""The ``state`` of a stage's CPU seconds: on a CPU, runnable but waiting for one, sleeping."""


def cpu_seconds(stage: StageSnapshot) -> list[tuple[str, float]]:
    """A stage's all-time seconds in each of :data:`CPU_STATES`; a state not known is left out.

    Nothing for a stage not measured (serial mode, Ray replicas). A
    replicated stage's seconds are its replicas' summed.
    """
    split = stage.cpu
    if split is None:
        return []
    seconds = (split.on_cpu_s, split.waiting_s, split.blocked_s)
    return [
        (state, value)
        for state, value in zip(CPU_STATES, seconds, strict=True)
        if value is not None
    ]


def histogram_of(stats: StatsSnapshot, buckets: Sequence[float]) -> HistogramSnapshot | None:
    """The cumulative histogram of ``stats`` in ``buckets`` (None without a distribution)."""
    if stats.distribution is None:
        return None
    return stats.distribution.histogram(buckets)


class MetricSources:
    """The pipelines and timers an exporter reports, and the exporter's buckets.

    Args:
        buckets: histogram upper bounds in seconds (sub-millisecond to 10 s by default).
    """

    def __init__(self, buckets: Sequence[float] = DEFAULT_LATENCY_BUCKETS) -> None:
        self.buckets = check_bounds(buckets)
        self._pipelines: list[SnapshotSource] = []
        self._timers: dict[str, BaseTimer] = {}
        self._lock = threading.Lock()

    def add_pipeline(self, pipeline: SnapshotSource) -> None:
        """Report ``pipeline`` (anything with ``name`` and ``snapshot()``)."""
        if not callable(getattr(pipeline, "snapshot", None)) or not isinstance(
            getattr(pipeline, "name", None), str
        ):
            raise TypeError(
                "pipeline must be a Pipeline (or have a name and snapshot()), "
                f"got {type(pipeline).__name__}"
            )
        with self._lock:
            if any(p.name == pipeline.name for p in self._pipelines):
                raise ValueError(f"a pipeline named {pipeline.name!r} is already exported")
            self._pipelines.append(pipeline)

    def add_timer(self, timer: BaseTimer | BaseTachometer, name: str) -> None:
        """Report a Ticker, StopWatch or tachometer under ``name`` (a short, fixed label).

        The timer starts counting its intervals on the fixed grid (it has no
        buckets to choose, so several exporters can share it).
        """
        if isinstance(timer, BaseTachometer):
            timer = timer.timer
        if not isinstance(timer, BaseTimer):
            raise TypeError(
                f"timer must be a Ticker, StopWatch or tachometer, got {type(timer).__name__}"
            )
        if not isinstance(name, str) or not _LABEL_VALUE.match(name):
            raise ValueError(
                "name must be 1-128 letters, digits or _.:- (a low-cardinality label), "
                f"got {name!r}"
            )
        with self._lock:
            if name in self._timers:
                raise ValueError(f"a timer named {name!r} is already exported")
            timer.keep_distribution()
            self._timers[name] = timer

    @property
    def pipelines(self) -> tuple[SnapshotSource, ...]:
        """The pipeline sources, in the order they were added."""
        with self._lock:
            return tuple(self._pipelines)

    def read(self) -> Reading:
        """Take one snapshot of every source."""
        with self._lock:
            pipelines = list(self._pipelines)
            timers = list(self._timers.items())
        return Reading(
            tuple(p.snapshot() for p in pipelines),
            tuple(
                TimerReading(name, type(timer).__name__, timer.snapshot().stats)
                for name, timer in timers
            ),
        )
