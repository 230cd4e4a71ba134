"""What an exporter reports: pipelines and timers, read once per collection."""

from __future__ import annotations

import re
import threading
from collections.abc import Sequence
from dataclasses import dataclass

from framescope.histogram import DEFAULT_LATENCY_BUCKETS, check_bounds
from framescope.pipeline.metrics import PipelineMetrics, pipeline_metrics
from framescope.pipeline.pipeline import Pipeline
from framescope.stats import StatsSnapshot
from framescope.timepiece.tachometers import BaseTachometer
from framescope.timepiece.timers import BaseTimer

__all__ = ["MetricSources", "Reading", "TimerReading"]

_LABEL_VALUE = re.compile(r"^[A-Za-z0-9_.:\-]{1,128}$")


@dataclass(frozen=True, slots=True)
class TimerReading:
    """One registered timer: its name and statistics (``histogram`` included)."""

    name: str
    kind: str
    stats: StatsSnapshot


@dataclass(frozen=True, slots=True)
class Reading:
    """Everything an exporter reports, read at one moment."""

    pipelines: tuple[PipelineMetrics, ...]
    timers: tuple[TimerReading, ...]


class MetricSources:
    """The pipelines and timers an exporter reports.

    Adding a source starts a cumulative latency histogram on its timers
    (counts from that moment on), since Prometheus and OpenTelemetry
    histograms only grow.

    Args:
        buckets: histogram upper bounds in seconds (sub-millisecond to 10 s by default).
    """

    def __init__(self, buckets: Sequence[float] = DEFAULT_LATENCY_BUCKETS) -> None:
        self.buckets = check_bounds(buckets)
        self._pipelines: list[Pipeline] = []
        self._timers: dict[str, BaseTimer] = {}
        self._lock = threading.Lock()

    def add_pipeline(self, pipeline: Pipeline) -> None:
        """Report ``pipeline``: end-to-end latency, and per stage fps, latency, queue, state."""
        if not isinstance(pipeline, Pipeline):
            raise TypeError(f"pipeline must be a Pipeline, got {type(pipeline).__name__}")
        with self._lock:
            if any(p.name == pipeline.name for p in self._pipelines):
                raise ValueError(f"a pipeline named {pipeline.name!r} is already exported")
            for timer in pipeline.timers().values():
                timer.track_histogram(self.buckets)
            self._pipelines.append(pipeline)

    def add_timer(self, timer: BaseTimer | BaseTachometer, name: str) -> None:
        """Report a Ticker, StopWatch or tachometer under ``name`` (a short, fixed label)."""
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
            timer.track_histogram(self.buckets)
            self._timers[name] = timer

    def read(self) -> Reading:
        """Read every source now."""
        with self._lock:
            pipelines = list(self._pipelines)
            timers = list(self._timers.items())
        return Reading(
            tuple(pipeline_metrics(p) for p in pipelines),
            tuple(
                TimerReading(name, type(timer).__name__, timer.statistics())
                for name, timer in timers
            ),
        )
